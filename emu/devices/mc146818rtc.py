"""The MC146818 real-time clock and its 128 bytes of CMOS memory at ports 0x70-0x71 (QEMU 7.2
hw/rtc/mc146818rtc.c; Motorola MC146818A datasheet).

Port 0x70 selects a register (bits 0-6; bit 7 is the chipset's NMI mask, remembered in
``nmi_masked`` and otherwise ignored, as QEMU ignores it) and reads as 0xff; port 0x71 reads
and writes the selected byte. Registers 0-9 hold the time and alarm in BCD or binary (register
B's DM bit) and 12- or 24-hour form (its 24H bit), 0x32 the century (0x37 is an alias that
moves the index to 0x32, IBM's PS/2 century byte). Register A: UIP (update in progress, read
only), the divider (0x60 in bits 4-6 holds it in reset) and the periodic rate; B: SET, PIE, AIE,
UIE, SQWE, DM, 24H, DSE; C: IRQF, PF, AF, UF (read only, cleared by a read, which also lowers
the interrupt); D: VRT (battery good, always 0x80).

Time runs on the machine's virtual clock (:class:`~emu.clock.Clock`), exactly as QEMU's RTC
with ``-rtc clock=vm``: the registers are computed from ``base_rtc`` (seconds at the last
setting) plus the virtual nanoseconds since then, the date set from the host's UTC time at
creation. Three timers: the periodic interrupt (PF, rate from register A, only while PIE is
set), and the update timer that ends each second's update cycle (UF) and checks the alarm (AF);
an enabled flag raises ``irq`` (ISA IRQ 8) and sets IRQF. QEMU's arithmetic is kept, C integer
wrap-around included, so a guest that writes nonsense gets QEMU's nonsense back.

Trace events (emu's own; QEMU 7.2 has none for the RTC): ``cmos_ioport_write``,
``cmos_ioport_read``, ``rtc_irq``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from emu import trace as tracing
from emu.clock import NANOSECONDS_PER_SECOND, Clock, Timer
from emu.devices.byteio import byte_region
from emu.irq import Gpios, IrqLine
from emu.trace import trace

RTC_BASE = 0x70
RTC_ISA_IRQ = 8

RTC_SECONDS, RTC_SECONDS_ALARM, RTC_MINUTES, RTC_MINUTES_ALARM = 0, 1, 2, 3
RTC_HOURS, RTC_HOURS_ALARM, RTC_DAY_OF_WEEK, RTC_DAY_OF_MONTH = 4, 5, 6, 7
RTC_MONTH, RTC_YEAR = 8, 9
RTC_REG_A, RTC_REG_B, RTC_REG_C, RTC_REG_D = 10, 11, 12, 13
RTC_CENTURY = 0x32
RTC_IBM_PS2_CENTURY_BYTE = 0x37

REG_A_UIP = 0x80
REG_B_SET, REG_B_PIE, REG_B_AIE, REG_B_UIE = 0x80, 0x40, 0x20, 0x10
REG_B_SQWE, REG_B_DM, REG_B_24H = 0x08, 0x04, 0x02
REG_C_UF, REG_C_IRQF, REG_C_PF, REG_C_AF, REG_C_MASK = 0x10, 0x80, 0x40, 0x20, 0x70

RTC_CLOCK_RATE = 32768
UIP_HOLD_LENGTH = 8 * NANOSECONDS_PER_SECOND // 32768
SEC_PER_MIN, MIN_PER_HOUR, HOUR_PER_DAY, SEC_PER_DAY = 60, 60, 24, 86400
_TIME_REGS = (RTC_CENTURY, RTC_SECONDS, RTC_MINUTES, RTC_HOURS, RTC_DAY_OF_WEEK,
              RTC_DAY_OF_MONTH, RTC_MONTH, RTC_YEAR)

_U64 = (1 << 64) - 1


def _u64(x: int) -> int:
    return x & _U64


def _s64(x: int) -> int:
    x &= _U64
    return x - (1 << 64) if x >> 63 else x


def _cdiv(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _cmod(a: int, b: int) -> int:
    """C's ``%`` (the sign of the dividend)."""
    return a - b * _cdiv(a, b)


def periodic_period_to_clock(period_code: int) -> int:
    """32 kHz cycles per periodic interrupt for register A's rate (mc146818rtc.h)."""
    if not period_code:
        return 0
    if period_code <= 2:
        period_code += 7
    return 1 << (period_code - 1)


def periodic_clock_to_ns(clocks: int) -> int:
    return clocks * NANOSECONDS_PER_SECOND // RTC_CLOCK_RATE


class Tm:
    """C's ``struct tm`` (the fields QEMU uses)."""

    __slots__ = ("hour", "mday", "min", "mon", "sec", "wday", "year")

    def __init__(self, sec: int = 0, min: int = 0, hour: int = 0, mday: int = 0,
                 mon: int = 0, year: int = 0, wday: int = 0) -> None:
        self.sec, self.min, self.hour = sec, min, hour
        self.mday, self.mon, self.year, self.wday = mday, mon, year, wday


def mktimegm(tm: Tm) -> int:
    """QEMU's ``mktimegm`` (util/cutils.c), with its C arithmetic (a signed 64-bit result)."""
    y, m, d = tm.year + 1900, tm.mon + 1, tm.mday
    if m < 3:
        m += 12
        y -= 1
    days = (d + _cdiv(153 * m - 457, 5) + 365 * y + _cdiv(y, 4) - _cdiv(y, 100)
            + _cdiv(y, 400) - 719469)
    return _s64(86400 * days + 3600 * tm.hour + 60 * tm.min + tm.sec)


def gmtime(t: int) -> Tm:
    """glibc's ``gmtime_r`` for any 64-bit ``t`` (days to civil date, proleptic Gregorian)."""
    days, secs = divmod(t, 86400)
    wday = (4 + days) % 7  # 1970-01-01 was a Thursday
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    mday = doy - (153 * mp + 2) // 5 + 1
    mon = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if mon <= 2 else 0)
    return Tm(secs % 60, secs // 60 % 60, secs // 3600, mday, mon - 1, year - 1900, wday)


class MC146818Rtc:
    """The RTC (``mc146818rtc``): ``region`` (2 ports), ``irq`` output, ``cmos`` bytes."""

    def __init__(self, clock: Clock, base_year: int = 2000,
                 host_time: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.cmos = bytearray(128)
        self.cmos_index = 0
        self.nmi_masked = False
        # QEMU's realize: base_year 2000 becomes 0 (the century byte carries the century)
        self.base_year = 0 if base_year == 2000 else base_year
        self.irq = IrqLine("rtc.irq")
        self.gpios = Gpios("mc146818rtc", outputs={None: [self.irq]})
        self.region = byte_region("rtc", 2, self.ioport_read, self.ioport_write)
        self.periodic_timer = Timer(clock, self._periodic_timer)
        self.update_timer = Timer(clock, self._update_timer)
        self.next_periodic_time = 0
        self.period = 0
        self.next_alarm_time = 0
        self.base_rtc = 0
        self.last_update = 0
        self.offset = 0
        cmos = self.cmos
        cmos[RTC_REG_A], cmos[RTC_REG_B], cmos[RTC_REG_C], cmos[RTC_REG_D] = 0x26, 0x02, 0, 0x80
        self._set_date_from_host(int(host_time()))
        self._check_update_timer()

    # -- time keeping -------------------------------------------------------------------------

    def _running(self) -> bool:
        cmos = self.cmos
        return not cmos[RTC_REG_B] & REG_B_SET and (cmos[RTC_REG_A] & 0x70) <= 0x20

    def _guest_rtc_ns(self) -> int:
        """``get_guest_rtc_ns``: an unsigned 64-bit value, as in QEMU."""
        return _u64(self.base_rtc * NANOSECONDS_PER_SECOND + self.clock.now_ns()
                    - self.last_update + self.offset)

    def _to_bcd(self, a: int) -> int:
        if self.cmos[RTC_REG_B] & REG_B_DM:
            return a & 0xFF
        return ((_cdiv(a, 10) << 4) | _cmod(a, 10)) & 0xFF

    def _from_bcd(self, a: int) -> int:
        if (a & 0xC0) == 0xC0:
            return -1
        if self.cmos[RTC_REG_B] & REG_B_DM:
            return a
        return (a >> 4) * 10 + (a & 0x0F)

    def _get_time(self) -> Tm:
        cmos, fb = self.cmos, self._from_bcd
        hour = fb(cmos[RTC_HOURS] & 0x7F)
        if not cmos[RTC_REG_B] & REG_B_24H:
            hour = _cmod(hour, 12)
            if cmos[RTC_HOURS] & 0x80:
                hour += 12
        return Tm(sec=fb(cmos[RTC_SECONDS]), min=fb(cmos[RTC_MINUTES]), hour=hour,
                  wday=fb(cmos[RTC_DAY_OF_WEEK]) - 1, mday=fb(cmos[RTC_DAY_OF_MONTH]),
                  mon=fb(cmos[RTC_MONTH]) - 1,
                  year=fb(cmos[RTC_YEAR]) + self.base_year + fb(cmos[RTC_CENTURY]) * 100 - 1900)

    def _set_time(self) -> None:
        """``rtc_set_time``: the registers become the time from now on."""
        self.base_rtc = _u64(mktimegm(self._get_time()))
        self.last_update = self.clock.now_ns()

    def _set_cmos(self, tm: Tm) -> None:
        cmos, tb = self.cmos, self._to_bcd
        cmos[RTC_SECONDS] = tb(tm.sec)
        cmos[RTC_MINUTES] = tb(tm.min)
        if cmos[RTC_REG_B] & REG_B_24H:
            cmos[RTC_HOURS] = tb(tm.hour)
        else:
            h = tm.hour % 12 or 12
            cmos[RTC_HOURS] = tb(h) | (0x80 if tm.hour >= 12 else 0)
        cmos[RTC_DAY_OF_WEEK] = tb(tm.wday + 1)
        cmos[RTC_DAY_OF_MONTH] = tb(tm.mday)
        cmos[RTC_MONTH] = tb(tm.mon + 1)
        year = tm.year + 1900 - self.base_year
        cmos[RTC_YEAR] = tb(_cmod(year, 100))
        cmos[RTC_CENTURY] = tb(_cdiv(year, 100))

    def _update_time(self) -> None:
        """``rtc_update_time``: bring the registers up to now (unless SET)."""
        guest_sec = _cdiv(_s64(self._guest_rtc_ns()), NANOSECONDS_PER_SECOND)
        if not self.cmos[RTC_REG_B] & REG_B_SET:
            self._set_cmos(gmtime(guest_sec))

    def _set_date_from_host(self, now: int) -> None:
        tm = gmtime(now)
        self.base_rtc = _u64(mktimegm(tm))
        self.last_update = self.clock.now_ns()
        self.offset = 0
        self._set_cmos(tm)

    def _update_in_progress(self) -> bool:
        if not self._running():
            return False
        if self.update_timer.pending and \
                self.clock.now_ns() >= self.update_timer.deadline - UIP_HOLD_LENGTH:
            self.cmos[RTC_REG_A] |= REG_A_UIP  # latched until the timer expires
            return True
        guest_nsec = _s64(self._guest_rtc_ns())
        return _cmod(guest_nsec, NANOSECONDS_PER_SECOND) >= \
            NANOSECONDS_PER_SECOND - UIP_HOLD_LENGTH

    # -- interrupts ---------------------------------------------------------------------------

    def _set_irq(self, level: int) -> None:
        if tracing.ON:
            trace("rtc_irq", level=level)
        self.irq.set_level(level)

    def _periodic_ticks(self) -> int:
        if not self.cmos[RTC_REG_B] & REG_B_PIE:
            return 0
        return periodic_period_to_clock(self.cmos[RTC_REG_A] & 0x0F)

    def _periodic_timer_update(self, current_time: int, old_period: int,
                               period_change: bool) -> None:
        """``periodic_timer_update`` (the lost-tick policy is QEMU's default, discard)."""
        period = self._periodic_ticks()
        self.period = period
        if not period:
            self.periodic_timer.cancel()
            return
        cur_clock = current_time * RTC_CLOCK_RATE // NANOSECONDS_PER_SECOND
        lost_clock = 0
        if old_period and period_change:
            next_periodic_clock = (self.next_periodic_time * RTC_CLOCK_RATE
                                   // NANOSECONDS_PER_SECOND)
            lost_clock = cur_clock - (next_periodic_clock - old_period)
        lost_clock = min(lost_clock, period)
        next_irq_clock = cur_clock + period - lost_clock
        self.next_periodic_time = periodic_clock_to_ns(next_irq_clock) + 1
        self.periodic_timer.arm(self.next_periodic_time)

    def _periodic_timer(self) -> None:
        self._periodic_timer_update(self.next_periodic_time, self.period, False)
        self.cmos[RTC_REG_C] |= REG_C_PF
        if self.cmos[RTC_REG_B] & REG_B_PIE:
            self.cmos[RTC_REG_C] |= REG_C_IRQF
            self._set_irq(1)

    def _check_update_timer(self) -> None:
        """``check_update_timer``: program the end of the next update cycle, or the alarm."""
        cmos = self.cmos
        if (cmos[RTC_REG_A] & 0x60) == 0x60:  # dividers in reset: no update interrupts
            self.update_timer.cancel()
            return
        guest_nsec = self._guest_rtc_ns() % NANOSECONDS_PER_SECOND
        next_update_time = _u64(self.clock.now_ns() + NANOSECONDS_PER_SECOND - guest_nsec)
        next_alarm_sec = self._next_alarm()
        self.next_alarm_time = _u64(next_update_time
                                    + (next_alarm_sec - 1) * NANOSECONDS_PER_SECOND)
        if not cmos[RTC_REG_A] & REG_A_UIP and cmos[RTC_REG_C] & REG_C_UF:
            if cmos[RTC_REG_B] & REG_B_SET or cmos[RTC_REG_C] & REG_C_AF:
                self.update_timer.cancel()
                return
            next_update_time = self.next_alarm_time  # UF set, AF clear: wait for the alarm
        if next_update_time != _u64(self.update_timer.deadline):
            self.update_timer.arm(_s64(next_update_time))

    def _convert_hour(self, hour: int) -> int:
        hour &= 0xFF  # QEMU's parameter is a uint8_t
        if not self.cmos[RTC_REG_B] & REG_B_24H:
            hour %= 12
            if self.cmos[RTC_HOURS] & 0x80:
                hour += 12
        return hour

    def _next_alarm(self) -> int:
        """``get_next_alarm``: seconds from the next update to the alarm (1..86400)."""
        self._update_time()
        cmos, fb = self.cmos, self._from_bcd
        alarm_sec = fb(cmos[RTC_SECONDS_ALARM])
        alarm_min = fb(cmos[RTC_MINUTES_ALARM])
        alarm_hour = fb(cmos[RTC_HOURS_ALARM])
        alarm_hour = -1 if alarm_hour == -1 else self._convert_hour(alarm_hour)
        cur_sec = fb(cmos[RTC_SECONDS])
        cur_min = fb(cmos[RTC_MINUTES])
        cur_hour = self._convert_hour(fb(cmos[RTC_HOURS]))

        if alarm_hour == -1:
            alarm_hour = cur_hour
            if alarm_min == -1:
                alarm_min = cur_min
                if alarm_sec == -1:
                    alarm_sec = cur_sec + 1
                elif cur_sec > alarm_sec:
                    alarm_min += 1
            elif cur_min == alarm_min:
                if alarm_sec == -1:
                    alarm_sec = cur_sec + 1
                elif cur_sec > alarm_sec:
                    alarm_hour += 1
                if alarm_sec == SEC_PER_MIN:
                    alarm_sec = 0
                    alarm_hour += 1
            elif cur_min > alarm_min:
                alarm_hour += 1
        elif cur_hour == alarm_hour:
            if alarm_min == -1:
                alarm_min = cur_min
                if alarm_sec == -1:
                    alarm_sec = cur_sec + 1
                elif cur_sec > alarm_sec:
                    alarm_min += 1
                if alarm_sec == SEC_PER_MIN:
                    alarm_sec = 0
                    alarm_min += 1
                alarm_min = _cmod(alarm_min, MIN_PER_HOUR)
            elif cur_min == alarm_min:
                if alarm_sec == -1:
                    alarm_sec = cur_sec + 1
                alarm_sec = _cmod(alarm_sec, SEC_PER_MIN)

        if alarm_min == -1:
            alarm_min = 0
        if alarm_sec == -1:
            alarm_sec = 0
        if alarm_sec == SEC_PER_MIN:
            alarm_sec = 0
            alarm_min += 1
        if alarm_min == MIN_PER_HOUR:
            alarm_min = 0
            alarm_hour += 1
        alarm_hour = _cmod(alarm_hour, HOUR_PER_DAY)

        hour = alarm_hour - cur_hour
        minutes = hour * MIN_PER_HOUR + alarm_min - cur_min
        sec = minutes * SEC_PER_MIN + alarm_sec - cur_sec
        return sec + SEC_PER_DAY if sec <= 0 else sec

    def _update_timer(self) -> None:
        """``rtc_update_timer``: an update cycle ended (UF), maybe at the alarm (AF)."""
        cmos = self.cmos
        self._update_time()
        cmos[RTC_REG_A] &= ~REG_A_UIP
        irqs = REG_C_UF
        if _u64(self.clock.now_ns()) >= self.next_alarm_time:
            irqs |= REG_C_AF
        new_irqs = irqs & ~cmos[RTC_REG_C]
        cmos[RTC_REG_C] |= irqs
        if new_irqs & cmos[RTC_REG_B]:
            cmos[RTC_REG_C] |= REG_C_IRQF
            self._set_irq(1)
        self._check_update_timer()

    # -- registers ----------------------------------------------------------------------------

    def ioport_write(self, addr: int, data: int) -> None:
        """``cmos_ioport_write``."""
        self.clock.catch_up()
        if tracing.ON:
            trace("cmos_ioport_write", addr=addr, index=self.cmos_index, val=data)
        cmos = self.cmos
        if not addr & 1:
            self.cmos_index = data & 0x7F
            self.nmi_masked = bool(data & 0x80)
            return
        index = self.cmos_index
        if index in (RTC_SECONDS_ALARM, RTC_MINUTES_ALARM, RTC_HOURS_ALARM):
            cmos[index] = data
            self._check_update_timer()
        elif index == RTC_IBM_PS2_CENTURY_BYTE or index in _TIME_REGS:
            if index == RTC_IBM_PS2_CENTURY_BYTE:
                index = self.cmos_index = RTC_CENTURY
            cmos[index] = data
            if self._running():
                self._set_time()
                self._check_update_timer()
        elif index == RTC_REG_A:
            self._write_reg_a(data)
        elif index == RTC_REG_B:
            self._write_reg_b(data)
        elif index in (RTC_REG_C, RTC_REG_D):
            pass  # read only
        else:
            cmos[index] = data

    def _write_reg_a(self, data: int) -> None:
        cmos = self.cmos
        update_periodic = (cmos[RTC_REG_A] ^ data) & 0x0F
        old_period = self._periodic_ticks()
        if (data & 0x60) == 0x60:
            if self._running():
                self._update_time()
            cmos[RTC_REG_A] &= ~REG_A_UIP
        elif (cmos[RTC_REG_A] & 0x60) == 0x60 and (data & 0x70) <= 0x20:
            # the first update cycle begins half a second after the divider reset ends
            if not cmos[RTC_REG_B] & REG_B_SET:
                self.offset = 500000000
                self._set_time()
            cmos[RTC_REG_A] &= ~REG_A_UIP
        cmos[RTC_REG_A] = (data & ~REG_A_UIP) | (cmos[RTC_REG_A] & REG_A_UIP)
        if update_periodic:
            self._periodic_timer_update(self.clock.now_ns(), old_period, True)
        self._check_update_timer()

    def _write_reg_b(self, data: int) -> None:
        cmos = self.cmos
        update_periodic = (cmos[RTC_REG_B] ^ data) & REG_B_PIE
        old_period = self._periodic_ticks()
        if data & REG_B_SET:
            if self._running():
                self._update_time()
            cmos[RTC_REG_A] &= ~REG_A_UIP
            data &= ~REG_B_UIE
        elif cmos[RTC_REG_B] & REG_B_SET and (cmos[RTC_REG_A] & 0x70) <= 0x20:
            self.offset = self._guest_rtc_ns() % NANOSECONDS_PER_SECOND
            self._set_time()
        if data & cmos[RTC_REG_C] & REG_C_MASK:
            cmos[RTC_REG_C] |= REG_C_IRQF
            self._set_irq(1)
        else:
            cmos[RTC_REG_C] &= ~REG_C_IRQF
            self._set_irq(0)
        cmos[RTC_REG_B] = data
        if update_periodic:
            self._periodic_timer_update(self.clock.now_ns(), old_period, True)
        self._check_update_timer()

    def ioport_read(self, addr: int) -> int:
        """``cmos_ioport_read``: 0xff from the index port."""
        self.clock.catch_up()
        if not addr & 1:
            return 0xFF
        cmos = self.cmos
        index = self.cmos_index
        if index == RTC_IBM_PS2_CENTURY_BYTE or index in _TIME_REGS:
            if index == RTC_IBM_PS2_CENTURY_BYTE:
                index = self.cmos_index = RTC_CENTURY
            if self._running():
                self._update_time()
            ret = cmos[index]
        elif index == RTC_REG_A:
            ret = cmos[index]
            if self._update_in_progress():
                ret |= REG_A_UIP
        elif index == RTC_REG_C:
            ret = cmos[index]
            self._set_irq(0)
            cmos[RTC_REG_C] = 0
            if ret & (REG_C_UF | REG_C_AF):
                self._check_update_timer()
        else:
            ret = cmos[index]
        if tracing.ON:
            trace("cmos_ioport_read", index=index, val=ret)
        return ret

    # -- machine ------------------------------------------------------------------------------

    def set_cmos_data(self, addr: int, val: int) -> None:
        """``mc146818rtc_set_cmos_data``: what the board stores in the NVRAM."""
        if 0 <= addr <= 127:
            self.cmos[addr] = val & 0xFF

    def reset(self) -> None:
        """``rtc_reset``: interrupt enables and flags cleared, the line lowered."""
        cmos = self.cmos
        cmos[RTC_REG_B] &= ~(REG_B_PIE | REG_B_AIE | REG_B_SQWE)
        cmos[RTC_REG_C] &= ~(REG_C_UF | REG_C_IRQF | REG_C_PF | REG_C_AF)
        self._check_update_timer()
        self._set_irq(0)
