"""Episode bags: step-by-step MCAP recording, exact read-back, third-party readability, crash recovery."""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from rosbags.rosbag2 import WriterError
from sample_episodes import assert_episodes_equal, assert_transitions_equal, episode, observation, transition

from vlac_core.bag import BagError, EpisodeRecorder, EpisodeTopics, read_episode, recover_episode, write_episode
from vlac_core.convert import ConversionError
from vlac_core.interfaces import make_typestore
from vlac_core.types import Termination

STORE = make_typestore()
SOURCE_DIR = Path(__file__).resolve().parents[2] / "vlac_msgs"


def _clock(start_ns: int = 1_795_000_000_000_000_000, step_ns: int = 250_000_000):
    """A fake wall clock that advances 0.25 s per reading."""
    counter = itertools.count()
    return lambda: start_ns + next(counter) * step_ns


def _recorder(bag_dir: Path, **overrides) -> EpisodeRecorder:
    values = {
        "episode_id": "ep-7",
        "robot_id": "arm_0",
        "task": "pick up the red cube",
        "policy_version": 7,
        "start_state_id": "state-42",
        "store": STORE,
        "clock_ns": _clock(),
    }
    values.update(overrides)
    return EpisodeRecorder(bag_dir, **values)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"final_observation": None, "success": None, "start_state_id": None, "termination": Termination.OPERATOR},
        {"success": False, "termination": Termination.STEP_LIMIT, "robot_id": "sim_3", "task": "open the drawer"},
    ],
    ids=["done-success", "operator-unknown", "step-limit-failure"],
)
def test_written_episode_reads_back_equal(tmp_path, overrides):
    original = episode(3, **overrides)
    bag_dir = write_episode(tmp_path / "bag", original, store=STORE)
    assert sorted(p.name for p in bag_dir.iterdir()) == ["bag.mcap", "metadata.yaml"]
    assert_episodes_equal(read_episode(bag_dir, store=STORE), original)


def test_empty_episode_reads_back(tmp_path):
    original = episode(0, termination=Termination.ABORTED, success=None)
    assert_episodes_equal(read_episode(write_episode(tmp_path / "bag", original, store=STORE)), original)


def test_recorder_summary_has_the_totals(tmp_path):
    recorder = _recorder(tmp_path / "bag")
    for step in range(3):
        recorder.write_step(transition(step))
    bag_dir = recorder.finish(termination=Termination.DONE, success=True, final_observation=observation(3))
    summaries = _decoded(bag_dir, "/arm_0/episode/summary", "vlac_msgs/msg/EpisodeSummary")
    assert len(summaries) == 1
    summary = summaries[0]
    expected_return = sum(transition(step).reward for step in range(3))
    assert (summary.episode_id, summary.length, summary.human_steps, summary.policy_version) == ("ep-7", 3, 1, 7)
    assert (summary.termination, summary.success, summary.bag_path) == ("done", 1, str(bag_dir))
    assert summary.episode_return == pytest.approx(expected_return)
    # after the start reading: 3 x (transition, image), final observation, summary = 8 readings, 0.25 s apart
    assert summary.duration_s == pytest.approx(8 * 0.25)


def _decoded(bag_dir: Path, topic: str, msgtype: str) -> list:
    with (bag_dir / f"{bag_dir.name}.mcap").open("rb") as stream:
        reader = make_reader(stream)
        return [STORE.deserialize_cdr(m.data, msgtype) for _, _, m in reader.iter_messages(topics=[topic])]


def test_mcap_reader_sees_ros2_schemas_channels_and_counts(tmp_path):
    bag_dir = write_episode(tmp_path / "bag", episode(4), store=STORE)
    with (bag_dir / "bag.mcap").open("rb") as stream:
        reader = make_reader(stream)
        assert reader.get_header().profile == "ros2"
        summary = reader.get_summary()
        schemas = {s.id: s for s in summary.schemas.values()}
        assert {s.name for s in schemas.values()} == {
            "vlac_msgs/msg/Episode",
            "vlac_msgs/msg/Transition",
            "sensor_msgs/msg/Image",
            "vlac_msgs/msg/Observation",
            "vlac_msgs/msg/EpisodeSummary",
        }
        assert {s.encoding for s in schemas.values()} == {"ros2msg"}
        assert "sensor_msgs/Image[] images" in next(
            s.data.decode() for s in schemas.values() if s.name == "vlac_msgs/msg/Observation"
        )
        channels = {c.id: c for c in summary.channels.values()}
        topics = {c.topic: schemas[c.schema_id].name for c in channels.values()}
        assert topics == {
            "/arm_0/episode/start": "vlac_msgs/msg/Episode",
            "/arm_0/episode/transition": "vlac_msgs/msg/Transition",
            "/arm_0/episode/front_image": "sensor_msgs/msg/Image",
            "/arm_0/episode/final_observation": "vlac_msgs/msg/Observation",
            "/arm_0/episode/summary": "vlac_msgs/msg/EpisodeSummary",
        }
        assert {c.message_encoding for c in channels.values()} == {"cdr"}
        counts = {channels[cid].topic: n for cid, n in summary.statistics.channel_message_counts.items()}
        assert counts == {
            "/arm_0/episode/start": 1,
            "/arm_0/episode/transition": 4,
            "/arm_0/episode/front_image": 4,
            "/arm_0/episode/final_observation": 1,
            "/arm_0/episode/summary": 1,
        }
        iterated = Counter(channel.topic for _, channel, _ in reader.iter_messages())
        assert iterated == counts


def test_front_image_topic_carries_each_steps_front_view(tmp_path):
    original = episode(2)
    bag_dir = write_episode(tmp_path / "bag", original, store=STORE)
    images = _decoded(bag_dir, "/arm_0/episode/front_image", "sensor_msgs/msg/Image")
    assert [(m.encoding, m.header.frame_id) for m in images] == [("rgb8", "front_camera")] * 2
    for msg, step in zip(images, original.transitions, strict=True):
        front = step.observation.images[0]
        np.testing.assert_array_equal(np.asarray(msg.data).reshape(front.shape), front)


def test_unfinished_bag_is_refused_by_read_and_recovered_step_by_step(tmp_path):
    recorder = _recorder(tmp_path / "bag")
    for step in range(3):
        recorder.write_step(transition(step))
    # The writer "crashed": no finish, so no metadata.yaml and no MCAP summary or footer.
    assert not (tmp_path / "bag" / "metadata.yaml").exists()
    with pytest.raises(BagError, match=r"no metadata\.yaml.*recover_episode"):
        read_episode(tmp_path / "bag", store=STORE)
    recovered = recover_episode(tmp_path / "bag", store=STORE)
    assert (recovered.episode_id, recovered.task, recovered.policy_version, recovered.start_state_id) == (
        "ep-7",
        "pick up the red cube",
        7,
        "state-42",
    )
    assert (recovered.termination, recovered.success, recovered.final_observation) == (Termination.ABORTED, None, None)
    assert len(recovered.transitions) == 3
    for got, step in zip(recovered.transitions, range(3), strict=True):
        assert_transitions_equal(got, transition(step))
    recorder.finish(termination=Termination.DONE)  # still writable afterwards


def test_truncated_file_recovers_exactly_the_steps_flushed_before_the_cut(tmp_path):
    recorder = _recorder(tmp_path / "bag")
    mcap_path = tmp_path / "bag" / "bag.mcap"
    sizes = [mcap_path.stat().st_size]  # after the start message
    for step in range(3):
        recorder.write_step(transition(step))
        sizes.append(mcap_path.stat().st_size)  # write_step returns only once the step is on disk
    recorder.finish(termination=Termination.DONE, success=True)
    full = mcap_path.read_bytes()

    def recovered_steps(cut: int) -> int:
        crashed = tmp_path / f"cut_{cut}"
        crashed.mkdir()
        (crashed / "cut.mcap").write_bytes(full[:cut])
        result = recover_episode(crashed, store=STORE)
        shutil.rmtree(crashed)
        for got, step in zip(result.transitions, range(3), strict=False):
            assert_transitions_equal(got, transition(step))
        return len(result.transitions)

    for steps, size in enumerate(sizes):
        assert recovered_steps(size) == steps
        if steps:
            # A half-written step is dropped, not misread; its chunk is whole once the trailing index starts.
            assert recovered_steps(sizes[steps - 1] + 1) == steps - 1
            assert recovered_steps((sizes[steps - 1] + size) // 2) == steps - 1
            assert recovered_steps(size - 1) == steps
    assert recovered_steps(len(full) - 3) == 3  # summary index cut off: every step is still there


def test_recovering_a_finished_bag_equals_reading_it(tmp_path):
    original = episode(2)
    bag_dir = write_episode(tmp_path / "bag", original, store=STORE)
    assert_episodes_equal(recover_episode(bag_dir, store=STORE), original)


def test_exception_inside_the_recorder_context_closes_the_bag_as_aborted(tmp_path):
    with pytest.raises(RuntimeError, match="robot fault"), _recorder(tmp_path / "bag") as recorder:
        recorder.write_step(transition(0))
        raise RuntimeError("robot fault")
    back = read_episode(tmp_path / "bag", store=STORE)
    assert (back.termination, back.success, back.length) == (Termination.ABORTED, None, 1)


def test_steps_of_another_robot_or_task_are_refused_and_leave_nothing(tmp_path):
    recorder = _recorder(tmp_path / "bag")
    with pytest.raises(BagError, match=r"step from robot 'arm_1' .* robot 'arm_0'"):
        recorder.write_step(transition(0, robot_id="arm_1"))
    with pytest.raises(BagError, match=r"task 'open the drawer' does not belong"):
        recorder.write_step(transition(0, task="open the drawer"))
    recorder.finish(termination=Termination.DONE)
    assert read_episode(tmp_path / "bag", store=STORE).length == 0
    with pytest.raises(BagError, match="already finished"):
        recorder.write_step(transition(0))


def test_bad_recorder_arguments_are_named(tmp_path):
    with pytest.raises(BagError, match=r"robot_id 'arm 0' cannot be a ROS name component"):
        EpisodeTopics.for_robot("arm 0")
    with pytest.raises(BagError, match="task: empty"):
        _recorder(tmp_path / "a", task="  ")
    with pytest.raises(ConversionError, match=r"Episode\.policy_version: -1 does not fit"):
        _recorder(tmp_path / "c", policy_version=-1)
    assert not (tmp_path / "c").exists()
    (tmp_path / "existing").mkdir()
    with pytest.raises(WriterError, match="exists already"):
        _recorder(tmp_path / "existing")
    with pytest.raises(BagError, match="termination is None"):
        write_episode(tmp_path / "b", episode(1, termination=None), store=STORE)


def test_bag_written_with_another_definition_is_refused(tmp_path):
    changed = tmp_path / "vlac_msgs"
    shutil.copytree(SOURCE_DIR, changed)
    summary_msg = changed / "msg" / "EpisodeSummary.msg"
    summary_msg.write_text(summary_msg.read_text().replace("uint32 length", "uint64 length"))
    other_store = make_typestore(changed)
    recorder = _recorder(tmp_path / "bag", store=other_store)
    recorder.finish(termination=Termination.DONE)
    with pytest.raises(BagError, match=r"vlac_msgs/msg/EpisodeSummary was recorded with a different definition"):
        read_episode(tmp_path / "bag", store=STORE)
    with pytest.raises(BagError, match=r"vlac_msgs/msg/EpisodeSummary was recorded with a different definition"):
        recover_episode(tmp_path / "bag", store=STORE)


def test_directory_without_an_episode_is_refused(tmp_path):
    with pytest.raises(BagError, match="not a bag directory"):
        read_episode(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match=r"expected one \.mcap file .* found 0"):
        recover_episode(tmp_path / "empty")
