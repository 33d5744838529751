"""bench/rl_experiment.py's bookkeeping and bench/rl_report.py's figures: what counts as done, what may change
on resume, what the figures read.

The sessions themselves are not run here (minutes each); these are the pieces that decide whether a
run is skipped, resumed or refused, and the numbers the README quotes. Where the whole script runs, a fake
``run_session`` writes session files in the format a session writes them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
import yaml
from bench_scripts import ROOT, load_bench

from vlac_actor.policy_settings import PolicySettings, read_policy_settings, write_policy_settings


@pytest.fixture(scope="module")
def rl():
    yield from load_bench("rl_experiment")


@pytest.fixture(scope="module")
def rr(rl):
    """bench/rl_report.py, the figures' module, as rl_experiment imported it."""
    return sys.modules["rl_report"]


@pytest.fixture(scope="module")
def template(rl):
    return rl.load_template()  # config/experiment_pick_bowl.yaml over config/session_base.yaml


def _args(**kw):
    base = {"episodes": None, "eval_every": None, "eval_trials": None, "threads": None, "demos": 7}
    return argparse.Namespace(**{**base, **kw})


def test_template_is_a_valid_session_file():
    from vlac.param_file import load_session_files

    files = load_session_files(ROOT / "config" / "experiment_pick_bowl.yaml")
    assert files.session.eval_trials == 10 and files.session.episodes == 200


def test_variant_config_sets_only_the_variant_and_size(rl, template):
    out = Path("out/x")
    a = rl.variant_config(template, rl.VARIANTS["a"], _args(episodes=4), out, None)
    b = rl.variant_config(template, rl.VARIANTS["b"], _args(), out, out / "demos_7_s1")
    d = rl.variant_config(template, rl.VARIANTS["d"], _args(threads=1), out, None)
    sa, sb, sd = (c["session"]["ros__parameters"] for c in (a, b, d))
    assert (sa["episodes"], sa["arms"], sa["demo_dir"], sa["out_dir"]) == (4, 1, "", "out/x/a/seed0")
    assert (sb["demo_dir"], sb["max_demos"], sb["episodes"]) == ("out/x/demos_7_s1", 7, 200)
    assert (sd["arms"], sd["torch_threads"]) == (4, 1)
    assert template["session"]["ros__parameters"]["arms"] == 1  # the template itself is untouched
    assert {k: v for k, v in a.items() if k != "session"} == {k: v for k, v in d.items() if k != "session"}
    # e differs from a in its episode manager's done rule only
    e = rl.variant_config(template, rl.VARIANTS["e"], _args(episodes=4), out, None)
    manager_a, manager_e = a.pop(rl.MANAGER)["ros__parameters"], e.pop(rl.MANAGER)["ros__parameters"]
    assert {k: (manager_a.get(k), v) for k, v in manager_e.items() if manager_a.get(k) != v} == {
        "done_threshold": (0.9, 0.8),
        "done_confirm_steps": (None, 3),
    }
    a["session"]["ros__parameters"].pop("out_dir"), e["session"]["ros__parameters"].pop("out_dir")
    assert a == e
    assert template[rl.MANAGER]["ros__parameters"]["done_threshold"] == 0.9  # untouched
    # ec asks for the critic checkpoint's own rule, and nothing else
    ec = rl.variant_config(template, rl.VARIANTS["ec"], _args(episodes=4), out, None)
    manager_ec = ec.pop(rl.MANAGER)["ros__parameters"]
    assert {k: v for k, v in manager_ec.items() if manager_a.get(k) != v} == {"done_rule": "critic"}
    ec["session"]["ros__parameters"].pop("out_dir")
    assert a == ec


def test_prior_replaces_the_actor_and_trainer_checkpoint_only_and_a_resume_under_another_is_refused(rl, template):
    out = Path("out/x")
    shipped = rl.variant_config(template, rl.VARIANTS["gdf"], _args(), out, None)
    taught = rl.variant_config(template, rl.VARIANTS["gdf"], _args(prior=Path("out/teach/actor_open")), out, None)
    assert sorted(rl.config_conflicts(shipped, taught)) == [
        "actor_node.checkpoint_path: 'models/sim_actor' -> 'out/teach/actor_open'",
        "trainer_node.checkpoint_path: 'models/sim_actor' -> 'out/teach/actor_open'",
    ]


def test_the_arms_render_at_the_image_size_the_prior_was_trained_on(rl, template, tmp_path):
    """A 64 px prior on the template's 96 px arms would see every frame resized (off its training data)."""
    assert template[rl.SIM]["ros__parameters"]["image_size_px"] == 96  # the shipped actor's frames
    prior = tmp_path / "prior64"
    prior.mkdir()
    write_policy_settings(prior, PolicySettings(image_size_px=64))
    shipped = rl.variant_config(template, rl.VARIANTS["g"], _args(), Path("out/x"), None)
    smaller = rl.variant_config(template, rl.VARIANTS["g"], _args(prior=prior), Path("out/x"), None)
    assert sorted(rl.config_conflicts(shipped, smaller)) == [
        "/**/sim_node.image_size_px: 96 -> 64",
        f"actor_node.checkpoint_path: 'models/sim_actor' -> '{prior}'",
        f"trainer_node.checkpoint_path: 'models/sim_actor' -> '{prior}'",
    ]


def test_a_critic_replaces_the_critic_checkpoint_only_and_must_be_a_model(rl, template, tmp_path, capsys):
    out = Path("out/x")
    shipped = rl.variant_config(template, rl.VARIANTS["a"], _args(), out, None)
    other = rl.variant_config(template, rl.VARIANTS["a"], _args(critic=Path("out/critic11/critic_v3")), out, None)
    changed = "critic_node.checkpoint: 'models/sim_critic' -> 'out/critic11/critic_v3'"
    assert rl.config_conflicts(shipped, other) == [changed]
    assert rl.main(["--critic", str(tmp_path), "--out", str(tmp_path / "out"), "--report-only"]) == 2
    assert "not a model checkpoint (no config.json)" in capsys.readouterr().err


def test_a_run_started_before_a_key_moved_resumes_with_the_key_in_its_new_place(rl, template):
    out = Path("out/x")
    now = rl.variant_config(template, rl.VARIANTS["g"], _args(), out, None)
    before = {name: {"ros__parameters": dict(s["ros__parameters"])} for name, s in now.items()}
    before["session"]["ros__parameters"]["max_waiting_batches"] = before[rl.MANAGER]["ros__parameters"].pop(
        "max_waiting_batches"
    )  # where runs of stop 28 and before wrote it
    assert rl.config_conflicts(before, now) != []
    assert rl.config_conflicts(rl.moved_into_place(before), now) == []
    assert "max_waiting_batches" in before["session"]["ros__parameters"]  # the run's own mapping is left alone


def test_resume_allows_size_and_threads_but_not_learning_settings(rl, template):
    out = Path("out/x")
    old = rl.variant_config(template, rl.VARIANTS["c"], _args(episodes=8, threads=3), out, None)
    assert rl.config_conflicts(old, rl.variant_config(template, rl.VARIANTS["c"], _args(threads=2), out, None)) == []
    changed = rl.config_conflicts(old, rl.variant_config(template, rl.VARIANTS["c"], _args(eval_every=5), out, None))
    assert changed == ["session.eval_every_episodes: 20 -> 5"]
    diagnostic = rl.variant_config(template, rl.VARIANTS["c"], _args(lesson_agreement=True), out, None)
    assert diagnostic["trainer_node"]["ros__parameters"]["lesson_agreement"] is True
    assert "lesson_agreement" not in old["trainer_node"]["ros__parameters"]  # off: the template leaves it out
    assert rl.config_conflicts(old, diagnostic) == []  # the lesson diagnostic leaves every update as it was
    drift = rl.variant_config(template, rl.VARIANTS["c"], _args(log_prior_kl=True), out, None)
    assert drift["trainer_node"]["ros__parameters"]["log_prior_kl"] is True
    assert rl.config_conflicts(old, drift) == []  # logging the drift from the prior leaves every update as it was
    assert rl.parse_args(["--keep-policy-every", "5"]).keep_policy_every == 5
    with pytest.raises(SystemExit):
        rl.parse_args(["--keep-policy-every", "-1"])  # refused here, not when the session starts
    kept = rl.variant_config(template, rl.VARIANTS["c"], _args(keep_policy_every=5), out, None)
    assert kept["trainer_node"]["ros__parameters"]["keep_policy_every"] == 5
    assert rl.config_conflicts(old, kept) == []  # which policies stay on disk leaves every update as it was
    assert rl.parse_args(["--kl-guard", "1.5"]).kl_guard == 1.5
    with pytest.raises(SystemExit):
        rl.parse_args(["--kl-guard", "-1"])
    guarded = rl.variant_config(template, rl.VARIANTS["c"], _args(kl_guard=1.5), out, None)
    assert guarded["trainer_node"]["ros__parameters"]["kl_guard"] == 1.5
    assert rl.config_conflicts(old, guarded) == ["trainer_node.kl_guard: None -> 1.5"]  # it shapes the updates
    diagnostic["trainer_node"]["ros__parameters"]["learning_rate"] = 1.0
    [conflict] = rl.config_conflicts(old, diagnostic)  # beside it, a learning setting still is one
    assert conflict.startswith("trainer_node.learning_rate:") and conflict.endswith("-> 1.0")


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


def test_episodes_per_arm_to_threshold(rl, rr):
    evals = [
        {"after_episodes": 0, "success_rate": 0.1},
        {"after_episodes": 40, "success_rate": None},  # every trial aborted: no rate
        {"after_episodes": 80, "success_rate": 0.8},
        {"after_episodes": 120, "success_rate": 0.9},
    ]
    assert rr.episodes_to_threshold(evals, arms=4) == 20
    assert rr.episodes_to_threshold(evals, arms=1, threshold=0.95) is None


def test_timing_reads_baseline_evaluation_and_training_gaps(rl, tmp_path, rr):
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
    assert rr.timing(log) == {"eval_s_per_trial": 4.0, "train_s_per_episode_arm0": 5.0, "train_s_per_episode": 4.67}


def test_reward_stats_compare_the_critic_return_with_ground_truth_and_count_false_dones(rl, rr):
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
    stats = rr.reward_stats(rows)
    assert stats["ground_truth_training_successes"] == 2
    assert stats["mean_return_successful"] == 0.5 and stats["mean_return_failed"] == 0.75
    assert (stats["critic_done_episodes"], stats["critic_done_true"]) == (2, 1)
    assert stats["false_done_share_first_half"] == 0.5 and stats["false_done_share_second_half"] == 0.0


def test_the_experiment_decodes_with_the_grammar_the_prior_was_trained_with():
    """Issue 11: RL started from the prior's distribution truncated to other limits than it was trained with.
    The actor and the trainer read the grammar from the prior's checkpoint, which must say what it learned."""
    from vlac.param_file import load_session_files
    from vlac_actor.policy_settings import read_policy_settings

    files = load_session_files(ROOT / "config" / "experiment_pick_bowl.yaml")
    assert files.actor.checkpoint_path == files.trainer.checkpoint_path
    trained = json.loads((ROOT / files.actor.checkpoint_path / "training_info.json").read_text())["config"]
    settings = read_policy_settings(files.actor.checkpoint_path)
    assert (settings.max_translation_mm, settings.max_rotation_deg, settings.image_size_px) == (
        trained["max_translation_mm"],
        trained["max_rotation_deg"],
        trained["image_size_px"],
    )


def test_control_variants_differ_from_a_in_the_reward_source_only(rl, template):
    out = Path("out/x")
    a = rl.variant_config(template, rl.VARIANTS["a"], _args(), out, None)
    for name, source in (("g", "sim_dense"), ("s", "sim_sparse")):
        control = rl.variant_config(template, rl.VARIANTS[name], _args(), out, None)
        manager_a, manager_c = a[rl.MANAGER]["ros__parameters"], control[rl.MANAGER]["ros__parameters"]
        assert {k: (manager_a[k], v) for k, v in manager_c.items() if manager_a[k] != v} == {
            "reward_source": ("critic", source)
        }


def test_the_ppo_scan_variants_differ_from_g_in_their_trainer_keys_only(rl, template):
    out = Path("out/x")
    g = rl.variant_config(template, rl.VARIANTS["g"], _args(), out, None)
    bigger = {"learning_rate": 3.0e-5, "update_epochs": 4, "target_kl": 0.03}
    expected = {
        "g3": bigger,
        "g4": {**bigger, "learning_rate": 1.0e-4},
        "gb": {**bigger, "episodes_per_update": 16},
        "gk": {**bigger, "prior_kl_coef": 1.0},
        "gd": {**bigger, "ppo_ratio": "decision"},
        "gdb": {**bigger, "ppo_ratio": "decision", "episodes_per_update": 16},
        "gi": {"self_imitation_coef": 1.0},
        "gi5": {"self_imitation_coef": 5.0},
        "g8": {"episodes_per_update": 8},
        "gp": {"ppo_clip_around": "pre_update"},
    }
    for name, keys in expected.items():
        scan = rl.variant_config(template, rl.VARIANTS[name], _args(), out, None)
        for section in g:
            if section not in ("trainer_node", "session"):
                assert scan[section] == g[section], (name, section)
        trainer_g, trainer_v = g["trainer_node"]["ros__parameters"], scan["trainer_node"]["ros__parameters"]
        assert {k: v for k, v in trainer_v.items() if trainer_g.get(k) != v} == keys, name


def test_the_group_variant_differs_from_g_in_its_groups_and_advantage_only(rl, template):
    from vlac_core.config import from_mapping
    from vlac_trainer.online.trainer_config import TrainerConfig
    from vlac_trainer.online.wiring import check_groups

    out = Path("out/x")
    g = rl.variant_config(template, rl.VARIANTS["g"], _args(), out, None)
    gg = rl.variant_config(template, rl.VARIANTS["gg"], _args(), out, None)

    def changed(section):
        before, after = g[section]["ros__parameters"], gg[section]["ros__parameters"]
        return {k: v for k, v in after.items() if before.get(k) != v}

    assert changed("trainer_node") == {
        "advantage": "group",
        "norm_adv": False,
        "vf_coef": 0.0,
        "value_warmup_updates": 0,
    }
    assert changed(rl.MANAGER) == {"scene_repeats": 4, "return_explore": False}
    assert all(gg[s] == g[s] for s in g if s not in ("trainer_node", rl.MANAGER, "session"))
    trainer = from_mapping(TrainerConfig, {"checkpoint_path": "p", **gg["trainer_node"]["ros__parameters"]})
    check_groups(trainer.advantage, 4, trainer.episodes_per_update)  # a scene's group fits the batches


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("gge", {"group_weighting": "episode"}),  # every episode weighing alike in its group
        ("ggn", {"max_grad_norm": 50.0}),  # a clip that catches outliers only
        ("gg8", {"episodes_per_update": 8}),  # two scenes' groups per update
        ("ggz", {"skip_zero_gradient_steps": True}),  # no Adam step on a batch with no signal
        ("ggs", {"learning_rate": 2.5e-6}),  # smaller steps over more scenes
        ("ggk", {"prior_kl_coef": 1.0}),  # a restoring force toward the prior (the drift's cost)
        ("ggph", {"advantage": "group_phase"}),  # the group baseline per task phase
    ],
)
def test_each_group_variant_differs_from_gg_in_its_one_trainer_key(rl, template, name, change):
    from vlac_core.config import from_mapping
    from vlac_trainer.online.trainer_config import TrainerConfig
    from vlac_trainer.online.wiring import check_groups

    out = Path("out/x")
    gg = rl.variant_config(template, rl.VARIANTS["gg"], _args(), out, None)
    variant = rl.variant_config(template, rl.VARIANTS[name], _args(), out, None)
    trainer_gg, trainer_v = gg["trainer_node"]["ros__parameters"], variant["trainer_node"]["ros__parameters"]
    assert {k: v for k, v in trainer_v.items() if trainer_gg.get(k) != v} == change
    assert all(variant[s] == gg[s] for s in gg if s not in ("trainer_node", "session"))
    trainer = from_mapping(TrainerConfig, {"checkpoint_path": "p", **trainer_v})  # the trainer takes the key
    repeats = variant[rl.MANAGER]["ros__parameters"]["scene_repeats"]
    check_groups(trainer.advantage, repeats, trainer.episodes_per_update)  # whole groups per batch


def test_the_overfit_check_trains_every_episode_of_a_run_on_one_scene_in_groups_of_four(rl, template):
    from vlac.param_file import EpisodeManagerConfig
    from vlac_core.config import from_mapping
    from vlac_trainer.online.wiring import check_groups

    out = Path("out/x")
    gg = rl.variant_config(template, rl.VARIANTS["gg"], _args(), out, None)
    gg1 = rl.variant_config(template, rl.VARIANTS["gg1"], _args(), out, None)
    assert all(gg1[s] == gg[s] for s in gg if s not in (rl.MANAGER, "session"))
    manager = gg1[rl.MANAGER]["ros__parameters"]
    assert {k: v for k, v in manager.items() if gg[rl.MANAGER]["ros__parameters"].get(k) != v} == {
        "scene_repeats": rl.SCENES_PER_SEED  # no run has more episodes (check_seed_scenes)
    }
    repeats = from_mapping(EpisodeManagerConfig, manager).scene_repeats  # the session takes it
    check_groups("group", repeats, gg1["trainer_node"]["ros__parameters"]["episodes_per_update"])


def test_ggr8_runs_each_scene_eight_times_and_trains_one_scene_group_per_update(rl, template):
    from vlac.param_file import EpisodeManagerConfig
    from vlac_core.config import from_mapping
    from vlac_trainer.online.trainer_config import TrainerConfig
    from vlac_trainer.online.wiring import check_groups

    out = Path("out/x")
    gg = rl.variant_config(template, rl.VARIANTS["gg"], _args(), out, None)
    ggr8 = rl.variant_config(template, rl.VARIANTS["ggr8"], _args(), out, None)
    assert all(ggr8[s] == gg[s] for s in gg if s not in (rl.MANAGER, "trainer_node", "session"))
    changed = {
        section: {
            k: v for k, v in ggr8[section]["ros__parameters"].items() if gg[section]["ros__parameters"].get(k) != v
        }
        for section in (rl.MANAGER, "trainer_node")
    }
    assert changed == {rl.MANAGER: {"scene_repeats": 8}, "trainer_node": {"episodes_per_update": 8}}
    manager = from_mapping(EpisodeManagerConfig, ggr8[rl.MANAGER]["ros__parameters"])
    trainer = from_mapping(TrainerConfig, {"checkpoint_path": "p", **ggr8["trainer_node"]["ros__parameters"]})
    check_groups(trainer.advantage, manager.scene_repeats, trainer.episodes_per_update)  # one whole group a batch


@pytest.mark.parametrize("pool", [5, 10, 25])
def test_a_scene_pool_variant_differs_from_gg_in_its_pool_only_and_the_session_takes_it(rl, template, pool):
    from vlac.param_file import EpisodeManagerConfig
    from vlac_core.config import from_mapping

    out = Path("out/x")
    gg = rl.variant_config(template, rl.VARIANTS["gg"], _args(), out, None)
    variant = rl.variant_config(template, rl.VARIANTS[f"ggp{pool}"], _args(), out, None)
    assert all(variant[s] == gg[s] for s in gg if s not in (rl.MANAGER, "session"))
    manager = variant[rl.MANAGER]["ros__parameters"]
    assert {k: v for k, v in manager.items() if gg[rl.MANAGER]["ros__parameters"].get(k) != v} == {"scene_pool": pool}
    assert from_mapping(EpisodeManagerConfig, manager).scene_pool == pool


def test_a_tempered_prior_is_a_copy_with_its_logit_temperature_set_once(rl, tmp_path):
    prior = tmp_path / "prior"
    prior.mkdir()
    write_policy_settings(prior, PolicySettings(max_translation_mm=60, image_size_px=64))
    (prior / "value_head.safetensors").write_bytes(b"weights")
    tempered = rl.tempered_prior(prior, tmp_path / "out", 0.5)
    assert tempered == tmp_path / "out" / "prior_logit_T0.5"
    assert read_policy_settings(tempered) == PolicySettings(
        max_translation_mm=60, image_size_px=64, logit_temperature=0.5
    )
    assert (tempered / "value_head.safetensors").read_bytes() == b"weights"
    assert read_policy_settings(prior).logit_temperature == 1.0  # the shipped prior is left as it was
    (tempered / "value_head.safetensors").write_bytes(b"trained")  # a second call reuses the copy (resume)
    assert rl.tempered_prior(prior, tmp_path / "out", 0.5) == tempered
    assert (tempered / "value_head.safetensors").read_bytes() == b"trained"


def test_a_prior_with_field_temperatures_is_a_copy_named_by_them(rl, tmp_path):
    prior = tmp_path / "prior"
    prior.mkdir()
    write_policy_settings(prior, PolicySettings(max_translation_mm=60))
    (prior / "value_head.safetensors").write_bytes(b"weights")
    temperatures = (0.15, 0.15, 0.15, 0.3, 0.3, 0.3, 0.3)
    tempered = rl.tempered_prior(prior, tmp_path / "out", temperatures)
    assert tempered == tmp_path / "out" / "prior_logit_0.15_0.15_0.15_0.3_0.3_0.3_0.3"
    expected = PolicySettings(max_translation_mm=60, field_logit_temperatures=temperatures)
    assert read_policy_settings(tempered) == expected
    assert read_policy_settings(prior).field_logit_temperatures == ()


def test_field_temperatures_are_seven_in_range_and_exclude_one_temperature(rl, capsys):
    args = rl.parse_args(["--field-logit-temperatures", "0.15", "0.15", "0.15", "0.3", "0.3", "0.3", "0.3"])
    assert args.field_logit_temperatures == [0.15, 0.15, 0.15, 0.3, 0.3, 0.3, 0.3]
    for argv, message in (
        (["--field-logit-temperatures", "0.15", "0.3"], "expected 7 arguments"),
        (["--field-logit-temperatures", *["0.3"] * 6, "20"], "[20.0] outside 0.05..10"),
        (["--logit-temperature", "0.3", "--field-logit-temperatures", *["0.3"] * 7], "leave out --logit-temperature"),
    ):
        with pytest.raises(SystemExit):
            rl.parse_args(argv)
        assert message in capsys.readouterr().err


def test_ai_differs_from_a_in_self_imitation_only(rl, template):
    out = Path("out/x")
    a = rl.variant_config(template, rl.VARIANTS["a"], _args(), out, None)
    ai = rl.variant_config(template, rl.VARIANTS["ai"], _args(), out, None)
    assert {s for s in a if a[s] != ai[s]} == {"trainer_node", "session"}
    assert {k for k, v in ai["session"]["ros__parameters"].items() if a["session"]["ros__parameters"][k] != v} == {
        "out_dir"
    }
    trainer_a, trainer_i = a["trainer_node"]["ros__parameters"], ai["trainer_node"]["ros__parameters"]
    assert {k: v for k, v in trainer_i.items() if trainer_a.get(k) != v} == {"self_imitation_coef": 1.0}


def test_gdrn_differs_from_gdr_in_the_demo_nll_weight_only(rl, template):
    out = Path("out/x")
    gdr = rl.variant_config(template, rl.VARIANTS["gdr"], _args(), out, None)
    gdrn = rl.variant_config(template, rl.VARIANTS["gdrn"], _args(), out, None)
    session_r, session_n = gdr["session"]["ros__parameters"], gdrn["session"]["ros__parameters"]
    assert {k for k in session_r if session_r[k] != session_n[k]} == {"out_dir"}  # <out>/<variant>
    assert {s for s in gdr if gdr[s] != gdrn[s]} == {"trainer_node", "session"}
    trainer_r, trainer_n = gdr["trainer_node"]["ros__parameters"], gdrn["trainer_node"]["ros__parameters"]
    assert {k: (trainer_r.get(k), v) for k, v in trainer_n.items() if trainer_r.get(k) != v} == {
        "demo_coef": (0.1, 1.0)
    }


# -- training seeds --------------------------------------------------------------------------------


def _train_row(success, termination="step_limit", **kw):
    """An episodes.jsonl training row as the session writes it (the fields the script reads)."""
    return {"phase": "train", "termination": termination, "success": success, "succeeded": bool(success),
            "episode_return": 0.0, "length": 10, **kw}  # fmt: skip


def _write_run(rdir: Path, rates: list[float], successes: list[bool], every: int = 20) -> None:
    """A finished session folder: evaluations every ``every`` episodes, training rows, a summary."""
    rdir.mkdir(parents=True, exist_ok=True)
    evals = [
        {
            "after_episodes": every * i,
            "policy_version": i,
            "trials": 10,
            "success_rate": r,
            "success_source": "ground_truth",
        }
        for i, r in enumerate(rates)
    ]
    rows = [_train_row(s) for s in successes]
    (rdir / "evaluations.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evals))
    (rdir / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (rdir / "summary.json").write_text(json.dumps({"trainer": {"policy_version": len(rates) - 1}}))


#: Two seeds' runs of 40 episodes: evaluations after 0, 20, 40 and the training episodes' ground truth.
SEED_RATES = {0: [0.0, 0.3, 0.6], 1: [0.2, 0.5, 0.4]}
SEED_SUCCESSES = {0: [False] * 20 + [True] * 20, 1: [i % 4 == 0 for i in range(40)]}


def test_each_seed_sets_every_training_seed_and_keeps_the_evaluation_scenes(rl, template):
    out = Path("out/x")
    configs = {k: rl.variant_config(template, rl.VARIANTS["a"], _args(), out, None, seed=k) for k in (0, 1)}
    for k, config in configs.items():
        params = {name: section["ros__parameters"] for name, section in config.items()}
        assert (params["actor_node"]["seed"], params["trainer_node"]["seed"]) == (k, k)
        assert params[rl.MANAGER]["scene_seed"] == params[rl.SIM]["seed"] == 1000 * k
        assert params["session"]["eval_seed"] == 1000000 and params["session"]["out_dir"] == f"out/x/a/seed{k}"
    assert (
        template["actor_node"]["ros__parameters"]["seed"] == 0
        and "seed" not in template["trainer_node"]["ros__parameters"]
    )
    # two seeds' training scenes may not meet: a run of more episodes than the stride is refused
    rl.check_seed_scenes([0, 1], 1000)
    rl.check_seed_scenes([3], 5000)
    with pytest.raises(rl.ExperimentError, match="next seed's scenes"):
        rl.check_seed_scenes([0, 1], 1001)
    with pytest.raises(SystemExit):
        rl.parse_args(["--seeds", "0", "100"])  # 100 x 1000 = arm 1's first scene
    assert rl.parse_args(["--seeds", "1", "0", "1"]).seeds == [1, 0]


def test_a_changed_seed_of_a_started_run_is_refused(rl, template, tmp_path):
    def config(seed):
        return rl.absolute_paths(rl.variant_config(template, rl.VARIANTS["a"], _args(), tmp_path, None, seed=seed))

    rdir = rl.run_dir(tmp_path, "a", 0)
    rdir.mkdir(parents=True)
    started = config(0)
    started["trainer_node"]["ros__parameters"]["seed"] = 5  # as if started with another minibatch seed
    (rdir / "experiment_config.yaml").write_text(yaml.safe_dump(started))
    (rdir / "episodes.jsonl").write_text(json.dumps(_train_row(False)) + "\n")
    with pytest.raises(rl.ExperimentError, match=r"trainer_node\.seed: 5 -> 0"):
        rl.check_run(rdir, config(0))
    (rdir / "experiment_config.yaml").write_text(yaml.safe_dump(config(0)))
    rl.check_run(rdir, config(0))  # the same seed resumes
    changed = r"/\*\*/episode_manager\.scene_seed: 0 -> 1000.*actor_node\.seed: 0 -> 1"
    with pytest.raises(rl.ExperimentError, match=changed):
        rl.check_run(rdir, config(1))


def test_a_variant_folder_from_before_seeds_is_refused(rl, tmp_path):
    rl.check_layout(tmp_path / "a")  # nothing there yet
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "episodes.jsonl").write_text("")
    with pytest.raises(rl.ExperimentError, match="before --seeds"):
        rl.check_layout(tmp_path / "a")


def test_training_success_is_the_ground_truth_of_counted_training_episodes(rl, rr):
    rows = [
        _train_row(False),  # 1
        _train_row(False, termination="done", succeeded=True),  # 2: a false done where succeeded fell back on it
        {**_train_row(True), "phase": "eval"},  # not training
        _train_row(False, termination="aborted"),  # 3: counted, no verdict
        _train_row(True, termination="shutdown"),  # Ctrl-C'd: not counted
        _train_row(True, termination="done"),  # 4
        _train_row(True),  # 5
        _train_row(None),  # 6: no ground truth
        _train_row(True, recovered=True, termination="aborted"),  # a crash cut it: not counted
        _train_row(True, termination="done"),  # 7
        {**_train_row(True, termination="done"), "start_state_id": "pick_bowl-seed0/arm_0-1/step9"},  # 8: mid-task
        _train_row(True, termination="done", human_steps=9),  # 9: the operator finished it, the policy failed
    ]
    outcomes = rr.training_outcomes(rows)
    assert outcomes == [(1, False), (2, False), (4, True), (5, True), (7, True), (9, False)]
    assert rr.rolling_train_success(outcomes, window=3) == [(4, 1 / 3), (5, 2 / 3), (7, 1.0), (9, 2 / 3)]
    assert rr.tail_success(outcomes, last=4) == 0.75 and rr.tail_success([]) is None


def test_seeds_aggregate_to_mean_min_and_max(rl, tmp_path, rr):
    for seed in (0, 1):
        _write_run(rl.run_dir(tmp_path, "c", seed), SEED_RATES[seed], SEED_SUCCESSES[seed])
    runs = [rl.collect_run(rl.VARIANTS["c"], seed, tmp_path, 40) for seed in (0, 1, 2)]  # seed 2: never ran
    result = rl.aggregate(rl.VARIANTS["c"], runs)
    assert result["seeds"] == [0, 1, 2] and result["seeds_evaluated"] == [0, 1]
    assert (
        rr.spread([0.1, None, 0.2, 0.6]) == {"mean": 0.3, "min": 0.1, "max": 0.6, "n": 3} and rr.spread([None]) is None
    )
    assert result["best_success"] == {"mean": 0.55, "min": 0.5, "max": 0.6, "n": 2}
    assert result["final_success"] == {"mean": 0.5, "min": 0.4, "max": 0.6, "n": 2}
    assert result["success_curve"] == [[0, 0.1, 0.0, 0.2, 2], [20, 0.4, 0.3, 0.5, 2], [40, 0.5, 0.4, 0.6, 2]]
    assert result["episodes_per_arm_to_80"] == [[0, None], [1, None]]
    # ground truth of the training episodes: seed 0 20 of 40 (0 of the first 20, all of the last), seed 1 10 of 40
    assert result["train_success_last_40"] == {"mean": 0.375, "min": 0.25, "max": 0.5, "n": 2}
    rolling = {x: rest for x, *rest in result["train_success_rolling"]}
    assert rolling[20] == [0.125, 0.0, 0.25, 2] and rolling[40] == [0.625, 0.25, 1.0, 2] and min(rolling) == 20
    row = rl.table([result]).splitlines()[2]
    assert "| 2 | 40, 40, 0 | 55 % (50–60) | 50 % (40–60) | - | - | not reached, not reached | 38 % (25–50) |" in row


def test_main_runs_variants_then_seeds_resumes_and_reports_per_seed(rl, monkeypatch, tmp_path, capsys):
    calls = []

    def fake_session(rdir, config_path, episodes):
        config = yaml.safe_load(config_path.read_text())
        seed = config["trainer_node"]["ros__parameters"]["seed"]
        calls.append((rdir.parent.name, seed))
        _write_run(rdir, SEED_RATES[seed], SEED_SUCCESSES[seed])
        return 0, 1.0

    monkeypatch.setattr(rl, "run_session", fake_session)
    monkeypatch.setattr(rl, "audit_run", lambda rdir: None)
    monkeypatch.chdir(tmp_path)  # main moves to the repository root
    argv = ["--variants", "g", "a", "--seeds", "0", "1", "--episodes", "40", "--out", str(tmp_path / "out"),
            "--docs", str(tmp_path / "docs")]  # fmt: skip
    assert rl.main(argv) == 0
    assert calls == [("g", 0), ("g", 1), ("a", 0), ("a", 1)]
    for name, seed in calls:
        written = yaml.safe_load((tmp_path / "out" / name / f"seed{seed}" / "experiment_config.yaml").read_text())
        assert written["actor_node"]["ros__parameters"]["seed"] == seed
        assert written[rl.MANAGER]["ros__parameters"]["scene_seed"] == 1000 * seed
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [v["variant"] for v in report["variants"]] == ["g", "a"] and report["seeds"] == [0, 1]
    assert report["variants"][0]["best_success"]["mean"] == 0.55
    assert [r["seed"] for r in report["variants"][1]["runs"]] == [0, 1]
    assert {Path(p).name for p in report["plots"]} == {
        "rl_success_vs_episodes.png", "rl_train_success.png", "rl_episodes_to_80.png"
    }  # fmt: skip
    assert all((tmp_path / "docs" / Path(p).name).stat().st_size > 0 for p in report["plots"])
    assert rl.main(argv) == 0 and len(calls) == 4  # finished runs are skipped
    # a seed folder started under another seed is refused before anything runs
    path = tmp_path / "out" / "a" / "seed1" / "experiment_config.yaml"
    path.write_text(path.read_text().replace("seed: 1\n", "seed: 3\n"))
    (tmp_path / "out" / "a" / "seed1" / "summary.json").unlink()
    assert rl.main(argv) == 2 and len(calls) == 4
    assert "seed: 3 -> 1" in capsys.readouterr().err


def test_a_crashed_session_is_resumed_at_once_and_a_stopped_one_is_not(rl, rr, template, monkeypatch, tmp_path):
    exits = []

    def fake_session(rdir, config_path, episodes):
        code = exits.pop(0)
        with open(rdir / "experiment_runs.jsonl", "a") as f:  # as run_session logs each invocation
            f.write(json.dumps({"episodes": episodes, "exit": code, "wall_s": 1.0}) + "\n")
        return code, 1.0

    monkeypatch.setattr(rl, "run_session", fake_session)
    monkeypatch.setattr(rl, "audit_run", lambda rdir: None)
    config = rl.variant_config(template, rl.VARIANTS["a"], _args(), tmp_path, None, 0)

    def run(codes, crash_resumes=2, seed=0):
        exits[:] = codes
        status = rl.run_seed(rl.VARIANTS["a"], seed, config, tmp_path / "out", crash_resumes)
        return status, exits[:]

    assert run([-11, -7, 0]) == ("ran", [])  # SIGSEGV, then SIGBUS: resumed twice, then it finishes
    assert run([-11, -6, -11, 0], seed=1) == ("session exit -11", [0])  # two resumes, no third
    assert run([-2, 0], seed=2) == ("session exit -2", [0])  # Ctrl-C: the user stopped it
    assert run([-9, 0], seed=3) == ("session exit -9", [0])  # SIGKILL (the OOM killer): not retried blind
    assert run([-11, 0], crash_resumes=0, seed=4) == ("session exit -11", [0])
    runs = rr.read_jsonl(rr.run_dir(tmp_path / "out", "a", 1) / "experiment_runs.jsonl")
    assert [r["exit"] for r in runs] == [-11, -6, -11]
    assert rr.collect_run(rl.VARIANTS["a"], 1, tmp_path / "out", 200)["crashes"] == 3  # the report counts them
    assert [rr.crash_signal(c) for c in (-11, -7, -6, -2, -9, -15, 0, 1)] == [
        "SIGSEGV", "SIGBUS", "SIGABRT", None, None, None, None, None
    ]  # fmt: skip


def test_release_counts_tell_an_unpaid_release_from_an_untried_one(rr):
    from types import SimpleNamespace as Ns

    def step(phase, open_=0, done=False, reward=0.0, human=False):
        return Ns(gt_phase=phase, action=Ns(delta=Ns(open=open_)), gt_done=done, reward=reward, human=human)

    tried = Ns(
        transitions=[step("carry"), step("release"), step("release", 1, reward=0.2), step("done", 1, True)],
        start_state_id="pick_bowl-seed4/arm_0-9/step30",  # from a frontier
        success=True,
    )
    untried = Ns(
        transitions=[step("release"), step("release"), step("release", 1, reward=-0.5), step("reach", 1)],
        start_state_id="pick_bowl-seed5",
        success=False,
    )
    counts = rr.release_counts([tried, untried], look_ahead_steps=2)
    assert counts == {
        "held_over_plate_steps": 5,
        "opens": 2,
        "open_share": 0.4,
        "opens_succeeded": 1,  # the first open reached success the step after; the second never did
        "mean_open_reward": -0.15,
        "episodes": 2,
        "from_frontier": 1,
        "frontier_successes": 1,
    }
    operator = Ns(transitions=[step("release", 1, True, 0.3, human=True)], start_state_id="s7", success=True)
    assert rr.release_counts([operator])["held_over_plate_steps"] == 0  # an operator's release is not the policy's
    carry_only = Ns(transitions=[step("carry")], start_state_id="pick_bowl-seed6", success=False)
    assert rr.release_counts([carry_only])["open_share"] is None


def test_opens_by_height_bin_the_policys_releases_by_end_pose_z(rr):
    from types import SimpleNamespace as Ns

    def step(phase, z_mm, open_=0, done=False, human=False):
        observation = Ns(end_pose=Ns(z_mm=z_mm))
        return Ns(gt_phase=phase, action=Ns(delta=Ns(open=open_)), gt_done=done, human=human, observation=observation)

    low = Ns(transitions=[step("release", 150.0, 1), step("done", 150.0, 1, True)])
    high = Ns(transitions=[step("release", 240.0, 1), step("reach", 200.0, 1), step("carry", 300.0, 1)])
    operator = Ns(transitions=[step("release", 300.0, 1, True, human=True)])
    bins = rr.opens_by_height([low, high, operator], edges_mm=(200.0, 230.0))
    assert bins == [
        {"z_mm": [None, 200.0], "opens": 1, "succeeded": 1},
        {"z_mm": [200.0, 230.0], "opens": 0, "succeeded": 0},  # the reach-phase open is not a release
        {"z_mm": [230.0, None], "opens": 1, "succeeded": 0},  # the operator's is not the policy's
    ]


def test_fresh_start_outcomes_judge_the_policy_on_whole_tasks_by_ground_truth(rr):
    from types import SimpleNamespace as Ns

    def episode(*gt):
        return Ns(transitions=[Ns(gt_progress=g) for g in gt])

    def row(success, start="pick_bowl-seed1", termination="done", human_steps=0):
        return {"success": success, "start_state_id": start, "termination": termination, "human_steps": human_steps}

    rows = [
        row(True),  # the policy alone: counts
        row(True, human_steps=3),  # helped: the policy's failure
        row(True, start="pick_bowl-seed2/arm_0-1a/step17"),  # from a frontier: left out
        row(False, termination="aborted"),  # aborted: left out
        row(False, termination="step_limit"),
    ]
    episodes = [episode(0.5, 0.5), episode(0.2, 0.8), episode(0.9), episode(0.1), episode(0.25, -0.05)]
    outcomes = rr.fresh_start_outcomes(rows, episodes)
    assert outcomes == {"fresh_starts": 3, "policy_successes": 1, "mean_gt_return": 0.733}
    assert rr.fresh_start_outcomes([row(False)], [episode(None)])["mean_gt_return"] is None  # a real arm's bags
    with pytest.raises(ValueError):
        rr.fresh_start_outcomes(rows, episodes[:-1])  # rows and bags out of step


def test_the_open_decision_push_sums_the_gradient_on_the_open_logit_per_phase(rr):
    import math
    from types import SimpleNamespace as Ns

    from vlac_core.types import Termination

    def step(phase, open_, p_open, reward, value):
        p_chosen = p_open if open_ else 1.0 - p_open
        action = Ns(delta=Ns(open=open_), token_logprobs=(-0.7, math.log(p_chosen)), value=value)
        return Ns(gt_phase=phase, action=action, reward=reward, human=False)

    # gamma 1, lambda 1: A_t = sum of later rewards - V(s_t); the DONE episode does not bootstrap.
    dropped = Ns(
        transitions=[step("carry", 1, 0.5, -0.3, 0.1), step("reach", 0, 0.2, 0.0, 0.0)],
        termination=Termination.STEP_LIMIT,  # bootstraps from its last value (0.0)
    )
    released = Ns(transitions=[step("release", 1, 0.25, 0.25, 0.05)], termination=Termination.DONE)
    push = rr.open_decision_push([dropped, released], gamma=1.0, gae_lambda=1.0)
    assert push["carry/open"] == {
        "steps": 1,
        "mean_advantage": -0.4,  # -0.3 + 0 - 0.1
        "mean_value": 0.1,
        "mean_p_open": 0.5,
        "push": -0.2,  # (1 - 0.5) * -0.4
    }
    assert push["reach/hold"]["push"] == 0.0 and push["reach/hold"]["mean_p_open"] == 0.2
    assert push["release/open"]["mean_advantage"] == 0.2 and push["release/open"]["push"] == 0.15  # 0.75 * 0.2
    aborted = Ns(transitions=[step("carry", 1, 0.5, -0.3, 0.1)], termination=Termination.ABORTED)
    assert rr.open_decision_push([aborted]) == {}
    operator_step = Ns(gt_phase="release", action=None, human=True)
    taken_over = Ns(transitions=[step("release", 0, 0.1, 0.0, 0.2), operator_step], termination=Termination.DONE)
    assert rr.open_decision_push([taken_over]) == {}  # a helped episode's advantages are the operator's too


def _write_final_check(rdir: Path, policy: str, successes: int, trials: int = 40) -> None:
    """A final_check/results.json as ``vlac actor eval`` writes it (the fields the report reads)."""
    (rdir / "final_check").mkdir(parents=True, exist_ok=True)
    task = {"task": "pick_bowl", "episodes": trials, "successes": successes, "success_rate": successes / trials}
    results = {"checkpoint": str(rdir / "policies" / policy), "seeds": [1000000, 1000000 + trials - 1]}
    (rdir / "final_check" / "results.json").write_text(json.dumps({**results, "tasks": [task]}))


def test_the_final_check_counts_for_the_last_policy_only_and_aggregates_over_seeds(rl, rr, tmp_path):
    for seed, successes in ((0, 16), (1, 24)):
        rdir = rl.run_dir(tmp_path, "g", seed)
        _write_run(rdir, SEED_RATES[seed], SEED_SUCCESSES[seed])  # last policy: v000002
        _write_final_check(rdir, "v000002", successes)
    _write_run(rl.run_dir(tmp_path, "g", 2), SEED_RATES[0], SEED_SUCCESSES[0])
    _write_final_check(rl.run_dir(tmp_path, "g", 2), "v000001", 40)  # an earlier policy's: not this run's final
    runs = [rl.collect_run(rl.VARIANTS["g"], seed, tmp_path, 40) for seed in (0, 1, 2)]
    assert runs[0]["final_check"] == {
        "trials": 40, "successes": 16, "rate": 0.4, "seeds": [1000000, 1000039], "policy": "v000002"
    }  # fmt: skip
    assert runs[2]["final_check"] is None
    result = rl.aggregate(rl.VARIANTS["g"], runs)
    assert result["final_check"] == {"mean": 0.5, "min": 0.4, "max": 0.6, "n": 2}
    assert result["final_check_trials"] == [40]
    assert "| 53 % (40–60) | 50 % (40–60) (40) | - | not reached" in rl.table([result]).splitlines()[2]
    rl.plot_curves([result], tmp_path / "curves.png", 10)  # the checks drawn as stars beside the curves
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_the_final_check_scores_the_last_policy_on_held_out_scenes_once(rl, rr, template, tmp_path, monkeypatch):
    """A real ``vlac actor eval`` of a run's last policy (the shipped prior as version 0), two short trials."""
    import shutil

    config = rl.variant_config(template, rl.VARIANTS["g"], _args(), tmp_path, None, 0)
    config[rl.MANAGER]["ros__parameters"]["max_steps"] = 3
    rdir = rl.run_dir(tmp_path, "g", 0)
    rdir.mkdir(parents=True)
    assert rl.final_check_run(rdir, config, 2).startswith("final check: no final policy")  # no summary yet
    (rdir / "summary.json").write_text(json.dumps({"trainer": {"policy_version": 0}}))
    shutil.copytree(ROOT / "models" / "sim_actor", rdir / "policies" / "v000000")
    said = rl.final_check_run(rdir, config, 2)
    check = rr.read_final_check(rdir)
    assert said == f"final check: {check['successes']}/2", (rdir / "final_check.log").read_text()
    assert check["trials"] == 2 and check["seeds"] == [1000000, 1000001] and check["policy"] == "v000000"
    results = json.loads((rdir / "final_check" / "results.json").read_text())
    assert (results["max_steps"], results["decoding"], results["tasks"][0]["task"]) == (3, "greedy", "pick_bowl")
    monkeypatch.setattr(rl.subprocess, "run", lambda *a, **k: pytest.fail("the check ran again"))
    assert rl.final_check_run(rdir, config, 2).endswith("(earlier)")


def test_a_pool_runs_prior_and_last_policy_are_scored_on_its_training_scenes_once(
    rl, rr, template, tmp_path, monkeypatch
):
    """Real ``vlac actor eval``s (the shipped prior as version 0 too), a pool of two scenes, short trials; then the
    report reads both and averages them over seeds."""
    import shutil

    config = rl.variant_config(template, rl.VARIANTS["ggp5"], _args(), tmp_path, None, 1)
    config = rl.absolute_paths(config)
    manager = config[rl.MANAGER]["ros__parameters"]
    manager["max_steps"], manager["scene_pool"] = 3, 2
    rdir = rl.run_dir(tmp_path, "ggp5", 1)
    rdir.mkdir(parents=True)
    (rdir / "experiment_config.yaml").write_text(yaml.safe_dump(config))
    assert rl.pool_check_run(rdir, rl.variant_config(template, rl.VARIANTS["gg"], _args(), tmp_path, None)) is None
    assert rl.pool_check_run(rdir, config).startswith("pool check: no final policy")  # no summary yet
    (rdir / "summary.json").write_text(json.dumps({"trainer": {"policy_version": 0}}))
    shutil.copytree(ROOT / "models" / "sim_actor", rdir / "policies" / "v000000")
    said = rl.pool_check_run(rdir, config)
    check = rr.read_pool_check(rdir, rr.run_prior(rdir))
    assert check is not None, said
    prior, final = check["prior"]["successes"], check["final"]["successes"]
    assert said == f"pool check (2 training scenes): prior {prior}/2, final {final}/2"
    assert check["prior"]["seeds"] == check["final"]["seeds"] == [1000, 1001]  # seed 1's pool: its first 2 scenes
    assert check["final"]["policy"] == "v000000" and (rdir / "pool_check" / "prior.log").exists()
    monkeypatch.setattr(rl.subprocess, "run", lambda *a, **k: pytest.fail("the check ran again"))
    assert rl.pool_check_run(rdir, config) == said
    run = rl.collect_run(rl.VARIANTS["ggp5"], 1, tmp_path, 1)
    assert run["pool_check"] == check
    result = rl.aggregate(rl.VARIANTS["ggp5"], [run])
    assert result["pool_check"]["final"]["mean"] == check["final"]["rate"] and result["pool_check"]["prior"]["n"] == 1
    assert f"| {50 * prior:.0f} % -> {50 * final:.0f} % |" in rl.table([result]).splitlines()[2]  # the pool's cell


def test_the_scene_control_samples_the_prior_on_the_runs_training_scenes_once(rl, rr, template, tmp_path, monkeypatch):
    """Real sampled ``vlac actor eval``s of the run's prior (the shipped actor) on the scenes of a run's training
    episodes, two ranges of seeds, short episodes; a second call runs nothing, more repeats add draws."""
    config = rl.absolute_paths(rl.variant_config(template, rl.VARIANTS["gg"], _args(), tmp_path, None, 1))
    config[rl.MANAGER]["ros__parameters"]["max_steps"] = 2
    rdir = rl.run_dir(tmp_path, "gg", 1)
    rdir.mkdir(parents=True)
    assert rl.scene_control_run(rdir, config, 2).startswith("scene control: no training episode with a verdict")
    scenes = [1000, 1000, 1001, 1003]
    rows = [_train_row(k == 0, start_state_id=f"pick_bowl-seed{seed}") for k, seed in enumerate(scenes)]
    rows.append(_train_row(None, termination="aborted", start_state_id="pick_bowl-seed1004"))  # no verdict: no scene
    (rdir / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (rdir / "experiment_config.yaml").write_text(yaml.safe_dump(config))
    said = rl.scene_control_run(rdir, config, 2)
    figures = rr.read_scene_control(rdir, rr.run_prior(rdir))
    assert figures is not None, said
    assert sorted(p.name for p in (rdir / "scene_control").iterdir() if p.is_dir()) == [
        "seeds1000-1001_r2", "seeds1003-1003_r2"
    ]  # fmt: skip
    control = [json.loads((rdir / "scene_control" / name / "results.json").read_text())
               for name in ("seeds1000-1001_r2", "seeds1003-1003_r2")]  # fmt: skip
    assert [(c["decoding"], c["repeats"], c["max_steps"], c["sample_seed"]) for c in control] == [
        ("sample", 2, 2, rl.SCENE_CONTROL_SAMPLE_SEED), ("sample", 2, 2, rl.SCENE_CONTROL_SAMPLE_SEED + 1)
    ]  # fmt: skip
    assert figures["run_successes"] == 1 and figures["repeats"] == 2 and figures["blocks"][0]["scenes"] == [1000, 1003]
    assert said == (
        f"scene control (the prior sampled 2+ times per training scene): run 1, prior "
        f"{figures['prior_expected']:.1f}, difference {figures['difference']:+.1f} (null sd {figures['null_sd']:.1f})"
    )
    monkeypatch.setattr(rl.subprocess, "run", lambda *a, **k: pytest.fail("the control ran again"))
    assert rl.scene_control_run(rdir, config, 2) == said
    assert rl.seed_ranges({7, 3, 4, 5, 9}) == [(3, 5), (7, 7), (9, 9)] and rl.seed_ranges(set()) == []


def test_the_report_sets_the_training_success_against_the_prior_on_the_same_scenes(rl, rr, tmp_path):
    # 21 training episodes on scenes 0 and 1, the run winning the last 11; the prior's control: scene 0 won 1 of 2
    # draws, scene 1 both: expected 10 x 0.5 + 11 x 1.0 over the run
    rdir = rl.run_dir(tmp_path, "gg", 0)
    _write_run(rdir, [0.5, 0.5], [False] * 10 + [True] * 11)
    rows = [{**json.loads(line), "start_state_id": f"pick_bowl-seed{int(k >= 10)}"}
            for k, line in enumerate((rdir / "episodes.jsonl").read_text().splitlines())]  # fmt: skip
    (rdir / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    prior = tmp_path / "prior"
    (rdir / "experiment_config.yaml").write_text(
        yaml.safe_dump({"actor_node": {"ros__parameters": {"checkpoint_path": str(prior)}}})
    )
    draws = ((0, True), (0, False), (1, True), (1, True))
    outcomes = [{"task": "pick_bowl", "seed": seed, "success": won} for seed, won in draws]
    control = {"checkpoint": str(prior), "decoding": "sample", "tasks": [{"task": "pick_bowl", "outcomes": outcomes}]}
    (rdir / "scene_control" / "seeds0-1_r2").mkdir(parents=True)
    (rdir / "scene_control" / "seeds0-1_r2" / "results.json").write_text(json.dumps(control))
    greedy = {**control, "decoding": "greedy", "tasks": [{"task": "pick_bowl", "outcomes": outcomes[:1] * 9}]}
    (rdir / "scene_control" / "other").mkdir()
    (rdir / "scene_control" / "other" / "results.json").write_text(json.dumps(greedy))  # not a control: ignored
    run = rl.collect_run(rl.VARIANTS["gg"], 0, tmp_path, 21)
    control_figures = run["scene_control"]
    assert (control_figures["run_successes"], control_figures["prior_expected"]) == (11, 16.0)
    assert control_figures["difference"] == -5.0 and control_figures["repeats"] == 2
    assert control_figures["null_sd"] == pytest.approx(30**0.5, abs=0.01)  # scene 0: (10 + 10^2 / 2) x 0.5
    assert control_figures["prior_rolling"] == [[20, 0.75], [21, 0.775]]  # (10 x 0.5 + 10) / 20, (9 x 0.5 + 11) / 20
    result = rl.aggregate(rl.VARIANTS["gg"], [run, rl.collect_run(rl.VARIANTS["gg"], 1, tmp_path, 21)])
    assert result["prior_rolling"] == [[20, 0.75, 0.75, 0.75, 1], [21, 0.775, 0.775, 0.775, 1]]  # seed 1: none
    assert "| 52 % | s0 -5.0 (5.5) |" in rl.table([result]).splitlines()[2]
    rl.plot_train_success([result], tmp_path / "train.png")  # the prior's expected curve drawn beside the run's
    assert (tmp_path / "train.png").stat().st_size > 0
    assert rr.read_scene_control(rdir, tmp_path / "another_prior") is None


def test_the_report_gives_the_lessons_agreement_after_the_last_update_that_took_one(rl, rr, tmp_path):
    # Updates 1-2 took lessons (the second the last), update 3 was a warm-up or had none: the figures of update 2.
    rdir = rl.run_dir(tmp_path, "gg", 0)
    _write_run(rdir, [0.5, 0.5], [True] * 20)
    updates = [
        {"policy_version": 1, "lessons": 1, "lesson_agreement": None, "lesson_shared_to_noise": None},
        {"policy_version": 2, "lessons": 2, "lesson_agreement": 0.0215, "lesson_shared_to_noise": 0.21},
        {"policy_version": 3, "lessons": 0, "lesson_agreement": None, "lesson_shared_to_noise": None},
    ]
    (rdir / "trainer").mkdir()
    (rdir / "trainer" / "updates.jsonl").write_text("".join(json.dumps(u) + "\n" for u in updates))
    run = rl.collect_run(rl.VARIANTS["gg"], 0, tmp_path, 20)
    assert run["lessons"] == {"lessons": 2, "agreement": 0.0215, "shared_to_noise": 0.21}
    first_only = rl.collect_run(rl.VARIANTS["gg"], 1, tmp_path, 20)  # no trainer log at all
    assert first_only["lessons"] is None
    result = rl.aggregate(rl.VARIANTS["gg"], [run, first_only])
    assert "| s0 0.021 (0.2, 2) |" in rl.table([result]).splitlines()[2]
    (rdir / "trainer" / "updates.jsonl").write_text(json.dumps(updates[0]) + "\n")  # one lesson: no agreement yet
    one = rl.aggregate(rl.VARIANTS["gg"], [rl.collect_run(rl.VARIANTS["gg"], 0, tmp_path, 20)])
    assert "| s0 - (-, 1) |" in rl.table([one]).splitlines()[2]
    assert rr.read_lessons(tmp_path / "nowhere") is None


def test_the_report_gives_the_drift_from_the_prior_over_the_last_updates_that_logged_it(rl, rr, tmp_path):
    rdir = rl.run_dir(tmp_path, "ggk", 0)
    _write_run(rdir, [0.5, 0.5], [True] * 20)
    kls = [None, *[0.01 * k for k in range(1, 13)]]  # a warm-up without it, then 0.01 ... 0.12
    (rdir / "trainer").mkdir()
    (rdir / "trainer" / "updates.jsonl").write_text(
        "".join(json.dumps({"policy_version": v, "prior_kl": kl}) + "\n" for v, kl in enumerate(kls, 1))
    )
    run = rl.collect_run(rl.VARIANTS["ggk"], 0, tmp_path, 20)
    # the medians of the first 10 that logged it (0.01 ... 0.10) and of the last 10 (0.03 ... 0.12), how many did
    assert run["drift"] == pytest.approx({"updates": 12, "first": 0.055, "last": 0.075})
    no_log = rl.collect_run(rl.VARIANTS["ggk"], 1, tmp_path, 20)
    assert no_log["drift"] is None
    row = rl.table([rl.aggregate(rl.VARIANTS["ggk"], [run, no_log])]).splitlines()[2]
    assert "| s0 0.055 -> 0.075 |" in row
    assert rr.read_drift(tmp_path / "nowhere") is None
