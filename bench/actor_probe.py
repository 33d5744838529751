"""Can the actor tell "over the plate" from "on the way"? Probes of what it sees, carry vs release.

The ground-truth runs never learned the release, and bench/rl_report.py's push table explains why PPO
lowers the gripper's "open" everywhere: an open over the plate is paid, a drop mid-carry is charged more,
and the sampling policy opened at even odds at both. That explanation assumes the policy cannot tell the
two kinds of state apart. This script tests the assumption on the policy's own steps, and says where the
information is lost: in the pixels (64 px), or in the actor's representation of them.

Data: the training episodes of the given run folders (bags/train, in episodes.jsonl order), the policy's
own steps (an operator's left out) in which the bowl is held: ground-truth phase ``carry`` (bowl centre more
than 35 mm from the plate centre, horizontally) or ``release`` (within it and, since
pick_bowl.RELEASE_MAX_DROP_M, low enough: opening there succeeds). Steps
are split into fit and held-out by scene (the part of ``start_state_id`` before any ``/``, so a frontier
episode goes with the episode it restarts), 30 % of scenes held out by a hash of their name.

Readouts, each scored by the rank AUC of release vs carry on the held-out steps (0.5: blind, 1: perfect):

- ``policy_p_open``: the probability of "open: 1" the sampling policy recorded at the step (no fitting):
  how far the policy itself separated the two (the versions that collected the steps);
- ``p_open/<name>``: the same probability under each given checkpoint (teacher-forced on the step's own
  action fields): e.g. the prior's and the final policy's, to see which way PPO moved it;
- ``pose``: logistic regression on the state text's x, y, z (mm): the prompt's numbers alone (the plate
  moves between scenes, so they can only say "the bowl is where plates often are");
- ``features/<name>``: logistic regression on the hidden state at the prompt's last token
  (``vlac_actor.scoring.prompt_features``' rows: what the value head and the first action decision read) of each
  given checkpoint: what the actor's representation holds, linearly;
- ``cnn``: a small convolutional net trained from scratch on the 64 px frames of the fit split: what the
  pixels hold, as a reference for the actor's features.
- ``p_open/taught``, ``features/taught`` (``--teach-open STEPS``): the first checkpoint fine-tuned on the fit
  split with its open decision alone labelled ("open" over the plate, "hold" mid-carry; ``teach_open``): can
  the decision learn to read what the features hold, offline, before an RL run is spent on it?

Fit AUCs are printed beside the held-out ones (a large gap is overfitting). Logistic regressions are
class-balanced with an L2 penalty, on features standardised over the fit split.

Usage: MUJOCO_GL=egl python bench/actor_probe.py RUN [RUN ...] [--policy NAME=DIR ...] [--final-policy]
       [--cnn-epochs 12] [--seed 0] [--teach-open STEPS [--teach-lr 1e-4]]
RUN is a session folder (e.g. out/rl15/gdr/seed0). ``--policy prior=models/sim_actor`` is the default;
``--final-policy`` also probes each run's last published policy (policies/v<N>) on that run's steps.
Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # rl_report.py, beside it
from rl_report import read_jsonl, recorded_p_open

from piper_driver.sim.tasks.pick_bowl import HELD_PHASES
from vlac.session.report import is_training_episode
from vlac_critic.audit import rank_auc

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_SHARE = 0.3
L2_PENALTY = 1e-2
FEATURE_BATCH = 32


@dataclass
class HeldSteps:
    """The policy's own steps holding the bowl, in episode order: one entry per step in every list."""

    scenes: list[str]
    released: np.ndarray  # (N,) 1: phase "release" (over the plate), 0: "carry"
    p_open: np.ndarray  # (N,) the recorded probability of opening
    pose_mm: np.ndarray  # (N, 3) x, y, z of the state text
    observations: list  # vlac_core.types.Observation, for the actor's prompts and the frames
    actions: list  # the recorded vlac_core.types.PolicyAction, for re-scoring the open decision


def scene_of(start_state_id: str) -> str:
    """The scene an episode played in: a frontier id ``<scene>/<episode>/step<k>`` restarts ``<scene>``."""
    return start_state_id.split("/", 1)[0]


def held_steps(episodes, run: str = "") -> HeldSteps:
    """The policy's own held-bowl steps of ``episodes`` (each with ``transitions`` and ``start_state_id``)."""
    scenes, released, p_open, pose, observations, actions = [], [], [], [], [], []
    for episode in episodes:
        scene = f"{run}:{scene_of(episode.start_state_id)}"
        for step in episode.transitions:
            if step.human or step.gt_phase not in HELD_PHASES or step.action is None:
                continue
            end_pose = step.observation.end_pose
            scenes.append(scene)
            released.append(step.gt_phase == "release")
            p_open.append(recorded_p_open(step.action))
            pose.append((end_pose.x_mm, end_pose.y_mm, end_pose.z_mm))
            observations.append(step.observation)
            actions.append(step.action)
    return HeldSteps(
        scenes=scenes,
        released=np.asarray(released, dtype=np.float32),
        p_open=np.asarray(p_open, dtype=np.float64),
        pose_mm=np.asarray(pose, dtype=np.float32).reshape(-1, 3),
        observations=observations,
        actions=actions,
    )


def held_out_mask(scenes: list[str], share: float = HELD_OUT_SHARE) -> np.ndarray:
    """True for steps of held-out scenes: a scene is held out when its name's CRC-32 falls in the first
    ``share`` of the range, so the split is the same on every run of the script and every machine."""
    return np.asarray([zlib.crc32(s.encode()) / 2**32 < share for s in scenes], dtype=bool)


def auc(scores: np.ndarray, released: np.ndarray) -> float | None:
    positive, negative = scores[released == 1].tolist(), scores[released == 0].tolist()
    if not positive or not negative:
        return None
    return round(rank_auc(positive, negative), 4)


def fit_logistic(x_fit: np.ndarray, y_fit: np.ndarray, l2: float = L2_PENALTY):
    """A class-balanced, L2-penalised logistic regression on standardised features (L-BFGS, full batch);
    returns the scoring function (logits) for new rows."""
    x = torch.as_tensor(x_fit, dtype=torch.float64)
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    x = (x - mean) / std
    y = torch.as_tensor(y_fit, dtype=torch.float64)
    positives = float(y.sum())
    if positives in (0.0, float(len(y))):
        raise ValueError(f"a probe needs both classes in its fit split, got {positives:.0f} of {len(y)} released")
    pos_weight = torch.tensor((len(y) - positives) / positives, dtype=torch.float64)
    weight = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        logits = x @ weight + bias
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)
        loss = loss + l2 * (weight**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)

    def score(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            z = (torch.as_tensor(rows, dtype=torch.float64) - mean) / std
            return (z @ weight + bias).numpy()

    return score


class FrameNet(torch.nn.Module):
    """Three strided convolutions and a small MLP over a frame; keeps the layout (no global pooling),
    since "over the plate" is where the bowl is relative to the plate. ``outputs``: logits or regression targets."""

    def __init__(self, size_px: int, outputs: int = 1) -> None:
        super().__init__()
        self.conv = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 5, stride=2, padding=2),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 32, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
        )
        cells = math.ceil(size_px / 8) ** 2
        self.head = torch.nn.Sequential(torch.nn.Linear(32 * cells, 64), torch.nn.ReLU(), torch.nn.Linear(64, outputs))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        out = self.head(self.conv(frames))
        return out.squeeze(-1) if out.shape[-1] == 1 else out


def frames_tensor(observations) -> torch.Tensor:
    """(N, 3, H, W) float in [0, 1] from the observations' first camera view (uint8 H x W x 3)."""
    stack = np.stack([np.asarray(o.images[0]) for o in observations])
    return torch.as_tensor(stack, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0


def train_frame_net(
    frames: torch.Tensor,
    fit_rows: torch.Tensor,
    outputs: int,
    loss_of,
    *,
    epochs: int,
    seed: int,
    batch: int = 64,
    prepare=None,
) -> FrameNet:
    """A ``FrameNet`` with ``outputs`` outputs trained from scratch (Adam, lr 1e-3, weight decay 1e-4) on the rows
    ``fit_rows`` of ``frames``, ``epochs`` passes in a seeded order; ``loss_of(out, index)`` is a minibatch's loss
    from its outputs and row indices, ``prepare`` (if given) maps a minibatch of frames to the net's input. The net
    comes back in eval mode. The one training loop of the probes' pixel readouts."""
    torch.manual_seed(seed)
    net = FrameNet(frames.shape[-1], outputs=outputs)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for index in fit_rows[torch.randperm(len(fit_rows), generator=generator)].split(batch):
            part = frames[index]
            loss = loss_of(net(prepare(part) if prepare else part), index)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()
    return net


def fit_cnn(frames: torch.Tensor, y_fit: np.ndarray, *, epochs: int, seed: int, batch: int = 64):
    """FrameNet trained from scratch (Adam, class-balanced BCE) on the fit frames; returns the scoring function."""
    y = torch.as_tensor(y_fit, dtype=torch.float32)
    pos_weight = (len(y) - y.sum()) / y.sum().clamp(min=1.0)

    def loss_of(out: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(out, y[index], pos_weight=pos_weight)

    net = train_frame_net(frames, torch.arange(len(y)), 1, loss_of, epochs=epochs, seed=seed, batch=batch)

    def score(rows: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return torch.cat([net(part) for part in rows.split(256)]).numpy()

    return score


def regress_cnn(frames: torch.Tensor, y: np.ndarray, fit: np.ndarray, *, epochs: int, seed: int, batch: int = 64):
    """Predictions for every row of a ``FrameNet`` (one output per column of ``y``) trained from scratch on the
    ``fit`` rows (Adam, MSE on targets standardised over the fit rows). ``frames``: (N, 3, H, W), uint8 or float
    in [0, 1]."""
    to_float = (lambda part: part.float() / 255.0) if frames.dtype == torch.uint8 else None
    y = torch.as_tensor(y, dtype=torch.float32)
    mean, std = y[fit].mean(0), y[fit].std(0).clamp(min=1e-6)

    def loss_of(out: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(out, (y[index] - mean) / std)

    fit_rows = torch.as_tensor(np.flatnonzero(fit))
    net = train_frame_net(
        frames, fit_rows, y.shape[1], loss_of, epochs=epochs, seed=seed, batch=batch, prepare=to_float
    )
    with torch.no_grad():
        out = torch.cat([net(to_float(part) if to_float else part) for part in frames.split(256)])
    return (out * std + mean).double().numpy()


def actor_readouts(policy, observations, actions) -> tuple[np.ndarray, np.ndarray]:
    """For ``policy`` (vlac_actor.policy.Policy), per step: the hidden state at the prompt's last token (N, hidden;
    ``vlac_actor.scoring.prompt_features``' rows) and the probability of "open: 1" after the step's recorded
    action fields (N,), both from one teacher-forced pass per batch."""
    policy.loaded.model.eval()
    features, p_open = [], []
    for start in range(0, len(observations), FEATURE_BATCH):
        part = observations[start : start + FEATURE_BATCH]
        scores = score_open_decision(policy, part, actions[start : start + FEATURE_BATCH], [1] * len(part))
        features.append(scores.prompt_hidden.float().numpy())
        p_open.append(scores.open_logprob.exp().double().numpy())
    return np.concatenate(features), np.concatenate(p_open)


def score_open_decision(policy, observations, actions, opens: list[int], *, with_grad: bool = False):
    """``score_actions`` of step i's recorded action with its open decision set to ``opens[i]`` (0/1)."""
    from dataclasses import replace

    from vlac_actor.inputs import InputLimits, actor_content
    from vlac_actor.scoring import score_actions

    prompts = [actor_content(o, InputLimits()) for o in observations]
    labelled = [replace(a.delta, open=int(o)) for a, o in zip(actions, opens, strict=True)]
    return score_actions(policy, [c for c, _ in prompts], [i for _, i in prompts], labelled, with_grad=with_grad)


def teach_open(policy, data: HeldSteps, fit: np.ndarray, *, steps: int, lr: float, seed: int, batch: int = 16):
    """Fine-tune ``policy`` in place on the fit split's open decisions alone: NLL of "open" over the plate and
    "hold" mid-carry, half of each batch from either kind (the other fields are the step's own, not trained on).

    Why: the offline check of the fix the probe points to (labels on both kinds of state, the gripper field
    only) before spending RL runs on it: does the decision learn to read what the features hold?"""
    rng = np.random.default_rng(seed)
    over, carry = np.flatnonzero(fit & (data.released == 1)), np.flatnonzero(fit & (data.released == 0))
    if not len(over) or not len(carry):
        raise ValueError(f"teaching the open decision needs both kinds of fit step, got {len(over)} / {len(carry)}")
    optimizer = torch.optim.Adam([p for p in policy.loaded.model.parameters() if p.requires_grad], lr=lr)
    policy.loaded.model.train()
    for _ in range(steps):
        index = np.concatenate([rng.choice(over, batch // 2), rng.choice(carry, batch - batch // 2)])
        scores = score_open_decision(
            policy,
            [data.observations[i] for i in index],
            [data.actions[i] for i in index],
            [int(data.released[i]) for i in index],
            with_grad=True,
        )
        loss = -scores.open_logprob.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    policy.loaded.model.eval()
    return policy


def final_policy(run_dir: Path) -> Path:
    """The run's last published policy version (policies/v<N> with the highest N)."""
    versions = sorted(p for p in (run_dir / "policies").glob("v*") if p.is_dir())
    if not versions:
        raise FileNotFoundError(f"{run_dir}/policies has no published version (v<N>)")
    return versions[-1]


def load_run(run_dir: Path):
    """The run's training episodes from its bags, in episodes.jsonl order."""
    from vlac_core.bag import read_episode

    rows = [r for r in read_jsonl(run_dir / "episodes.jsonl") if is_training_episode(r)]
    if not rows:
        raise ValueError(f"{run_dir}/episodes.jsonl lists no training episode")
    return [read_episode(run_dir / "bags" / "train" / r["episode_id"]) for r in rows]


def probe_run(
    run_dir: Path,
    policies: dict[str, Path],
    *,
    final: bool,
    cnn_epochs: int,
    seed: int,
    teach_steps: int = 0,
    teach_lr: float = 1e-4,
) -> dict:
    from vlac_actor.policy import load_policy

    started = time.monotonic()
    data = held_steps(load_run(run_dir), run=str(run_dir))
    held_out = held_out_mask(data.scenes)
    fit = ~held_out
    y_fit, y_test = data.released[fit], data.released[held_out]
    result = {
        "run": str(run_dir),
        "steps": {"fit": int(fit.sum()), "held_out": int(held_out.sum())},
        "released_share": round(float(data.released.mean()), 4) if len(data.released) else None,
        "scenes": len(set(data.scenes)),
        "auc": {},
    }

    def record(name: str, fit_scores: np.ndarray, test_scores: np.ndarray) -> None:
        result["auc"][name] = {"fit": auc(fit_scores, y_fit), "held_out": auc(test_scores, y_test)}

    record("policy_p_open", data.p_open[fit], data.p_open[held_out])
    score = fit_logistic(data.pose_mm[fit], y_fit)
    record("pose", score(data.pose_mm[fit]), score(data.pose_mm[held_out]))
    named = dict(policies)
    if final:
        named["final"] = final_policy(run_dir)
        result["final_policy"] = named["final"].name
    policies_loaded = {name: load_policy(policy_dir) for name, policy_dir in named.items()}
    if teach_steps > 0:  # the prior (the first named checkpoint) with its open decision taught on the fit split
        first = next(iter(named.values()))
        policies_loaded["taught"] = teach_open(load_policy(first), data, fit, steps=teach_steps, lr=teach_lr, seed=seed)
        result["taught_from"], result["teach_steps"], result["teach_lr"] = str(first), teach_steps, teach_lr
    for name, policy in policies_loaded.items():
        features, p_open = actor_readouts(policy, data.observations, data.actions)
        record(f"p_open/{name}", p_open[fit], p_open[held_out])
        score = fit_logistic(features[fit], y_fit)
        record(f"features/{name}", score(features[fit]), score(features[held_out]))
    if cnn_epochs > 0:
        frames = frames_tensor(data.observations)
        score = fit_cnn(frames[torch.as_tensor(fit)], y_fit, epochs=cnn_epochs, seed=seed)
        record("cnn", score(frames[torch.as_tensor(fit)]), score(frames[torch.as_tensor(held_out)]))
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def add_policy_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", action="append", default=None, metavar="NAME=DIR", help="checkpoints to probe (default prior)"
    )


def named_policies(parser: argparse.ArgumentParser, items: list[str] | None) -> dict[str, Path]:
    """``--policy NAME=DIR`` items as {name: folder}; the shipped prior when none is given."""
    return named_paths(parser, items or [f"prior={ROOT / 'models' / 'sim_actor'}"], "--policy")


def named_paths(parser: argparse.ArgumentParser, items: list[str], option: str) -> dict[str, Path]:
    """``NAME=PATH`` items as {name: path}, in order; a malformed item or a name given twice is a usage error
    naming ``option``."""
    named = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"{option} takes NAME=PATH, got {item!r}")
        if name in named:
            parser.error(f"{option}: the name {name!r} is given twice")
        named[name] = Path(path)
    return named


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("runs", nargs="+", type=Path, help="session folders (bags/train, episodes.jsonl)")
    add_policy_argument(parser)
    parser.add_argument("--final-policy", action="store_true", help="also each run's last published policy")
    parser.add_argument("--cnn-epochs", type=int, default=12, help="0 skips the pixel reference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--teach-open",
        type=int,
        default=0,
        metavar="STEPS",
        help="also the first checkpoint with its open decision "
        "taught on the fit split for STEPS gradient steps (readouts 'taught')",
    )
    parser.add_argument("--teach-lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    policies = named_policies(parser, args.policy)
    results = []
    for run in args.runs:  # minutes per run: each run's lines are printed as it finishes
        r = probe_run(
            run,
            policies,
            final=args.final_policy,
            cnn_epochs=args.cnn_epochs,
            seed=args.seed,
            teach_steps=args.teach_open,
            teach_lr=args.teach_lr,
        )
        results.append(r)
        print(
            f"{r['run']}: {r['steps']['fit']} fit / {r['steps']['held_out']} held-out steps, "
            f"{r['released_share']:.1%} over the plate, {r['scenes']} scenes, {r['seconds']:.0f} s"
        )
        for name, a in r["auc"].items():
            print(f"  {name:<22} AUC held-out {a['held_out']}  (fit {a['fit']})", flush=True)
    summary = {
        "held_out_share": HELD_OUT_SHARE,
        "l2_penalty": L2_PENALTY,
        "cnn_epochs": args.cnn_epochs,
        "seed": args.seed,
        "runs": results,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
