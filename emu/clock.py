"""The machine's virtual clock: the one time base every device timer schedules on.

This is QEMU's ``QEMU_CLOCK_VIRTUAL`` (include/qemu/timer.h, util/qemu-timer.c): nanoseconds
of guest time, and a list of timers ordered by deadline. Devices (PIT, RTC, later the APIC
timer) read :meth:`Clock.now_ns` and arm :class:`Timer` objects; they never sleep or start
threads. Whoever owns the CPU asks :meth:`Clock.next_deadline` how long the guest may run,
stops it there, and calls :meth:`Clock.run_due`, which fires the expired timers in deadline
order (timers with equal deadlines fire in the order they were armed, as QEMU's
``timer_mod_ns_locked`` inserts them).

Modes:

* ``realtime`` (the default): guest time is host monotonic time since the clock was created,
  minus the time the clock was stopped (:meth:`Clock.stop` / :meth:`Clock.start`, QEMU's
  ``cpu_disable_ticks`` / ``cpu_enable_ticks`` while the VM is paused).
* ``qtest``: guest time moves only when a test says so, through :meth:`Clock.warp_to`
  (``clock_step`` / ``clock_set``). Like QEMU's ``qtest_clock_warp`` (softmmu/qtest.c) the
  clock jumps from deadline to deadline, firing each timer with the clock at its deadline,
  and finally to the destination.
* an instruction-count mode (QEMU's ``-icount``) fits the same interface: ``now_ns`` derived
  from the executed-instruction count, timers unchanged.

Threads: timers are armed, cancelled and fired on the machine's thread (the thread that runs
the CPU and device callbacks and serves qtest and monitor requests); :meth:`now_ns` may be
called from any thread.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable

NANOSECONDS_PER_SECOND = 1_000_000_000

_Entry = tuple[int, int, "Timer"]
#: heap size from which re-arming drops the entries of cancelled and re-armed timers
_COMPACT_AT = 256


class Timer:
    """A one-shot timer on ``clock`` calling ``callback()`` when its deadline passes
    (QEMU's ``QEMUTimer``: ``timer_mod`` is :meth:`arm`, ``timer_del`` is :meth:`cancel`)."""

    __slots__ = ("_entry", "callback", "clock")

    def __init__(self, clock: Clock, callback: Callable[[], None]) -> None:
        self.clock = clock
        self.callback = callback
        self._entry: _Entry | None = None

    def arm(self, deadline_ns: int) -> None:
        """Fire at ``deadline_ns`` (replacing any earlier arming). A deadline in the past
        fires at the next :meth:`Clock.run_due`."""
        self._entry = self.clock._push(self, deadline_ns)

    def cancel(self) -> None:
        """Do not fire (QEMU's ``timer_del``)."""
        self._entry = None

    @property
    def pending(self) -> bool:
        """Whether the timer is armed and has not fired (QEMU's ``timer_pending``)."""
        return self._entry is not None

    @property
    def deadline(self) -> int:
        """The armed deadline, or -1 (QEMU's ``timer_expire_time_ns``)."""
        return self._entry[0] if self._entry is not None else -1


class Clock:
    """The virtual clock of one machine (see the module docstring for the modes)."""

    MODES = ("realtime", "qtest", "icount")

    def __init__(self, mode: str = "realtime",
                 source: Callable[[], int] = time.monotonic_ns) -> None:
        if mode not in self.MODES:
            raise ValueError(f"unknown clock mode {mode!r}")
        self.mode = mode
        self._source = source
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        #: qtest mode: the current time
        self._qtest_now = 0
        #: realtime mode: host time at which guest time was 0, and where it stopped
        self._base = source()
        self._stopped_at: int | None = None
        #: called with the deadline when a timer is armed earlier than every other one (the
        #: run loop moves its alarm: a guest that re-arms a timer while it runs)
        self.on_earliest: Callable[[int], None] | None = None

    # -- time ---------------------------------------------------------------------------------

    def use_instructions(self, count: Callable[[], int], shift: int) -> None:
        """icount mode (``-icount shift=N``): guest time is 2^N ns per instruction the CPU
        has started (``count``), plus the time idle periods skipped (:meth:`skip_to`)."""
        self.mode = "icount"
        self._insn_count = count
        self.shift = shift
        self._skipped = 0

    def skip_to(self, deadline: int) -> None:
        """icount mode: the CPU is idle; move guest time on to ``deadline`` (QEMU's
        icount_warp: time passes without instructions)."""
        now = self.now_ns()
        if deadline > now:
            self._skipped += deadline - now

    def instructions_until(self, deadline: int) -> int:
        """icount mode: the instruction count at which guest time reaches ``deadline``."""
        ahead = deadline - self._skipped
        return max(0, -(-ahead >> self.shift)) if ahead > 0 else 0

    def now_ns(self) -> int:
        """Guest time in nanoseconds."""
        if self.mode == "qtest":
            return self._qtest_now
        if self.mode == "icount":
            return (self._insn_count() << self.shift) + self._skipped
        if self._stopped_at is not None:
            return self._stopped_at
        return self._source() - self._base

    def stop(self) -> None:
        """Realtime mode: freeze guest time (the VM is paused)."""
        if self.mode == "realtime" and self._stopped_at is None:
            self._stopped_at = self.now_ns()

    def start(self) -> None:
        """Realtime mode: let guest time run again from where it stopped."""
        if self._stopped_at is not None:
            self._base = self._source() - self._stopped_at
            self._stopped_at = None

    # -- timers -------------------------------------------------------------------------------

    def _push(self, timer: Timer, deadline: int) -> _Entry:
        entry = (deadline, next(self._seq), timer)
        heap = self._heap
        if len(heap) >= _COMPACT_AT:
            # re-arming leaves the old entry behind; drop the dead ones now and then, so a
            # guest that reloads a timer in a loop with nobody running the timers (realtime
            # mode before the run loop calls run_due) does not grow the heap without bound
            live = [e for e in heap if e[2]._entry is e]
            if len(live) * 2 <= len(heap):
                heapq.heapify(live)
                self._heap = heap = live
        heapq.heappush(heap, entry)
        if heap[0] is entry and self.on_earliest is not None:
            self.on_earliest(deadline)
        return entry

    def _head(self) -> _Entry | None:
        """The earliest live entry (cancelled and re-armed entries are dropped lazily)."""
        heap = self._heap
        while heap:
            entry = heap[0]
            if entry[2]._entry is entry:
                return entry
            heapq.heappop(heap)
        return None

    def next_deadline(self) -> int | None:
        """The earliest armed deadline (absolute ns), or ``None`` when no timer is armed."""
        head = self._head()
        return head[0] if head is not None else None

    def host_time_of(self, deadline: int) -> int | None:
        """Realtime mode: the host monotonic time at which guest time reaches ``deadline``;
        None while stopped or in qtest mode (guest time then moves only when told)."""
        if self.mode != "realtime" or self._stopped_at is not None:
            return None
        return self._base + deadline

    def deadline_ns(self) -> int:
        """Nanoseconds until the next deadline: 0 if one has passed, -1 if none is armed
        (QEMU's ``qemu_clock_deadline_ns_all``)."""
        head = self._head()
        if head is None:
            return -1
        return max(0, head[0] - self.now_ns())

    def run_due(self) -> int:
        """Fire every timer whose deadline is at or before now, earliest first, including
        timers a callback arms for a time already passed (QEMU's ``timerlist_run_timers``:
        ``now`` is read once). Returns how many fired."""
        now = self.now_ns()
        fired = 0
        while True:
            head = self._head()
            if head is None or head[0] > now:
                return fired
            heapq.heappop(self._heap)
            timer = head[2]
            timer._entry = None
            timer.callback()
            fired += 1

    def catch_up(self) -> None:
        """Fire the timers that are due, if any (cheap when none is). Devices whose registers
        depend on their timers call it before each guest access, so that a guest polling
        them sees every expired timer's effect even before the run loop fires timers itself
        (QEMU fires them from its main loop, asynchronously)."""
        head = self._head()
        if head is not None and head[0] <= self.now_ns():
            self.run_due()

    def settled_now(self) -> int:
        """The current time, with every timer due by then fired first: a guest that reads a
        clock never sees a time past a deadline whose timer has not fired yet (the host may
        deschedule emu between ``catch_up`` and the read)."""
        while True:
            now = self.now_ns()
            head = self._head()
            if head is None or head[0] > now:
                return now
            self.run_due()

    # -- qtest --------------------------------------------------------------------------------

    def warp_to(self, dest: int) -> int:
        """qtest mode: advance to ``dest`` ns, stopping at each deadline on the way to fire
        its timers (QEMU's ``qtest_clock_warp``). Never goes back. Returns the new time."""
        if self.mode != "qtest":
            raise RuntimeError("the clock only warps in qtest mode")
        while self._qtest_now < dest:
            deadline = self.deadline_ns()
            warp = dest - self._qtest_now
            if 0 <= deadline < warp:
                warp = deadline
            self._qtest_now += warp
            self.run_due()
        return self._qtest_now

    def step(self, ns: int | None = None) -> int:
        """qtest ``clock_step [NS]``: advance by ``ns``, or to the next deadline (nothing
        happens when no timer is armed, or one is already due, as in QEMU)."""
        if ns is None:
            ns = self.deadline_ns()
        return self.warp_to(self._qtest_now + ns)
