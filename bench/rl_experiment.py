"""The issue-7 experiment as one command: success rate against RL episodes, demo replay, 1/2/4 arms.

Variants (each one ``vlac session`` run per training seed, in its own folder, settings from
config/experiment_pick_bowl.yaml):
  a  1 arm, the critic's progress as the only reward, from the shipped actor prior
  b  as a, plus offline demonstration replay (scripted-expert demos collected here with collect-demos)
  c  as a with 2 arms          d  as a with 4 arms
  e  as a, with the critic's done confirmed over 3 steps at threshold 0.8 (what variant a's episodes showed)
  g  as a, with the simulator's ground truth as the reward (potential change) and done: the control that
     tells "PPO cannot climb" from "the critic's reward is not worth climbing"
  s  as g with the sparse ground truth (1 at success, else 0)
  g3, g4, gb, gk, gd, gdb  the PPO step-size scan on g: larger steps (lr 3e-5, 4 epochs, target KL 0.03),
     lr 1e-4, 16 episodes per update, a KL anchor to the prior, the ratio per sampled decision, and the last
     with 16 episodes per update (trainer_node keys)
After each run's session, ``vlac critic audit`` scores the critic against ground truth on its training
episodes (<variant>/seed<k>/critic_audit/: JSON and PNG), whatever the reward source was.

Training seeds (``--seeds``, default 0): one curve is one draw; a variant's result is its mean over seeds
with the spread (min-max). Seed k sets everything that shapes training: the training scenes
(``episode_manager.scene_seed``, the one the session reads, and ``sim_node.seed`` to match, both
k x SCENES_PER_SEED so two seeds never share a scene), the actor's sampling (``actor_node.seed`` = k) and
the trainer's minibatch order (``trainer_node.seed`` = k). ``session.eval_seed`` stays: every seed is
evaluated on the same held-out scenes, so the curves compare. Runs go variant by variant, seed by seed.

Two success series per variant: the greedy evaluations (``--eval-trials`` trials each: 10 trials are
+-15 points of noise) and the training episodes' own ground-truth success (the row's ``success``: the
simulator's verdict at the episode's end, whatever ended it; aborted episodes have none): the sampled
policy on the training scenes, as a rolling rate over the last TRAIN_WINDOW training episodes, averaged
over seeds; the table quotes each seed's last TRAIN_TAIL. Variant b's demos are shared by its seeds.

``--episodes`` is the number of RL training episodes of a run over all its arms (the session's own
meaning), so every variant gets the same amount of robot data; episodes per arm = episodes / arms.

Why a subprocess per run: a session owns its process (torch threads, GL contexts, Ctrl-C handling)
and the command is exactly what a user would run. Why resumable: a full run takes hours on 2 CPU
cores; re-running the same command skips finished runs and continues interrupted ones (the
session resumes from its trainer checkpoint and runs only the episodes still missing).
Settings of a started run may not change except its size (--episodes) and --threads: a changed
setting (its seed included) is an error, not a silently mixed curve, and so is a variant folder
holding a session itself (a run from before --seeds).

Outputs: <out>/<variant>/seed<k>/ (the session's folder + experiment_config.yaml, session.log with
elapsed seconds per line, experiment_runs.jsonl with one line per invocation),
<docs>/rl_success_vs_episodes.png (per variant: mean over seeds, min-max band, thin per-seed lines),
<docs>/rl_train_success.png (the training episodes' ground-truth success, the same way),
<docs>/rl_episodes_to_80.png (one bar per seed), <docs>/rl_false_done.png (training episodes the critic
ended as done though they failed, from the first variant's first seed: one folder's bags), a Markdown
table, and as the last line one JSON object (per variant: aggregates over seeds and each seed's figures).
The report covers the seeds given on the command line.

Usage: MUJOCO_GL=egl .venv/bin/python bench/rl_experiment.py [--variants a b c d] [--seeds 0 1]
       [--episodes 200] [--eval-every 20] [--eval-trials 10] [--out out/rl_experiment] [--docs docs]
       [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from vlac.episode.arm_wiring import SCENES_PER_ARM
from vlac.param_file import merge_sections, read_session_sections, resolve_paths
from vlac.session.report import is_training_episode

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path("config/experiment_pick_bowl.yaml")
#: Session keys a resumed variant may change: the run's size and its CPU threads, nothing that shapes learning.
MAY_CHANGE = {"episodes", "torch_threads"}
THRESHOLD = 0.8
#: Scene seeds reserved per training seed: seed k's arms start at k * SCENES_PER_SEED (+ SCENES_PER_ARM per arm).
#: Why not k itself: seed 1 would train on seed 0's scenes shifted by one episode (199 of 200 shared).
SCENES_PER_SEED = 1000
#: Seeds below this keep clear of arm 1's scenes (SCENES_PER_ARM on), whatever the arm count.
SEED_LIMIT = SCENES_PER_ARM // SCENES_PER_SEED
#: Training episodes per window of the rolling ground-truth training success, and the tail the table quotes.
TRAIN_WINDOW = 20
TRAIN_TAIL = 40


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    arms: int
    demos: bool
    # The variant's overlay of the template, {section: {key: value}}: merged over it by the rule of a session
    # file's `extends` (vlac.param_file.merge_sections), so a variant is a short overlay like a session file.
    overlay: Mapping[str, Mapping[str, object]] = field(default_factory=dict)


#: The template's arm sections, as config/session_base.yaml spells them (every arm's node).
SIM, MANAGER = "/**/sim_node", "/**/episode_manager"
_GT_DENSE = {MANAGER: {"reward_source": "sim_dense"}}
_BIGGER_STEPS = {"learning_rate": 3.0e-5, "update_epochs": 4, "target_kl": 0.03}

VARIANTS = {
    "a": Variant("a", "1 arm, critic reward", 1, False),
    "b": Variant("b", "1 arm, critic reward + demo replay", 1, True),
    "c": Variant("c", "2 arms, critic reward", 2, False),
    "d": Variant("d", "4 arms, critic reward", 4, False),
    # Why e: in a first run of a, true completions held the done probability at 0.8-0.89 (under 0.9) while
    # every false done was a one-frame spike; e asks for 3 steps in a row over 0.8 instead.
    "e": Variant(
        "e",
        "1 arm, critic reward, done: 3 steps > 0.8",
        1,
        False,
        {MANAGER: {"done_threshold": 0.8, "done_confirm_steps": 3}},
    ),
    "g": Variant("g", "1 arm, ground-truth dense reward (control)", 1, False, _GT_DENSE),
    "s": Variant(
        "s", "1 arm, ground-truth sparse reward (control)", 1, False, {MANAGER: {"reward_source": "sim_sparse"}}
    ),
    # The PPO step-size scan on the ground-truth control (issue 11): g's updates were correct but tiny (KL 0.005).
    "g3": Variant(
        "g3", "as g, lr 3e-5, 4 epochs, target KL 0.03", 1, False, {**_GT_DENSE, "trainer_node": _BIGGER_STEPS}
    ),
    "g4": Variant(
        "g4", "as g3 with lr 1e-4", 1, False, {**_GT_DENSE, "trainer_node": {**_BIGGER_STEPS, "learning_rate": 1.0e-4}}
    ),
    "gb": Variant(
        "gb",
        "as g3, 16 episodes per update",
        1,
        False,
        {**_GT_DENSE, "trainer_node": {**_BIGGER_STEPS, "episodes_per_update": 16}},
    ),
    "gk": Variant(
        "gk",
        "as g3 + KL anchor to the prior (1.0)",
        1,
        False,
        {**_GT_DENSE, "trainer_node": {**_BIGGER_STEPS, "prior_kl_coef": 1.0}},
    ),
    # Why gd: in g3-gk 39-64 % of actions were clipped (a per-action ratio is the product of ~20 decisions').
    "gd": Variant(
        "gd",
        "as g3, ratio per sampled decision",
        1,
        False,
        {**_GT_DENSE, "trainer_node": {**_BIGGER_STEPS, "ppo_ratio": "decision"}},
    ),
    # Why gdb: gd's seed 0 climbed for 60 episodes and fell back; 4-episode batches are the suspect noise.
    "gdb": Variant(
        "gdb",
        "as gd, 16 episodes per update",
        1,
        False,
        {**_GT_DENSE, "trainer_node": {**_BIGGER_STEPS, "ppo_ratio": "decision", "episodes_per_update": 16}},
    ),
}


class ExperimentError(RuntimeError):
    """The experiment cannot go on as asked; the message says what to change."""


# -- configuration ---------------------------------------------------------------------------------


def run_dir(out: Path, variant: str, seed: int) -> Path:
    """The session folder of one (variant, training seed) run."""
    return out / variant / f"seed{seed}"


def run_name(rdir: Path) -> str:
    """``<variant>/seed<k>``: how messages name a run."""
    return f"{rdir.parent.name}/{rdir.name}"


def training_scene_seed(seed: int) -> int:
    """First training scene of training seed ``seed`` (arm 0; the session adds SCENES_PER_ARM per arm)."""
    return seed * SCENES_PER_SEED


def set_training_seed(config: dict, seed: int) -> None:
    """Point every seed that shapes training at ``seed``; ``session.eval_seed`` stays (same held-out scenes).

    ``episode_manager.scene_seed`` is what the session's training arms start from; ``sim_node.seed`` (the
    ROS sim node's) is set alike so the file does not say two things.
    """
    scenes = training_scene_seed(seed)
    config[SIM]["ros__parameters"]["seed"] = scenes
    config[MANAGER]["ros__parameters"]["scene_seed"] = scenes
    config["actor_node"]["ros__parameters"]["seed"] = seed
    config["trainer_node"]["ros__parameters"]["seed"] = seed


def check_seed_scenes(seeds: list[int], episodes: int) -> None:
    """Refuse seeds whose training scenes would overlap: a run draws up to ``episodes`` scenes per arm."""
    if len(seeds) > 1 and episodes > SCENES_PER_SEED:
        raise ExperimentError(
            f"{episodes} episodes per run would reach the next seed's scenes ({SCENES_PER_SEED} apart); "
            "run fewer episodes or one seed"
        )


def load_template() -> dict:
    """The template with its ``extends`` chain applied, as a parameter file's sections (what each run writes)."""
    return {name: {"ros__parameters": params} for name, params in read_session_sections(ROOT / TEMPLATE).items()}


def variant_config(template: dict, variant: Variant, args, out: Path, demo_dir: Path | None, seed: int = 0) -> dict:
    """The template with the variant's overlay, the training seed's and the run's keys set (a deep copy)."""
    sections = merge_sections({name: s["ros__parameters"] for name, s in template.items()}, variant.overlay)
    config = json.loads(json.dumps({name: {"ros__parameters": params} for name, params in sections.items()}))
    set_training_seed(config, seed)
    session = config["session"]["ros__parameters"]
    rdir = run_dir(out, variant.name, seed)
    session.update(arms=variant.arms, out_dir=str(rdir), demo_dir=str(demo_dir) if demo_dir else "")
    for key, value in (
        ("episodes", args.episodes),
        ("eval_every_episodes", args.eval_every),
        ("eval_trials", args.eval_trials),
        ("torch_threads", args.threads),
        ("max_demos", args.demos if demo_dir else None),
    ):
        if value is not None:
            session[key] = value
    return config


def absolute_paths(config: dict) -> dict:
    """``config`` with its relative paths made absolute against the repository (the sessions run there):
    the variant's file lives in its own folder, and a session file's paths resolve against its root."""
    absolute = {}
    for name, section in config.items():
        params = section["ros__parameters"]
        absolute[name] = {"ros__parameters": {**params, **resolve_paths(name.rsplit("/", 1)[-1], params, ROOT)}}
    return absolute


def config_conflicts(old: dict, new: dict) -> list[str]:
    """Settings that differ between a started variant's config and this invocation's (size and threads aside)."""
    conflicts = []
    for section in sorted(set(old) | set(new)):
        a = old.get(section, {}).get("ros__parameters", {})
        b = new.get(section, {}).get("ros__parameters", {})
        for key in sorted(set(a) | set(b)):
            if section == "session" and key in MAY_CHANGE:
                continue
            if a.get(key) != b.get(key):
                conflicts.append(f"{section}.{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return conflicts


# -- run state -------------------------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a crash: the session re-reads its bags anyway
            continue
    return rows


def finished_training(rows: list[dict]) -> int:
    """Training episodes that count towards the target, counted as the session counts them."""
    return sum(map(is_training_episode, rows))


def is_finished(vdir: Path, target: int) -> bool:
    """Every training episode recorded, the final policy evaluated, and a summary written.

    A Ctrl-C during the final evaluation leaves it unrecorded; running the variant again resumes the
    session, which runs no training episode and evaluates the final policy.
    """
    done = finished_training(read_jsonl(vdir / "episodes.jsonl"))
    evaluated = max((e["after_episodes"] for e in read_jsonl(vdir / "evaluations.jsonl")), default=-1)
    return done >= target and evaluated >= target and (vdir / "summary.json").exists()


# -- demos -----------------------------------------------------------------------------------------


def demo_folder(out: Path, count: int, seed: int) -> Path:
    """Named by count and first seed, so other demos are another setting (a conflict), never a silent swap."""
    return out / f"demos_{count}_s{seed}"


def ensure_demos(final: Path, count: int, seed: int, image_px: int, task: str) -> Path:
    """``count`` scripted-expert demos in ``final`` (collected once; a cut-short collection is redone)."""
    if len(list(final.rglob("*.npz"))) >= count:
        return final
    out = final.parent
    tmp = final.with_name(final.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    command = [
        sys.executable, "-m", "vlac.cli", "collect-demos", "--task", task, "--episodes", str(count),
        "--seed", str(seed), "--image-size", str(image_px), "--out", str(tmp), "--no-bags",
    ]  # fmt: skip
    print(f"rl_experiment: collecting {count} demos: {' '.join(command[2:])}", flush=True)
    started = time.monotonic()
    # collect-demos's progress bar goes to stderr: into a log file, not onto the screen
    with open(final.with_name(final.name + ".log"), "w", encoding="utf-8") as log:
        code = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise ExperimentError(f"collect-demos exited with {code}; see {final.name}.log in {out}")
    print(f"rl_experiment: demos collected in {time.monotonic() - started:.0f} s", flush=True)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


# -- one variant -----------------------------------------------------------------------------------

#: Session lines worth echoing to the terminal (all lines go to session.log): evaluations, policy updates, errors.
_ECHO = re.compile(r"^(\[eval\]|session:|vlac_trainer:|\[\w+\] stopped|Traceback|\w*Error)")


def run_session(vdir: Path, config_path: Path, episodes: int) -> tuple[int, float]:
    """One ``vlac session`` invocation; every output line goes to session.log with its elapsed seconds."""
    command = [sys.executable, "-m", "vlac.cli", "session", "--config", str(config_path), "--episodes", str(episodes)]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    with open(vdir / "session.log", "a", encoding="utf-8") as log:
        log.write(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {' '.join(command[2:])}\n")
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        interrupted = False
        while True:
            try:
                for line in proc.stdout:
                    log.write(f"{time.monotonic() - started:9.2f} {line}")
                    log.flush()
                    if _ECHO.search(line):
                        print(f"  [{run_name(vdir)}] {line.rstrip()}", flush=True)
                break
            except KeyboardInterrupt:  # the session got the same SIGINT: keep logging while it records and saves
                interrupted = True
        code = proc.wait()
        if interrupted:
            _log_run(vdir, episodes, code, time.monotonic() - started)
            raise KeyboardInterrupt
    wall = time.monotonic() - started
    _log_run(vdir, episodes, code, wall)
    return code, wall


def _log_run(vdir: Path, episodes: int, code: int, wall_s: float) -> None:
    record = {"utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "episodes": episodes, "exit": code}
    with open(vdir / "experiment_runs.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({**record, "wall_s": round(wall_s, 1)}) + "\n")


def check_layout(vdir: Path) -> None:
    """Refuse a variant folder holding a session itself: a run from before --seeds, which would be ignored."""
    if (vdir / "episodes.jsonl").exists():
        raise ExperimentError(
            f"{vdir} holds a run from before --seeds (runs now live in {vdir.name}/seed<k>/); "
            "use another --out or move that run away"
        )


def check_run(rdir: Path, config: dict) -> None:
    """Refuse to resume a started run under other settings, its seeds included (checked before any runs)."""
    config_path = rdir / "experiment_config.yaml"
    if (rdir / "episodes.jsonl").exists() and config_path.exists():
        old = absolute_paths(yaml.safe_load(config_path.read_text(encoding="utf-8")))  # older runs wrote relative
        conflicts = config_conflicts(old, config)
        if conflicts:
            raise ExperimentError(
                f"run {run_name(rdir)} in {rdir} was started with other settings ({'; '.join(conflicts)}); "
                "use another --out or delete that folder"
            )


def run_seed(variant: Variant, seed: int, config: dict, out: Path) -> str:
    """Start, resume or skip one (variant, seed) run; returns what happened."""
    rdir = run_dir(out, variant.name, seed)
    rdir.mkdir(parents=True, exist_ok=True)
    config_path = rdir / "experiment_config.yaml"
    target = config["session"]["ros__parameters"]["episodes"]
    started = (rdir / "episodes.jsonl").exists()
    header = (
        f"# written by bench/rl_experiment.py from {TEMPLATE} for variant {variant.name}: {variant.label}, "
        f"training seed {seed}\n"
    )
    config_path.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    if is_finished(rdir, target):
        return "finished earlier"
    remaining = target - finished_training(read_jsonl(rdir / "episodes.jsonl"))
    print(
        f"rl_experiment: {run_name(rdir)} ({variant.label}): "
        f"{'resuming, ' if started else ''}{max(remaining, 0)} training episode(s) to go",
        flush=True,
    )
    code, wall = run_session(rdir, config_path, target)  # a resumed session runs only what is missing
    print(f"rl_experiment: {run_name(rdir)}: exit {code} after {wall:.0f} s", flush=True)
    if code == 0:
        audit_run(rdir)
    return "ran" if code == 0 else f"session exit {code}"


def audit_run(rdir: Path) -> None:
    """``vlac critic audit`` over the run's training episodes: <rdir>/critic_audit/ (log: critic_audit.log)."""
    command = [sys.executable, "-m", "vlac.cli", "critic", "audit", str(rdir), "--episodes", "train"]
    with open(rdir / "critic_audit.log", "w", encoding="utf-8") as log:
        code = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    print(f"rl_experiment: {run_name(rdir)}: critic audit {'written' if code == 0 else f'exit {code}'}", flush=True)


# -- results ---------------------------------------------------------------------------------------


def episodes_to_threshold(evaluations: list[dict], arms: int, threshold: float = THRESHOLD) -> float | None:
    """Training episodes per arm before the first evaluation at or above ``threshold`` (None: never)."""
    for e in evaluations:
        if e.get("success_rate") is not None and e["success_rate"] >= threshold:
            return e["after_episodes"] / arms
    return None


def timing(log_path: Path) -> dict:
    """Seconds per training episode and per evaluation trial, read from session.log's elapsed times.

    ``eval_s_per_trial``: the baseline evaluation, which runs alone (training waits for it), per trial.
    ``train_s_per_episode_arm0``: the median gap between consecutive episodes of arm_0, sharing the CPU
    with the other arms, the evaluation arm and the trainer (with K arms it is about K episodes' time).
    ``train_s_per_episode``: time from the baseline evaluation (or start) to the last training episode
    over the episodes in between, every arm together: the throughput that sizes a run.
    """
    if not log_path.exists():
        return {}
    out: dict = {}
    gaps, span_s, span_n = [], 0.0, 0
    previous = start = last = None
    count = 0
    for raw in [*log_path.read_text(encoding="utf-8").splitlines(), "# end"]:
        if raw.startswith("#"):  # a new invocation: elapsed times restart
            if start is not None and last is not None and count:
                span_s, span_n = span_s + last - start, span_n + count
            previous = start = last = None
            count = 0
            continue
        stamp_text, _, text = raw.strip().partition(" ")
        try:
            stamp = float(stamp_text)
        except ValueError:
            continue
        if text.startswith("session:") and count == 0:
            start = stamp
        m = re.match(r"\[eval\] after 0 episodes.*success \d+/(\d+)", text)
        if m and start is not None and "eval_s_per_trial" not in out:
            out["eval_s_per_trial"] = round((stamp - start) / int(m.group(1)), 2)
        if m or (text.startswith("[eval]") and count == 0):
            start = stamp
        if re.match(r"\[arm_\d+\] episode", text):
            count, last = count + 1, stamp
            if text.startswith("[arm_0] "):
                if previous is not None:
                    gaps.append(stamp - previous)
                previous = stamp
    if gaps:
        out["train_s_per_episode_arm0"] = round(statistics.median(gaps), 2)
    if span_n:
        out["train_s_per_episode"] = round(span_s / span_n, 2)
    return out


def reward_stats(rows: list[dict]) -> dict:
    """Does the critic's reward agree with the simulator's ground truth on the policy's own episodes?

    ``mean_return_successful`` vs ``mean_return_failed``: the critic's return (progress x reward_scale
    summed) of training episodes that succeeded and failed; RL can only learn when the first is higher.
    A critic "done" on a failed episode (a false done) ends it with the critic's reward, so a policy
    that learns to cause such frames is paid for it; a false-done share rising from the first half of
    training to the second is that exploitation showing.
    """
    train = [r for r in rows if is_training_episode(r) and r["termination"] != "aborted"]
    halves = (train[: len(train) // 2], train[len(train) // 2 :])

    def share(part: list[dict]) -> float | None:
        return round(sum(map(_false_done, part)) / len(part), 3) if part else None

    def mean_return(part: list[dict]) -> float | None:
        return round(statistics.fmean(r["episode_return"] for r in part), 3) if part else None

    done = [r for r in train if r["termination"] == "done"]
    return {
        "ground_truth_training_successes": sum(bool(r["success"]) for r in train),
        "mean_return_successful": mean_return([r for r in train if r["success"]]),
        "mean_return_failed": mean_return([r for r in train if not r["success"]]),
        "critic_done_episodes": len(done),
        "critic_done_true": sum(bool(r["success"]) for r in done),
        "false_done_share_first_half": share(halves[0]),
        "false_done_share_second_half": share(halves[1]),
    }


def _false_done(row: dict) -> bool:
    return row["termination"] == "done" and row["success"] is False


def plot_false_done(vdir: Path, path: Path, episodes: int = 4, frames: int = 5) -> bool:
    """The last frames of the first ``episodes`` false-done training episodes of the run in ``vdir``.

    Returns False (no file) when the run had none. Why: what the critic mistakes for success is the
    first thing to fix in its data, and a picture says it faster than counts.
    """
    from vlac_core.bag import read_episode

    rows = read_jsonl(vdir / "episodes.jsonl")
    chosen = [r for r in rows if is_training_episode(r) and _false_done(r)][:episodes]
    if not chosen:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(chosen), frames, figsize=(1.6 * frames, 1.75 * len(chosen)), dpi=110, squeeze=False)
    for row_axes, row in zip(axes, chosen, strict=True):
        episode = read_episode(vdir / "bags" / "train" / row["episode_id"])  # the folder may have moved
        # Frame j is the one step j led to: the critic's progress for that step and its done on that frame.
        steps = episode.transitions[-frames:]
        images = [t.observation.images[0] for t in steps[1:]] + [episode.final_observation.images[0]]
        for ax, step, image in zip(row_axes, steps, images, strict=False):
            ax.imshow(image)
            progress = "?" if step.progress_pct is None else f"{step.progress_pct:+.0f}"
            ax.set_title(f"progress {progress} %, done {step.done_prob:.2f}", fontsize=5.5)
            ax.axis("off")
        for ax in row_axes[len(images) :]:
            ax.axis("off")
        row_axes[0].text(-4, 32, f"{episode.episode_id}\nstep {episode.length}", fontsize=5, ha="right", va="center")
    fig.suptitle(
        "training episodes the critic ended as done though the simulator says failed: last frames, each with the "
        "critic's progress for the step into it and its done probability",
        fontsize=6,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def training_outcomes(rows: list[dict]) -> list[tuple[int, bool]]:
    """(training episodes so far, ground-truth success) of every counted training episode that has a verdict.

    Why the row's ``success``: it is the simulator's verdict (null without a simulator), while
    ``succeeded`` falls back to the critic's done. An aborted episode (an error cut it) counts in the
    numbering, as the session counts it, but has no verdict.
    """
    outcomes, count = [], 0
    for row in rows:
        if not is_training_episode(row):
            continue
        count += 1
        if row["termination"] != "aborted" and row.get("success") is not None:
            outcomes.append((count, bool(row["success"])))
    return outcomes


def rolling_train_success(outcomes: list[tuple[int, bool]], window: int = TRAIN_WINDOW) -> list[tuple[int, float]]:
    """(training episodes so far, success share over the last ``window`` verdicts), from the first full window on.

    Why: one evaluation of 10 greedy trials is +-15 points of noise; 20 training episodes a point are
    another, cheaper view of the same policy (sampled, not greedy, on the training scenes).
    """
    wins = [success for _, success in outcomes]
    return [(outcomes[i][0], sum(wins[i + 1 - window : i + 1]) / window) for i in range(window - 1, len(outcomes))]


def tail_success(outcomes: list[tuple[int, bool]], last: int = TRAIN_TAIL) -> float | None:
    """Success share of the last ``last`` verdicts (fewer when the run has fewer; None: none)."""
    tail = [success for _, success in outcomes[-last:]]
    return sum(tail) / len(tail) if tail else None


def collect_run(variant: Variant, seed: int, out: Path, target: int) -> dict:
    """One (variant, seed) run's figures, read from its folder."""
    vdir = run_dir(out, variant.name, seed)
    evaluations = read_jsonl(vdir / "evaluations.jsonl")
    rows = read_jsonl(vdir / "episodes.jsonl")
    runs = read_jsonl(vdir / "experiment_runs.jsonl")
    summary = json.loads((vdir / "summary.json").read_text()) if (vdir / "summary.json").exists() else {}
    rates = [e["success_rate"] for e in evaluations if e.get("success_rate") is not None]
    train = [r for r in rows if r.get("phase") == "train"]
    evals = [r for r in rows if r.get("phase") == "eval"]
    trainer = summary.get("trainer", {})
    outcomes = training_outcomes(rows)
    # False when the last policy was never evaluated (a Ctrl-C during the final evaluation, not yet resumed).
    final_evaluated = bool(evaluations) and evaluations[-1]["policy_version"] == trainer.get("policy_version")
    return {
        "seed": seed,
        "target_episodes": target,
        "training_episodes": finished_training(rows),
        "finished": is_finished(vdir, target),
        "final_policy_evaluated": final_evaluated,
        "eval_trials": evaluations[0]["trials"] if evaluations else None,
        "evaluations": [[e["after_episodes"], e["policy_version"], e["success_rate"]] for e in evaluations],
        "best_success": max(rates) if rates else None,
        "final_success": rates[-1] if rates else None,
        "episodes_per_arm_to_80": episodes_to_threshold(evaluations, variant.arms),
        "training_success_rate": summary.get("training_success_rate"),
        "train_success_last_40": tail_success(outcomes),
        "train_success_rolling": [[x, round(y, 3)] for x, y in rolling_train_success(outcomes)],
        "terminations": summary.get("terminations"),
        **reward_stats(rows),
        "policy_updates": trainer.get("updates"),
        "failed_updates": trainer.get("failed_updates"),
        "errors": summary.get("errors"),
        "train_steps": sum(r["length"] for r in train),
        "eval_steps": sum(r["length"] for r in evals),
        "wall_s": round(sum(r["wall_s"] for r in runs), 1),
        "invocations": len(runs),
        "timing": timing(vdir / "session.log"),
    }


def spread(values) -> dict | None:
    """Mean, min, max and count of the values that exist (None: none do): a figure over seeds."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return {"mean": round(statistics.fmean(present), 4), "min": min(present), "max": max(present), "n": len(present)}


def mean_curve(curves: list[list]) -> list[list]:
    """[x, mean, min, max, seeds] at every x any seed's curve has a value for (curves of [x, y] points).

    A seed that stopped early leaves the later points to the others; ``seeds`` says how many there are.
    """
    by_x: dict = {}
    for curve in curves:
        for x, y in curve:
            if y is not None:
                by_x.setdefault(x, []).append(y)
    return [[x, round(statistics.fmean(ys), 4), min(ys), max(ys), len(ys)] for x, ys in sorted(by_x.items())]


def aggregate(variant: Variant, runs: list[dict]) -> dict:
    """A variant over its seeds: evaluation figures over the seeds that have evaluations, the rest over all."""
    evaluated = [r for r in runs if r["best_success"] is not None]

    def mean_of(key: str) -> float | None:
        figure = spread(r[key] for r in runs)
        return None if figure is None else figure["mean"]

    return {
        "variant": variant.name,
        "label": variant.label,
        "arms": variant.arms,
        "demo_replay": variant.demos,
        "seeds": [r["seed"] for r in runs],
        "seeds_evaluated": [r["seed"] for r in evaluated],
        "finished": all(r["finished"] for r in runs),
        "training_episodes": [r["training_episodes"] for r in runs],
        "best_success": spread(r["best_success"] for r in evaluated),
        "final_success": spread(r["final_success"] for r in evaluated),
        "episodes_per_arm_to_80": [[r["seed"], r["episodes_per_arm_to_80"]] for r in evaluated],
        "success_curve": mean_curve([[(x, y) for x, _, y in r["evaluations"]] for r in evaluated]),
        "train_success_last_40": spread(r["train_success_last_40"] for r in runs),
        "train_success_rolling": mean_curve([r["train_success_rolling"] for r in runs]),
        "mean_return_successful": mean_of("mean_return_successful"),
        "mean_return_failed": mean_of("mean_return_failed"),
        "critic_done_episodes": sum(r["critic_done_episodes"] for r in runs),
        "critic_done_true": sum(r["critic_done_true"] for r in runs),
        "wall_s": round(sum(r["wall_s"] for r in runs), 1),
        "runs": runs,
    }


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_band(ax, curve: list[list], color: str, label: str, ls: str = "-", marker: str | None = None) -> None:
    """A mean_curve as its mean line and a shaded min-max band (one seed: the line alone)."""
    if not curve:
        return
    xs, means, lows, highs = ([p[i] for p in curve] for i in range(4))
    ax.plot(xs, means, ls=ls, marker=marker, ms=5, color=color, label=label)
    ax.fill_between(xs, lows, highs, color=color, alpha=0.15, lw=0)


def plot_curves(results: list[dict], path: Path, trials: int | str) -> None:
    """Greedy success per variant: mean over seeds with its min-max band, each seed as a thin line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=110)
    markers = ["o", "s", "^", "D"]
    for i, r in enumerate(results):
        color = f"C{i}"
        for run in r["runs"]:
            points = [(x, y) for x, _, y in run["evaluations"] if y is not None]
            if points:
                ax.plot(*zip(*points, strict=True), color=color, lw=0.6, alpha=0.45)
        seeds = f"{len(r['seeds_evaluated'])} seed{'s' if len(r['seeds_evaluated']) != 1 else ''}"
        plot_band(ax, r["success_curve"], color, f"{r['variant']}: {r['label']} ({seeds})", marker=markers[i % 4])
    _finish_rate_plot(
        plt,
        fig,
        ax,
        path,
        "RL training episodes, all arms together (per arm = total / arms)",
        f"greedy success rate ({trials} trials, ground truth)",
        "pick_bowl: RL from the shipped actor prior; mean over seeds, band min-max",
    )


def _finish_rate_plot(plt, fig, ax, path: Path, xlabel: str, ylabel: str, title: str) -> None:
    """The 80 % line, labels, a 0-1 rate axis and the legend; then the PNG is written and the figure closed."""
    ax.axhline(THRESHOLD, color="grey", ls="--", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_train_success(results: list[dict], path: Path) -> None:
    """The training episodes' ground-truth success per variant (dashed): mean over seeds, min-max band."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=110)
    for i, r in enumerate(results):
        plot_band(ax, r["train_success_rolling"], f"C{i}", f"{r['variant']}: {r['label']}", ls="--")
    _finish_rate_plot(
        plt,
        fig,
        ax,
        path,
        "RL training episodes, all arms together",
        f"training success, last {TRAIN_WINDOW} episodes (ground truth)",
        "pick_bowl: the training episodes' own success; mean over seeds, band min-max",
    )


def plot_to_threshold(results: list[dict], path: Path) -> None:
    """Episodes per arm to 80 %, one bar per seed; a seed that never got there shows its budget, hatched."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    for i, r in enumerate(results):
        runs = [run for run in r["runs"] if run["best_success"] is not None]
        width = 0.8 / max(len(runs), 1)
        for j, run in enumerate(runs):
            reached = run["episodes_per_arm_to_80"]
            hit = reached is not None
            height = reached if hit else run["training_episodes"] / r["arms"]
            x = i - 0.4 + width * (j + 0.5)
            ax.bar(x, height, width=width * 0.9, color=f"C{i}", hatch=None if hit else "//", alpha=1 if hit else 0.4)
            text = f"{reached:.0f}" if hit else f"not reached\nbest {100 * run['best_success']:.0f} %"
            ax.text(x, height, f"s{run['seed']}\n{text}", ha="center", va="bottom", fontsize=6)
    labels = [f"{r['variant']}: " + r["label"].replace(", ", "\n") for r in results]
    ax.set_xticks(range(len(results)), labels, fontsize=7)
    ax.set_ylabel("training episodes per arm")
    ax.set_title(f"episodes per arm to {THRESHOLD:.0%} greedy success, per seed (hatched: not reached)", fontsize=9)
    ax.margins(y=0.25)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def pct_spread(figure: dict | None) -> str:
    """A spread of rates as "mean % (min-max)"; one value (or all equal) as "mean %"."""
    if figure is None:
        return "-"
    mean = f"{100 * figure['mean']:.0f} %"
    if figure["min"] == figure["max"]:
        return mean
    return f"{mean} ({100 * figure['min']:.0f}–{100 * figure['max']:.0f})"


def table(results: list[dict]) -> str:
    head = (
        "| variant | arms | demos | seeds | episodes per seed (all arms) | best success | final "
        f"| episodes/arm to 80 %, per seed | train success, last {TRAIN_TAIL} episodes "
        "| return of the run's reward, successful / failed episodes | reward source's done (truly done) | wall |"
    )
    rows = [head, "|" + " --- |" * 12]
    num = lambda v: "-" if v is None else f"{v:+.2f}"  # noqa: E731
    for r in results:
        to80 = ", ".join("not reached" if v is None else f"{v:.0f}" for _, v in r["episodes_per_arm_to_80"]) or "-"
        counts = r["training_episodes"]  # per seed given, run or not
        episodes = str(counts[0]) if len(set(counts)) == 1 else ", ".join(map(str, counts))
        rows.append(
            f"| {r['variant']} | {r['arms']} | {'yes' if r['demo_replay'] else 'no'} | {len(r['seeds_evaluated'])} "
            f"| {episodes} | {pct_spread(r['best_success'])} | {pct_spread(r['final_success'])} | {to80} "
            f"| {pct_spread(r['train_success_last_40'])}"
            f" | {num(r['mean_return_successful'])} / {num(r['mean_return_failed'])}"
            f" | {r['critic_done_episodes']} ({r['critic_done_true']}) | {r['wall_s'] / 60:.0f} min |"
        )
    notes = (
        "Success: mean over seeds (min–max); seeds: those with evaluations. Train success: the training "
        "episodes' ground truth. Returns: mean over seeds; dones: summed over seeds; wall: all seeds."
    )
    return "\n".join([*rows, "", notes])


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds, one run each (default: 0)")
    p.add_argument("--episodes", type=int, help="RL training episodes per run, all arms together (template: 200)")
    p.add_argument("--eval-every", type=int, help="training episodes between greedy evaluations (template: 20)")
    p.add_argument("--eval-trials", type=int, help="greedy trials per evaluation (template: 10)")
    p.add_argument("--threads", type=int, help="torch CPU threads of each session (template: 1)")
    p.add_argument("--out", type=Path, default=Path("out/rl_experiment"), help="work folder (<out>/<v>/seed<k>)")
    p.add_argument("--docs", type=Path, default=Path("docs"), help="folder of the PNGs")
    p.add_argument("--demos", type=int, help="scripted-expert demos for variant b (template's max_demos: 50)")
    p.add_argument("--demo-seed", type=int, default=500000, help="first demo scene seed (apart from train/eval seeds)")
    p.add_argument("--report-only", action="store_true", help="run nothing: plots and summary from what is on disk")
    args = p.parse_args(argv)
    for key in ("episodes", "eval_every", "eval_trials", "threads", "demos"):
        value = getattr(args, key)
        if value is not None and value < (1 if key in ("eval_trials", "demos") else 0):
            p.error(f"--{key.replace('_', '-')}: {value} is too small")
    bad = [seed for seed in args.seeds if not 0 <= seed < SEED_LIMIT]
    if bad:
        p.error(f"--seeds: {bad} outside 0..{SEED_LIMIT - 1} (the training scenes of higher seeds meet arm 1's)")
    args.seeds = list(dict.fromkeys(args.seeds))
    return args


def _from_root(path: Path) -> Path:
    """``path`` as given from the caller's folder, relative to the repository root where it lies inside it."""
    path = path.resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out, args.docs = _from_root(args.out), _from_root(args.docs)
    os.chdir(ROOT)  # the template's model paths are relative to the repository root
    template = load_template()
    variants = [VARIANTS[name] for name in dict.fromkeys(args.variants)]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    status = {}
    session = template["session"]["ros__parameters"]
    if args.demos is None:
        args.demos = session["max_demos"]
    target = args.episodes if args.episodes is not None else session["episodes"]
    sim = template[SIM]["ros__parameters"]
    demos = demo_folder(args.out, args.demos, args.demo_seed)
    plans = [
        (v, k, absolute_paths(variant_config(template, v, args, args.out, demos if v.demos else None, k)))
        for v in variants
        for k in args.seeds
    ]
    try:
        if not args.report_only:  # a report reads what is there, whatever settings made it
            check_seed_scenes(args.seeds, target)
            for variant in variants:
                check_layout(args.out / variant.name)
            for variant, seed, config in plans:
                check_run(run_dir(args.out, variant.name, seed), config)
        for variant, seed, config in plans:
            if args.report_only:
                status[variant.name, seed] = "not run"
                continue
            if variant.demos:
                ensure_demos(demos, args.demos, args.demo_seed, sim["image_size_px"], sim["task"])
            status[variant.name, seed] = run_seed(variant, seed, config, args.out)
    except ExperimentError as error:
        print(f"rl_experiment: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rl_experiment: interrupted; run the same command again to resume", file=sys.stderr)
        return 130

    results = []
    for v in variants:
        runs = [collect_run(v, k, args.out, target) for k in args.seeds]
        for run in runs:
            run["status"] = status.get((v.name, run["seed"]))
        results.append(aggregate(v, runs))
    measured = {run["eval_trials"] for r in results for run in r["runs"] if run["eval_trials"]}  # --report-only: any
    trials = args.eval_trials or session["eval_trials"]
    if measured:
        trials = measured.pop() if len(measured) == 1 else "/".join(map(str, sorted(measured)))
    args.docs.mkdir(parents=True, exist_ok=True)
    curves, bars = args.docs / "rl_success_vs_episodes.png", args.docs / "rl_episodes_to_80.png"
    train_curves = args.docs / "rl_train_success.png"
    plot_curves(results, curves, trials)
    plot_train_success(results, train_curves)
    plot_to_threshold(results, bars)
    plots = [curves, train_curves, bars]
    false_done = args.docs / "rl_false_done.png"
    if plot_false_done(run_dir(args.out, variants[0].name, args.seeds[0]), false_done):  # one folder's bags
        plots.append(false_done)
    print(table(results))
    print(
        json.dumps(
            {
                "bench": "rl_experiment",
                "template": str(TEMPLATE),
                "actor": template["actor_node"]["ros__parameters"]["checkpoint_path"],
                "episodes_per_variant": target,
                "seeds": args.seeds,
                "eval_trials": trials,
                "threshold": THRESHOLD,
                "train_success_window": TRAIN_WINDOW,
                "wall_s_this_invocation": round(time.monotonic() - started, 1),
                "plots": [str(p) for p in plots],
                "variants": results,
            }
        )
    )
    return 0 if all(r["finished"] for r in results) or args.report_only else 1


if __name__ == "__main__":
    sys.exit(main())
