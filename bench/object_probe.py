"""Does the actor see where the object is? Probes of the object's position, from its features and from the pixels.

The sweep prior succeeds on 9 of 50 held-out scenes and DAgger's corrections on its own states made it worse
(README, Models, "DAgger on the sweep"); its first steps hardly depend on the scene. One explanation: at 96 px the
32 mm trash is a few pixels, and the actor does not hold where it is, so no label can teach it to push the trash
along a line. This script measures that, and contrasts it with pick_bowl's bowl (the task the same prior does
well, 37 of 50).

Data: episode folders of the fast training format (``<folder>/npz/*.npz``: expert demos, DAgger or policy
rollouts). Episodes recorded with the object's position (``meta["object_mm"]``: demos and rollouts of this version)
are read as recorded; older ones are replayed in the simulator from their seed with their executed actions, and the
replay must reproduce the recorded flange poses (to ``REPLAY_TOLERANCE_MM``), else the script stops naming the
episode. Steps are split into fit and held-out by scene (seed), 30 % held out by a hash, as bench/actor_probe.py does.

Targets, millimetres: the object's centre relative to the tool centre point (``rel``, x and y: where to move; the
quantity a push must be aligned on) and in the world (``abs``, x and y). Readouts are fitted on every fit
observation and scored on two subsets of the held-out ones: ``all``, and ``start``, each episode's first observation
(the arm at its start pose, so only the pixels can say where the object is). Each score is a held-out RMSE per
target and R^2 against the subset's fit mean. ``--target goal`` probes where the object must end instead
(``SimTask.goal_key``: pick_bowl's plate, the sweep's dustpan; read from the scene reset to each episode's seed):
the carry and the push need it as much as the object.

- ``mean``: the fit split's mean (what knowing nothing scores);
- ``pose``: ridge regression on the state text's x, y, z (the prompt's numbers alone);
- ``features/<name>``: ridge regression on the hidden state at the prompt's last token of each given checkpoint
  (``vlac_actor.scoring.prompt_features``: what the value head and the first action decision read);
- ``cnn``: a small convolutional net trained from scratch on the fit split's frames (what the pixels hold).

Ridge penalties are chosen per readout on an inner split of the fit scenes. Usage:

  MUJOCO_GL=egl python bench/object_probe.py FOLDER [FOLDER ...] [--policy NAME=DIR ...] [--cnn-epochs 15]
      [--max-episodes N] [--target object|goal] [--threads 2]

Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # actor_probe.py, beside it
from actor_probe import FEATURE_BATCH, add_policy_argument, held_out_mask, named_policies, regress_cnn

REPLAY_TOLERANCE_MM = 0.5
TARGETS = ("rel_x_mm", "rel_y_mm", "abs_x_mm", "abs_y_mm")
RIDGE_PENALTIES = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
INNER_SHARE = 0.25


@dataclass
class ProbeSteps:
    """Every observation of the replayed episodes, in order: one entry per observation in every list."""

    task: str
    scenes: list[str]
    first: np.ndarray  # (N,) True at each episode's first observation (the arm at its start, before any move)
    targets_mm: np.ndarray  # (N, 4) in TARGETS order
    pose_mm: np.ndarray  # (N, 3) the flange's x, y, z as the state text writes it
    contents: list[str]  # the actor's prompt text
    images: list[tuple[np.ndarray, ...]]  # the actor's prompt images


class ReplayMismatch(RuntimeError):
    """A replayed episode left the recorded trajectory: its object positions would be wrong."""


def replay_object_mm(record, arm) -> np.ndarray:
    """(T+1, 3) the object's centre in mm at each of ``record``'s observations, from replaying its executed
    actions on ``arm`` (a ``SimArm`` of the record's task); checks the replay against the recorded poses."""
    from vlac_core.types import DeltaAction

    arm.reset_to_seed(record.seed, image=False)
    positions = []
    for t in range(record.length + 1):
        pose = arm.arm_state().end_pose.as_array()
        gap_mm = float(np.abs(pose[:3] - record.end_poses[t, :3]).max())
        if gap_mm > REPLAY_TOLERANCE_MM:
            raise ReplayMismatch(
                f"{record.task} seed {record.seed}: the replay's flange is {gap_mm:.2f} mm from the recorded pose at "
                f"observation {t} (tolerance {REPLAY_TOLERANCE_MM} mm): the episode does not replay"
            )
        positions.append(arm.backend.object_mm())  # rounded as a recorder rounds it
        if t < record.length:
            arm.execute(DeltaAction(*(int(v) for v in record.actions[t])))
    return np.asarray(positions, dtype=np.float64)


def goal_mm(seed: int, arm) -> np.ndarray:
    """(3,) where the task's object must end (``SimTask.goal_key``) in the scene of ``seed``, mm."""
    arm.reset_to_seed(seed, image=False)
    return np.asarray(arm.backend.goal_mm(), dtype=np.float64)


def probe_steps(folders: list[Path], max_episodes: int = 0, target: str = "object") -> ProbeSteps:
    """Gather the observations' prompts and targets of every episode of ``folders`` (one task). ``target``:
    "object", the moved object (recorded, or replayed); "goal", where it must end (``SimTask.goal_key``, read from
    the scene reset to the episode's seed: it does not move within an episode)."""
    from piper_driver.sim.arm import SimArm
    from piper_driver.sim.backend import SimConfig
    from piper_driver.sim.convert import record_observation
    from piper_driver.sim.demo_format import load_episode_npz
    from piper_driver.sim.tasks import make_task
    from vlac_actor.inputs import InputLimits, actor_content
    from vlac_trainer.offline.bc_data import relative_and_world_mm

    files = []
    for folder in folders:
        found = sorted((folder / "npz").glob("*.npz"))
        if not found:
            raise FileNotFoundError(f"{folder}/npz holds no episode (.npz)")
        files.extend(found[:max_episodes] if max_episodes else found)
    key_name = {"object": "object_key", "goal": "goal_key"}[target]
    task, arms = None, []

    def arm_for(record) -> SimArm:
        """The arm of ``record``'s task, built on first need (a replay or the goal) and shared by the later episodes
        (one task per probe: checked below; replays and goals render no frame, so any episode's size serves)."""
        if not arms:
            size_px = record.front_images.shape[1]
            arms.append(SimArm("probe", record.task, SimConfig(image_size_px=size_px), None, first_seed=record.seed))
        return arms[0]

    scenes, first, targets, poses, contents, images = [], [], [], [], [], []
    for path in files:
        record = load_episode_npz(path)
        if not getattr(make_task(record.task), key_name):
            raise ValueError(f"{path}: task {record.task!r} names no {target} position (SimTask.{key_name})")
        if task is None:
            task = record.task
        elif record.task != task:
            raise ValueError(f"{path}: task {record.task!r}, the earlier episodes' is {task!r}: one task per probe")
        if record.front_images.shape[0] != record.length + 1:
            raise ValueError(f"{path}: {record.front_images.shape[0]} frames for {record.length} steps, not rendered")
        if target == "goal":
            positions = np.tile(goal_mm(record.seed, arm_for(record)), (record.length + 1, 1))
        else:
            recorded = record.meta.get("object_mm")
            positions = (
                np.asarray(recorded, dtype=np.float64) if recorded else replay_object_mm(record, arm_for(record))
            )
        targets.extend(relative_and_world_mm(positions, record.end_poses))
        for t in range(record.length + 1):
            poses.append(record.end_poses[t, :3])
            content, prompt_images = actor_content(record_observation(record, t, "sim_0"), InputLimits())
            contents.append(content)
            images.append(tuple(prompt_images))
            scenes.append(f"{task}:{record.seed}")
            first.append(t == 0)
    for built in arms:
        built.close()
    return ProbeSteps(
        task=task,
        scenes=scenes,
        first=np.asarray(first, dtype=bool),
        targets_mm=np.asarray(targets, dtype=np.float64),
        pose_mm=np.asarray(poses, dtype=np.float64),
        contents=contents,
        images=images,
    )


def fit_ridge(x_fit: np.ndarray, y_fit: np.ndarray, penalty: float):
    """Ridge regression on standardised features (closed form, intercept unpenalised); returns the predictor."""
    mean, std = x_fit.mean(0), x_fit.std(0)
    std = np.where(std > 1e-9, std, 1.0)
    z = (x_fit - mean) / std
    y_mean = y_fit.mean(0)
    gram = z.T @ z + penalty * len(z) * np.eye(z.shape[1])
    weight = np.linalg.solve(gram, z.T @ (y_fit - y_mean))
    return lambda rows: ((rows - mean) / std) @ weight + y_mean


def ridge_readout(x: np.ndarray, y: np.ndarray, scenes: list[str], fit: np.ndarray) -> tuple[np.ndarray, float]:
    """Held-out predictions of a ridge fit on ``fit`` rows, its penalty chosen on an inner split of the fit scenes;
    returns (predictions for every row, the penalty chosen)."""
    fit_rows = np.flatnonzero(fit)
    inner = held_out_mask([scenes[i] + "/inner" for i in fit_rows], INNER_SHARE)
    errors = {}
    for penalty in RIDGE_PENALTIES:
        predict = fit_ridge(x[fit_rows[~inner]], y[fit_rows[~inner]], penalty)
        errors[penalty] = float(((predict(x[fit_rows[inner]]) - y[fit_rows[inner]]) ** 2).mean())
    best = min(errors, key=errors.get)
    return fit_ridge(x[fit], y[fit], best)(x), best


def actor_features(policy, steps: ProbeSteps) -> np.ndarray:
    """(N, hidden) the checkpoint's hidden state at each prompt's last token."""
    from vlac_actor.scoring import prompt_features

    policy.loaded.model.eval()
    rows = []
    for start in range(0, len(steps.contents), FEATURE_BATCH):
        part = slice(start, start + FEATURE_BATCH)
        rows.append(prompt_features(policy, steps.contents[part], steps.images[part]).float().numpy())
    return np.concatenate(rows).astype(np.float64)


def cnn_readout(steps: ProbeSteps, fit: np.ndarray, *, epochs: int, seed: int, batch: int = 64) -> np.ndarray:
    """Predictions for every row of a ``FrameNet`` (four outputs) trained from scratch on the fit frames
    (``actor_probe.regress_cnn``)."""
    frames = torch.as_tensor(np.stack([images[0] for images in steps.images])).permute(0, 3, 1, 2)  # uint8
    return regress_cnn(frames, steps.targets_mm, fit, epochs=epochs, seed=seed, batch=batch)


def scores(predicted: np.ndarray, y: np.ndarray, fit: np.ndarray, subsets: dict[str, np.ndarray]) -> dict:
    """Per subset of rows and target: held-out RMSE (mm), and R^2 against the subset's fit mean."""
    out = {}
    for subset, rows in subsets.items():
        held, fitted = rows & ~fit, rows & fit
        out[subset] = {}
        for k, name in enumerate(TARGETS):
            residual = predicted[held, k] - y[held, k]
            spread = y[held, k] - y[fitted, k].mean()
            out[subset][name] = {
                "rmse_mm": round(float(np.sqrt((residual**2).mean())), 2),
                "r2": round(1.0 - float((residual**2).sum() / (spread**2).sum()), 3),
            }
    return out


def probe(
    folders: list[Path],
    policies: dict[str, Path],
    *,
    cnn_epochs: int,
    seed: int,
    max_episodes: int,
    target: str = "object",
) -> dict:
    from vlac_actor.policy import load_policy

    started = time.monotonic()
    steps = probe_steps(folders, max_episodes, target)
    fit = ~held_out_mask(steps.scenes)
    if fit.all() or not fit.any():
        raise ValueError(f"{len(set(steps.scenes))} scenes: too few for a fit and a held-out split")
    y = steps.targets_mm
    subsets = {"all": np.ones(len(y), dtype=bool), "start": steps.first}
    result = {
        "task": steps.task,
        "target": target,
        "folders": [str(f) for f in folders],
        "steps": {"fit": int(fit.sum()), "held_out": int((~fit).sum())},
        "scenes": len(set(steps.scenes)),
        "readouts": {},
        "ridge_penalty": {},
    }
    result["readouts"]["mean"] = {  # each subset's own fit mean, the R^2 baseline
        subset: scores(np.broadcast_to(y[rows & fit].mean(0), y.shape), y, fit, {subset: rows})[subset]
        for subset, rows in subsets.items()
    }
    predicted, penalty = ridge_readout(steps.pose_mm, y, steps.scenes, fit)
    result["readouts"]["pose"], result["ridge_penalty"]["pose"] = scores(predicted, y, fit, subsets), penalty
    for name, folder in policies.items():
        features = actor_features(load_policy(folder), steps)
        predicted, penalty = ridge_readout(features, y, steps.scenes, fit)
        result["readouts"][f"features/{name}"] = scores(predicted, y, fit, subsets)
        result["ridge_penalty"][f"features/{name}"] = penalty
    if cnn_epochs > 0:
        result["readouts"]["cnn"] = scores(cnn_readout(steps, fit, epochs=cnn_epochs, seed=seed), y, fit, subsets)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("folders", nargs="+", type=Path, help="episode folders (<folder>/npz/*.npz), one task")
    add_policy_argument(parser)
    parser.add_argument("--cnn-epochs", type=int, default=15, help="0 skips the pixel reference")
    parser.add_argument("--max-episodes", type=int, default=0, help="at most this many episodes per folder (0: all)")
    parser.add_argument(
        "--target", choices=("object", "goal"), default="object", help="the moved object, or where it must end"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    policies = named_policies(parser, args.policy)
    result = probe(
        args.folders,
        policies,
        cnn_epochs=args.cnn_epochs,
        seed=args.seed,
        max_episodes=args.max_episodes,
        target=args.target,
    )
    print(
        f"{result['task']} ({args.target}): {result['steps']['fit']} fit / {result['steps']['held_out']} held-out "
        "observations, "
        f"{result['scenes']} scenes, {result['seconds']:.0f} s; held-out RMSE mm (R^2)"
    )
    print(f"  {'readout':<24}" + "".join(f"{t:>18}" for t in TARGETS))
    for name, per_subset in result["readouts"].items():
        for subset, per_target in per_subset.items():
            cells = "".join(f"{per_target[t]['rmse_mm']:>11.1f} ({per_target[t]['r2']:>5.2f})" for t in TARGETS)
            print(f"  {name + ' / ' + subset:<24}{cells}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
