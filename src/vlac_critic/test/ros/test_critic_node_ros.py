"""ROS-only: the critic node's services and streaming on a tiny model.

Bad requests get an error answer and the node keeps serving; requests of several arms that arrive
together are scored in one batch (the session's BatchingCritic); a missing checkpoint fails at start.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="ROS-only test: rclpy is not importable (source a ROS 2 Jazzy workspace)")
pytest.importorskip("vlac_msgs.msg", reason="ROS-only test: vlac_msgs is not built in the sourced workspace")

import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from vlac_core.config import ConfigError
from vlac_core.images import image_to_msg
from vlac_core.ros.background_spin import BackgroundSpin
from vlac_core.ros.message_set import rclpy_message_set
from vlac_critic.ros.critic_node import CriticNode
from vlac_msgs.msg import Progress
from vlac_msgs.srv import ScoreDone, ScoreProgress

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from critic_testing import frames

TASK = "open the drawer"


@pytest.fixture
def running(progress_model_dir):
    rclpy.init()
    overrides = [
        Parameter("checkpoint", value=str(progress_model_dir)),
        Parameter("stream_image_topic", value="test_images"),
        Parameter("stream_task", value=TASK),
        Parameter("skip", value=2),
        Parameter("stream_rate_hz", value=20.0),
    ]
    node = CriticNode(parameter_overrides=overrides)
    client_node = rclpy.create_node("critic_test_client")
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    executor.add_node(client_node)
    deadline = time.monotonic() + 60.0
    while node.critic is None and node.load_error is None and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    assert node.critic is not None, node.load_error
    yield node, client_node, executor
    executor.shutdown()
    node.destroy_node()
    client_node.destroy_node()
    rclpy.try_shutdown()


def _call(executor, client, request):
    assert client.wait_for_service(timeout_sec=5.0)
    future = client.call_async(request)
    executor.spin_until_future_complete(future, timeout_sec=30.0)
    return future.result()


def test_progress_service_answers_and_survives_bad_requests(running):
    _node, client_node, executor = running
    msgs = rclpy_message_set()
    client = client_node.create_client(ScoreProgress, "score_progress")
    images = [image_to_msg(f, msgs, stamp_s=1.0) for f in frames(3)]
    bad = ScoreProgress.Request(task="", earlier=images[:2], later=images[1:])
    response = _call(executor, client, bad)
    assert not response.ok and "task" in response.error
    wrong_encoding = image_to_msg(frames(1)[0], msgs, stamp_s=1.0)
    wrong_encoding.encoding = "mono16"
    bad = ScoreProgress.Request(task=TASK, earlier=[wrong_encoding], later=images[:1])
    response = _call(executor, client, bad)
    assert not response.ok and "mono16" in response.error
    good = ScoreProgress.Request(task=TASK, earlier=images[:2], later=images[1:])
    response = _call(executor, client, good)
    assert response.ok and list(response.parsed) == [True, True]
    assert list(response.progress_pct) == [25.0, 25.0]


def test_requests_arriving_together_are_scored_in_one_batch(running):
    node, client_node, executor = running
    msgs = rclpy_message_set()
    client = client_node.create_client(ScoreProgress, "score_progress")
    assert client.wait_for_service(timeout_sec=5.0)
    model, entered, release = node.critic.critic, threading.Event(), threading.Event()
    real_progress = model.progress

    def gated_progress(*args, **kwargs):  # the first call holds the worker until the others queue up
        if not entered.is_set():
            entered.set()
            release.wait(60)
        return real_progress(*args, **kwargs)

    model.progress = gated_progress
    images = [image_to_msg(f, msgs, stamp_s=1.0) for f in frames(2)]
    request = ScoreProgress.Request(task=TASK, earlier=images[:1], later=images[1:])
    with BackgroundSpin(executor):  # stopped before the fixture shuts the executor down
        answered = threading.Semaphore(0)
        futures = [client.call_async(request)]
        futures[0].add_done_callback(lambda _f: answered.release())
        assert entered.wait(30)
        for _arm in range(2):
            futures.append(client.call_async(request))
            futures[-1].add_done_callback(lambda _f: answered.release())
        deadline = time.monotonic() + 30
        while node.critic._queue.qsize() < 2:
            assert time.monotonic() < deadline, "the other requests never reached the critic"
            time.sleep(0.02)
        release.set()
        for _ in futures:
            assert answered.acquire(timeout=60)
        assert [list(f.result().progress_pct) for f in futures] == [[25.0]] * 3
        assert node.critic.batches == [1, 2]


def test_a_missing_checkpoint_fails_at_start_naming_the_path(tmp_path):
    missing = tmp_path / "no_critic"
    rclpy.init()
    try:
        with pytest.raises(ConfigError, match=str(missing)):
            CriticNode(parameter_overrides=[Parameter("checkpoint", value=str(missing))])
    finally:
        rclpy.try_shutdown()


def test_done_service_reports_unparsable_answers(running):
    node, client_node, executor = running
    msgs = rclpy_message_set()
    client = client_node.create_client(ScoreDone, "score_done")
    response = _call(
        executor, client, ScoreDone.Request(task=TASK, images=[image_to_msg(frames(1)[0], msgs, stamp_s=1.0)])
    )
    assert response.ok and list(response.done) == [] and math.isnan(response.done_prob[0])
    assert node.critic.stats.done_parse_failures == 1


def test_streaming_publishes_progress_with_running_value(running):
    _node, client_node, executor = running
    msgs = rclpy_message_set()
    received: list[Progress] = []
    sub = client_node.create_subscription(Progress, "progress", received.append, 10)
    publisher = client_node.create_publisher(Image, "test_images", 10)
    deadline = time.monotonic() + 60.0  # volatile topics: publish once both ends are matched (slow when loaded)
    while (publisher.get_subscription_count() < 1 or sub.get_publisher_count() < 1) and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    for i, frame in enumerate(frames(3)):
        publisher.publish(image_to_msg(frame, msgs, stamp_s=10.0 + i))
        executor.spin_once(timeout_sec=0.05)
    deadline = time.monotonic() + 10.0
    while not received and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    assert received, "no Progress message"
    msg = received[0]
    assert msg.parsed and msg.progress_pct == 25.0 and msg.value_pct == 25.0 and msg.skip == 2 and msg.task == TASK
