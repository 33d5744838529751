"""Put an output folder back in order after a crash, before a session resumes in it.

Why: ``kill -9``, a power cut or an OOM kill leaves what a Ctrl-C would have finished: bags without
``metadata.yaml`` (their writer never closed them), bags closed but never listed in
``episodes.jsonl``, a last JSONL line cut short. Readers such as ``vlac critic eval out/bags/train/*``
fail on an unfinished bag, and an unlisted episode is missing from the counts. So, under the
folder's lock and before anything else is written:

- a cut-off line of ``episodes.jsonl`` / ``evaluations.jsonl`` goes to ``<name>.damaged``;
- an unfinished bag is rebuilt, every step that reached the disk, into a complete bag of an
  ``aborted`` episode (``vlac_core.bag.recover_episode`` + ``write_episode``) and listed with
  ``recovered: true``; one that cannot be read at all is moved to ``unreadable/<phase>/<id>/``
  with a ``NOTE.txt`` saying why, out of the readers' way;
- a finished bag missing from ``episodes.jsonl`` is listed.

The rebuild is crash-safe itself: the new bag is written under ``.recovering/``, the unfinished
one moved there, the new one renamed into place, and only then the old one deleted; a crash in
between is finished on the next start.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vlac.session.recording import PHASES, EpisodeIndex
from vlac_core.bag import read_episode, recover_episode, write_episode
from vlac_core.jsonio import repair_jsonl
from vlac_core.types import Episode

#: Work area of an interrupted rebuild (hidden: shell globs over bags/ never see it).
RECOVERING_DIR = ".recovering"
#: Where bags that cannot be read at all are moved, with a NOTE.txt.
UNREADABLE_DIR = "unreadable"


@dataclass
class RecoveryReport:
    """What :func:`recover_outdir` did; the session prints it and puts it in summary.json."""

    damaged_lines: int = 0
    rebuilt: list[str] = field(default_factory=list)  # unfinished bags rebuilt as aborted episodes
    listed: list[str] = field(default_factory=list)  # finished bags that were missing from episodes.jsonl
    unreadable: list[str] = field(default_factory=list)  # moved to unreadable/ (paths relative to the folder)

    @property
    def anything(self) -> bool:
        return bool(self.damaged_lines or self.rebuilt or self.listed or self.unreadable)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _finish_interrupted_rebuilds(out: Path) -> None:
    """A crash mid-rebuild: put an unfinished bag back where the rebuilt one did not arrive, drop the rest."""
    work = out / RECOVERING_DIR
    if not work.is_dir():
        return
    for phase in PHASES:
        for partial in sorted((work / phase).glob("*.partial")):
            target = out / "bags" / phase / partial.name.removesuffix(".partial")
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(partial, target)
    shutil.rmtree(work)


def _rebuild(out: Path, phase: str, bag: Path, episode: Episode) -> None:
    """Rewrite the unfinished ``bag`` as a complete one holding ``episode``, in place."""
    work = out / RECOVERING_DIR / phase
    work.mkdir(parents=True, exist_ok=True)
    rebuilt, partial = work / bag.name, work / f"{bag.name}.partial"
    shutil.rmtree(rebuilt, ignore_errors=True)
    write_episode(rebuilt, episode)
    read_episode(rebuilt)  # the new bag reads back whole before the old one is touched
    os.rename(bag, partial)
    os.rename(rebuilt, bag)
    _fsync_dir(bag.parent)
    shutil.rmtree(partial)


def _move_aside(out: Path, phase: str, bag: Path, error: Exception) -> str:
    target = out / UNREADABLE_DIR / phase / bag.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    os.rename(bag, target)
    (target / "NOTE.txt").write_text(
        f"Moved here from bags/{phase}/{bag.name} when the session resumed: it could not be read or "
        f"recovered ({type(error).__name__}: {error}). Not counted, not trained on.\n",
        encoding="utf-8",
    )
    return os.path.relpath(target, out)


def recover_outdir(out: str | Path, say: Callable[[str], None] = print) -> RecoveryReport:
    """Repair ``out`` (an existing session folder, locked by the caller); see the module docstring."""
    out = Path(out)
    report = RecoveryReport()
    if not out.is_dir():
        return report
    _finish_interrupted_rebuilds(out)
    index = EpisodeIndex(out / "episodes.jsonl")
    report.damaged_lines = index.damaged_lines + repair_jsonl(out / "evaluations.jsonl")
    listed = {row["episode_id"] for row in index.rows()}
    for phase in PHASES:
        folder = out / "bags" / phase
        if not folder.is_dir():
            continue
        for bag in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            cut_short = not (bag / "metadata.yaml").exists()
            try:
                episode = recover_episode(bag) if cut_short else read_episode(bag)
            except Exception as error:  # any reader failure: the bag must not stay where readers fail on it
                report.unreadable.append(_move_aside(out, phase, bag, error))
                continue
            note = None
            if cut_short:  # errors writing the rebuilt bag (disk full) are not the bag's fault: they propagate
                _rebuild(out, phase, bag, episode)
                note = f"recovered after a crash: {episode.length} step(s) from its unfinished bag"
                report.rebuilt.append(f"bags/{phase}/{bag.name}")
            if episode.episode_id not in listed:
                index.append_found(episode, phase, bag, cut_short=cut_short, note=note)
                listed.add(episode.episode_id)
                if not cut_short:
                    report.listed.append(f"bags/{phase}/{bag.name}")
    shutil.rmtree(out / RECOVERING_DIR, ignore_errors=True)  # every rebuild above is complete
    if report.damaged_lines:
        say(f"session: {report.damaged_lines} line(s) cut short by a crash set aside in *.jsonl.damaged")
    if report.rebuilt:
        say(f"session: {len(report.rebuilt)} unfinished bag(s) from a crash rebuilt as aborted episodes")
    if report.listed:
        say(f"session: {len(report.listed)} finished bag(s) missing from episodes.jsonl listed")
    for path in report.unreadable:
        say(f"session: unreadable bag moved to {path} (see its NOTE.txt)")
    return report
