"""Episode bags: step-by-step MCAP recording, exact read-back, third-party readability, crash recovery."""

from __future__ import annotations

import dataclasses
import itertools
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from rosbags.rosbag2 import WriterError
from sample_episodes import assert_episodes_equal, assert_transitions_equal, episode, observation, transition

from vlac_core.bag import (
    DAMAGED_SUFFIX,
    BagError,
    EpisodeRecorder,
    EpisodeTopics,
    inspect_bag,
    read_episode,
    recover_bag,
    recover_episode,
    write_episode,
)
from vlac_core.convert import ConversionError
from vlac_core.type_store import make_typestore
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


# --- damaged and foreign files, inspect_bag, recover_bag ---------------------------------------------


def _crashed_bag(bag_dir: Path, steps: int) -> Path:
    """A bag whose writer stopped after ``steps`` steps (no finish: no metadata.yaml, no summary)."""
    recorder = _recorder(bag_dir)
    for step in range(steps):
        recorder.write_step(transition(step))
    return bag_dir


def _flip_inside(mcap_path: Path, needle: bytes) -> None:
    """Flip the top bit of the first byte of ``needle`` in the file: a string that no longer decodes as UTF-8."""
    data = bytearray(mcap_path.read_bytes())
    data[data.index(needle)] ^= 0x80
    mcap_path.write_bytes(bytes(data))


def test_truncated_mcap_under_its_metadata_yaml_is_a_bag_error_naming_the_bag(tmp_path):
    bag_dir = write_episode(tmp_path / "bag", episode(3), store=STORE)
    mcap_path = bag_dir / "bag.mcap"
    mcap_path.write_bytes(mcap_path.read_bytes()[: mcap_path.stat().st_size * 2 // 3])
    with pytest.raises(BagError, match=rf"^{bag_dir}: damaged or not an episode bag \(ReaderError: .*vlac bag recover"):
        read_episode(bag_dir, store=STORE)


def test_bit_flipped_mcap_is_a_bag_error_not_a_unicode_error(tmp_path):
    bag_dir = write_episode(tmp_path / "bag", episode(3), store=STORE)
    _flip_inside(bag_dir / "bag.mcap", b"pick up the red cube")  # the task text of the episode/start message
    with pytest.raises(BagError, match=rf"^{bag_dir}: damaged or not an episode bag"):
        read_episode(bag_dir, store=STORE)
    with pytest.raises(BagError, match=rf"^{bag_dir}: expected one episode/start message, found 0"):
        recover_episode(bag_dir, store=STORE)


def test_inspect_tells_a_finished_bag_from_a_crashed_one(tmp_path):
    original = episode(3)
    original.transitions = [
        dataclasses.replace(step, action=dataclasses.replace(step.action, policy_version=version))
        for step, version in zip(original.transitions, (7, 8, 8), strict=True)
    ]
    finished = inspect_bag(write_episode(tmp_path / "done", original, store=STORE, clock_ns=_clock()), store=STORE)
    assert (finished.complete, finished.problem, finished.episode.length) == (True, "", 3)
    assert finished.outcome == "done, success"
    assert finished.policy_versions == (7, 8)
    # start, (transition, image) x 3, final observation, summary: 9 readings of a 0.25 s clock
    assert finished.duration_s == pytest.approx(8 * 0.25)
    crashed = inspect_bag(_crashed_bag(tmp_path / "crashed", 2), store=STORE)
    assert (crashed.complete, crashed.episode.length, crashed.outcome) == (False, 2, "aborted, success unknown")
    assert "no metadata.yaml" in crashed.problem
    summary = crashed.summary()
    assert (summary["steps"], summary["human_steps"], summary["complete"]) == (2, 1, False)


def test_recover_bag_rewrites_a_crashed_bag_as_a_complete_aborted_episode_with_its_log_times(tmp_path):
    bag_dir = _crashed_bag(tmp_path / "bag", 3)
    before = inspect_bag(bag_dir, store=STORE)
    result = recover_bag(bag_dir, store=STORE, fsync=False)
    assert result.rewritten and result.kept_original is None
    back = read_episode(bag_dir, store=STORE)  # readable by rosbags' reader now
    assert (back.termination, back.success, back.length) == (Termination.ABORTED, None, 3)
    for got, step in zip(back.transitions, range(3), strict=True):
        assert_transitions_equal(got, transition(step))
    after = inspect_bag(bag_dir, store=STORE)
    assert after.complete and after.duration_s >= before.duration_s  # original times kept (+ the summary)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]  # nothing left beside it
    again = recover_bag(bag_dir, store=STORE)
    assert not again.rewritten and again.info.complete


def test_recover_bag_resumes_a_recovery_that_was_interrupted(tmp_path):
    bag_dir = _crashed_bag(tmp_path / "bag", 2)
    aside = tmp_path / ".bag.partial"
    shutil.move(bag_dir, aside)  # the recovery moved the original aside ...
    _crashed_bag(bag_dir, 1)  # ... and died while writing the new bag
    result = recover_bag(bag_dir, store=STORE, fsync=False)
    assert result.rewritten and read_episode(bag_dir, store=STORE).length == 2
    assert not aside.exists()


def test_recover_bag_keeps_a_damaged_original_inside_the_new_bag(tmp_path):
    bag_dir = _crashed_bag(tmp_path / "bag", 3)
    data = bytearray((bag_dir / "bag.mcap").read_bytes())
    # The third step's transition message no longer decodes (its CDR header is broken).
    original_size = len(data)
    recorder_steps = [m for m in _message_offsets(bytes(data)) if m[0] == "transition"]
    data[recorder_steps[2][1]] ^= 0xFF  # first byte of the CDR encapsulation header
    (bag_dir / "bag.mcap").write_bytes(bytes(data))
    result = recover_bag(bag_dir, store=STORE, fsync=False)
    assert read_episode(bag_dir, store=STORE).length == 2
    assert "damaged after" in result.info.problem
    assert result.kept_original == bag_dir / f"bag.mcap{DAMAGED_SUFFIX}"
    assert result.kept_original.stat().st_size == original_size
    assert read_episode(bag_dir, store=STORE).length == 2  # the kept file is not read as part of the bag


def _message_offsets(data: bytes) -> list[tuple[str, int]]:
    """(topic kind, file offset of the message's data) of every message, from an uncompressed MCAP file."""
    import io

    from mcap.records import Channel, Chunk, DataEnd, Message
    from mcap.stream_reader import StreamReader, breakup_chunk

    channels, found = {}, []
    stream = io.BytesIO(data + b"\x0f" + (4).to_bytes(8, "little") + bytes(4))  # DataEnd: the crashed file has none
    for record in StreamReader(stream, emit_chunks=True).records:
        if isinstance(record, DataEnd):
            break
        if isinstance(record, Channel):
            channels[record.id] = record.topic.rsplit("/", 1)[-1]
        elif isinstance(record, Chunk):
            chunk_start = data.index(record.data)
            for inner in breakup_chunk(record):
                if isinstance(inner, Channel):
                    channels[inner.id] = inner.topic.rsplit("/", 1)[-1]
                elif isinstance(inner, Message):
                    found.append((channels[inner.channel_id], chunk_start + record.data.index(inner.data)))
    return found


def test_recover_bag_refuses_a_foreign_folder_and_leaves_it_alone(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hello")
    with pytest.raises(BagError, match=r"notes: not an episode bag: expected one \.mcap file"):
        recover_bag(tmp_path / "notes", store=STORE)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.mcap").write_bytes(b"\x89MCAP0\r\n" + bytes(range(256)) * 4)
    with pytest.raises(BagError, match=r"junk: .*episode/start"):
        recover_bag(tmp_path / "junk", store=STORE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk", "notes"]
    assert (tmp_path / "notes" / "a.txt").read_text() == "hello"
