"""The 8254 programmable interval timer at ports 0x40-0x43 (QEMU 7.2 hw/timer/i8254.c and
i8254_common.c; Intel 82C54 datasheet, order 231244).

Three counters clocked at 1.193182 MHz. The control word at port 0x43 selects a counter's
access (latch, LSB, MSB, LSB then MSB), mode (0-5; 6 and 7 decode as QEMU decodes them) and
BCD flag, or is a read-back command (latch count and/or status of several counters). Ports
0x40-0x42 load a counter (0 means 0x10000) and read it, latched or live.

As QEMU does, the counters are not stepped: each one remembers when it was loaded
(``count_load_time``, on the machine's :class:`~emu.clock.Clock`) and every read computes
the count and output from the elapsed time. The BCD flag is stored and reported in the status
byte; counting is binary (QEMU's model). Counter 0 drives ``irq`` (ISA IRQ 0): a clock timer
is armed for each transition of its output, which sets the line's level. Counter 2's gate and
output go through port 0x61 (:mod:`emu.devices.pcspk`); counter 1 (DRAM refresh) only counts.

Reset (``pit_reset_common``): every counter in mode 3 with count 0x10000 loaded now, gates
high except counter 2's; access modes and latches keep their values.

Trace events (emu's own; QEMU 7.2 has none for this device): ``pit_ioport_write``,
``pit_ioport_read``, ``pit_irq``.
"""

from __future__ import annotations

from emu import trace as tracing
from emu.clock import NANOSECONDS_PER_SECOND, Clock, Timer
from emu.devices.byteio import byte_region
from emu.irq import Gpios, IrqLine
from emu.trace import trace

PIT_FREQ = 1193182
PIT_BASE = 0x40
RW_STATE_LSB, RW_STATE_MSB, RW_STATE_WORD0, RW_STATE_WORD1 = 1, 2, 3, 4


def _ticks(ns: int) -> int:
    """``muldiv64(ns, PIT_FREQ, NANOSECONDS_PER_SECOND)``."""
    return ns * PIT_FREQ // NANOSECONDS_PER_SECOND


class PitChannel:
    """One counter's state (QEMU's ``PITChannelState``)."""

    def __init__(self, clock: Clock, index: int) -> None:
        self.clock = clock
        self.index = index
        self.count = 0x10000
        self.latched_count = 0
        self.count_latched = 0
        self.status_latched = 0
        self.status = 0
        self.read_state = 0
        self.write_state = 0
        self.write_latch = 0
        self.rw_mode = 0
        self.mode = 0
        self.bcd = 0
        self.gate = 0
        self.count_load_time = 0
        self.next_transition_time = 0
        self.irq_disabled = 0
        #: counter 0 only: its output line and transition timer
        self.irq: IrqLine | None = None
        self.irq_timer: Timer | None = None

    def get_count(self) -> int:
        """The counting element now (``pit_get_count``)."""
        d = _ticks(self.clock.now_ns() - self.count_load_time)
        if self.mode in (0, 1, 4, 5):
            return (self.count - d) & 0xFFFF
        if self.mode == 3:
            return self.count - ((2 * d) % self.count)
        return self.count - (d % self.count)

    def get_out(self, current_time: int) -> int:
        """The OUT pin at ``current_time`` (``pit_get_out``)."""
        d = _ticks(current_time - self.count_load_time)
        mode, count = self.mode, self.count
        if mode == 1:
            return int(d < count)
        if mode == 2:
            return int(d % count == 0 and d != 0)
        if mode == 3:
            return int(d % count < ((count + 1) >> 1))
        if mode in (4, 5):
            return int(d == count)
        return int(d >= count)  # mode 0, and 6/7 as QEMU decodes them

    def next_transition(self, current_time: int) -> int:
        """When OUT changes next, or -1 (``pit_get_next_transition_time``)."""
        d = _ticks(current_time - self.count_load_time)
        mode, count = self.mode, self.count
        if mode == 2:
            base = d - d % count
            next_time = base + count if d - base == 0 and d != 0 else base + count + 1
        elif mode == 3:
            base = d - d % count
            period2 = (count + 1) >> 1
            next_time = base + period2 if d - base < period2 else base + count
        elif mode in (4, 5):
            if d < count:
                next_time = count
            elif d == count:
                next_time = count + 1
            else:
                return -1
        elif d < count:  # modes 0 and 1 (and 6/7)
            next_time = count
        else:
            return -1
        next_ns = self.count_load_time + next_time * NANOSECONDS_PER_SECOND // PIT_FREQ
        return next_ns if next_ns > current_time else current_time + 1

    def irq_timer_update(self, current_time: int) -> None:
        """Set the output line and arm the next transition (``pit_irq_timer_update``)."""
        if self.irq_timer is None or self.irq is None or self.irq_disabled:
            return
        expire = self.next_transition(current_time)
        level = self.get_out(current_time)
        if tracing.ON:
            trace("pit_irq", level=level, next=expire)
        self.irq.set_level(level)
        self.next_transition_time = expire
        if expire != -1:
            self.irq_timer.arm(expire)
        else:
            self.irq_timer.cancel()

    def on_timer(self) -> None:
        """``pit_irq_timer``: the transition the timer was armed for. When the clock is
        already periods past it (a host too slow for the rate: emu's timers fire between
        runs of the CPU), the transitions before the last two periods are skipped: no guest
        code runs between them, and the 8259 latches one edge however many there were, so
        only the cost of replaying them one by one, which could outgrow the time they
        cover, would change."""
        t = self.next_transition_time
        period = self.count * NANOSECONDS_PER_SECOND // PIT_FREQ
        if self.mode in (2, 3) and period and self.clock.now_ns() - t > 4 * period:
            t = self.next_transition(self.clock.now_ns() - 2 * period)
        self.irq_timer_update(t)

    def load_count(self, val: int) -> None:
        """``pit_load_count``: a new initial count (0 means 0x10000) starts now."""
        self.count_load_time = self.clock.now_ns()
        self.count = val or 0x10000
        self.irq_timer_update(self.count_load_time)

    def latch_count(self) -> None:
        """``pit_latch_count``: a latched count stays until read."""
        if not self.count_latched:
            self.latched_count = self.get_count() & 0xFFFF
            self.count_latched = self.rw_mode

    def set_gate(self, val: int) -> None:
        """``pit_set_channel_gate``: a rising edge restarts modes 1, 2, 3 and 5."""
        if self.mode in (1, 2, 3, 5) and self.gate < val:
            self.count_load_time = self.clock.now_ns()
            self.irq_timer_update(self.count_load_time)
        self.gate = val


class Pit:
    """The 8254 (``isa-pit``): ``region`` (4 ports), ``irq`` (counter 0's output)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.channels = [PitChannel(clock, i) for i in range(3)]
        ch0 = self.channels[0]
        self.irq = IrqLine("pit.irq")
        ch0.irq = self.irq
        ch0.irq_timer = Timer(clock, ch0.on_timer)
        #: QEMU's gpio input 0: the HPET turns counter 0's interrupt off in legacy mode
        self.irq_control = IrqLine("pit.irq_control", self._irq_control)
        self.region = byte_region("pit", 4, self.ioport_read, self.ioport_write)
        self.gpios = Gpios("isa-pit", inputs={None: [self.irq_control]},
                           outputs={None: [self.irq]})

    def reset(self) -> None:
        """``pit_reset``: counters to mode 3 / 0x10000, counter 0's timer armed."""
        now = self.clock.now_ns()
        for i, s in enumerate(self.channels):
            s.mode = 3
            s.gate = int(i != 2)
            s.count_load_time = now
            s.count = 0x10000
            if i == 0 and not s.irq_disabled:
                s.next_transition_time = s.next_transition(now)
        ch0 = self.channels[0]
        if not ch0.irq_disabled:
            assert ch0.irq_timer is not None
            ch0.irq_timer.arm(ch0.next_transition_time)

    def _irq_control(self, enable: int) -> None:
        s = self.channels[0]
        assert s.irq_timer is not None
        if enable:
            s.irq_disabled = 0
            s.irq_timer_update(self.clock.now_ns())
        else:
            s.irq_disabled = 1
            s.irq_timer.cancel()

    def set_gate(self, channel: int, val: int) -> None:
        """``pit_set_gate``."""
        self.channels[channel].set_gate(val)

    def channel_info(self, channel: int) -> tuple[int, int, int, int]:
        """(gate, mode, initial count, out) (``pit_get_channel_info``)."""
        s = self.channels[channel]
        return s.gate, s.mode, s.count, s.get_out(self.clock.now_ns())

    def ioport_write(self, addr: int, val: int) -> None:
        """``pit_ioport_write``."""
        self.clock.catch_up()
        if tracing.ON:
            trace("pit_ioport_write", addr=addr, val=val)
        addr &= 3
        if addr == 3:
            channel = val >> 6
            if channel == 3:  # read-back
                for i, s in enumerate(self.channels):
                    if not val & (2 << i):
                        continue
                    if not val & 0x20:
                        s.latch_count()
                    if not val & 0x10 and not s.status_latched:
                        s.status = ((s.get_out(self.clock.now_ns()) << 7) | (s.rw_mode << 4)
                                    | (s.mode << 1) | s.bcd)
                        s.status_latched = 1
                return
            s = self.channels[channel]
            access = (val >> 4) & 3
            if access == 0:
                s.latch_count()
            else:
                s.rw_mode = s.read_state = s.write_state = access
                s.mode = (val >> 1) & 7
                s.bcd = val & 1
            return
        s = self.channels[addr]
        if s.write_state == RW_STATE_MSB:
            s.load_count(val << 8)
        elif s.write_state == RW_STATE_WORD0:
            s.write_latch = val
            s.write_state = RW_STATE_WORD1
        elif s.write_state == RW_STATE_WORD1:
            s.load_count(s.write_latch | (val << 8))
            s.write_state = RW_STATE_WORD0
        else:  # RW_STATE_LSB, and the never-programmed state 0
            s.load_count(val)

    def ioport_read(self, addr: int) -> int:
        """``pit_ioport_read``: status, latched count or live count; 0 from the control port."""
        self.clock.catch_up()
        addr &= 3
        if addr == 3:
            ret = 0
        else:
            s = self.channels[addr]
            if s.status_latched:
                s.status_latched = 0
                ret = s.status
            elif s.count_latched:
                if s.count_latched == RW_STATE_MSB:
                    ret = s.latched_count >> 8
                    s.count_latched = 0
                elif s.count_latched == RW_STATE_WORD0:
                    ret = s.latched_count & 0xFF
                    s.count_latched = RW_STATE_MSB
                else:
                    ret = s.latched_count & 0xFF
                    s.count_latched = 0
            elif s.read_state == RW_STATE_MSB:
                ret = (s.get_count() >> 8) & 0xFF
            elif s.read_state == RW_STATE_WORD0:
                ret = s.get_count() & 0xFF
                s.read_state = RW_STATE_WORD1
            elif s.read_state == RW_STATE_WORD1:
                ret = (s.get_count() >> 8) & 0xFF
                s.read_state = RW_STATE_WORD0
            else:
                ret = s.get_count() & 0xFF
        if tracing.ON:
            trace("pit_ioport_read", addr=addr, val=ret)
        return ret
