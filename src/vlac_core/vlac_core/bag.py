"""Episodes recorded to rosbag2 (MCAP storage) step by step, and read back into core Episodes.

One bag directory per episode, written with rosbags (no ROS needed) and readable by ``ros2 bag``,
Foxglove and the ``mcap`` tools. Topics, for robot ``arm_0``:

- ``/arm_0/episode/start`` (vlac_msgs/Episode): written at open, with no transitions and no final
  observation (an Observation without images); it carries the episode's keys (id, task,
  policy version, start state), so a bag whose writer crashed still says what it was.
- ``/arm_0/episode/transition`` (vlac_msgs/Transition): one per step, as it happens.
- ``/arm_0/episode/front_image`` (sensor_msgs/Image): the front view of each step, for viewers.
- ``/arm_0/episode/final_observation`` (vlac_msgs/Observation): at the end, when there is one.
- ``/arm_0/episode/summary`` (vlac_msgs/EpisodeSummary): at the end: termination, success, totals.

Crash safety: rosbags' MCAP writer buffers messages in a chunk of up to 1 MiB; the recorder closes
the chunk after every step and flushes (and fsyncs) the file, so a crash loses at most the step
being written. :func:`recover_episode` reads such an unfinished bag (no metadata.yaml, no MCAP
summary) up to its last complete step.
"""

from __future__ import annotations

import os
import re
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcap.exceptions import McapError
from mcap.records import Channel, Chunk, Message, Schema
from mcap.stream_reader import StreamReader, breakup_chunk
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapWriter

from vlac_core import convert
from vlac_core.images import image_to_msg
from vlac_core.interfaces import make_typestore
from vlac_core.message_set import rosbags_message_set
from vlac_core.types import Episode, Observation, Termination, Transition

#: Written to the bag's custom_data so readers can tell a VLAC episode bag and its layout version.
FORMAT_KEY = "vlac_episode_format"
FORMAT_VERSION = "1"
#: frame_id of the front_image topic's images.
FRONT_FRAME_ID = "front_camera"
#: rosbag2 metadata version 8 is read by Iron, Jazzy and later.
_ROSBAG2_VERSION = 8
_ROBOT_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class BagError(ValueError):
    """An episode bag cannot be written or read as asked; the message names the bag and the problem."""


@dataclass(frozen=True)
class EpisodeTopics:
    """Topic names of one robot's episode bag."""

    start: str
    transition: str
    front_image: str
    final_observation: str
    summary: str

    @classmethod
    def for_robot(cls, robot_id: str) -> EpisodeTopics:
        if not _ROBOT_ID.match(robot_id):
            raise BagError(
                f"robot_id {robot_id!r} cannot be a ROS name component (letters, digits, '_', starting with a letter)"
            )
        prefix = f"/{robot_id}/episode"
        return cls(
            start=f"{prefix}/start",
            transition=f"{prefix}/transition",
            front_image=f"{prefix}/front_image",
            final_observation=f"{prefix}/final_observation",
            summary=f"{prefix}/summary",
        )


_TOPIC_TYPES = {
    "start": "vlac_msgs/msg/Episode",
    "transition": "vlac_msgs/msg/Transition",
    "front_image": "sensor_msgs/msg/Image",
    "final_observation": "vlac_msgs/msg/Observation",
    "summary": "vlac_msgs/msg/EpisodeSummary",
}


class EpisodeRecorder:
    """Writes one episode to a new bag directory as it runs.

    Open it when the episode starts, :meth:`write_step` each transition, :meth:`finish` at the end.
    Used as a context manager, an episode left unfinished (an exception, or no ``finish``) is
    closed as ``aborted`` so the bag is complete and nothing written is lost. Not thread-safe.
    """

    def __init__(
        self,
        bag_dir: Path | str,
        *,
        episode_id: str,
        robot_id: str,
        task: str,
        policy_version: int = 0,
        start_state_id: str | None = None,
        store: Any = None,
        clock_ns: Callable[[], int] = time.time_ns,
        fsync: bool = True,
    ) -> None:
        if not episode_id:
            raise BagError("episode_id: empty")
        if not task.strip():
            raise BagError("task: empty task text")
        self.bag_dir = Path(bag_dir)
        self.topics = EpisodeTopics.for_robot(robot_id)
        self._store = store if store is not None else make_typestore()
        self._msgs = rosbags_message_set(self._store)
        self._clock_ns = clock_ns
        self._fsync = fsync
        self._header = Episode(
            episode_id=episode_id,
            robot_id=robot_id,
            task=task,
            policy_version=policy_version,
            start_state_id=start_state_id,
        )
        # Totals for the summary; transitions are not kept in memory (images are large).
        self.steps = 0
        self._return = 0.0
        self._human_steps = 0
        self._finished = False
        start_msg = convert.episode_to_msg(self._header, self._msgs)  # bad keys fail before the bag exists

        self._writer = Writer(self.bag_dir, version=_ROSBAG2_VERSION, storage_plugin=StoragePlugin.MCAP)
        self._writer.set_custom_data(FORMAT_KEY, FORMAT_VERSION)
        self._writer.set_custom_data("episode_id", episode_id)
        self._writer.set_custom_data("robot_id", robot_id)
        self._writer.open()
        if not isinstance(self._writer.storage, McapWriter):
            raise BagError(f"{self.bag_dir}: rosbags did not open an MCAP storage writer")
        self._connections = {
            name: self._writer.add_connection(getattr(self.topics, name), msgtype, typestore=self._store)
            for name, msgtype in _TOPIC_TYPES.items()
        }
        self._last_ns = -1
        self._start_ns = self._log_time_ns()
        self._write("start", start_msg, self._start_ns)
        self._flush()

    @property
    def finished(self) -> bool:
        return self._finished

    def write_step(self, transition: Transition) -> None:
        """Append one step and flush it to disk before returning."""
        self._check_open()
        if not isinstance(transition, Transition):
            raise BagError(f"write_step: expected a Transition, got {type(transition).__name__}")
        obs = transition.observation
        if obs.robot_id != self._header.robot_id or obs.task != self._header.task:
            raise BagError(
                f"{self.bag_dir}: step from robot {obs.robot_id!r} with task {obs.task!r} does not belong to "
                f"this episode of robot {self._header.robot_id!r} with task {self._header.task!r}"
            )
        # Convert both messages before writing either, so a bad step leaves no half in the bag.
        transition_msg = convert.transition_to_msg(transition, self._msgs)
        image_msg = image_to_msg(obs.images[0], self._msgs, stamp_s=obs.stamp_s, frame_id=FRONT_FRAME_ID)
        self._write("transition", transition_msg, self._log_time_ns())
        self._write("front_image", image_msg, self._log_time_ns())
        self._flush()
        self.steps += 1
        self._return += float(transition.reward)
        self._human_steps += int(transition.human)

    def finish(
        self,
        *,
        termination: Termination,
        success: bool | None = None,
        final_observation: Observation | None = None,
    ) -> Path:
        """Write the final observation and the summary, close the bag, and return its directory."""
        self._check_open()
        termination = Termination(termination)
        if success not in (True, False, None):
            raise BagError(f"success: expected True, False or None (unknown), got {success!r}")
        final_msg = None if final_observation is None else convert.observation_to_msg(final_observation, self._msgs)
        now_ns = self._log_time_ns()
        if final_msg is not None:
            self._write("final_observation", final_msg, now_ns)
            now_ns = self._log_time_ns()
        summary = self._msgs.EpisodeSummary(
            header=self._msgs.header(now_ns / 1e9),
            episode_id=self._header.episode_id,
            robot_id=self._header.robot_id,
            task=self._header.task,
            length=self.steps,
            episode_return=self._return,
            termination=convert.termination_to_text(termination),
            success=convert.success_to_int8(success),
            human_steps=self._human_steps,
            policy_version=self._header.policy_version,
            duration_s=(now_ns - self._start_ns) / 1e9,
            bag_path=str(self.bag_dir),
        )
        self._write("summary", summary, now_ns)
        self._writer.close()
        self._finished = True
        return self.bag_dir

    def __enter__(self) -> EpisodeRecorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._finished:
            self.finish(termination=Termination.ABORTED)

    def _check_open(self) -> None:
        if self._finished:
            raise BagError(f"{self.bag_dir}: the episode was already finished")

    def _log_time_ns(self) -> int:
        # Strictly increasing even if the wall clock steps back, so time order is write order.
        self._last_ns = max(self._clock_ns(), self._last_ns + 1)
        return self._last_ns

    def _write(self, name: str, msg: Any, stamp_ns: int) -> None:
        data = self._store.serialize_cdr(msg, _TOPIC_TYPES[name])
        self._writer.write(self._connections[name], stamp_ns, data)

    def _flush(self) -> None:
        storage = self._writer.storage
        storage.close_chunk()  # rosbags would otherwise keep up to 1 MiB of steps in memory
        storage.bio.flush()
        if self._fsync:
            os.fsync(storage.bio.fileno())


def write_episode(bag_dir: Path | str, episode: Episode, *, store: Any = None, fsync: bool = True) -> Path:
    """Record a whole, already finished episode (e.g. a demonstration) to a new bag directory."""
    if episode.termination is None:
        raise BagError(f"episode {episode.episode_id!r}: termination is None; a recorded episode needs one")
    recorder = EpisodeRecorder(
        bag_dir,
        episode_id=episode.episode_id,
        robot_id=episode.robot_id,
        task=episode.task,
        policy_version=episode.policy_version,
        start_state_id=episode.start_state_id,
        store=store,
        fsync=fsync,
    )
    for transition in episode.transitions:
        recorder.write_step(transition)
    return recorder.finish(
        termination=episode.termination, success=episode.success, final_observation=episode.final_observation
    )


# --- reading ----------------------------------------------------------------------------------


def read_episode(bag_dir: Path | str, *, store: Any = None) -> Episode:
    """The Episode of a finished bag; a bag whose writer did not finish is refused (see recover_episode)."""
    bag_dir = Path(bag_dir)
    if not bag_dir.is_dir():
        raise BagError(f"{bag_dir}: not a bag directory")
    if not (bag_dir / "metadata.yaml").exists():
        raise BagError(
            f"{bag_dir}: no metadata.yaml, so its writer did not finish (a crash?); "
            "recover its complete steps with vlac_core.bag.recover_episode"
        )
    store = store if store is not None else make_typestore()
    with Reader(bag_dir) as reader:
        for connection in reader.connections:
            _check_definition(bag_dir, store, connection.msgtype, digest=connection.digest)
        messages = [
            (connection.topic, connection.msgtype, store.deserialize_cdr(raw, connection.msgtype))
            for connection, _, raw in reader.messages()
        ]
    return _assemble(bag_dir, messages, complete=True)


def recover_episode(bag_dir: Path | str, *, store: Any = None) -> Episode:
    """The Episode of a bag whose writer may have crashed: every step that reached the disk.

    Reads the MCAP file front to back and stops at the first incomplete record. Without a
    summary the episode is marked ``aborted`` with unknown success (it is kept, not trained on).
    A finished bag gives the same Episode as :func:`read_episode`.
    """
    bag_dir = Path(bag_dir)
    files = sorted(bag_dir.glob("*.mcap")) if bag_dir.is_dir() else []
    if len(files) != 1:
        raise BagError(f"{bag_dir}: expected one .mcap file in the bag directory, found {len(files)}")
    store = store if store is not None else make_typestore()
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    messages = []
    with files[0].open("rb") as stream:
        for record in _complete_records(stream):
            if isinstance(record, Schema):
                schemas[record.id] = record.name
                _check_definition(bag_dir, store, record.name, msgdef=record.data.decode("utf-8"))
            elif isinstance(record, Channel):
                channels[record.id] = (record.topic, schemas[record.schema_id])
            elif isinstance(record, Message):
                topic, msgtype = channels[record.channel_id]
                messages.append((topic, msgtype, store.deserialize_cdr(record.data, msgtype)))
    return _assemble(bag_dir, messages, complete=False)


def _complete_records(stream) -> Iterator[Any]:
    """MCAP records up to the first truncated one; chunks are yielded record by record, whole or not at all."""
    records = StreamReader(stream, emit_chunks=True).records
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except (McapError, struct.error, ValueError):
            return  # truncated or half-written record: the writer stopped here
        if isinstance(record, Chunk):
            if record.compression == "" and len(record.data) != record.uncompressed_size:
                return
            yield from breakup_chunk(record)
        else:
            yield record


def _check_definition(
    bag_dir: Path, store: Any, msgtype: str, *, digest: str | None = None, msgdef: str | None = None
) -> None:
    """Refuse to decode a type whose recorded definition (hash or text) differs from ours: it would misparse."""
    if msgtype not in store.types:
        raise BagError(f"{bag_dir}: message type {msgtype} is unknown to this vlac_msgs version")
    changed = (digest is not None and digest != store.hash_rihs01(msgtype)) or (
        msgdef is not None and msgdef != store.generate_msgdef(msgtype, ros_version=2)[0]
    )
    if changed:
        raise BagError(f"{bag_dir}: {msgtype} was recorded with a different definition than this vlac_msgs has")


def _assemble(bag_dir: Path, messages: list[tuple[str, str, Any]], *, complete: bool) -> Episode:
    """Build the Episode from (topic, type, message) in bag order."""
    by_kind: dict[str, list[Any]] = {name: [] for name in _TOPIC_TYPES}
    for topic, msgtype, msg in messages:
        kind = topic.rsplit("/", 1)[-1]
        if kind in by_kind and _TOPIC_TYPES[kind] == msgtype:
            by_kind[kind].append(msg)
    if len(by_kind["start"]) != 1:
        raise BagError(
            f"{bag_dir}: expected one episode/start message, found {len(by_kind['start'])} (not an episode bag?)"
        )
    episode = convert.episode_from_msg(by_kind["start"][0])
    for i, msg in enumerate(by_kind["transition"]):
        try:
            episode.transitions.append(convert.transition_from_msg(msg))
        except ValueError as exc:
            raise BagError(f"{bag_dir}: transition {i}: {exc}") from exc
    if len(by_kind["final_observation"]) > 1 or len(by_kind["summary"]) > 1:
        raise BagError(f"{bag_dir}: more than one final observation or summary")
    if by_kind["final_observation"]:
        episode.final_observation = convert.observation_from_msg(by_kind["final_observation"][0])
    if by_kind["summary"]:
        summary = by_kind["summary"][0]
        if summary.length != episode.length:
            raise BagError(f"{bag_dir}: summary counts {summary.length} steps but the bag holds {episode.length}")
        episode.termination = convert.termination_from_text(summary.termination)
        episode.success = convert.success_from_int8(int(summary.success))
    elif complete:
        raise BagError(f"{bag_dir}: finished bag without an episode/summary message")
    else:
        episode.termination, episode.success = Termination.ABORTED, None
    return episode
