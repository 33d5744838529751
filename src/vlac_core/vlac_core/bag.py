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
summary) up to its last complete step; :func:`recover_bag` rewrites it as a complete bag in place
(what ``vlac bag recover`` runs), and :func:`inspect_bag` says what a bag holds and whether it is
complete (``vlac bag info``).

Damage: a file that cannot be decoded (truncated under a finished metadata.yaml, flipped bits, a
foreign file) is reported as a :class:`BagError` naming the bag, never as a decoder's exception.
rosbags writes no MCAP CRCs, so flipped bits inside image or number bytes read back unnoticed.
"""

from __future__ import annotations

import os
import re
import shutil
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
from rosbags.rosbag2.errors import ReaderError
from rosbags.rosbag2.storage_mcap import McapWriter
from rosbags.serde import SerdeError

from vlac_core import convert
from vlac_core.images import image_to_msg
from vlac_core.message_set import rosbags_message_set
from vlac_core.type_store import make_typestore
from vlac_core.types import Episode, Observation, Termination, Transition

#: Written to the bag's custom_data so readers can tell a VLAC episode bag and its layout version.
FORMAT_KEY = "vlac_episode_format"
FORMAT_VERSION = "1"
#: frame_id of the front_image topic's images.
FRONT_FRAME_ID = "front_camera"
#: rosbag2 metadata version 8 is read by Iron, Jazzy and later.
_ROSBAG2_VERSION = 8
_ROBOT_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: What rosbags, mcap and the CDR decoder raise on a damaged or foreign file (BagError is re-raised as is).
_DECODE_ERRORS = (
    ReaderError,
    SerdeError,
    McapError,
    struct.error,
    ValueError,
    KeyError,
    IndexError,
    OverflowError,
    MemoryError,  # a flipped length field asks for a huge buffer
)
#: Suffix under which recover_bag keeps a damaged original inside the rewritten bag (not read as a bag file).
DAMAGED_SUFFIX = ".damaged"


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


def write_episode(
    bag_dir: Path | str,
    episode: Episode,
    *,
    store: Any = None,
    fsync: bool = True,
    clock_ns: Callable[[], int] = time.time_ns,
) -> Path:
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
        clock_ns=clock_ns,
        fsync=fsync,
    )
    for transition in episode.transitions:
        recorder.write_step(transition)
    return recorder.finish(
        termination=episode.termination, success=episode.success, final_observation=episode.final_observation
    )


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Record:
    """One decoded message of a bag, in file order."""

    topic: str
    msgtype: str
    msg: Any
    log_time_ns: int


def read_episode(bag_dir: Path | str, *, store: Any = None) -> Episode:
    """The Episode of a finished bag; a bag whose writer did not finish is refused (see recover_episode)."""
    bag_dir = Path(bag_dir)
    return _assemble(bag_dir, _read_finished(bag_dir, store), complete=True)


def recover_episode(bag_dir: Path | str, *, store: Any = None) -> Episode:
    """The Episode of a bag whose writer may have crashed: every step that reached the disk.

    Reads the MCAP file front to back and stops at the first incomplete (or undecodable) record.
    Without a summary the episode is marked ``aborted`` with unknown success (it is kept, not
    trained on). A finished bag gives the same Episode as :func:`read_episode`.
    """
    bag_dir = Path(bag_dir)
    records, _damage = _read_recoverable(bag_dir, store)
    return _assemble(bag_dir, records, complete=False)


@dataclass(frozen=True)
class BagInfo:
    """What an episode bag holds, for ``vlac bag info``; ``problem`` says why it is not complete."""

    bag_dir: Path
    episode: Episode
    complete: bool
    duration_s: float  # first to last message written
    problem: str = ""

    @property
    def policy_versions(self) -> tuple[int, ...]:
        """Versions of the policy that chose the actions (the start version when there is no step)."""
        versions = {t.action.policy_version for t in self.episode.transitions}
        return tuple(sorted(versions or {self.episode.policy_version}))

    @property
    def outcome(self) -> str:
        """Termination and ground-truth success, e.g. ``done, success`` or ``aborted, success unknown``."""
        termination = self.episode.termination.value if self.episode.termination is not None else "none"
        success = {True: "success", False: "failure", None: "success unknown"}[self.episode.success]
        return f"{termination}, {success}"

    def summary(self) -> dict[str, Any]:
        """JSON-ready fields (strict JSON: no NaN)."""
        ep = self.episode
        return {
            "bag": str(self.bag_dir),
            "episode_id": ep.episode_id,
            "robot_id": ep.robot_id,
            "task": ep.task,
            "steps": ep.length,
            "duration_s": round(self.duration_s, 3),
            "termination": ep.termination.value if ep.termination is not None else None,
            "success": ep.success,
            "policy_versions": list(self.policy_versions),
            "human_steps": ep.human_steps,
            "episode_return": round(ep.episode_return, 6),
            "complete": self.complete,
            "problem": self.problem,
        }


def inspect_bag(bag_dir: Path | str, *, store: Any = None) -> BagInfo:
    """Read a bag, finished or not; an unfinished or damaged one is read up to its last complete step."""
    bag_dir = Path(bag_dir)
    store = store if store is not None else make_typestore()
    try:
        records = _read_finished(bag_dir, store)
        return BagInfo(bag_dir, _assemble(bag_dir, records, complete=True), True, _duration_s(records))
    except BagError as finished_error:
        problem = str(finished_error).removeprefix(f"{bag_dir}: ")
    records, damage = _read_recoverable(bag_dir, store)
    episode = _assemble(bag_dir, records, complete=False)
    return BagInfo(bag_dir, episode, False, _duration_s(records), damage or problem)


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover_bag` did to one bag."""

    info: BagInfo  # the bag as it is now
    rewritten: bool  # False: it was complete already, nothing changed
    kept_original: Path | None = None  # the damaged original file, kept inside the bag


def recover_bag(bag_dir: Path | str, *, store: Any = None, fsync: bool = True) -> Recovery:
    """Rewrite an unfinished or damaged bag as a complete one holding every step that can be read.

    A bag without a summary becomes an ``aborted`` episode with unknown success. The rewrite is
    crash-safe: the original is renamed to a hidden sibling ``.<name>.partial`` first and removed
    only after the new bag is closed; an interrupted recovery resumes from it. When undecodable data
    (not just a cut-off tail) stopped the reading, the original file is kept inside the new bag as
    ``<file>.mcap.damaged``, so nothing is lost. A complete bag is left as it is.
    """
    bag_dir = Path(bag_dir)
    store = store if store is not None else make_typestore()
    aside = bag_dir.with_name(f".{bag_dir.name}.partial")
    if not aside.is_dir():
        info = inspect_bag(bag_dir, store=store)  # refuses a foreign folder before anything moves
        if info.complete:
            return Recovery(info, rewritten=False)
        os.replace(bag_dir, aside)
    elif bag_dir.exists():
        shutil.rmtree(bag_dir)  # half-written by a recovery that was interrupted; the original is aside
    records, damage = _read_recoverable(aside, store)
    episode = _assemble(bag_dir, records, complete=False)
    replay = iter([r.log_time_ns for r in records])
    last_ns = [0]

    def original_clock_ns() -> int:  # the rewritten bag keeps the original log times
        last_ns[0] = next(replay, last_ns[0] + 1)
        return last_ns[0]

    write_episode(bag_dir, episode, store=store, fsync=fsync, clock_ns=original_clock_ns)
    kept = None
    if damage:
        (original,) = sorted(aside.glob("*.mcap"))
        kept = bag_dir / f"{original.name}{DAMAGED_SUFFIX}"
        os.replace(original, kept)
    shutil.rmtree(aside)
    info = inspect_bag(bag_dir, store=store)
    return Recovery(BagInfo(bag_dir, info.episode, info.complete, info.duration_s, damage), True, kept)


def _read_finished(bag_dir: Path, store: Any) -> list[_Record]:
    """Every message of a finished bag, through rosbags' reader (which checks metadata.yaml and the footer)."""
    if not bag_dir.is_dir():
        raise BagError(f"{bag_dir}: not a bag directory (an episode bag is a folder with metadata.yaml and a .mcap)")
    if not (bag_dir / "metadata.yaml").exists():
        raise BagError(
            f"{bag_dir}: no metadata.yaml, so its writer did not finish (a crash?); recover its complete steps "
            f"with `vlac bag recover {bag_dir}` (vlac_core.bag.recover_episode)"
        )
    store = store if store is not None else make_typestore()
    try:
        with Reader(bag_dir) as reader:
            for connection in reader.connections:
                _check_definition(bag_dir, store, connection.msgtype, digest=connection.digest)
            return [
                _Record(connection.topic, connection.msgtype, store.deserialize_cdr(raw, connection.msgtype), stamp)
                for connection, stamp, raw in reader.messages()
            ]
    except BagError:
        raise
    except (*_DECODE_ERRORS, OSError) as exc:
        raise BagError(
            f"{bag_dir}: damaged or not an episode bag ({_describe(exc)}); "
            f"`vlac bag recover {bag_dir}` keeps the steps that can still be read"
        ) from exc


def _read_recoverable(bag_dir: Path, store: Any) -> tuple[list[_Record], str]:
    """Messages up to the first incomplete or undecodable record, and what stopped the reading ("" if nothing did)."""
    if not bag_dir.is_dir():
        raise BagError(f"{bag_dir}: not a bag directory (an episode bag is a folder with metadata.yaml and a .mcap)")
    files = sorted(bag_dir.glob("*.mcap"))
    if len(files) != 1:
        raise BagError(f"{bag_dir}: not an episode bag: expected one .mcap file in the folder, found {len(files)}")
    store = store if store is not None else make_typestore()
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    records: list[_Record] = []
    damage = ""
    with files[0].open("rb") as stream:
        records_in_file = _complete_records(stream)
        while True:
            try:
                record = next(records_in_file, None)
                if record is None:
                    break
                if isinstance(record, Schema):
                    schemas[record.id] = record.name
                    _check_definition(bag_dir, store, record.name, msgdef=record.data.decode("utf-8"))
                elif isinstance(record, Channel):
                    channels[record.id] = (record.topic, schemas[record.schema_id])
                elif isinstance(record, Message):
                    topic, msgtype = channels[record.channel_id]
                    msg = store.deserialize_cdr(record.data, msgtype)
                    records.append(_Record(topic, msgtype, msg, record.log_time))
            except BagError:
                raise
            except (_DamagedRecord, *_DECODE_ERRORS) as exc:
                cause = exc.__cause__ if isinstance(exc, _DamagedRecord) else exc
                damage = f"{files[0].name} is damaged after {len(records)} readable message(s): {_describe(cause)}"
                break
    return records, damage


class _DamagedRecord(Exception):
    """A complete MCAP record whose contents do not parse (raised inside _complete_records)."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _duration_s(records: list[_Record]) -> float:
    return (records[-1].log_time_ns - records[0].log_time_ns) / 1e9 if records else 0.0


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
            try:
                parts = breakup_chunk(record)
            except _DECODE_ERRORS as exc:  # a whole chunk that does not parse: damaged, not cut off
                raise _DamagedRecord(exc) from exc
            yield from parts
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


def _assemble(bag_dir: Path, records: list[_Record], *, complete: bool) -> Episode:
    """Build the Episode from the decoded messages in bag order; a value no Episode can hold is a BagError."""
    try:
        return _assemble_checked(bag_dir, records, complete=complete)
    except BagError:
        raise
    except ValueError as exc:
        raise BagError(f"{bag_dir}: damaged episode data ({_describe(exc)})") from exc


def _assemble_checked(bag_dir: Path, records: list[_Record], *, complete: bool) -> Episode:
    by_kind: dict[str, list[Any]] = {name: [] for name in _TOPIC_TYPES}
    for record in records:
        kind = record.topic.rsplit("/", 1)[-1]
        if kind in by_kind and _TOPIC_TYPES[kind] == record.msgtype:
            by_kind[kind].append(record.msg)
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
