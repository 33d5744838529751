"""Labelled rollouts for the critic (issue 11): scripted near-goal failures in the real simulator, their
per-frame ground truth saved and read back as labelled trajectories, and the audit's view of a critic
scoring them step by step as the episode loop does."""

from __future__ import annotations

import math

import numpy as np
import pytest

from piper_driver.sim.demo_format import iter_episodes, save_episode_npz
from vlac_critic.audit import audit
from vlac_critic.critic import DoneScore, ProgressScore
from vlac_trainer.offline.critic_rollouts import (
    OFF_CENTRE_RADIUS_MM,
    best_point_at_recall,
    collect,
    done_by_goal_distance,
    done_operating_points,
    goal_distances_mm,
    goal_offsets_mm,
    has_truth,
    load_labelled,
    make_controller,
    score_record,
)


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    """One 'hold' and one 'after_done' pick_bowl episode at 32 px, saved as npz."""
    records = collect("pick_bowl", [("hold", 3), ("after_done", 3)], max_steps=45, image_size_px=32, parallel=2)
    root = tmp_path_factory.mktemp("rollouts")
    for record in records:
        save_episode_npz(root / "npz" / f"{record.variant}.npz", record)
    return {r.variant: r for r in records}, root


def test_hold_carries_the_bowl_over_the_plate_and_never_releases_it(scripted):
    hold = scripted[0]["hold"]
    phases = hold.meta["phase"]
    assert hold.length == 45 and not hold.success_steps.any()
    assert phases[-1] == "release"  # held within the success radius of the plate centre
    assert phases.count("release") >= 10
    assert all(c == "expert" for c in hold.meta["controller"])
    assert hold.actions[-10:, 6].tolist() == [0] * 10  # the gripper stays closed


def test_rollouts_record_where_the_moved_object_is_at_every_frame(scripted):
    """The carried bowl follows the flange: its recorded centre (meta object_mm) moves as the arm moves."""
    hold = scripted[0]["hold"]
    objects = np.asarray(hold.meta["object_mm"])
    assert objects.shape == (hold.length + 1, 3)
    carried = np.linalg.norm(objects[-1, :2] - objects[0, :2])
    flange = np.linalg.norm(hold.end_poses[-1, :2] - hold.end_poses[0, :2])
    assert carried > 50.0  # mm: picked up and carried over the plate
    assert np.linalg.norm(hold.end_poses[-1, :2] - objects[-1, :2]) < 0.5 * flange  # still in the gripper


def test_after_done_completes_then_keeps_moving_with_the_task_done(scripted):
    after = scripted[0]["after_done"]
    first = int(np.argmax(after.success_steps))
    assert after.success_steps.any() and after.length - first >= 5
    moved = np.abs(np.diff(after.end_poses[first:, :3], axis=0)).sum()
    assert moved > 30.0  # mm: the arm wanders after completion
    assert after.meta["potential"][first] == 1.0


def test_saved_rollouts_read_back_as_labelled_trajectories(scripted):
    records, root = scripted
    loaded = {t.name: t for t in load_labelled([root])}
    assert set(loaded) == {"pick_bowl_hold_s3", "pick_bowl_after_done_s3"}
    hold = loaded["pick_bowl_hold_s3"]
    assert np.allclose(hold.potential, records["hold"].meta["potential"])
    assert hold.phase == tuple(records["hold"].meta["phase"])
    assert all(has_truth(r) for r in iter_episodes(root))


def test_folders_without_truth_are_refused(tmp_path):
    (tmp_path / "npz").mkdir()
    with pytest.raises(ValueError, match="no episode with per-frame ground truth"):
        load_labelled([tmp_path])
    with pytest.raises(ValueError, match="not a directory"):
        load_labelled([tmp_path / "missing"])


def test_policy_variants_need_a_policy_and_hold_needs_a_grasp():
    with pytest.raises(ValueError, match="actor checkpoint"):
        collect("pick_bowl", [("policy", 0)])
    with pytest.raises(ValueError, match="pick_bowl only"):
        make_controller("sweep", "hold", np.random.default_rng(0), 10)
    with pytest.raises(ValueError, match="pick_bowl only"):
        make_controller("sweep", "off_centre", np.random.default_rng(0), 10)
    with pytest.raises(ValueError, match="unknown rollout variant"):
        make_controller("pick_bowl", "dance", np.random.default_rng(0), 10)
    with pytest.raises(ValueError, match="task 'sweep' has no grasp"):
        collect("sweep", [("stall", 0)], grasp_hold_steps=1)  # before any episode


def test_the_scripted_parts_take_the_grasp_hold():
    """The hold variant's pick and the after_done expert pause as told on the rim (the teaching data's expert)."""
    for variant in ("hold", "after_done", "off_centre"):
        for hold in (1, 3):
            plan = make_controller("pick_bowl", variant, np.random.default_rng(0), 10, hold).plan
            assert [w.hold_steps for w in plan if w.name == "close"] == [hold]


def test_off_centre_sets_the_bowl_down_at_a_distance_drawn_per_episode_on_both_sides_of_the_success_radius():
    """Each episode's set-down distance is drawn from OFF_CENTRE_RADIUS_MM by its seed; where the bowl lands, the
    truth judges: success inside the radius, not outside, whatever the plan meant."""
    from piper_driver.sim.tasks.pick_bowl import SUCCESS_RADIUS_M

    radii_mm = []
    for seed in range(40):
        plan = make_controller("pick_bowl", "off_centre", np.random.default_rng([seed, 11]), 60).plan
        carry = next(w for w in plan if w.name == "carry")
        assert plan[-1].name.startswith("wander")  # pick, place, then the wander
        # plate at the origin, the bowl held right under the TCP: the carry's target (mm) is the set-down offset
        scene = {"plate_m": np.zeros(3), "bowl_m": np.zeros(3), "pose": np.zeros(6)}
        radii_mm.append(float(np.hypot(*carry.target(scene, np.zeros(6))[:2])))
    low, high = OFF_CENTRE_RADIUS_MM
    assert low - 2.0 <= min(radii_mm) and max(radii_mm) <= high + 2.0
    assert min(radii_mm) < SUCCESS_RADIUS_M * 1000.0 < max(radii_mm)


RELEASE_DONE_RULE = {"done_threshold": 0.9, "done_confirm_steps": 1}


class TruthCritic:
    """A stand-in critic that answers from a table: progress per pair and done per frame, by frame index."""

    def __init__(self, progress_pct, done_probs):
        self._progress, self._done = list(progress_pct), list(done_probs)

    def progress(self, task, earlier, later):
        return [ProgressScore(p, str(p)) for p in self._progress]

    def done(self, task, images):
        return [DoneScore(p, str(p)) for p in self._done]


def test_a_critic_that_follows_the_truth_scores_perfectly_and_one_that_pays_holding_does_not(scripted):
    records, _ = scripted
    episodes_good, episodes_bad = [], []
    for record in records.values():
        potential = np.asarray(record.meta["potential"])
        truth_pct = 100.0 * np.diff(potential)
        done_next = record.success_steps[1:].astype(float)
        good = TruthCritic(truth_pct, 0.99 * done_next)
        episodes_good.append(score_record(good, record, **RELEASE_DONE_RULE))
        # the shipped critic's failure: +10 % for every step, 'done' whenever the bowl is over the plate
        over_plate = np.array([p in ("release", "placed", "done") for p in record.meta["phase"][1:]], float)
        bad = TruthCritic(np.full(record.length, 10.0), 0.95 * over_plate)
        episodes_bad.append(score_record(bad, record, **RELEASE_DONE_RULE))
    good_report, bad_report = audit(episodes_good), audit(episodes_bad)
    assert good_report["overall"]["step_spearman"] == pytest.approx(1.0)
    assert good_report["return_auc"] == 1.0
    assert good_report["overall"]["done"]["precision"] == 1.0 and good_report["overall"]["done"]["recall"] == 1.0
    assert bad_report["overall"]["done"]["precision"] < 0.8
    assert math.isnan(bad_report["overall"]["step_spearman"]) or bad_report["overall"]["step_spearman"] < 0.5
    hold = next(e for e in episodes_good if "hold" in e.episode_id)
    assert [t.gt_phase for t in hold.transitions][-1] == "release" and not any(t.gt_done for t in hold.transitions)
    points = {p["threshold"]: p for p in done_operating_points(episodes_good)}
    assert points[0.9]["precision"] == 1.0 and points[0.99]["recall"] == 0.0


def test_the_done_by_goal_distance_table_files_each_frame_by_where_the_object_is_and_its_phase(scripted):
    """A critic that says done on every success and nowhere else: its done rows are the success frames, all within
    the success radius of the plate's centre; no other row fires. A record without an object track is left out."""
    from dataclasses import replace

    records = list(scripted[0].values())
    follows_truth = [TruthCritic(np.zeros(r.length), 0.95 * r.success_steps[1:]) for r in records]
    episodes = [score_record(c, r, **RELEASE_DONE_RULE) for c, r in zip(follows_truth, records, strict=True)]
    distances = goal_distances_mm(records)
    assert all(d[0] > 120.0 for d in distances)  # the bowl starts on the tray, far from the plate
    offsets = goal_offsets_mm(records)
    assert all(o.shape == (r.length + 1, 2) for o, r in zip(offsets, records, strict=True))
    np.testing.assert_allclose(np.hypot(*offsets[0].T), distances[0])
    rows = done_by_goal_distance(records, episodes, distances, threshold=0.9)
    assert sum(row["frames"] for row in rows) == sum(r.length for r in records)
    done_rows = [row for row in rows if row["phase"] == "done"]
    assert done_rows and all(row["to_mm"] <= 35.0 and row["share_over_threshold"] == 1.0 for row in done_rows)
    assert all(row["share_over_threshold"] == 0.0 for row in rows if row["phase"] != "done")
    assert rows[-1]["to_mm"] is None and rows[-1]["from_mm"] == 120.0  # the open last bin: the start on the tray
    bare = replace(records[0], meta={k: v for k, v in records[0].meta.items() if k != "object_mm"})
    assert goal_distances_mm([bare]) == [None]
    assert done_by_goal_distance([bare], episodes[:1], [None], threshold=0.9) == []


def test_the_threshold_chosen_at_a_recall_is_the_most_precise_that_reaches_it():
    nan = math.nan
    points = [
        {"threshold": 0.5, "precision": 0.86, "recall": 0.97},
        {"threshold": 0.7, "precision": 0.92, "recall": 0.93},
        {"threshold": 0.8, "precision": 0.92, "recall": 0.91},  # as precise, less recall: not chosen
        {"threshold": 0.9, "precision": 0.95, "recall": 0.69},  # more precise, under the recall
        {"threshold": 0.99, "precision": nan, "recall": 0.0},  # fired nowhere
    ]
    assert best_point_at_recall(points, 0.9)["threshold"] == 0.7
    assert best_point_at_recall(points, 0.6)["threshold"] == 0.9
    assert best_point_at_recall(points, 0.98) is None
    no_truth = [{"threshold": 0.5, "precision": 0.5, "recall": nan}]  # nothing truly done: no recall to reach
    assert best_point_at_recall(no_truth, 0.9) is None


def _train_config(tmp_path, demo_root, **overrides):
    from vlac_core.config import from_mapping
    from vlac_trainer.offline.train_critic_cli import CriticTrainConfig

    tiny = {"image_size_px": 32, "patch_size_px": 8, "vision_hidden": 16, "vision_layers": 1}
    values = {
        **tiny,
        "text_hidden": 32,
        "text_layers": 1,
        "train_data": [str(demo_root)],
        "work_dir": str(tmp_path / "work"),
        "out_dir": str(tmp_path / "model"),
        "steps": 2,
        "warmup_steps": 1,
        "batch_units": 3,
        "threads": 1,
        **overrides,
    }
    return from_mapping(CriticTrainConfig, values)


@pytest.fixture(scope="module")
def expert_root(tmp_path_factory):
    from piper_driver.sim.arm import SimArm
    from piper_driver.sim.backend import SimConfig
    from piper_driver.sim.rollout import rollout
    from piper_driver.sim.tasks import make_expert

    arm = SimArm("expert", "pick_bowl", SimConfig(image_size_px=32), None, first_seed=5)
    record = rollout(arm, make_expert("pick_bowl", "expert", np.random.default_rng(0)), seed=5)
    arm.close()
    root = tmp_path_factory.mktemp("experts")
    save_episode_npz(root / "npz" / "expert.npz", record)
    return root


def test_critic_training_reads_rollout_folders_and_records_them(scripted, expert_root, tmp_path):
    import json

    from vlac_trainer.offline.train_critic_cli import train_critic

    config = _train_config(
        tmp_path, expert_root, rollout_data=[str(scripted[1])], rollout_progress_share=0.5, rollout_done_share=0.3
    )
    result = train_critic(config, progress=False)
    assert result.steps_done == 2
    info = json.loads((tmp_path / "model" / "training_info.json").read_text())
    assert info["labelled_episodes"] == 2 and info["config"]["rollout_data"] == [str(scripted[1])]


def test_rollout_shares_without_rollout_data_are_a_config_error(expert_root, tmp_path):
    from vlac_core.config import ConfigError
    from vlac_trainer.offline.train_critic_cli import train_critic

    with pytest.raises(ConfigError, match="no labelled trajectories"):
        train_critic(_train_config(tmp_path, expert_root, rollout_done_share=0.3), progress=False)
    with pytest.raises(ConfigError, match=r"rollout_data: .*not a directory"):
        train_critic(_train_config(tmp_path, expert_root, rollout_data=[str(tmp_path / "none")]), progress=False)


def test_audit_command_without_bags_writes_its_report_into_a_new_folder(scripted, tmp_path, monkeypatch):
    import json

    from vlac_trainer.offline import critic_rollouts

    _records, root = scripted

    class FakeCritic(TruthCritic):
        def __init__(self, *args, **kwargs):
            super().__init__([0.0] * 45, [0.0] * 45)

    monkeypatch.setattr("vlac_critic.critic.Critic", FakeCritic)
    monkeypatch.setattr("vlac_critic.backends.make_backend", lambda *args, **kwargs: None)
    out = tmp_path / "new" / "audit"
    assert critic_rollouts.main(["audit", str(root), "--checkpoint", "x", "--out", str(out), "--no-bags"]) == 0
    report = json.loads((out / "critic_audit.json").read_text())
    assert report["episodes"] == 2 and report["successful_episodes"] == 1
    extra = json.loads((out / "rollout_audit_extra.json").read_text())
    assert set(extra["by_variant"]) == {"hold", "after_done"}
    table = extra["done_by_goal_distance"]
    assert table["threshold"] == 0.9 and sum(row["frames"] for row in table["rows"]) == 90
    assert all(row["mean_done_prob"] == 0.0 for row in table["rows"])  # the critic never says done
    assert (out / "done_by_goal_distance.png").stat().st_size > 0
    # a critic that never says done reaches no recall: no threshold is chosen, and the report says so
    assert extra["done_at_recall"] == {"recall_target": 0.9, "best": None}


def test_collect_renders_at_the_actors_image_size_unless_told_otherwise(tmp_path):
    """A 32 px actor gets 32 px frames: another size would be resized to its own silently (off its training data)."""
    import json

    from vlac_actor.value_head import ValueHead
    from vlac_core.model.tiny import TinyModelSpec, build_tiny_model
    from vlac_trainer.offline import critic_rollouts

    spec = TinyModelSpec(image_size_px=32, vision_hidden=16, vision_layers=1, text_hidden=32, text_layers=1)
    actor = build_tiny_model(tmp_path / "actor", spec)
    ValueHead(spec.text_hidden, seed=0).save(actor)
    args = ["collect", "--task", "pick_bowl", "--variants", "policy", "--episodes", "1", "--seed", "3"]
    args += ["--actor", str(actor), "--max-steps", "2", "--parallel", "1"]
    for out, extra, size in [(tmp_path / "own", [], 32), (tmp_path / "told", ["--image-size", "48"], 48)]:
        assert critic_rollouts.main([*args, "--out", str(out), *extra]) == 0
        assert json.loads((out / "rollouts_summary.json").read_text())["image_size_px"] == size
        (record,) = iter_episodes(out)
        assert record.front_images.shape[1:3] == (size, size)


def _no_constant(name):
    raise ValueError(f"not strict JSON: {name}")


def rows_never_on_time(report) -> list:
    return [r for r in report["rules"] if r["on_time"] == 0 and r["delay_steps_mean"] is None]


def test_done_rule_command_chooses_the_rule_with_fewest_wrong_episodes_and_stores_it(
    scripted, tmp_path, monkeypatch, capsys
):
    """A cautious critic (0.85 on truly done frames) with a one-frame spike on a failure: the release's 1 step over
    0.9 is silent on the success and fires on the failure; 2 steps over 0.8 gets both right and is stored."""
    import json

    from vlac_critic.done_rule import DoneRule, read_done_rule
    from vlac_trainer.offline import critic_rollouts

    records, root = scripted
    answers = {}
    for record in records.values():
        truth = record.success_steps[1:]
        probs = np.where(truth, 0.85, 0.1)
        if not truth.any():
            probs[20] = 0.95
        answers[record.front_images[1].tobytes()] = probs

    class TableCritic:
        def __init__(self, *args, **kwargs):
            pass

        def done(self, task, images):
            return [DoneScore(float(p), str(p)) for p in answers[images[0].tobytes()]]

    monkeypatch.setattr("vlac_critic.critic.Critic", TableCritic)
    monkeypatch.setattr("vlac_critic.backends.make_backend", lambda *args, **kwargs: None)
    checkpoint = tmp_path / "critic"
    checkpoint.mkdir()
    out = tmp_path / "report.json"
    argv = ["done-rule", str(root), "--checkpoint", str(checkpoint), "--out", str(out), "--write"]
    assert critic_rollouts.main(argv) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1], parse_constant=_no_constant)
    report = json.loads(out.read_text(), parse_constant=_no_constant)
    assert printed["chosen"] == report["chosen"]
    assert rows_never_on_time(report)  # 0.99 never fires on time: its mean delay is null, in the file and printed
    assert (report["episodes"], report["successful"]) == (2, 1)
    rows = {(r["threshold"], r["confirm_steps"]): r for r in report["rules"]}
    assert len(rows) == 44
    assert (rows[(0.9, 1)]["missed"], rows[(0.9, 1)]["false_done"], rows[(0.9, 1)]["wrong"]) == (1, 1, 2)
    assert (report["chosen"]["threshold"], report["chosen"]["confirm_steps"], report["chosen"]["wrong"]) == (0.8, 2, 0)
    assert report["chosen"]["delay_steps_mean"] == 1.0
    assert read_done_rule(checkpoint) == DoneRule(0.8, 2)
    stored = json.loads((checkpoint / "done_rule.json").read_text())
    assert stored["chosen_on"]["folders"] == [str(root)] and "rules" not in stored["chosen_on"]
    # --rules scores the given rules only (a rule chosen elsewhere, judged here); nothing is written without --write
    (checkpoint / "done_rule.json").unlink()
    assert (
        critic_rollouts.main(
            ["done-rule", str(root), "--checkpoint", str(checkpoint), "--rules", "0.9:1", "--out", str(out)]
        )
        == 0
    )
    assert [(r["threshold"], r["confirm_steps"]) for r in json.loads(out.read_text())["rules"]] == [(0.9, 1)]
    assert not (checkpoint / "done_rule.json").exists()
    assert critic_rollouts.main(["done-rule", str(root), "--checkpoint", str(checkpoint), "--variants", "policy"]) == 2


def test_a_policy_rollout_is_named_by_its_seed_whatever_runs_beside_it(tmp_path):
    """Each episode samples from its own generator (sample seed, scene seed): the same seed gives the same actions
    alone or batched with others, so a collection is reproducible at any --parallel and after a resume."""
    from vlac_actor.policy import load_policy
    from vlac_actor.value_head import ValueHead
    from vlac_core.model.tiny import TinyModelSpec, build_tiny_model

    spec = TinyModelSpec(image_size_px=32, vision_hidden=16, vision_layers=1, text_hidden=32, text_layers=1)
    path = build_tiny_model(tmp_path / "actor", spec)
    ValueHead(spec.text_hidden, seed=0).save(path)
    policy = load_policy(path, device="cpu", dtype="fp32")
    common = {"policy": policy, "max_steps": 3, "image_size_px": 32, "temperature": 1.0, "sample_seed": 7}
    together = collect("pick_bowl", [("policy", 3), ("policy", 4), ("policy", 5)], parallel=3, **common)
    alone = collect("pick_bowl", [("policy", 4)], parallel=1, **common)
    by_seed = {r.seed: r for r in together}
    assert np.array_equal(alone[0].actions, by_seed[4].actions)
    assert not np.array_equal(by_seed[3].actions, by_seed[4].actions)
    other = collect("pick_bowl", [("policy", 4)], parallel=1, **{**common, "sample_seed": 8})
    assert not np.array_equal(other[0].actions, by_seed[4].actions)  # the sample seed still matters
