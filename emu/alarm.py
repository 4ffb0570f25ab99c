"""The alarm that brings the CPU back to the run loop when the next guest timer is due.

The CPU runs guest code until something stops it at a safe point (docs/devel/run-loop.md);
a guest that computes, or spins on a variable only its timer interrupt changes, touches no
device and never halts. Before each run the loop sets this alarm to the host time of the
clock's next deadline; a thread waits for that moment and then asks the CPU to stop at its
next block boundary (``StopRequest.request``, which is safe from any thread). The loop then
fires the due timers, whose interrupts the CPU takes when it resumes. QEMU's TCG does the
same with its timer signal and ``cpu_exit`` (accel/tcg/tcg-accel-ops-rr.c).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Alarm:
    """Calls ``fire`` (on its own thread) at the host time last given to :meth:`set`."""

    def __init__(self, fire: Callable[[], None]) -> None:
        self._fire = fire
        self._cond = threading.Condition()
        self._at: int | None = None  # host monotonic ns
        self._closed = False
        self._thread: threading.Thread | None = None

    def set(self, at_ns: int | None) -> None:
        """Fire at host monotonic time ``at_ns`` (None: not at all). Replaces the last."""
        with self._cond:
            if at_ns == self._at:
                return
            self._at = at_ns
            if at_ns is not None and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="emu-alarm",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        cond = self._cond
        with cond:
            while not self._closed:
                if self._at is None:
                    cond.wait()
                    continue
                delay = self._at - time.monotonic_ns()
                if delay > 0:
                    cond.wait(delay / 1e9)
                    continue
                self._at = None
                self._fire()
