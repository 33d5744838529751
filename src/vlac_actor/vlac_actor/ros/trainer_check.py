"""Before loading an announced policy version: does the announcing trainer score actions as we make them?

The trainer node declares the actor settings it repeats (``vlac_actor.trainer_agreement``) as
parameters; the actor node reads them from every publisher of /policy_version over the parameter
services and compares (once per publisher: a restarted trainer is a new publisher). Where ROS
cannot answer (a publisher that declares none of them, or no answer within the time-out) the
version loads unchecked, with a warning: the check must never stall the actor.
"""

from __future__ import annotations

import threading

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.parameter import parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient

from vlac_actor.trainer_agreement import SHARED_WITH_TRAINER, trainer_disagreement

#: Longest wait for a trainer's parameter services, s. Only bounds how long a version waits when the
#: trainer is gone; its outcome is "unchecked", never a refusal.
TRAINER_PARAMETERS_TIMEOUT_S = 10.0


def _fqn(namespace: str, name: str) -> str:
    return f"{namespace.rstrip('/')}/{name}"


class TrainerSettingsCheck:
    """Compares the actor's config with the parameters of each /policy_version publisher."""

    def __init__(self, node: Node, actor_config, timeout_s: float = TRAINER_PARAMETERS_TIMEOUT_S) -> None:
        self.node = node
        self.config = actor_config
        self.timeout_s = timeout_s
        self._group = ReentrantCallbackGroup()  # the answers arrive while the version callback waits
        self._verdicts: dict[bytes, str | None] = {}  # publisher gid -> disagreement (None: agrees or unknown)

    def problem(self, topic: str) -> str | None:
        """The first disagreement of any current publisher of ``topic``, or None."""
        for info in self.node.get_publishers_info_by_topic(topic):
            gid = bytes(info.endpoint_gid)
            if gid not in self._verdicts:
                self._verdicts[gid] = self._check(_fqn(info.node_namespace, info.node_name))
            if self._verdicts[gid]:
                return self._verdicts[gid]
        return None

    def _check(self, trainer: str) -> str | None:
        log = self.node.get_logger()
        try:
            values = self._shared_parameters(trainer)
        except Exception as reason:  # _Unanswered, or rclpy refusing the request: never stall the actor
            log.warning(f"{trainer}: {reason}; its policy versions load unchecked")
            return None
        if not values:
            log.warning(f"{trainer} declares none of {SHARED_WITH_TRAINER}; its policy versions load unchecked")
        return trainer_disagreement(
            self.config, values, actor_name=self.node.get_fully_qualified_name(), trainer_name=trainer
        )

    def _shared_parameters(self, trainer: str) -> dict:
        """The shared settings ``trainer`` declares (a parameter it lacks is left out), or _Unanswered."""
        client = AsyncParameterClient(self.node, trainer, callback_group=self._group)
        if not client.wait_for_services(timeout_sec=self.timeout_s):
            raise _Unanswered("no parameter services")
        declared = set(self._result(client.list_parameters(list(SHARED_WITH_TRAINER), 1)).result.names)
        names = [name for name in SHARED_WITH_TRAINER if name in declared]
        if not names:
            return {}
        values = self._result(client.get_parameters(names)).values
        return dict(zip(names, map(parameter_value_to_python, values), strict=True))

    def _result(self, future):
        answered = threading.Event()
        future.add_done_callback(lambda _f: answered.set())
        if not answered.wait(self.timeout_s):
            raise _Unanswered(f"no answer within {self.timeout_s} s")
        if future.exception() is not None:
            raise _Unanswered(f"parameter request failed: {future.exception()}")
        return future.result()


class _Unanswered(Exception):
    """The trainer's parameter services did not answer (gone, or not a ROS node with parameters)."""
