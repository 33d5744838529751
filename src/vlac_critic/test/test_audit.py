"""`vlac critic audit`: the critic against ground truth, on hand-made episodes whose figures are worked out below."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from vlac_core.bag import write_episode
from vlac_core.types import DeltaAction, EndPose, Episode, Observation, PolicyAction, Termination, Transition
from vlac_critic.audit import audit, audit_blocks, rank_auc
from vlac_critic.audit_cli import run

TASK = "Pick up the bowl and put it on the plate"


def _obs(step: int) -> Observation:
    return Observation(
        robot_id="arm_0",
        task=TASK,
        images=(np.full((4, 4, 3), step, dtype=np.uint8),),
        end_pose=EndPose(250.0, 0.0, 200.0, 180.0, 0.0, 0.0),
        gripper_open=True,
        gripper_mm=60.0,
        joints_rad=(0.0,) * 6,
        stamp_s=float(step),
        seq=step,
    )


def _episode(name: str, steps: list[tuple], success: bool) -> Episode:
    """steps: (critic progress %, critic done, ground-truth potential change, ground-truth success, phase)."""
    transitions = []
    for i, (pct, critic_done, gt_progress, gt_done, phase) in enumerate(steps):
        delta = DeltaAction(1, 0, 0, 0, 0, 0, 1)
        action = PolicyAction(delta, "{}", (-1.0,), 0.0, 0, float(i), 0.0, "arm_0", i)
        transitions.append(
            Transition(
                observation=_obs(i),
                action=action,
                progress_pct=pct,
                reward=gt_progress,  # a sim_dense session: the ground truth drove training
                done_prob=0.95 if critic_done else 0.1,
                done=gt_done,
                critic_done=critic_done,
                gt_progress=gt_progress,
                gt_done=gt_done,
                gt_phase=phase,
            )
        )
    return Episode(
        episode_id=name,
        robot_id="arm_0",
        task=TASK,
        transitions=transitions,
        final_observation=_obs(len(steps)),
        termination=Termination.DONE if success else Termination.STEP_LIMIT,
        success=success,
    )


# A: succeeds, the critic punishes the release that completes it (-50 %) and fires on time.
# B: fails, the critic pays the hovering and fires twice without success. C: fails, nobody fires.
EPISODES = [
    _episode(
        "A",
        [(10.0, False, 0.1, False, "reach"), (20.0, False, 0.3, False, "carry"), (-50.0, True, 0.6, True, "release")],
        True,
    ),
    _episode(
        "B",
        [(30.0, False, 0.05, False, "reach"), (40.0, True, 0.0, False, "carry"), (5.0, True, -0.1, False, "carry")],
        False,
    ),
    _episode("C", [(-10.0, False, -0.05, False, "reach"), (0.0, False, 0.0, False, "reach")], False),
]


def test_rank_auc_by_hand():
    assert rank_auc([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert rank_auc([1.0], [1.0, 2.0]) == pytest.approx(0.25)  # one tie (0.5) and one loss, over 2 pairs
    assert math.isnan(rank_auc([], [1.0]))


def test_audit_figures_by_hand():
    report = audit(EPISODES)
    assert report["ground_truth"] and report["steps"] == 8 and report["notes"] == []
    # returns (fractions): A -0.2, B 0.75, C -0.1: the one success scores below both failures
    assert report["return_auc"] == 0.0
    assert report["critic_return_mean_success"] == pytest.approx(-0.2)
    # ranks of the critic [5,6,1,7,8,4,2,3] and of the truth [6,7,8,5,3.5,1,2,3.5]: rho = -0.5 / sqrt(42 * 41.5)
    overall = report["overall"]
    assert overall["step_spearman"] == pytest.approx(-0.5 / math.sqrt(42 * 41.5))
    assert overall["sign_agreement"] == pytest.approx(4 / 6)  # of the 6 steps where the truth moved
    assert (overall["done"]["precision"], overall["done"]["recall"]) == (pytest.approx(1 / 3), 1.0)
    timing = report["done_timing"]
    assert timing["offsets_steps"] == [0] and timing["fired_without_success"] == 1 and timing["neither"] == 1
    phases = report["by_phase"]
    assert list(phases) == ["reach", "carry", "release"]
    assert phases["release"]["critic_progress_mean"] == pytest.approx(-0.5)
    assert phases["release"]["gt_progress_mean"] == pytest.approx(0.6)
    assert phases["carry"]["critic_done_rate"] == pytest.approx(2 / 3)
    assert phases["carry"]["done"]["precision"] == 0.0 and math.isnan(phases["carry"]["done"]["recall"])


def test_the_return_up_to_success_leaves_out_the_moves_after_completion():
    # D succeeds on its second step, then the critic punishes a move after completion: its whole return
    # (-0.3) is below failure C's (-0.1), its return up to the true done (+0.3) above C's and below B's (+0.75).
    after_done = _episode(
        "D",
        [(10.0, False, 0.5, False, "carry"), (20.0, True, 0.5, True, "release"), (-60.0, False, 0.0, True, "done")],
        True,
    )
    report = audit([after_done, *EPISODES[1:]])
    assert report["return_auc"] == 0.0
    assert report["return_auc_to_success"] == pytest.approx(0.5)
    # A's first true done is its last step: both figures agree
    assert audit(EPISODES)["return_auc_to_success"] == 0.0


def test_without_ground_truth_the_audit_says_so_and_scores_what_it_can():
    stripped = [
        replace(ep, transitions=[replace(t, gt_progress=None, gt_done=None, gt_phase="") for t in ep.transitions])
        for ep in EPISODES
    ]
    report = audit(stripped)
    assert not report["ground_truth"] and "overall" not in report and "by_phase" not in report
    assert any("no step carries ground truth" in note for note in report["notes"])
    assert report["return_auc"] == 0.0  # episode success is still known
    assert math.isnan(report["return_auc_to_success"])  # where the successes were done is not
    assert report["critic_done_rate"] == pytest.approx(3 / 8)


def test_cli_reads_a_sessions_bags_and_writes_json_and_png(tmp_path, capsys):
    session = tmp_path / "session"
    for ep in EPISODES:
        write_episode(session / "bags" / "train" / ep.episode_id, ep, fsync=False)
    broken = session / "bags" / "train" / "broken"
    broken.mkdir()
    (broken / "broken_0.mcap").write_bytes(b"not an mcap file")
    args = argparse.Namespace(inputs=[str(session)], out=None, episodes="all", block=0)
    assert run(args) == 0
    out = session / "critic_audit"
    report = json.loads((out / "critic_audit.json").read_text())
    assert report["episodes"] == 3 and report["return_auc"] == 0.0 and len(report["unreadable_bags"]) == 1
    assert report["overall"]["done"]["recall"] == 1.0
    assert (out / "critic_audit.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "return AUC (success vs failure): 0.000" in printed and "release" in printed


def test_cli_refuses_a_folder_without_bags(tmp_path, capsys):
    assert run(argparse.Namespace(inputs=[str(tmp_path)], out=None, episodes="all", block=0)) == 2
    assert "no episode bag" in capsys.readouterr().err


def test_blocks_follow_the_sessions_recorded_order_and_score_each_block_alone(tmp_path, capsys):
    # recorded A, B, C, then A again as a fourth episode; the bags' names sort otherwise (z..., y..., x..., w...)
    session = tmp_path / "session"
    rows = []
    for name, ep in zip(("z", "y", "x", "w"), [*EPISODES, EPISODES[0]], strict=True):
        write_episode(session / "bags" / "train" / name, ep, fsync=False)
        rows.append({"phase": "train", "bag_path": f"bags/train/{name}"})
    rows.insert(1, {"phase": "eval", "bag_path": "bags/eval/missing"})  # another phase: not in a train audit
    rows.append({"phase": "train", "bag_path": "bags/train/lost"})  # its bag gone: listed, no block
    cut_short = '{"phase": "train", "bag_pa'  # a crash mid-line: skipped, as every reader of the log does
    (session / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + cut_short)
    args = argparse.Namespace(inputs=[str(session)], out=str(tmp_path / "out"), episodes="train", block=2)
    assert run(args) == 0
    report = json.loads((tmp_path / "out" / "critic_audit.json").read_text())
    blocks = report["blocks"]
    assert [(b["first"], b["last"], b["episodes"], b["successful"]) for b in blocks] == [(1, 2, 2, 1), (3, 4, 2, 1)]
    assert report["episodes"] == 4 and len(report["unreadable_bags"]) == 1 and "lost" in report["unreadable_bags"][0]
    # block 1 is A (return -0.2) against B (0.75); block 2 is C (-0.1) against A (-0.2): the success below both times
    assert blocks[0]["return_auc"] == 0.0 and blocks[1]["return_auc"] == 0.0
    assert blocks[0]["fired_without_success"] == 1 and blocks[1]["fired_without_success"] == 0
    assert blocks[1]["silent_on_success"] == 0 and blocks[1]["done_precision"] == 1.0
    assert "episodes 3-4: 2 (1 successful)" in capsys.readouterr().out


def test_blocks_need_a_sessions_episode_log(tmp_path, capsys):
    for ep in EPISODES:
        write_episode(tmp_path / "bags" / ep.episode_id, ep, fsync=False)
    assert run(argparse.Namespace(inputs=[str(tmp_path / "bags")], out=None, episodes="all", block=40)) == 2
    assert "--block needs session folders" in capsys.readouterr().err
    assert run(argparse.Namespace(inputs=[str(tmp_path / "bags")], out=None, episodes="all", block=-1)) == 2
    assert "--block must be 0" in capsys.readouterr().err


def test_a_last_partial_block_ends_at_the_last_episode():
    numbered = list(enumerate([*EPISODES, EPISODES[0], EPISODES[1]], start=1))
    blocks = audit_blocks(numbered, 2)
    assert [(b["first"], b["last"], b["episodes"]) for b in blocks] == [(1, 2, 2), (3, 4, 2), (5, 5, 1)]
    assert math.isnan(blocks[2]["return_auc"])  # one failure alone: no pair to rank
    with pytest.raises(ValueError, match="at least 1"):
        audit_blocks(numbered, 0)
