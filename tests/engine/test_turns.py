"""The planner's lock (engine/turns.py): handed out in the order asked (issues first), re-entrant, owned."""

from __future__ import annotations

import threading
import time

import pytest

from engine.turns import TurnLock


def _wait_until(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.001)


def test_waiting_threads_get_the_lock_in_the_order_they_asked():
    lock, order, threads = TurnLock(), [], []
    lock.acquire()
    for name in "abcdef":
        def take(name=name):
            with lock.hold():
                order.append(name)
        t = threading.Thread(target=take)
        t.start()
        threads.append(t)
        _wait_until(lambda: lock.waiting() == len(threads))  # queued before the next asks
    lock.release()
    for t in threads:
        t.join()
    assert order == list("abcdef")


def test_a_thread_releasing_the_lock_cannot_take_it_back_before_a_waiting_one():
    lock, order = TurnLock(), []
    lock.acquire()

    def other():
        with lock.hold():
            order.append("other")

    t = threading.Thread(target=other)
    t.start()
    _wait_until(lambda: lock.waiting() == 1)
    lock.release()
    with lock.hold():  # asked after `other`: served after it
        order.append("me")
    t.join()
    assert order == ["other", "me"]


def test_the_holder_takes_it_again_and_must_release_it_as_often():
    lock, got = TurnLock(), []
    lock.acquire()
    lock.acquire()
    lock.release()
    t = threading.Thread(target=lambda: got.append(lock.acquire() or True) or lock.release())
    t.start()
    _wait_until(lambda: lock.waiting() == 1)
    assert not got  # still held once
    lock.release()
    t.join(5)
    assert got == [True]


def test_only_the_holder_may_release_it():
    lock = TurnLock()
    with pytest.raises(RuntimeError):
        lock.release()
    lock.acquire()
    errors = []

    def other():
        try:
            lock.release()
        except RuntimeError as err:
            errors.append(err)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert errors
    lock.release()


def test_an_urgent_thread_goes_before_those_that_asked_earlier():
    lock, order, threads = TurnLock(), [], []
    lock.acquire()
    for name, urgent in (("delta 1", False), ("delta 2", False), ("issue 1", True), ("issue 2", True)):
        def take(name=name, urgent=urgent):
            with lock.hold(urgent):
                order.append(name)
        t = threading.Thread(target=take)
        t.start()
        threads.append(t)
        _wait_until(lambda: lock.waiting() == len(threads))
    lock.release()
    for t in threads:
        t.join()
    assert order == ["issue 1", "issue 2", "delta 1", "delta 2"]
