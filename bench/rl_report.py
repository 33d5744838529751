"""bench/rl_experiment.py's figures: what its runs' folders say, over seeds, as plots and a table.

Reads only what a run leaves on disk (``<out>/<variant>/seed<k>/``: episodes.jsonl, evaluations.jsonl,
summary.json, session.log, experiment_runs.jsonl, the bags), so a report can be made at any time,
also while runs go on (``rl_experiment.py --report-only``). The runs themselves (configs, sessions,
resume rules) live in rl_experiment.py.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import signal
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import yaml

from piper_driver.sim.arm import parse_seed_start_state_id
from vlac.episode.return_explore import is_frontier_state_id
from vlac.session.report import is_training_episode, judges_the_whole_task, policy_succeeded
from vlac_trainer.online.policy_publisher import version_dir

THRESHOLD = 0.8
#: Exit signals of a crashed session (rl_experiment resumes those); SIGINT, SIGTERM and SIGKILL mean it was stopped.
CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT)

#: Training episodes per window of the rolling ground-truth training success, and the tail the table quotes.
TRAIN_WINDOW = 20

TRAIN_TAIL = 40

#: A run's final check: its last policy, greedy, on held-out scenes (``vlac actor eval``'s results.json). Why:
#: 10-trial evaluations on the first 10 held-out scenes disagreed with 40 trials by up to 27 points (issue 11).
FINAL_CHECK = "final_check"
#: A scene-pool run's check of its training scenes: the prior and the last policy, greedy, once on each scene of
#: arm 0's pool (``pool_check/prior``, ``pool_check/final``). Why: held-out success alone cannot tell a policy that
#: learned nothing from one that learned its training scenes and carried none of it (the overfit check, rl34).
POOL_CHECK = "pool_check"
#: A run's scene control: the run's prior, sampled as the run sampled it, R times on each of the run's training
#: scenes (``vlac actor eval --sample --repeats R``, one folder per range of scene seeds run). Why: a block of
#: training episodes is also a block of scenes, and the scenes alone moved the prior's sampled success per block of
#: 20 between 9 and 17 (stop 36); a run's training success says what the updates did only against the prior's on
#: the same scenes.
SCENE_CONTROL = "scene_control"


def run_dir(out: Path, variant: str, seed: int) -> Path:
    """The session folder of one (variant, training seed) run."""
    return out / variant / f"seed{seed}"


def run_name(rdir: Path) -> str:
    """``<variant>/seed<k>``: how messages name a run."""
    return f"{rdir.parent.name}/{rdir.name}"


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


def final_policy_dir(vdir: Path) -> Path | None:
    """The run's last published policy (the trainer's version in summary.json), None before a summary."""
    summary = vdir / "summary.json"
    if not summary.exists():
        return None
    version = json.loads(summary.read_text()).get("trainer", {}).get("policy_version")
    return None if version is None else version_dir(vdir / "policies", version)


def read_eval(path: Path, policy: Path | None) -> dict | None:
    """One ``vlac actor eval`` results.json of ``policy``: trials, successes, rate and the scene seeds; None when
    there is none, or when it scored another policy (a run resumed to more episodes since)."""
    if policy is None or not path.exists():
        return None
    results = json.loads(path.read_text())
    if Path(results["checkpoint"]).resolve() != policy.resolve():
        return None
    (task,) = results["tasks"]  # one task per run
    return {
        "trials": task["episodes"],
        "successes": task["successes"],
        "rate": task["success_rate"],
        "seeds": results["seeds"],
        "policy": policy.name,
    }


def read_eval_results(path: Path) -> dict:
    """A ``vlac actor eval`` results.json, given as the file or the folder holding it; one that cannot be read is a
    ValueError naming the file."""
    file = path / "results.json" if path.is_dir() else path
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{file}: not a readable vlac actor eval results.json ({error})") from None


def read_final_check(vdir: Path) -> dict | None:
    """The final check of the run's last policy (``read_eval``)."""
    return read_eval(vdir / FINAL_CHECK / "results.json", final_policy_dir(vdir))


def run_prior(vdir: Path) -> Path | None:
    """The actor checkpoint the run started from (its experiment_config.yaml), None before the run was written."""
    path = vdir / "experiment_config.yaml"
    if not path.exists():
        return None
    return Path(yaml.safe_load(path.read_text())["actor_node"]["ros__parameters"]["checkpoint_path"])


def read_pool_check(vdir: Path, prior: Path) -> dict | None:
    """A scene-pool run's training scenes: {"prior": ..., "final": ...} (``read_eval`` of the prior ``prior`` and
    of the run's last policy on them); None unless both are there."""
    checks = {
        "prior": read_eval(vdir / POOL_CHECK / "prior" / "results.json", prior),
        "final": read_eval(vdir / POOL_CHECK / "final" / "results.json", final_policy_dir(vdir)),
    }
    return checks if all(checks.values()) else None


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


def has_whole_task_verdict(row: dict) -> bool:
    """A counted training episode whose simulator verdict judges the whole task (``training_outcomes``' rule)."""
    return is_training_episode(row) and judges_the_whole_task(row) and row.get("success") is not None


def verdict_rows(rows: list[dict]) -> list[tuple[int, dict]]:
    """(training episodes so far, row) of every counted training episode that has a verdict on the whole task.

    An aborted episode (an error cut it) and one that started mid-task (a return-and-explore frontier) count in
    the numbering, as the session counts them, but give no verdict on the whole task (``judges_the_whole_task``).
    """
    numbered, count = [], 0
    for row in rows:
        if not is_training_episode(row):
            continue
        count += 1
        if has_whole_task_verdict(row):
            numbered.append((count, row))
    return numbered


def scene_groups(rows: list[dict], group_size: int) -> list[list[dict]]:
    """The trainer's groups in a run's episodes.jsonl ``rows``: each scene's consecutive training episodes with a
    verdict, cut into whole groups of ``group_size`` (a remainder is no group: the trainer's batch would split it)."""
    if group_size < 2:
        raise ValueError(f"group size {group_size}: a group needs at least 2 episodes")
    groups = []
    train = [row for _, row in verdict_rows(rows)]
    for _, members in itertools.groupby(train, key=lambda r: r["start_state_id"]):
        members = list(members)
        groups += [members[lo : lo + group_size] for lo in range(0, len(members) - group_size + 1, group_size)]
    return groups


def training_outcomes(rows: list[dict]) -> list[tuple[int, bool]]:
    """(training episodes so far, ground-truth success) of every ``verdict_rows`` row.

    Why the row's ``success``: it is the simulator's verdict (null without a simulator), while
    ``succeeded`` falls back to the critic's done; one the operator helped is the policy's failure.
    """
    return [(count, policy_succeeded(row, "success")) for count, row in verdict_rows(rows)]


def rolling_train_success(outcomes: list[tuple[int, float]], window: int = TRAIN_WINDOW) -> list[tuple[int, float]]:
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


# -- the scene control: the run's training success against the prior's on the same scenes ----------


def scene_of(row: dict) -> tuple[str, int]:
    """(task, scene seed) of a training episode that started from a fresh scene (``<task>-seed<k>``)."""
    parsed = parse_seed_start_state_id(row.get("start_state_id"))
    if parsed is None:
        raise ValueError(f"start_state_id {row.get('start_state_id')!r}: not a fresh scene start <task>-seed<k>")
    return parsed


def scene_sides(scene_ids: list[str]) -> dict[str, str]:
    """Each seeded scene's layout: the side of the table its goal lies on, ``"left"`` (y > 0, the arm's left) or
    ``"right"``, read from the simulator reset to the scene (``SimTask.goal_key`` of ``describe()``); ids of no
    seeded scene are left out. One simulator per task, no rendering. Why it matters: a scene seed puts the goal on
    either side with the start across from it, so the same carry is a move to +y in one layout and to -y in the
    other (``gradient_agreement``, ``scene_control --by-layout``, ``layout_split``)."""
    from piper_driver.sim.backend import SimBackend
    from piper_driver.sim.tasks import make_task

    backends: dict[str, SimBackend] = {}
    sides = {}
    for scene in sorted(set(scene_ids)):
        parsed = parse_seed_start_state_id(scene)
        if parsed is None:
            continue
        task, seed = parsed
        if task not in backends:
            backends[task] = SimBackend(make_task(task))
            backends[task].connect()
        backend = backends[task]
        backend.reset(seed)
        goal_y_m = float(backend.describe()[backend.task.goal_key][1])
        sides[scene] = "left" if goal_y_m > 0.0 else "right"
    for backend in backends.values():
        backend.disconnect()
    return sides


def prior_outcomes(evaluations: list[dict]) -> dict[tuple[str, int], list[bool]]:
    """The draws per (task, scene seed) over every outcome of the given ``vlac actor eval`` results."""
    outcomes: dict[tuple[str, int], list[bool]] = defaultdict(list)
    for evaluation in evaluations:
        for task in evaluation["tasks"]:
            for outcome in task["outcomes"]:
                outcomes[(outcome["task"], outcome["seed"])].append(bool(outcome["success"]))
    return dict(outcomes)


def _bernoulli_variance(draws: list[bool]) -> float:
    """Unbiased p(1-p) from the draws (0 for a single draw: nothing to tell it by)."""
    r = len(draws)
    if r < 2:
        return 0.0
    p = sum(draws) / r
    return p * (1 - p) * r / (r - 1)


def covered_scenes(train_rows: list[dict], prior: dict[tuple[str, int], list[bool]]) -> list[tuple[str, int]]:
    """The scene of each training row, in order; a scene the control did not cover is an error naming it (a
    block's expectation would be silently short otherwise)."""
    scenes = [scene_of(r) for r in train_rows]
    missing = sorted(set(scenes) - prior.keys())
    if missing:
        shown = ", ".join(f"{task}-seed{seed}" for task, seed in missing[:5])
        raise ValueError(f"{len(missing)} training scene(s) not in the prior's evaluations: {shown}")
    return scenes


def block_figures(train_rows: list[dict], scenes: list[tuple[str, int]], prior: dict, block: int) -> list[dict]:
    """Per block of ``block`` training episodes (``scenes``: theirs, ``covered_scenes``): the run's successes, the
    prior's expected ones (the sum over the block's episodes of the prior's rate on that episode's scene), their
    difference with its own null spread (``null_sd`` over the block's scenes: a long run's late block against the
    prior, say episodes 121-480 with ``block`` 120), and the block's first and last scene seed."""
    blocks = []
    for first in range(0, len(train_rows), block):
        rows, block_scenes = train_rows[first : first + block], scenes[first : first + block]
        run = sum(policy_succeeded(r, "success") for r in rows)
        expected = sum(sum(prior[scene]) / len(prior[scene]) for scene in block_scenes)
        seeds = [seed for _, seed in block_scenes]
        blocks.append(
            {
                "episodes": len(rows),
                "scenes": [min(seeds), max(seeds)],
                "run_successes": run,
                "prior_expected": round(expected, 2),
                "difference": round(run - expected, 2),
                "null_sd": round(null_sd(block_scenes, prior), 2),
            }
        )
    return blocks


def null_sd(scenes: list[tuple[str, int]], prior: dict[tuple[str, int], list[bool]]) -> float:
    """The spread of the whole run's difference were its policy the prior: the run's draws and the control's own,
    sum over scenes of n p(1-p) + n^2 p(1-p) / R for n run episodes and R control draws on a scene of rate p
    (estimated without bias from the R draws). Over a few scenes (a pool, one) R draws pin p poorly (four wins of
    four give a spread of 0): give such a run more repeats."""
    episodes = Counter(scenes)
    variance = sum((n + n * n / len(prior[scene])) * _bernoulli_variance(prior[scene]) for scene, n in episodes.items())
    return math.sqrt(variance)


def scene_control_figures(rows: list[dict], prior: dict, block: int = TRAIN_WINDOW) -> dict:
    """A run's training episodes (``verdict_rows`` of its episodes.jsonl ``rows``) against the prior's draws on
    their scenes: per block and for the whole run, the run's successes, the prior's expected ones and the
    difference; the difference's null spread; the fewest draws of a scene (``repeats``); and the prior's expected
    rolling success on the x of ``rolling_train_success`` (the curve the training plot draws beside the run's).
    A run without a training verdict is an error, as is a scene the control did not cover."""
    numbered = verdict_rows(rows)
    if not numbered:
        raise ValueError("no training episode with a verdict on the whole task")
    train_rows = [row for _, row in numbered]
    scenes = covered_scenes(train_rows, prior)
    blocks = block_figures(train_rows, scenes, prior, block)
    run, prior_total = sum(b["run_successes"] for b in blocks), sum(b["prior_expected"] for b in blocks)
    expected = [(n, sum(prior[scene]) / len(prior[scene])) for (n, _), scene in zip(numbered, scenes, strict=True)]
    return {
        "blocks": blocks,
        "run_successes": run,
        "prior_expected": round(prior_total, 2),
        "difference": round(run - prior_total, 2),
        "null_sd": round(null_sd(scenes, prior), 2),
        "repeats": min(len(prior[scene]) for scene in set(scenes)),
        "prior_rolling": [[x, round(y, 3)] for x, y in rolling_train_success(expected)],
    }


def scene_control_evaluations(vdir: Path, prior: Path | None) -> list[dict]:
    """The sampled ``vlac actor eval`` results of ``prior`` in the run's scene control folder (others: ignored)."""
    if prior is None:
        return []
    found = []
    for path in sorted((vdir / SCENE_CONTROL).glob("*/results.json")):
        results = json.loads(path.read_text())
        if results.get("decoding") == "sample" and Path(results["checkpoint"]).resolve() == prior.resolve():
            found.append(results)
    return found


def read_scene_control(vdir: Path, prior: Path | None) -> dict | None:
    """The run's ``scene_control_figures`` from its scene control; None without one, or while a training scene is
    not covered yet (the run went on since)."""
    evaluations = scene_control_evaluations(vdir, prior)
    if not evaluations:
        return None
    try:
        return scene_control_figures(read_jsonl(vdir / "episodes.jsonl"), prior_outcomes(evaluations))
    except ValueError:
        return None


def read_lessons(vdir: Path) -> dict | None:
    """The trainer's lesson figures after the last update that took a lesson (``trainer_node.lesson_agreement``):
    lessons counted, their mean pairwise cosine and the shared lesson against the noise; None without any."""
    rows = [r for r in read_jsonl(vdir / "trainer" / "updates.jsonl") if r.get("lessons")]
    if not rows:
        return None
    last = rows[-1]
    return {
        "lessons": last["lessons"],
        "agreement": last["lesson_agreement"],
        "shared_to_noise": last["lesson_shared_to_noise"],
    }


#: The drift's figures: the median KL to the prior over this many first and last updates (one update's is noisy, and
#: the k3 estimate heavy-tailed: rl42 logged 2839 on one minibatch among medians of 0.03-0.08).
DRIFT_UPDATES = 10


def read_drift(vdir: Path) -> dict | None:
    """The policy's drift from the prior (``prior_kl``, logged with the KL anchor or ``trainer_node.log_prior_kl``):
    the median KL per action over the first and over the last DRIFT_UPDATES updates that logged it, and how many
    logged it; None without any."""
    kls = [r["prior_kl"] for r in read_jsonl(vdir / "trainer" / "updates.jsonl") if r.get("prior_kl") is not None]
    if not kls:
        return None
    return {
        "updates": len(kls),
        "first": statistics.median(kls[:DRIFT_UPDATES]),
        "last": statistics.median(kls[-DRIFT_UPDATES:]),
    }


def crash_signal(exit_code: int) -> str | None:
    """The signal's name when a subprocess's exit code (-N: killed by signal N) is a crash, else None."""
    return signal.Signals(-exit_code).name if exit_code < 0 and -exit_code in CRASH_SIGNALS else None


def collect_run(variant, seed: int, out: Path, target: int) -> dict:
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
        "final_check": read_final_check(vdir),
        "pool_check": read_pool_check(vdir, run_prior(vdir)),
        "scene_control": read_scene_control(vdir, run_prior(vdir)),
        "lessons": read_lessons(vdir),
        "drift": read_drift(vdir),
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
        "crashes": sum(1 for r in runs if crash_signal(r["exit"])),
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


def aggregate(variant, runs: list[dict]) -> dict:
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
        "final_check": spread(r["final_check"]["rate"] for r in runs if r["final_check"]),
        "final_check_trials": sorted({r["final_check"]["trials"] for r in runs if r["final_check"]}),
        "pool_check": {
            when: spread(r["pool_check"][when]["rate"] for r in runs if r["pool_check"]) for when in ("prior", "final")
        },
        "episodes_per_arm_to_80": [[r["seed"], r["episodes_per_arm_to_80"]] for r in evaluated],
        "success_curve": mean_curve([[(x, y) for x, _, y in r["evaluations"]] for r in evaluated]),
        "train_success_last_40": spread(r["train_success_last_40"] for r in runs),
        "train_success_rolling": mean_curve([r["train_success_rolling"] for r in runs]),
        "prior_rolling": mean_curve([r["scene_control"]["prior_rolling"] for r in runs if r["scene_control"]]),
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
        checks = [(run["training_episodes"], run["final_check"]["rate"]) for run in r["runs"] if run["final_check"]]
        if checks:
            scenes = "/".join(map(str, r["final_check_trials"]))
            ax.scatter(*zip(*checks, strict=True), marker="*", s=90, color=color, edgecolor="black", lw=0.5, zorder=3,
                       label=f"{r['variant']}: final policy on {scenes} held-out scenes")  # fmt: skip
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
        if r["prior_rolling"]:  # the runs' scene controls: what the prior alone would have scored there
            seeds = r["prior_rolling"][-1][4]
            label = f"{r['variant']}: the prior on the same scenes (expected; {seeds} seed{'s' if seeds != 1 else ''})"
            ax.plot([p[0] for p in r["prior_rolling"]], [p[1] for p in r["prior_rolling"]], ls=":", lw=1.6,
                    color=f"C{i}", label=label)  # fmt: skip
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


def final_check(result: dict) -> str:
    """The final checks' cell: "mean % (min–max) (40)", "-" without one; mixed trial counts are all listed."""
    if result["final_check"] is None:
        return "-"
    return f"{pct_spread(result['final_check'])} ({'/'.join(map(str, result['final_check_trials']))})"


def pool_check(result: dict) -> str:
    """The pool check's cell: greedy success on the training pool, "prior -> final"; "-" for a run without a pool.

    Why beside the held-out cell: a policy that climbs its training scenes and carries nothing reads the same as
    one that climbs nothing in the held-out cell alone; the two cells together tell them apart."""
    prior, final = (result["pool_check"][when] for when in ("prior", "final"))
    if prior is None and final is None:
        return "-"
    return f"{pct_spread(prior)} -> {pct_spread(final)}"


def scene_control(result: dict) -> str:
    """The scene control's cell: per seed with one, the run's training successes minus the prior's expected ones on
    the same scenes, with the difference's null spread: "s0 +5.0 (9.6), s1 -12.0 (8.0)"; "-" without one."""
    said = [
        f"s{run['seed']} {run['scene_control']['difference']:+.1f} ({run['scene_control']['null_sd']:.1f})"
        for run in result["runs"]
        if run["scene_control"]
    ]
    return ", ".join(said) or "-"


def lessons(result: dict) -> str:
    """The lessons' cell: per seed with them, the mean pairwise cosine of its updates' lessons, the shared lesson
    against the noise and how many lessons: "s0 0.021 (1.4, 60)"; "-" without any."""

    def figure(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    said = [
        f"s{run['seed']} {figure(run['lessons']['agreement'], '.3f')} "
        f"({figure(run['lessons']['shared_to_noise'], '.1f')}, {run['lessons']['lessons']})"
        for run in result["runs"]
        if run.get("lessons")
    ]
    return ", ".join(said) or "-"


def drift(result: dict) -> str:
    """The drift's cell: per seed with it, the median KL to the prior over its first and its last updates:
    "s0 0.034 -> 0.063"; "-" without any."""
    said = [
        f"s{run['seed']} {run['drift']['first']:.3f} -> {run['drift']['last']:.3f}"
        for run in result["runs"]
        if run.get("drift")
    ]
    return ", ".join(said) or "-"


def table(results: list[dict]) -> str:
    head = (
        "| variant | arms | demos | seeds | episodes per seed (all arms) | best success | final "
        "| final policy, held-out scenes (trials) | training pool, prior -> final "
        f"| episodes/arm to 80 %, per seed | train success, last {TRAIN_TAIL} episodes "
        "| training successes minus the prior's on the same scenes (null sd), per seed "
        "| updates' lessons: mean cosine (shared/noise, lessons), per seed "
        f"| drift: KL to the prior per action, median of the first -> the last {DRIFT_UPDATES} updates, per seed "
        "| return of the run's reward, successful / failed episodes | reward source's done (truly done) | wall |"
    )
    rows = [head, "|" + " --- |" * 17]
    num = lambda v: "-" if v is None else f"{v:+.2f}"  # noqa: E731
    for r in results:
        to80 = ", ".join("not reached" if v is None else f"{v:.0f}" for _, v in r["episodes_per_arm_to_80"]) or "-"
        counts = r["training_episodes"]  # per seed given, run or not
        episodes = str(counts[0]) if len(set(counts)) == 1 else ", ".join(map(str, counts))
        rows.append(
            f"| {r['variant']} | {r['arms']} | {'yes' if r['demo_replay'] else 'no'} | {len(r['seeds_evaluated'])} "
            f"| {episodes} | {pct_spread(r['best_success'])} | {pct_spread(r['final_success'])} "
            f"| {final_check(r)} | {pool_check(r)} | {to80} "
            f"| {pct_spread(r['train_success_last_40'])} | {scene_control(r)} | {lessons(r)} | {drift(r)}"
            f" | {num(r['mean_return_successful'])} / {num(r['mean_return_failed'])}"
            f" | {r['critic_done_episodes']} ({r['critic_done_true']}) | {r['wall_s'] / 60:.0f} min |"
        )
    notes = (
        "Success: mean over seeds (min–max); seeds: those with evaluations. Final policy: its greedy success on "
        "held-out scenes (`vlac actor eval`, ended by ground truth), over the seeds checked. Training pool: the "
        "prior's and the final policy's greedy success once on each of the pool's scenes (pool variants). Train "
        "success: the training episodes' ground truth. Minus the prior's: the run's training successes less the "
        "prior's expected ones on the same scenes (the prior sampled on each, --scene-control), with the spread of "
        "that difference were the run's policy the prior. Lessons (`trainer_node.lesson_agreement`): after the last "
        "update, the mean pairwise cosine of the updates' policy gradients and the shared lesson's size against the "
        "noise (about 3 and up: it stands out). Drift (the KL anchor on, or `trainer_node.log_prior_kl`): how far the "
        "policy has moved from the prior, KL per action summed over its decisions. Returns: mean over seeds; dones: "
        "summed over seeds; wall: all seeds."
    )
    return "\n".join([*rows, "", notes])


# -- the release: the one action the ground-truth runs did not learn (issue 11) --------------------


def policy_release_steps(episodes, look_ahead_steps: int = 4):
    """Yield ``(step, opened, succeeded)`` for each of the policy's own steps (an operator's left out) in truth
    phase "release" (the bowl held over the plate: centred, and low enough to let go since RELEASE_MAX_DROP_M):
    whether it opened the gripper, and whether an open reached success within ``look_ahead_steps`` steps."""
    for episode in episodes:
        steps = episode.transitions
        for i, step in enumerate(steps):
            if step.gt_phase != "release" or step.human:
                continue
            opened = step.action is not None and step.action.delta.open == 1
            succeeded = opened and any(bool(s.gt_done) for s in steps[i : i + look_ahead_steps])
            yield step, opened, succeeded


def release_counts(episodes, look_ahead_steps: int = 4) -> dict:
    """Over ``episodes`` (each with ``transitions``): the policy's steps holding the bowl over the plate
    (``policy_release_steps``), how many of them opened the gripper, and how many of those opens reached success
    within ``look_ahead_steps`` steps, with the opening steps' mean reward. Why: it tells "the reward does not pay
    the release" from "the policy does not try it". Also how many episodes started at a return-and-explore
    frontier (mid-task) and how many of those succeeded: the practice the frontier gives."""
    held = opens = succeeded = 0
    reward = 0.0
    for step, opened, success in policy_release_steps(episodes, look_ahead_steps):
        held += 1
        if opened:
            opens += 1
            reward += step.reward
            succeeded += success
    from_frontier = [episode for episode in episodes if is_frontier_state_id(episode.start_state_id)]
    return {
        "held_over_plate_steps": held,
        "opens": opens,
        "open_share": round(opens / held, 4) if held else None,
        "opens_succeeded": succeeded,
        "mean_open_reward": round(reward / opens, 4) if opens else None,
        "episodes": len(episodes),
        "from_frontier": len(from_frontier),
        "frontier_successes": sum(bool(episode.success) for episode in from_frontier),
    }


def opens_by_height(episodes, edges_mm=(200.0, 230.0, 260.0), look_ahead_steps: int = 4) -> list[dict]:
    """The policy's opens in truth phase "release" (``policy_release_steps``), binned by the end pose's height
    (z, mm, arm base frame) at the step, with how many reached success within ``look_ahead_steps``. Why: in runs
    recorded before the phase needed the bowl low (pick_bowl.RELEASE_MAX_DROP_M), it shows whether the opens that
    failed were the high ones; after it, every such open is low enough by definition."""
    bounds = [-math.inf, *edges_mm, math.inf]
    bins = [{"z_mm": [lo, hi], "opens": 0, "succeeded": 0} for lo, hi in itertools.pairwise(bounds)]
    for step, opened, succeeded in policy_release_steps(episodes, look_ahead_steps):
        if not opened:
            continue
        z_mm = step.observation.end_pose.z_mm
        row = next(b for b in bins if b["z_mm"][0] <= z_mm < b["z_mm"][1])
        row["opens"] += 1
        row["succeeded"] += succeeded
    for row in bins:  # JSON has no infinity
        row["z_mm"] = [None if math.isinf(v) else v for v in row["z_mm"]]
    return bins


def recorded_p_open(action) -> float:
    """The probability of "open: 1" the sampling policy had at a step, from the action's recorded decisions:
    the open decision is the action's last sampled one (``open:`` 0/1, then the forced ``}``)."""
    p_chosen = math.exp(action.token_logprobs[-1])
    return p_chosen if action.delta.open == 1 else 1.0 - p_chosen


def open_decision_push(episodes, gamma: float = 0.99, gae_lambda: float = 0.95) -> dict:
    """Where PPO pushes the gripper bit: per (ground-truth phase, "open" / "hold") the steps, their mean GAE
    advantage, mean value and mean probability of opening, and ``push``: the summed gradient of the sampled
    open decision's log-probability on the open logit, sum (1[open] - p_open) * A (positive raises p_open).

    Why: the release is one decision shared by every phase. If the pushes of the phases the network cannot
    tell apart sum to less than zero, PPO lowers p_open over the plate too, though opening there is paid.
    Advantages use the values the actor recorded while sampling (the trainer recomputes its own, close to
    these) and, at a step-limit cut-off, the last step's value as V(final observation) (not recorded); the
    open decision is the action's last sampled decision (``recorded_p_open``)."""
    from vlac_core.types import Termination
    from vlac_trainer.online.gae import bootstraps, compute_gae

    groups: dict[str, dict] = {}
    for episode in episodes:
        steps = episode.transitions
        if not steps or any(t.human for t in steps) or episode.termination is Termination.ABORTED:
            continue  # the policy's own finished episodes only: a helped one's advantages are the operator's too
        values = [t.action.value for t in steps]
        advantages, _ = compute_gae(
            [t.reward for t in steps],
            values,
            terminated=not bootstraps(episode.termination),
            bootstrap_value=values[-1],
            gamma=gamma,
            gae_lambda=gae_lambda,
        )
        for t, value, advantage in zip(steps, values, advantages.tolist(), strict=True):
            opened = t.action.delta.open == 1
            p_open = recorded_p_open(t.action)
            key = f"{t.gt_phase}/{'open' if opened else 'hold'}"
            g = groups.setdefault(key, {"n": 0, "a": 0.0, "v": 0.0, "p": 0.0, "push": 0.0})
            g["n"] += 1
            g["a"] += advantage
            g["v"] += value
            g["p"] += p_open
            g["push"] += (float(opened) - p_open) * advantage
    return {
        key: {
            "steps": g["n"],
            "mean_advantage": round(g["a"] / g["n"], 4),
            "mean_value": round(g["v"] / g["n"], 4),
            "mean_p_open": round(g["p"] / g["n"], 4),
            "push": round(g["push"], 3),
        }
        for key, g in sorted(groups.items())
    }


def fresh_start_outcomes(rows: list[dict], episodes) -> dict:
    """Over training episodes (``rows`` of episodes.jsonl and their ``episodes`` from the bags, in step): those
    that judge the whole task (from a scene's start, not aborted), how many the policy did alone, and their mean
    ground-truth return (the task potential's change summed over the episode; None without ground truth).

    Why: the per-40 series of docs/rl_experiments.md. A frontier episode starts mid-task, and the critic's return
    says what the critic paid, so neither tells whether the policy got better at the task."""
    fresh = [(row, ep) for row, ep in zip(rows, episodes, strict=True) if judges_the_whole_task(row)]
    returns = [
        sum(t.gt_progress for t in ep.transitions)
        for _, ep in fresh
        if ep.transitions and all(t.gt_progress is not None for t in ep.transitions)
    ]
    return {
        "fresh_starts": len(fresh),
        "policy_successes": sum(policy_succeeded(row, "success") for row, _ in fresh),
        "mean_gt_return": round(sum(returns) / len(returns), 3) if returns else None,
    }


def release_stats(vdir: Path, window: int = TRAIN_TAIL) -> dict:
    """``release_counts`` of the run in ``vdir``: its training episodes in order, per ``window`` (with
    ``fresh_start_outcomes``) and in all."""
    from vlac_core.bag import read_episode

    rows = [r for r in read_jsonl(vdir / "episodes.jsonl") if is_training_episode(r)]
    episodes = [read_episode(vdir / "bags" / "train" / r["episode_id"]) for r in rows]
    return {
        "run": str(vdir),
        "all": release_counts(episodes),
        "opens_by_end_pose_z_mm": opens_by_height(episodes),
        "open_decision_push": open_decision_push(episodes),
        f"per_{window}_episodes": [
            {**release_counts(part), **fresh_start_outcomes(rows[k : k + window], part)}
            for k in range(0, len(episodes), window)
            for part in [episodes[k : k + window]]
        ],
    }


if __name__ == "__main__":
    # python bench/rl_report.py <run folder>...: the release counts of each run, one JSON object as the last line
    import sys

    print(json.dumps([release_stats(Path(folder)) for folder in sys.argv[1:]]))
