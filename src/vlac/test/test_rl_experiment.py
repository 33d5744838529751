"""bench/rl_experiment.py's bookkeeping: what counts as done, what may change on resume, what the figures read.

The sessions themselves are not run here (minutes each); these are the pieces that decide whether a
variant is skipped, resumed or refused, and the numbers the README quotes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml
from bench_scripts import ROOT, load_bench


@pytest.fixture(scope="module")
def rl():
    yield from load_bench("rl_experiment")


@pytest.fixture(scope="module")
def template():
    return yaml.safe_load((ROOT / "config" / "experiment_pick_bowl.yaml").read_text())


def _args(**kw):
    base = {"episodes": None, "eval_every": None, "eval_trials": None, "threads": None, "demos": 7}
    return argparse.Namespace(**{**base, **kw})


def test_template_is_a_valid_session_file():
    from vlac.session.config import load_session_files

    files = load_session_files(ROOT / "config" / "experiment_pick_bowl.yaml")
    assert files.session.eval_trials == 10 and files.session.episodes == 200


def test_variant_config_sets_only_the_variant_and_size(rl, template):
    out = Path("out/x")
    a = rl.variant_config(template, rl.VARIANTS["a"], _args(episodes=4), out, None)
    b = rl.variant_config(template, rl.VARIANTS["b"], _args(), out, out / "demos_7_s1")
    d = rl.variant_config(template, rl.VARIANTS["d"], _args(threads=1), out, None)
    sa, sb, sd = (c["session"]["ros__parameters"] for c in (a, b, d))
    assert (sa["episodes"], sa["arms"], sa["demo_dir"], sa["out_dir"]) == (4, 1, "", "out/x/a")
    assert (sb["demo_dir"], sb["max_demos"], sb["episodes"]) == ("out/x/demos_7_s1", 7, 200)
    assert (sd["arms"], sd["torch_threads"]) == (4, 1)
    assert template["session"]["ros__parameters"]["arms"] == 1  # the template itself is untouched
    assert {k: v for k, v in a.items() if k != "session"} == {k: v for k, v in d.items() if k != "session"}
    # e differs from a in its episode manager's done rule only
    e = rl.variant_config(template, rl.VARIANTS["e"], _args(episodes=4), out, None)
    manager_a, manager_e = a.pop("episode_manager")["ros__parameters"], e.pop("episode_manager")["ros__parameters"]
    assert {k: (manager_a.get(k), v) for k, v in manager_e.items() if manager_a.get(k) != v} == {
        "done_threshold": (0.9, 0.8),
        "done_confirm_steps": (None, 3),
    }
    a["session"]["ros__parameters"].pop("out_dir"), e["session"]["ros__parameters"].pop("out_dir")
    assert a == e
    assert template["episode_manager"]["ros__parameters"]["done_threshold"] == 0.9  # untouched


def test_resume_allows_size_and_threads_but_not_learning_settings(rl, template):
    out = Path("out/x")
    old = rl.variant_config(template, rl.VARIANTS["c"], _args(episodes=8, threads=3), out, None)
    assert rl.config_conflicts(old, rl.variant_config(template, rl.VARIANTS["c"], _args(threads=2), out, None)) == []
    changed = rl.config_conflicts(old, rl.variant_config(template, rl.VARIANTS["c"], _args(eval_every=5), out, None))
    assert changed == ["session.eval_every_episodes: 20 -> 5"]


def test_shutdown_episodes_do_not_count_and_finished_needs_the_final_evaluation_and_a_summary(rl, tmp_path):
    rows = [
        {"phase": "eval", "termination": "step_limit"},
        {"phase": "train", "termination": "done"},
        {"phase": "train", "termination": "shutdown"},
        {"phase": "train", "termination": "aborted"},
    ]
    (tmp_path / "episodes.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + '\n{"cut sho')
    assert rl.finished_training(rl.read_jsonl(tmp_path / "episodes.jsonl")) == 2
    assert not rl.is_finished(tmp_path, 2)
    (tmp_path / "summary.json").write_text("{}")
    assert not rl.is_finished(tmp_path, 2)  # the final policy was not evaluated (Ctrl-C): resume runs it
    (tmp_path / "evaluations.jsonl").write_text(json.dumps({"after_episodes": 2}) + "\n")
    assert rl.is_finished(tmp_path, 2) and not rl.is_finished(tmp_path, 3)


def test_episodes_per_arm_to_threshold(rl):
    evals = [
        {"after_episodes": 0, "success_rate": 0.1},
        {"after_episodes": 40, "success_rate": None},  # every trial aborted: no rate
        {"after_episodes": 80, "success_rate": 0.8},
        {"after_episodes": 120, "success_rate": 0.9},
    ]
    assert rl.episodes_to_threshold(evals, arms=4) == 20
    assert rl.episodes_to_threshold(evals, arms=1, threshold=0.95) is None


def test_timing_reads_baseline_evaluation_and_training_gaps(rl, tmp_path):
    log = tmp_path / "session.log"
    log.write_text(
        "# run 1\n"
        "     3.00 session: critic c, actor a (policy version 0)\n"
        "    11.00 [eval] after 0 episodes, policy v0: success 0/2\n"
        "    15.00 [arm_0] episode 1: step_limit\n"
        "    19.00 [arm_0] episode 2: step_limit\n"
        "    25.00 [arm_0] episode 3: step_limit\n"
        "# run 2 (resumed: elapsed times restart)\n"
        "     4.00 [arm_0] episode 4: step_limit\n"
    )
    # arm_0 gaps 4 s and 6 s (the resumed run's clock restarts); throughput (25 - 11) s / 3 episodes
    assert rl.timing(log) == {"eval_s_per_trial": 4.0, "train_s_per_episode_arm0": 5.0, "train_s_per_episode": 4.67}


def test_reward_stats_compare_the_critic_return_with_ground_truth_and_count_false_dones(rl):
    def row(termination, success, ret):
        return {"phase": "train", "termination": termination, "success": success, "episode_return": ret}

    rows = [
        row("done", False, 1.0),  # a false done
        row("step_limit", True, -2.0),
        row("done", True, 3.0),
        row("shutdown", False, 9.0),  # cut short by Ctrl-C: not counted
        row("aborted", False, 9.0),  # an error: not counted
        row("step_limit", False, 0.5),
        {"phase": "eval", "termination": "done", "success": False, "episode_return": 9.0},
    ]
    stats = rl.reward_stats(rows)
    assert stats["ground_truth_training_successes"] == 2
    assert stats["mean_return_successful"] == 0.5 and stats["mean_return_failed"] == 0.75
    assert (stats["critic_done_episodes"], stats["critic_done_true"]) == (2, 1)
    assert stats["false_done_share_first_half"] == 0.5 and stats["false_done_share_second_half"] == 0.0


def test_the_experiment_decodes_with_the_grammar_the_prior_was_trained_with():
    """Issue 11: RL started from the prior's distribution truncated to other limits than it was trained with."""
    from vlac.session.config import load_session_files

    files = load_session_files(ROOT / "config" / "experiment_pick_bowl.yaml")
    trained = json.loads((ROOT / files.actor.checkpoint_path / "training_info.json").read_text())["config"]
    for section in (files.actor, files.trainer):
        assert (section.max_translation_mm, section.max_rotation_deg) == (
            trained["max_translation_mm"],
            trained["max_rotation_deg"],
        )


def test_control_variants_differ_from_a_in_the_reward_source_only(rl, template):
    out = Path("out/x")
    a = rl.variant_config(template, rl.VARIANTS["a"], _args(), out, None)
    for name, source in (("g", "sim_dense"), ("s", "sim_sparse")):
        control = rl.variant_config(template, rl.VARIANTS[name], _args(), out, None)
        manager_a, manager_c = a["episode_manager"]["ros__parameters"], control["episode_manager"]["ros__parameters"]
        assert {k: (manager_a[k], v) for k, v in manager_c.items() if manager_a[k] != v} == {
            "reward_source": ("critic", source)
        }
