"""The actor as a service, without ROS: config -> replica pool; requests, policy versions, diagnostics.

The actor node (ros/actor_node.py) and the embedded ``vlac session`` both drive this object, so
neither holds decision logic. Every failure of a request comes back as ``ActorReply(ok=False,
error=...)`` naming what was wrong; the service keeps serving everyone else.

Policy versions load in a background thread (a 2B checkpoint takes seconds), one at a time; if
several announcements arrive while one loads, only the newest is loaded next.

An evaluation pins one version without freezing the service (``pinned_policy``): it gets its own
replica, a second copy of the version served now, while announcements go on reaching the shared
replicas that the training arms use. Freezing the shared replicas instead kept the training arms on
a stale version for the whole evaluation, and the trainer dropped ~25 % of their episodes as too old.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vlac_core.types import Observation, PolicyAction

from .backend import ActorBackend, TorchBackend
from .config import ActorConfig
from .history import ActionHistory
from .policy import load_policy
from .policy_settings import read_policy_settings
from .pool import PoolStats, ReplicaPool
from .request import ActorRequest


@dataclass(frozen=True)
class ActorReply:
    """What the GetAction service answers: the action, or why there is none, and the queue wait (s)."""

    ok: bool
    error: str = ""
    action: PolicyAction | None = None
    queue_wait_s: float = 0.0


class PinnedPolicy:
    """One policy version on a replica of its own, for a block of requests (``ActorService.pinned_policy``)."""

    def __init__(self, service: ActorService, pool: ReplicaPool, version: int) -> None:
        self._service = service
        self._pool = pool
        self.version = version

    @property
    def max_batch(self) -> int:
        """Requests this copy decodes at once."""
        return self._pool.max_batch

    def act(
        self, observation: Observation, greedy: bool = False, temperature: float = 0.0, received_s: float | None = None
    ) -> ActorReply:
        """As ``ActorService.act``, always answered by ``self.version`` (announcements never reach it)."""
        return self._service._answer(self._pool, observation, greedy, temperature, received_s)


def build_backend(config: ActorConfig, checkpoint_path: str | Path, version: int, replica: int) -> ActorBackend:
    """Replica ``replica`` of ``checkpoint_path`` on ``config.devices[replica]``."""
    if config.backend == "vllm":
        from .vllm_backend import VllmBackend, vllm_logit_temperature

        settings = read_policy_settings(checkpoint_path)
        logit_temperature = vllm_logit_temperature(settings)  # refused before vLLM is imported
        inputs = config.input_limits(settings)
        return VllmBackend(
            checkpoint_path,
            version,
            settings.action_limits,
            inputs,
            dtype=config.dtype,
            logit_temperature=logit_temperature,
        )
    policy = load_policy(
        checkpoint_path,
        version=version,
        device=config.devices[replica],
        dtype=config.dtype,
        allow_fresh_value_head=config.allow_fresh_value_head,
    )
    seed = None if config.seed < 0 else config.seed + replica
    return TorchBackend(policy, config.input_limits(policy.settings), seed=seed)


class ActorService:
    def __init__(self, config: ActorConfig) -> None:
        self.config = config
        backends = [
            build_backend(config, config.checkpoint_path, config.policy_version, i) for i in range(len(config.devices))
        ]
        self.pool = ReplicaPool(backends, max_batch=config.max_batch, max_queue=config.max_queue)
        self.history = ActionHistory(read_policy_settings(config.checkpoint_path).history_len)
        self._reload_lock = threading.Lock()
        # Checkpoint folder of every version the replicas may serve: a pinned copy is built from it.
        self._paths: dict[int, str] = {config.policy_version: str(config.checkpoint_path)}
        self._wanted: tuple[int, str] | None = None
        self._loader: threading.Thread | None = None
        self.last_reload_error = ""

    def act(
        self, observation: Observation, greedy: bool = False, temperature: float = 0.0, received_s: float | None = None
    ) -> ActorReply:
        """Answer one observation (blocking until a replica has decoded it)."""
        return self._answer(self.pool, observation, greedy, temperature, received_s)

    def _answer(
        self, pool: ReplicaPool, observation: Observation, greedy: bool, temperature: float, received_s: float | None
    ) -> ActorReply:
        """One request through ``pool`` (the shared replicas or a pinned one), errors answered, history kept."""
        try:
            request = ActorRequest(
                observation=observation,
                sampling=self.config.sampling(greedy, temperature),
                history=self.history.recent(observation.robot_id, observation.seq),
                received_s=time.monotonic() if received_s is None else received_s,
            )
            result = pool.act(request)
        except Exception as error:  # bad input or a model failure: answer it, keep serving
            return ActorReply(ok=False, error=f"{type(error).__name__}: {error}")
        self.history.record(observation.robot_id, observation.seq, result.action.delta)
        return ActorReply(ok=True, action=result.action, queue_wait_s=result.queue_wait_s)

    def announce_version(self, version: int, checkpoint_path: str) -> str:
        """Load ``version`` in the background and swap it in between requests; returns what was decided."""
        current = max(self.pool.versions)
        if version <= current:
            return f"ignored policy version {version}: replicas already serve {current}"
        if not Path(checkpoint_path).is_dir():
            self.last_reload_error = f"policy version {version}: {checkpoint_path!r} is not a directory"
            return self.last_reload_error
        with self._reload_lock:
            if self._wanted is None or version > self._wanted[0]:
                self._wanted = (version, checkpoint_path)
            if self._loader is None:
                self._loader = threading.Thread(target=self._load_wanted, name="actor-reload", daemon=True)
                self._loader.start()
        return f"loading policy version {version} from {checkpoint_path}"

    def _load_wanted(self) -> None:
        while True:
            with self._reload_lock:
                wanted, self._wanted = self._wanted, None
                if wanted is None:
                    self._loader = None  # under the lock: a new announcement starts a new loader
                    return
            version, path = wanted
            try:
                self._paths[version] = path  # before the swap: a version the replicas serve has its folder
                self.pool.reload(version, functools.partial(build_backend, self.config, path, version))
                self.last_reload_error = ""
            except Exception as error:  # a broken checkpoint leaves the running version serving
                self.last_reload_error = f"policy version {version} from {path!r} not loaded: {error}"

    def wait_for_version(self, version: int, timeout_s: float | None = None) -> bool:
        return self.pool.wait_for_version(version, timeout_s)

    @contextlib.contextmanager
    def pinned_policy(self, max_batch: int | None = None) -> Iterator[PinnedPolicy]:
        """The version the replicas serve now, on a replica of its own for the whole block.

        Why: an evaluation's trials must measure one policy, but the training arms must not be held
        on it meanwhile (their episodes would come back too old for the trainer). So the block gets a
        second copy of the version (the newest the shared replicas serve), loaded from its folder on
        ``config.devices[0]``, and announcements keep reaching the shared replicas. The copy is
        dropped when the block ends. ``max_batch``: requests the copy decodes at once (default the
        service's ``max_batch``; an evaluation on K arms side by side asks for K). Memory: one more
        replica for the block (a few MB for the simulated policy; with the vLLM backend the GPU needs
        room for a second engine). If the publisher has already pruned that version's folder, the
        newest announced folder on disk is pinned instead: still one version for every request of
        the block.
        """
        version = max(self.pool.versions)
        if not Path(self._paths[version]).is_dir():
            on_disk = [v for v, path in list(self._paths.items()) if Path(path).is_dir()]
            if not on_disk:
                raise FileNotFoundError(
                    f"cannot pin policy version {version} for an evaluation: its folder {self._paths[version]} and "
                    "every other announced version's folder are gone"
                )
            version = max(on_disk)
        backend = build_backend(self.config, self._paths[version], version, 0)
        batch = self.config.max_batch if max_batch is None else max_batch
        pool = ReplicaPool([backend], max_batch=batch, max_queue=self.config.max_queue)
        try:
            yield PinnedPolicy(self, pool, version)
        finally:
            pool.close()

    def stats(self) -> PoolStats:
        return self.pool.stats()

    def diagnostics(self) -> dict[str, str]:
        """Key/values for a diagnostic_msgs/DiagnosticStatus (seconds, counts, versions)."""
        stats = self.pool.stats()
        values = {
            "replicas": str(stats.replicas),
            "busy_replicas": str(stats.busy_replicas),
            "replica_use": f"{stats.busy_replicas / stats.replicas:.2f}",
            "queue_depth": str(stats.queue_depth),
            "replica_versions": ",".join(str(v) for v in stats.replica_versions),
            "served": str(stats.served),
            "failed": str(stats.failed),
            "queue_wait_p50_s": f"{stats.queue_wait_p50_s:.4f}",
            "queue_wait_max_s": f"{stats.queue_wait_max_s:.4f}",
            "latency_p50_s": f"{stats.latency_p50_s:.4f}",
            "latency_max_s": f"{stats.latency_max_s:.4f}",
        }
        if self.last_reload_error:
            values["reload_error"] = self.last_reload_error
        return values

    def close(self) -> None:
        self.pool.close()
