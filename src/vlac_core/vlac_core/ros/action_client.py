"""An rclpy ActionClient whose answers cannot arrive before it has written down the request.

rclpy 7.1.6 (the Jazzy wheels on PyPI) sends a goal, result or cancel request first and only then
records its sequence number. When the answer comes back in between, the executor thread takes it,
finds no record, logs "Ignoring unexpected goal response" and drops it: the caller's future never
completes (ros2/rclpy#1123, fixed upstream by #1308 and its backports). Seen here as an episode
manager's reset_arm goal that waited out its 120 s time-out in CI while two arms started together.

The fix is ordering, not timing: a request is sent and recorded under one lock, and the executor
takes answers from the middleware under the same lock, so an answer is never taken before its
request is on record. Every action client of this stack is one of these.
"""

from __future__ import annotations

import threading

from rclpy.action import ActionClient


class RecordedActionClient(ActionClient):
    """ActionClient whose send-and-record and take-answer steps exclude each other (see the module)."""

    def __init__(self, *args, **kwargs) -> None:
        self._request_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def send_goal_async(self, goal, feedback_callback=None, goal_uuid=None):
        with self._request_lock:
            return super().send_goal_async(goal, feedback_callback=feedback_callback, goal_uuid=goal_uuid)

    def _get_result_async(self, goal_handle):
        with self._request_lock:
            return super()._get_result_async(goal_handle)

    def _cancel_goal_async(self, goal_handle):
        with self._request_lock:
            return super()._cancel_goal_async(goal_handle)

    def take_data(self):
        with self._request_lock:
            return super().take_data()
