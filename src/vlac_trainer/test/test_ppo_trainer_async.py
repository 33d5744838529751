"""The trainer thread beside collection: routing, versions pushed to the actor side, checkpoint and resume."""

from __future__ import annotations

import ppo_trainer_helpers as h
import pytest
import torch

from vlac_actor.policy import load_policy
from vlac_trainer.online.async_trainer import AsyncTrainer, saved_policy_path
from vlac_trainer.online.buffers import Route
from vlac_trainer.online.policy_publisher import PolicyPublisher, published_versions
from vlac_trainer.online.ppo_trainer import PPOTrainer
from vlac_trainer.online.update_log import read_update_log


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    return h.build_policy_dir(tmp_path_factory.mktemp("async_policy"))


def make(policy_dir, out, announced, **overrides):
    cfg = h.config(policy_dir, **overrides)
    trainer = PPOTrainer(h.load(policy_dir), cfg)
    publisher = PolicyPublisher(out / "policies", announce=lambda v, p: announced.append((v, p)), keep=2)
    return AsyncTrainer(trainer, publisher, out / "trainer")


def test_updates_run_on_the_thread_and_push_increasing_versions(policy_dir, tmp_path):
    announced = []
    trainer = make(policy_dir, tmp_path, announced, episodes_per_update=2, update_epochs=1)
    trainer.start()
    policy = h.load(policy_dir)  # version 0: the policy that "sampled" the episodes
    episodes = [
        h.sampled(policy, h.episode(f"e{i}", [0.3, -0.1, 0.2], seed=i, robot_id=f"arm_{i % 2}")) for i in range(4)
    ]
    routes = [trainer.submit(ep) for ep in episodes]
    assert routes == [Route.ROLLOUT] * 4
    assert trainer.wait_idle(120)
    trainer.stop()
    # every episode trained on exactly once, and each update logged
    assert trainer.status.rollouts_trained == 4 and trainer.status.trained_share == 1.0
    records = read_update_log(tmp_path / "trainer")
    assert [r["policy_version"] for r in records] == [v for v, _ in announced]
    assert records[-1]["trained_share"] == 1.0 and "explained_variance" in records[-1]
    assert all(r["update_s"] > 0 for r in records)  # each update's wall time
    assert (tmp_path / "trainer" / "tensorboard").is_dir()
    versions = [v for v, _ in announced]
    assert versions == sorted(versions) and versions[0] == 1 and len(versions) >= 1
    assert trainer.status.policy_version == versions[-1]
    assert published_versions(tmp_path / "policies")[-1] == versions[-1]
    # The published folder is a loadable policy checkpoint of that version.
    reloaded = load_policy(announced[-1][1], version=versions[-1], device="cpu")
    assert reloaded.version == versions[-1]


def test_every_change_of_the_backlog_is_reported_in_order_for_the_arms(policy_dir, tmp_path):
    trainer = make(policy_dir, tmp_path, [], episodes_per_update=2, update_epochs=1)
    reported = []
    trainer.on_backlog = reported.append
    policy = h.load(policy_dir)
    for i in range(3):
        trainer.submit(h.sampled(policy, h.episode(f"e{i}", [0.2], seed=i)))
    trainer.submit(h.episode("d", [0.1], human=True))  # a demo: the rollout backlog stays as it was
    assert reported == [1, 2, 3, 3] and trainer.backlog == 3
    assert trainer.update_once() is not None  # takes one batch of 2
    assert reported[-1] == 1 == trainer.backlog


def test_human_and_aborted_episodes_are_routed_not_trained_as_rollouts(policy_dir, tmp_path):
    from vlac_core.types import Termination

    trainer = make(policy_dir, tmp_path, [])
    assert trainer.submit(h.episode("d", [0.1], human=True)) is Route.DEMO
    assert trainer.submit(h.episode("a", [0.1], termination=Termination.ABORTED)) is Route.NOT_TRAINED
    assert len(trainer.demos) == 1 and len(trainer.rollouts) == 0


def test_self_imitation_keeps_the_done_rollouts_trains_on_them_and_resumes_them(policy_dir, tmp_path):
    from vlac_core.types import Termination

    trainer = make(policy_dir, tmp_path, [], self_imitation_coef=1.0, self_imitation_capacity=2, episodes_per_update=2)
    policy = h.load(policy_dir)
    assert trainer.submit(h.sampled(policy, h.episode("s0", [0.0, 1.0], termination=Termination.DONE))) is Route.ROLLOUT
    trainer.submit(h.sampled(policy, h.episode("f0", [0.0, 0.0], seed=1)))  # cut off at the step limit: not kept
    trainer.submit(h.episode("g0", [0.0, 1.0], human=True, termination=Termination.DONE))  # a person's: demo only
    assert [ep.episode_id for ep in trainer.successes.episodes()] == ["s0"]
    stats = trainer.update_once()
    assert stats.self_imitation_steps == 2 and stats.self_imitation_nll is not None
    assert read_update_log(tmp_path / "trainer")[-1]["successes_kept"] == 1
    assert [ep.episode_id for ep in trainer.successes.episodes()] == ["s0"]  # replayed again by later updates
    trainer.save_checkpoint()
    resumed = make(policy_dir, tmp_path, [], self_imitation_coef=1.0, self_imitation_capacity=2)
    assert resumed.restore() and [ep.episode_id for ep in resumed.successes.episodes()] == ["s0"]
    assert make(policy_dir, tmp_path / "off", [], self_imitation_coef=0.0).successes is None


def test_resume_continues_from_the_checkpoint_without_losing_stored_episodes(policy_dir, tmp_path):
    announced = []
    first = make(policy_dir, tmp_path, announced, episodes_per_update=2, update_epochs=1)
    first.submit(h.episode("e0", [0.3, -0.2], seed=0))
    first.submit(h.episode("e1", [0.1, 0.2], seed=1))
    stats = first.update_once()
    first.submit(h.episode("e2", [0.5, 0.5], seed=2))
    first.submit(h.episode("d0", [0.0, 0.1], seed=3, human=True))
    first.save_checkpoint()
    first.submit(h.episode("e3", [0.5], seed=4))  # after the checkpoint: "lost" in a crash, but recorded

    saved = saved_policy_path(tmp_path / "trainer")
    assert saved == (announced[-1][1], stats.policy_version)
    path, version = saved
    cfg = h.config(policy_dir, episodes_per_update=2, update_epochs=1)
    resumed = AsyncTrainer(
        PPOTrainer(h.load(path, version=version), cfg),
        PolicyPublisher(tmp_path / "policies", keep=2),
        tmp_path / "trainer",
    )
    assert resumed.restore()
    assert resumed.trainer.policy.version == version and resumed.trainer.updates == 1
    # e0 and e1 were trained on (taken out of the buffer); e2 waits for the next update
    assert [ep.episode_id for ep in resumed.rollouts.episodes()] == ["e2"]
    assert [ep.episode_id for ep in resumed.demos.episodes()] == ["d0"]
    assert resumed.missing_episode_ids(["e0", "e1", "e2", "d0", "e3"]) == ["e3"]
    assert resumed.trainer.optimizer.state_dict()["state"]  # Adam moments came back
    again = resumed.update_once()
    assert again.policy_version == version + 1


def test_a_version_folder_left_by_a_crashed_run_is_replaced(policy_dir, tmp_path):
    policy = h.load(policy_dir, version=1)
    stale = tmp_path / "policies" / "v000001"
    stale.mkdir(parents=True)
    (stale / "leftover").write_text("from a run that crashed before its checkpoint")
    path = PolicyPublisher(tmp_path / "policies").publish(policy)
    assert path == stale and not (path / "leftover").exists() and (path / "value_head.safetensors").exists()


def test_keep_every_leaves_every_kth_version_beside_the_newest(policy_dir, tmp_path):
    publisher = PolicyPublisher(tmp_path / "policies", keep=1, keep_every=2)
    for version in range(1, 6):
        publisher.publish(h.load(policy_dir, version=version))
    assert published_versions(tmp_path / "policies") == [2, 4, 5]  # 1 and 3 dropped, the newest kept
    plain = PolicyPublisher(tmp_path / "plain", keep=1)
    for version in (1, 2):
        plain.publish(h.load(policy_dir, version=version))
    assert published_versions(tmp_path / "plain") == [2]
    with pytest.raises(ValueError, match="keep_every=-1"):
        PolicyPublisher(tmp_path / "bad", keep_every=-1)


def test_the_lessons_running_sum_survives_a_restart(policy_dir, tmp_path):
    announced = []
    first = make(policy_dir, tmp_path, announced, episodes_per_update=2, update_epochs=1, lesson_agreement=True)
    first.submit(h.episode("e0", [0.3, -0.2], seed=0))
    first.submit(h.episode("e1", [0.1, 0.2], seed=1))
    assert first.update_once().lessons == 1
    first.save_checkpoint()
    saved_sum = first.trainer.lessons.unit_sum.clone()

    path, version = saved_policy_path(tmp_path / "trainer")
    cfg = h.config(policy_dir, episodes_per_update=2, update_epochs=1, lesson_agreement=True)
    publisher = PolicyPublisher(tmp_path / "policies", keep=2)
    resumed = AsyncTrainer(PPOTrainer(h.load(path, version=version), cfg), publisher, tmp_path / "trainer")
    assert resumed.restore()
    assert resumed.trainer.lessons.count == 1
    assert torch.equal(resumed.trainer.lessons.unit_sum, saved_sum)
    resumed.submit(h.episode("e2", [0.5, -0.5], seed=2))
    resumed.submit(h.episode("e3", [0.2, 0.1], seed=3))
    again = resumed.update_once()
    assert again.lessons == 2 and -1.0 <= again.lesson_cos_to_past <= 1.0
