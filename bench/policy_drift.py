"""How far has a run's policy moved from its prior? The KL per action on the run's own last episodes.

Why: an update's noise is not free (docs/rl_experiments.md, "The prediction tested"): a walk away from a prior fitted to
the expert costs success on its own, so whether a run climbed is read beside how far it moved. The trainer logs the
drift per update only with the KL anchor or ``trainer_node.log_prior_kl``; this measures it afterwards for any run whose
final policy is on disk, by the trainer's estimator (``ppo.prior_kl``): per sampled decision k3 = e^l - 1 - l with l =
log prior - log pi, summed over an action's decisions, averaged over the actions. The actions are the recorded ones of
the run's last ``--episodes`` training episodes (an operator's steps left out), sampled by the policies of the run's
last updates: the estimator takes them as the final policy's samples, which they nearly are (a policy lag of a few
updates). Also given: k1, the mean of log pi - log prior per action, and the share of actions whose log-ratio exceeds 1
nat either way (where the drift sits: a few actions moved far, or all a little). Read k1 beside k3: k3's e^l is
heavy-tailed where a recorded decision, drawn by a slightly older policy, is one the final policy has since made rare
and the prior favours (rl41 gg seed 0: k3 102.5 per action from a few such decisions, k1 1.74).

Usage: ``MUJOCO_GL=egl .venv/bin/python bench/policy_drift.py out/rl41/gg/seed0 [--policy DIR] [--prior DIR]
[--episodes 20] [--threads 2]``; the last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rl_report import final_policy_dir, read_jsonl, run_prior, verdict_rows

#: Steps scored in one forward pass (memory, not the result).
SCORE_CHUNK = 16
#: An action whose |log pi - log prior| is above this many nats counts as moved far.
FAR_NATS = 1.0


def action_kls(
    policy_rows: list[tuple[float, ...]], prior_rows: list[tuple[float, ...]]
) -> tuple[np.ndarray, np.ndarray]:
    """Per action: k3 summed over its decisions (``ppo.prior_kl`` before its mean over the actions) and the
    log-ratio log pi - log prior (k1), from each action's per-decision log-probs under the policy and the prior."""
    from vlac_trainer.online import ppo

    if [len(r) for r in policy_rows] != [len(r) for r in prior_rows]:
        raise ValueError("policy and prior walk the actions' decisions differently (another action grammar)")
    k3, k1 = [], []
    for pi, prior in zip(policy_rows, prior_rows, strict=True):
        d = torch.tensor(prior, dtype=torch.float32) - torch.tensor(pi, dtype=torch.float32)
        k3.append(float(ppo.k3_kl(d).sum()))
        k1.append(float(-d.sum()))
    return np.array(k3), np.array(k1)


def drift_figures(k3: np.ndarray, k1: np.ndarray) -> dict:
    """The figures of per-action k3 and k1 values (see the module's docstring)."""
    if len(k3) == 0:
        raise ValueError("no actions to measure the drift on")
    return {
        "actions": len(k3),
        "kl_per_action": float(np.mean(k3)),
        "kl_k1_per_action": float(np.mean(k1)),
        "logratio_sd": float(np.std(k1)),
        "far_share": float(np.mean(np.abs(k1) > FAR_NATS)),
    }


def run_drift(run: Path, policy_dir: Path, prior_dir: Path, episodes: int) -> dict:
    from vlac_actor.inputs import actor_content
    from vlac_actor.policy import load_policy
    from vlac_core.bag import read_episode
    from vlac_trainer.online.ppo_trainer import score_decisions
    from vlac_trainer.online.trainer_config import TrainerConfig

    started = time.monotonic()
    rows = [row for _, row in verdict_rows(read_jsonl(run / "episodes.jsonl"))][-episodes:]
    if not rows:
        raise ValueError("no finished training episodes in episodes.jsonl")
    policy = load_policy(policy_dir, device="cpu", dtype="fp32")
    prior = load_policy(prior_dir, device="cpu", dtype="fp32")
    if policy.settings != prior.settings:
        raise ValueError(f"policy and prior differ in their settings ({policy.settings} vs {prior.settings})")
    defaults = TrainerConfig()
    limits = policy.settings.input_limits(defaults.max_task_chars, defaults.max_abs_position_mm)
    steps = [t for row in rows for t in read_episode(run / "bags" / "train" / row["episode_id"]).transitions]
    steps = [t for t in steps if not t.human]
    prompts = [actor_content(t.observation, limits) for t in steps]
    actions = [t.action.delta for t in steps]
    policy_rows, _ = score_decisions(policy, prompts, actions, SCORE_CHUNK)
    prior_rows, _ = score_decisions(prior, prompts, actions, SCORE_CHUNK)
    k3, k1 = action_kls(policy_rows, prior_rows)
    return {
        "run": str(run),
        "policy": str(policy_dir),
        "prior": str(prior_dir),
        "episodes": len(rows),
        "first_episode": rows[0]["episode_id"],
        **drift_figures(k3, k1),
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder: <out>/<variant>/seed<k> (episodes.jsonl, bags/train)")
    parser.add_argument("--policy", type=Path, help="the moved policy (default: the run's final one)")
    parser.add_argument("--prior", type=Path, help="the policy it started from (default: the run's prior)")
    parser.add_argument("--episodes", type=int, default=20, help="the run's last training episodes scored (20)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        raise SystemExit(f"policy_drift: --episodes {args.episodes}: must be >= 1")
    policy_dir, prior_dir = args.policy or final_policy_dir(args.run), args.prior or run_prior(args.run)
    if policy_dir is None or prior_dir is None:
        raise SystemExit(
            f"policy_drift: {args.run} has no summary.json or experiment_config.yaml to read its final policy and "
            "prior from; give --policy and --prior"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        figures = run_drift(args.run, policy_dir, prior_dir, args.episodes)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"policy_drift: {args.run}: {error}") from None
    print(
        f"{figures['actions']} actions of the last {figures['episodes']} episodes: KL to the prior "
        f"{figures['kl_per_action']:.4f} per action (k1 {figures['kl_k1_per_action']:.4f}), "
        f"{figures['far_share']:.1%} moved more than {FAR_NATS:g} nat"
    )
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
