"""The planner's lock, handed out in turn: to an issue first, else to whoever has waited longest.

With a plain lock, whoever asked last often got it first: a thread that has just released a lock
takes it again before a waiting thread is even woken. Under a stream of deltas an issue waited
for two or three of them and for the background search's takeovers in between. In turn, nobody
waits for more than those ahead of them; and an issue (a crew waiting on the radio) goes ahead
of deltas and the search, whose news may as well land a millisecond later. Issues do not starve
the rest: each is one short hold, and a client asks for the next only after the last.
"""

from __future__ import annotations

import itertools
import threading
from contextlib import contextmanager


class TurnLock:
    """A re-entrant lock that, when released, goes to the urgent thread that has waited longest,
    else to the thread that has waited longest.

    A holder taking it again (a callback applying a delta, say) gets it at once, as with
    ``RLock``; it must release it as many times.
    """

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._tickets = itertools.count()
        self._queue: list[int] = []  # the tickets of the waiting threads, in turn
        self._urgent: list[int] = []  # those of them that go first

    def acquire(self, urgent: bool = False) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            ticket = next(self._tickets)
            self._queue.append(ticket)
            if urgent:
                self._urgent.append(ticket)
            try:
                while self._owner is not None or (self._urgent[0] if self._urgent else self._queue[0]) != ticket:
                    self._cond.wait()
            except BaseException:  # interrupted while waiting: the next in turn may go
                self._queue.remove(ticket)
                if urgent:
                    self._urgent.remove(ticket)
                self._cond.notify_all()
                raise
            self._queue.remove(ticket)
            if urgent:
                self._urgent.pop(0)
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a TurnLock not held by this thread")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()

    @contextmanager
    def hold(self, urgent: bool = False):
        self.acquire(urgent)
        try:
            yield
        finally:
            self.release()

    def waiting(self) -> int:
        """How many threads wait for the lock."""
        with self._cond:
            return len(self._queue)
