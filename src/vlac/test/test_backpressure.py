"""The arm's side of backpressure (both runtimes): hold a training episode while the trainer has a batch waiting."""

from __future__ import annotations

import threading

import pytest

from vlac.episode.backpressure import Backlog, BacklogGate

WAIT_S = 60.0  # generous: only a broken gate waits this long


def test_nothing_waits_before_the_trainer_is_heard_or_with_the_limit_off():
    gate = BacklogGate(1)
    assert gate.last is None and not gate.closed()
    assert gate.wait_open(threading.Event()) is False
    off = BacklogGate(0)
    off.heard(100, 4)
    assert not off.closed() and off.last == Backlog(100, 4)


def test_the_limit_counts_whole_batches():
    gate = BacklogGate(2)
    gate.heard(7, 4)
    assert not gate.closed()  # 7 < 2 x 4
    gate.heard(8, 4)
    assert gate.closed()
    gate.heard(8, 5)  # the trainer's batch size comes with every message
    assert not gate.closed()


def test_a_held_arm_goes_on_when_an_update_takes_the_batch_and_a_stop_releases_it():
    gate = BacklogGate(1)
    gate.heard(4, 4)
    stop, waited = threading.Event(), []
    arm = threading.Thread(target=lambda: waited.append(gate.wait_open(stop, poll_s=WAIT_S)))
    arm.start()
    arm.join(0.3)
    assert arm.is_alive()  # held (a slow start reads the same: it cannot have passed an open gate yet)
    gate.heard(0, 4)  # the update took the batch; only this can end a 60 s wait this soon
    arm.join(WAIT_S)
    assert not arm.is_alive() and len(waited) == 1

    gate.heard(4, 4)
    stopped = threading.Thread(target=lambda: waited.append(gate.wait_open(stop, poll_s=0.05)))
    stopped.start()
    stop.set()
    stopped.join(WAIT_S)
    assert not stopped.is_alive() and gate.closed()  # released by the stop, the backlog unchanged


@pytest.mark.parametrize(("waiting", "per_update"), [(-1, 4), (0, 0)])
def test_an_impossible_backlog_is_refused_and_the_last_one_kept(waiting, per_update):
    gate = BacklogGate(1)
    gate.heard(4, 4)
    with pytest.raises(ValueError, match="trainer backlog"):
        gate.heard(waiting, per_update)
    assert gate.last == Backlog(4, 4)


def test_a_negative_limit_is_refused():
    with pytest.raises(ValueError, match="max_waiting_batches"):
        BacklogGate(-1)
