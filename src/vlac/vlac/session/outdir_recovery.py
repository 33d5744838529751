"""Put an output folder back in order after a crash, before a session resumes in it.

Why: ``kill -9``, a power cut or an OOM kill leaves what a Ctrl-C would have finished: bags without
``metadata.yaml`` (their writer never closed them), bags closed but never listed in
``episodes.jsonl``, a last JSONL line cut short. Readers such as ``vlac critic eval out/bags/train/*``
fail on an unfinished bag, and an unlisted episode is missing from the counts. So, under the
folder's lock and before anything else is written:

- a cut-off line of ``episodes.jsonl`` / ``evaluations.jsonl`` goes to ``<name>.damaged``;
- an unfinished or damaged bag is rebuilt, every step that can be read, into a complete bag of an
  ``aborted`` episode (``vlac_core.bag.recover_bag``, the code behind ``vlac bag recover``; it is
  crash-safe itself and a rebuild a crash interrupted is finished here) and listed with
  ``recovered: true``; one that cannot be read at all (a foreign folder) is moved to
  ``unreadable/<phase>/<id>/`` with a ``NOTE.txt`` saying why, out of the readers' way;
- a finished bag missing from ``episodes.jsonl`` is listed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vlac.episode.recording import PHASES, EpisodeIndex
from vlac_core.bag import BagError, recover_bag
from vlac_core.jsonio import repair_jsonl

PARTIAL_SUFFIX = ".partial"  # recover_bag's name for an original set aside during a rebuild

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


def _interrupted_rebuilds(folder: Path) -> list[Path]:
    """Bags whose rebuild a crash interrupted: ``recover_bag`` left the original aside as ``.<name>.partial``."""
    return [folder / p.name[1 : -len(PARTIAL_SUFFIX)] for p in folder.glob(f".*{PARTIAL_SUFFIX}") if p.is_dir()]


def _move_aside(out: Path, phase: str, bag: Path, error: Exception) -> str:
    target = out / UNREADABLE_DIR / phase / bag.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    source = bag if bag.exists() else bag.with_name(f".{bag.name}{PARTIAL_SUFFIX}")
    os.rename(source, target)
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
    index = EpisodeIndex(out / "episodes.jsonl")
    report.damaged_lines = index.damaged_lines + repair_jsonl(out / "evaluations.jsonl")
    listed = {row["episode_id"] for row in index.rows()}
    for phase in PHASES:
        folder = out / "bags" / phase
        if not folder.is_dir():
            continue
        visible = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        for bag in sorted({*visible, *_interrupted_rebuilds(folder)}):
            if bag.name in listed and (bag / "metadata.yaml").exists():
                continue  # finished and listed: the common case, not read again (bags are large)
            try:
                recovery = recover_bag(bag)  # a complete bag is left as it is
            except BagError as error:  # not an episode bag at all: out of the readers' way
                report.unreadable.append(_move_aside(out, phase, bag, error))
                continue
            episode, cut_short, note = recovery.info.episode, recovery.rewritten, None
            if cut_short:
                note = f"recovered after a crash: {episode.length} step(s) from its unfinished or damaged bag"
                report.rebuilt.append(f"bags/{phase}/{bag.name}")
            if episode.episode_id not in listed:
                index.append_found(episode, phase, bag, cut_short=cut_short, note=note)
                listed.add(episode.episode_id)
                if not cut_short:
                    report.listed.append(f"bags/{phase}/{bag.name}")
    if report.damaged_lines:
        say(f"session: {report.damaged_lines} line(s) cut short by a crash set aside in *.jsonl.damaged")
    if report.rebuilt:
        say(f"session: {len(report.rebuilt)} unfinished bag(s) from a crash rebuilt as aborted episodes")
    if report.listed:
        say(f"session: {len(report.listed)} finished bag(s) missing from episodes.jsonl listed")
    for path in report.unreadable:
        say(f"session: unreadable bag moved to {path} (see its NOTE.txt)")
    return report
