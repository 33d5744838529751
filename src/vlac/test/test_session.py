"""`vlac session` end to end on tiny random models: bags on disk (rosbags and mcap), plot, summary,
trainer versions, an actor/critic error mid-episode, Ctrl-C with a subprocess, and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import session_helpers as h
import torch
from mcap.reader import make_reader

from vlac.cli import main
from vlac.param_file import load_session_files
from vlac.session.runtime import EXIT_INTERRUPTED, EmbeddedSession
from vlac_core.bag import read_episode
from vlac_core.types import Termination


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return h.build_models(tmp_path_factory.mktemp("session_models"))


@pytest.fixture(scope="module")
def finished_session(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("session")
    config = h.write_config(root / "session.yaml", *models, root / "out")
    code = main(["session", "--config", str(config), "--episodes", "2"])
    return code, root / "out"


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


def test_session_leaves_bags_plot_summary_checkpoint_and_new_policy_versions(finished_session):
    code, out = finished_session
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["training_episodes"] == 2 and summary["interrupted"] is False
    assert [e["after_episodes"] for e in summary["evaluations"]] == [0, 2]  # before and after training
    assert summary["trainer"]["policy_version"] == 1  # episodes_per_update 2 -> one update
    assert summary["evaluations"][-1]["policy_version"] == 1  # the actor pool serves the new version
    for evaluation in summary["evaluations"]:  # every trial's actions came from the evaluated version
        assert evaluation["trial_policy_versions"] == [evaluation["policy_version"]]
    assert (out / "success_rate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "trainer" / "LATEST").exists()
    assert (out / "policies" / "v000001" / "value_head.safetensors").exists()
    assert len(rows(out)) == 4 and {r["phase"] for r in rows(out)} == {"train", "eval"}
    # every step asked the shared critic twice (progress and done); arms' calls may share batches
    assert summary["critic"]["requests"] == 2 * sum(r["length"] for r in rows(out))
    assert 1 <= summary["critic"]["mean_batch"] <= summary["critic"]["max_batch"] <= 2


def test_every_episode_bag_reads_back_with_rosbags_and_with_the_mcap_reader(finished_session):
    _, out = finished_session
    for row in rows(out):
        bag = out / row["bag_path"]
        episode = read_episode(bag)  # rosbags
        assert episode.episode_id == row["episode_id"] and episode.length == row["length"]
        assert episode.termination.value == row["termination"]
        assert all(t.action.text.startswith("{x: ") for t in episode.transitions)
        (mcap_file,) = bag.glob("*.mcap")
        with open(mcap_file, "rb") as f:
            topics = [channel.topic for _, channel, _ in make_reader(f).iter_messages()]
        robot = row["robot_id"]
        assert topics.count(f"/{robot}/episode/transition") == row["length"]
        assert topics.count(f"/{robot}/episode/summary") == 1


class FailingCritic:
    """Wraps the session's critic; its ``fail_on``-th progress call raises (a model crash mid-episode)."""

    def __init__(self, inner, fail_on: int) -> None:
        self.inner, self.fail_on, self.calls = inner, fail_on, 0

    def progress_pct(self, *args):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("critic crashed (test)")
        return self.inner.progress_pct(*args)

    def done_prob(self, *args):
        return self.inner.done_prob(*args)


def test_a_critic_error_mid_episode_aborts_that_episode_keeps_its_steps_and_the_session_goes_on(models, tmp_path):
    config = h.write_config(tmp_path / "s.yaml", *models, tmp_path / "out", eval_at_start=False, eval_at_end=False)
    session = EmbeddedSession(load_session_files(config), episodes=2)
    session.prepare()
    session.arms[0].loop.critic = FailingCritic(session.critic, fail_on=3)  # 3-step episodes: episode 1, step 3
    result = session.run()
    assert result.exit_code == 0
    first, second = rows(tmp_path / "out")
    assert first["termination"] == "aborted" and "critic crashed" in first["abort_reason"]
    # the two steps scored before the crash are on disk (bag paths are relative to the output folder)
    assert read_episode(tmp_path / "out" / first["bag_path"]).length == 2
    assert second["termination"] == "step_limit"
    assert result.summary["trainer"]["routed"]["not_trained"] == 1


def test_ctrl_c_ends_the_session_cleanly_and_a_second_run_resumes(models, tmp_path):
    out = tmp_path / "out"
    # 30-step episodes: the Ctrl-C below lands while the third one runs, not between two episodes.
    config = h.write_config(tmp_path / "s.yaml", *models, out, max_steps=30, eval_at_start=False, eval_at_end=False)
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vlac.cli", "session", "--config", str(config), "--episodes", "1000"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "bags" / "train").glob("*"))) < 3:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    bags = sorted((out / "bags" / "train").iterdir())
    recorded = {r["episode_id"]: r for r in rows(out)}
    assert {b.name for b in bags} == set(recorded)  # every started episode was finished into its bag
    for bag in bags:
        read_episode(bag)  # complete bags (metadata written), none half-open
    assert Termination.SHUTDOWN.value in {r["termination"] for r in recorded.values()}

    finished = sum(r["phase"] == "train" and r["termination"] != "shutdown" for r in recorded.values())
    assert summary["training_episodes"] == finished  # the Ctrl-C'd episode is kept but not counted

    # session.episodes is the total: the resumed run adds only the one episode still missing.
    before = summary["trainer"]["episodes_received"]
    assert main(["session", "--config", str(config), "--episodes", str(finished + 1)]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["resumed"] is True
    assert again["trainer"]["episodes_received"] == before + 1
    assert again["training_episodes"] == finished + 1
    assert main(["session", "--config", str(config), "--episodes", str(finished + 1)]) == 0  # nothing left
    assert len(rows(out)) == len(recorded) + 1


def test_a_final_evaluation_lost_to_ctrl_c_runs_when_the_finished_session_is_resumed(models, tmp_path):
    out = tmp_path / "out"
    config = h.write_config(tmp_path / "s.yaml", *models, out, eval_at_start=False, eval_at_end=True)
    assert main(["session", "--config", str(config), "--episodes", "2"]) == 0
    (final,) = [json.loads(line) for line in (out / "evaluations.jsonl").read_text().splitlines()]
    (out / "evaluations.jsonl").write_text("")  # as if Ctrl-C had cut the final evaluation short
    assert main(["session", "--config", str(config), "--episodes", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["training_episodes"] == 2  # no training episode was added
    (again,) = summary["evaluations"]
    assert (again["after_episodes"], again["policy_version"]) == (final["after_episodes"], final["policy_version"])
    assert main(["session", "--config", str(config), "--episodes", "2"]) == 0  # evaluated already: not again
    assert len(json.loads((out / "summary.json").read_text())["evaluations"]) == 1


def test_evaluation_arms_side_by_side_run_each_held_out_scene_once_and_record_every_trial(models, tmp_path):
    out = tmp_path / "out"
    config = h.write_config(
        tmp_path / "s.yaml", *models, out, eval_trials=3, eval_parallel=2, eval_seed=777, eval_at_end=False
    )
    assert main(["session", "--config", str(config), "--episodes", "0"]) == 0
    (evaluation,) = json.loads((out / "summary.json").read_text())["evaluations"]
    assert evaluation["trials"] == 3 and evaluation["aborted"] == 0
    assert evaluation["trial_policy_versions"] == [evaluation["policy_version"]]
    trials = [r for r in rows(out) if r["phase"] == "eval"]
    assert sorted(r["start_state_id"] for r in trials) == [f"pick_bowl-seed{777 + i}" for i in range(3)]
    assert {r["robot_id"] for r in trials} <= {"eval_arm", "eval_arm_1"}
    assert all((out / r["bag_path"]).is_dir() for r in trials)


def test_a_missing_model_is_a_clear_error(models, tmp_path, capsys):
    config = h.write_config(tmp_path / "s.yaml", tmp_path / "no_actor", models[1], tmp_path / "out")
    assert main(["session", "--config", str(config)]) == 2
    assert "actor_node.checkpoint_path" in capsys.readouterr().err


def test_with_a_backlog_limit_a_slow_trainer_trains_on_every_episode(models, tmp_path):
    config = h.write_config(
        tmp_path / "s.yaml",
        *models,
        tmp_path / "out",
        manager={"max_waiting_batches": 1},
        # The actor loads a new version asynchronously: on a loaded machine an episode may start two versions behind
        # the trainer, and the staleness filter (tested on its own) would drop it. This test is about the backlog.
        trainer={"max_policy_lag": 10},
        eval_at_start=False,
        eval_at_end=False,
    )
    session = EmbeddedSession(load_session_files(config), episodes=6)
    session.prepare()
    ppo, backlog_at_start = session.trainer.trainer, []
    update = ppo.update

    def slow_update(*args, **kwargs):  # an update far slower than a 3-step episode
        time.sleep(2.0)
        return update(*args, **kwargs)

    ppo.update = slow_update
    episode = session._train_episode

    def observed(arm):
        backlog_at_start.append(len(session.trainer.rollouts))
        episode(arm)

    session._train_episode = observed
    result = session.run()
    assert result.exit_code == 0
    # no episode began while a whole batch (2 episodes) waited for the trainer
    assert len(backlog_at_start) == 6 and max(backlog_at_start) < 2
    trainer = result.summary["trainer"]
    assert trainer["rollouts_trained"] == 6 and trainer["rollouts_dropped"] == 0 and trainer["policy_version"] == 3


def test_groups_of_one_scene_train_with_the_group_advantage_and_a_mismatch_is_refused(models, tmp_path, capsys):
    config = h.write_config(
        tmp_path / "s.yaml",
        *models,
        tmp_path / "out",
        manager={"scene_repeats": 2, "return_explore": False, "max_waiting_batches": 1},
        trainer={"advantage": "group"},
        episodes=4,
        eval_at_start=False,
        eval_at_end=False,
    )
    result = EmbeddedSession(load_session_files(config)).run()
    assert result.exit_code == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "episodes.jsonl").read_text().splitlines()]
    starts = [r["start_state_id"] for r in rows if r["phase"] == "train"]
    assert starts[0] == starts[1] != starts[2] == starts[3]  # two scenes, each run twice in a row
    trainer = result.summary["trainer"]
    assert trainer["rollouts_trained"] == 4 and trainer["rollouts_dropped"] == 0  # no episode alone in a batch

    lonely = h.write_config(
        tmp_path / "l.yaml",
        *models,
        tmp_path / "out2",
        manager={"return_explore": False},
        trainer={"advantage": "group"},
    )
    assert main(["session", "--config", str(lonely)]) == 2
    assert "episode_manager.scene_repeats is 1; set it to 2 or more" in capsys.readouterr().err


def test_a_scene_pool_cycles_the_training_arms_fresh_scenes_and_leaves_the_evaluation_scenes_alone(models, tmp_path):
    config = h.write_config(
        tmp_path / "s.yaml",
        *models,
        tmp_path / "out",
        manager={"scene_pool": 2, "scene_seed": 30, "return_explore": False},
        episodes=3,
        eval_at_start=False,
        eval_trials=2,
    )
    result = EmbeddedSession(load_session_files(config)).run()
    assert result.exit_code == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "episodes.jsonl").read_text().splitlines()]
    train = [r["start_state_id"] for r in rows if r["phase"] == "train"]
    assert [s.rsplit("seed", 1)[1] for s in train] == ["30", "31", "30"]  # two scenes, cycled
    evaluated = [r["start_state_id"] for r in rows if r["phase"] == "eval"]
    assert len(evaluated) == 2 and not set(evaluated) & set(train)  # held-out scenes, not the pool's


def _train_starts(out, robot_id="arm_0"):
    rows = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    return [
        int(r["start_state_id"].rsplit("seed", 1)[1])
        for r in rows
        if r["phase"] == "train" and r["robot_id"] == robot_id
    ]


def test_a_resumed_pool_of_groups_goes_on_in_its_cycle_after_the_groups_behind_it(models, tmp_path):
    config = h.write_config(
        tmp_path / "s.yaml",
        *models,
        tmp_path / "out",
        manager={"scene_pool": 2, "scene_seed": 30, "scene_repeats": 2, "return_explore": False},
        trainer={"advantage": "group"},
        episodes=3,
        eval_at_start=False,
        eval_at_end=False,
    )
    assert EmbeddedSession(load_session_files(config)).run().exit_code == 0
    assert _train_starts(tmp_path / "out") == [30, 30, 31]  # the second group cut short by the end of the run
    assert main(["session", "--config", str(config), "--episodes", "5"]) == 0
    # two fresh starts are behind the resumed run (30, 31), so the cycle goes on at 30, not at the 3rd scene's 31
    assert _train_starts(tmp_path / "out") == [30, 30, 31, 30, 30]


def test_each_arm_of_a_resumed_pool_goes_on_from_its_own_episodes(models, tmp_path):
    config = h.write_config(
        tmp_path / "s.yaml",
        *models,
        tmp_path / "out",
        arms=2,
        manager={"scene_pool": 2, "scene_seed": 30, "return_explore": False},
        episodes=2,
        eval_at_start=False,
        eval_at_end=False,
    )
    assert EmbeddedSession(load_session_files(config)).run().exit_code == 0
    assert main(["session", "--config", str(config), "--episodes", "4"]) == 0
    for k in range(2):  # whatever share each arm ran: its starts are its pool's cycle, unbroken by the resume
        starts = _train_starts(tmp_path / "out", f"arm_{k}")
        base = 30 + 100000 * k
        assert starts == [base + i % 2 for i in range(len(starts))], (k, starts)
    assert len(_train_starts(tmp_path / "out")) + len(_train_starts(tmp_path / "out", "arm_1")) == 4


def test_human_in_the_loop_demos_and_guided_explore_feed_the_demo_buffer(models, tmp_path):
    from test_session_parts import record

    from piper_driver.sim.demo_format import save_episode_npz

    save_episode_npz(tmp_path / "demos" / "npz" / "demo0.npz", record(True))
    config = h.write_config(
        tmp_path / "s.yaml",
        *models,
        tmp_path / "out",
        eval_at_start=False,
        eval_at_end=False,
        demo_dir=str(tmp_path / "demos"),
        guided_explore_prob=1.0,
        takeover_after_steps=1,
    )
    session = EmbeddedSession(load_session_files(config), episodes=2)
    result = session.run()
    assert result.exit_code == 0
    routed = result.summary["trainer"]["routed"]
    # 1 loaded demo; 2 guided episodes, each also a 1-step rollout (the policy's step before the takeover)
    assert routed["demo"] == 1 and routed["guided"] == 2 and routed["rollout"] == 0
    assert result.summary["trainer"]["failed_updates"] == 0  # the checkpoint holds both buffers
    assert all(r["human_steps"] == 2 for r in rows(tmp_path / "out"))  # policy acts 1 step, then the expert
    assert result.summary["intervention"]["episode_rate"] == 1.0
    (update,) = result.summary["trainer"]["updates_this_run"]
    assert update["demo_nll"] is not None  # offline demonstration replay ran
    demo = session.trainer.demos.episodes()[0]
    assert demo.episode_id == "demo0" and demo.human_steps == 3
    # The loaded demo was scored by the critic (3 pairs) besides the 2 x 3 online steps.
    assert session.critic.critic.stats.pairs_scored == 3 + 2 * 3


def test_resume_hands_bags_recorded_after_the_last_checkpoint_to_the_trainer(models, tmp_path):
    from vlac_core.bag import write_episode

    out = tmp_path / "out"
    config = h.write_config(tmp_path / "s.yaml", *models, out, eval_at_start=False, eval_at_end=False)
    assert main(["session", "--config", str(config), "--episodes", "2"]) == 0
    received = json.loads((out / "summary.json").read_text())["trainer"]["episodes_received"]
    # An episode whose bag reached the disk after the trainer's last checkpoint (a crash in between):
    late = read_episode(next((out / "bags" / "train").iterdir()))
    late.episode_id = "arm_0-late"
    write_episode(out / "bags" / "train" / late.episode_id, late)
    assert main(["session", "--config", str(config), "--episodes", "0"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] and summary["trainer"]["episodes_received"] == received + 1


def test_return_to_frontier_revisits_mid_task_states_and_a_resumed_session_drops_lost_ones(models, tmp_path, caplog):
    import yaml

    from vlac.episode.return_explore import is_frontier_state_id

    out = tmp_path / "out"
    config = h.write_config(tmp_path / "s.yaml", *models, out, max_steps=4, eval_at_start=False, eval_at_end=False)
    document = yaml.safe_load(config.read_text())
    manager = document["episode_manager"]["ros__parameters"]
    manager.update(revisit_prob=1.0, return_to="frontier", reward_source="sim_dense")
    config.write_text(yaml.safe_dump(document))
    session = EmbeddedSession(load_session_files(config), episodes=6)
    assert session.run().exit_code == 0
    starts = [r["start_state_id"] for r in rows(out) if r["phase"] == "train"]
    assert any(map(is_frontier_state_id, starts[1:])), starts  # revisits began where failures got furthest
    kept = json.loads((out / "summary.json").read_text())["return_explore_states"]
    assert kept > 0
    # The trainer checkpoint holds the store (frames included); its snapshots lived in this process only.
    with caplog.at_level("WARNING", logger="vlac.episode.manager"):
        assert main(["session", "--config", str(config), "--episodes", "7"]) == 0
    last = rows(out)[-1]
    assert not is_frontier_state_id(last["start_state_id"]) and last["termination"] != "aborted"
    assert "no longer kept" in caplog.text and "dropped from the kept states" in caplog.text
