"""One run per output folder: ``<out>/session.lock`` names the holder (pid, host) while it runs.

Why: two sessions on one ``--out`` interleave their episodes, policies and trainer checkpoints,
and a second run would "resume" a live one. The lock is an ``flock`` on the file, which the kernel
releases when its holder exits in any way (``kill -9`` included), so a run that died never blocks
the folder; the pid and host written into the file are what the refusal tells the user. A lock
left by a dead holder is taken over, saying whose it was.

``flock`` is advisory and per host: runs on two machines sharing the folder over NFS may not see
each other's lock; the message names the host to make that visible.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

LOCK_FILE = "session.lock"


class OutdirBusy(RuntimeError):
    """The output folder is held by another run; the message names it (pid, host, since when)."""


def _describe(holder: dict) -> str:
    since = holder.get("started")
    when = f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}" if isinstance(since, int) else ""
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}{when}"


class OutdirLock:
    """Hold ``folder/session.lock`` from :meth:`acquire` until :meth:`release` (or the process ends)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None
        #: The previous holder when the lock was taken over from a run that is gone, else None.
        self.taken_over_from: str | None = None

    def acquire(self) -> None:
        """Take the folder or raise :class:`OutdirBusy` naming the run that holds it."""
        if self._fd is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OutdirBusy(
                    f"{self.folder} is in use by another session ({_describe(self._read(fd))}, lock file "
                    f"{self.path}); wait for it to end or choose another --out"
                ) from None
            previous = self._read(fd)
            if previous.get("pid") is not None:  # a holder that ended without releasing: killed or crashed
                self.taken_over_from = _describe(previous)
            me = {"pid": os.getpid(), "host": socket.gethostname(), "started": int(time.time())}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Empty the file (no holder) and drop the lock; the file stays, so no race on its inode."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    @staticmethod
    def _read(fd: int) -> dict:
        try:
            text = os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
            holder = json.loads(text) if text.strip() else {}
        except (OSError, json.JSONDecodeError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def __enter__(self) -> OutdirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
