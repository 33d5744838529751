"""Publishing a policy version: write it to disk whole, then tell the actor pool where it is.

``root/v000007/`` holds version 7 (``Policy.save``: safetensors model + processor + value head). It
is written into a temporary folder and renamed into place, so an actor never loads half a
checkpoint; only then is ``announce(version, path)`` called: ``ActorService.announce_version`` in
the embedded session, a vlac_msgs/PolicyVersion message in ROS. The newest ``keep`` folders stay
(a replica may still be loading the previous one), and with ``keep_every`` k > 0 every version divisible by k as
well: a claim about a run's middle (its training success on a block of scenes, say) can then be checked by
evaluating the policy that ran it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from vlac_actor.policy import Policy

_VERSION_DIR = re.compile(r"^v(\d{6})$")


def version_dir(root: str | Path, version: int) -> Path:
    return Path(root) / f"v{version:06d}"


def published_versions(root: str | Path) -> list[int]:
    """Versions with a complete folder under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(int(m.group(1)) for p in root.iterdir() if p.is_dir() and (m := _VERSION_DIR.match(p.name)))


class PolicyPublisher:
    def __init__(
        self,
        root: str | Path,
        announce: Callable[[int, str], object] | None = None,
        keep: int = 3,
        keep_every: int = 0,
    ) -> None:
        if keep < 1:
            raise ValueError(f"keep={keep}: at least the newest policy version must stay on disk")
        if keep_every < 0:
            raise ValueError(f"keep_every={keep_every}: 0 (off) or the interval of versions kept besides the newest")
        self.root = Path(root)
        self.announce = announce
        self.keep = keep
        self.keep_every = keep_every
        self.last_path: Path | None = None

    def publish(self, policy: Policy) -> Path:
        """Save ``policy`` as its version's folder, announce it, and drop folders beyond ``keep`` (those of
        ``keep_every``'s versions aside)."""
        final = version_dir(self.root, policy.version)
        tmp = self.root / f".tmp-v{policy.version:06d}"
        shutil.rmtree(tmp, ignore_errors=True)
        policy.save(tmp)
        if final.exists():  # left by a run that crashed after publishing, before its trainer checkpoint
            shutil.rmtree(final)
        tmp.rename(final)
        self.last_path = final
        if self.announce is not None:
            self.announce(policy.version, str(final))
        for old in published_versions(self.root)[: -self.keep]:
            if self.keep_every and old % self.keep_every == 0:
                continue
            shutil.rmtree(version_dir(self.root, old), ignore_errors=True)
        return final
