"""QEMU's own MC146818 RTC test (tests/qtest/rtc-test.c, QEMU 7.2) on emu.

Each function ports one of rtc-test.c's cases with its assertions unchanged, in its order, on
one machine started as rtc-test starts QEMU (``-rtc clock=vm``, ``irq_intercept_in ioapic``).
The cases need the virtual clock to move (``clock_step``), which Debian's QEMU cannot do (it
has no qtest accelerator), so they run on emu only; the register semantics they rest on are
compared with QEMU in tests/test_pc_irq_qtest.py.

Like QEMU's test run without ``-m quick``, ``am_pm_alarm`` steps the clock by 11 hours twice;
it first turns off the PIT's interrupt (its HPET-legacy control input, as an HPET in legacy
mode does) so that the 18.2 Hz timer does not have to fire 1.4 million times on the way.
"""

from __future__ import annotations

import calendar
import itertools
import random
import time
from collections.abc import Iterator

import pytest

from emu.qtest.client import QTest

NS = 1_000_000_000
UIP_HOLD_LENGTH = 8 * NS // 32768
RTC_SECONDS, RTC_SECONDS_ALARM, RTC_MINUTES, RTC_MINUTES_ALARM = 0, 1, 2, 3
RTC_HOURS, RTC_HOURS_ALARM, RTC_DAY_OF_MONTH, RTC_MONTH, RTC_YEAR = 4, 5, 7, 8, 9
RTC_REG_A, RTC_REG_B, RTC_REG_C, RTC_CENTURY = 10, 11, 12, 0x32
REG_A_UIP = 0x80
REG_B_SET, REG_B_PIE, REG_B_AIE, REG_B_UIE, REG_B_DM, REG_B_24H = 0x80, 0x40, 0x20, 0x10, 4, 2
REG_C_PF, REG_C_AF = 0x40, 0x20
RTC_ALARM_DONT_CARE = 0xC0
RTC_ISA_IRQ = 8
PIT = "/machine/unattached/device[10]"


class Rtc:
    """rtc-test.c's helpers over one qtest connection."""

    def __init__(self, qt: QTest) -> None:
        self.qt = qt

    def read(self, reg: int) -> int:
        self.qt.outb(0x70, reg)
        return self.qt.inb(0x71)

    def write(self, reg: int, val: int) -> None:
        self.qt.outb(0x70, reg)
        self.qt.outb(0x71, val)

    def step(self, ns: int | None = None) -> int:
        return self.qt.clock_step(ns)

    def irq(self) -> bool:
        return self.qt.get_irq(RTC_ISA_IRQ)

    def get_date_time(self) -> int:
        """cmos_get_date_time: the RTC's time as seconds since the epoch (base year 2000)."""
        sec, mins, hour = self.read(RTC_SECONDS), self.read(RTC_MINUTES), self.read(RTC_HOURS)
        mday, mon, year = self.read(RTC_DAY_OF_MONTH), self.read(RTC_MONTH), self.read(RTC_YEAR)
        if not self.read(RTC_REG_B) & REG_B_DM:
            sec, mins, hour, mday, mon, year = (bcd2dec(v) for v in
                                                (sec, mins, hour, mday, mon, year))
            hour_offset = 80
        else:
            hour_offset = 0x80
        if not self.read(RTC_REG_B) & REG_B_24H and hour >= hour_offset:
            hour = hour - hour_offset + 12
        return calendar.timegm((2000 + year, mon, mday, hour, mins, sec, 0, 0, 0))

    def set_time(self, mode: int, h: int, m: int, s: int) -> None:
        self.write(RTC_REG_B, mode)
        self.write(RTC_REG_A, 0x76)
        self.write(RTC_HOURS, h)
        self.write(RTC_MINUTES, m)
        self.write(RTC_SECONDS, s)
        self.write(RTC_REG_A, 0x26)

    def set_datetime_bcd(self, h: int, mi: int, s: int, d: int, m: int, y: int) -> None:
        for reg, val in ((RTC_HOURS, h), (RTC_MINUTES, mi), (RTC_SECONDS, s),
                         (RTC_YEAR, y & 0xFF), (RTC_CENTURY, y >> 8), (RTC_MONTH, m),
                         (RTC_DAY_OF_MONTH, d)):
            self.write(reg, val)

    def set_datetime(self, mode: int, *when: int) -> None:
        self.write(RTC_REG_B, mode)
        self.write(RTC_REG_A, 0x76)
        self.set_datetime_bcd(*when)
        self.write(RTC_REG_A, 0x26)

    def assert_time(self, h: int, m: int, s: int) -> None:
        assert (self.read(RTC_HOURS), self.read(RTC_MINUTES), self.read(RTC_SECONDS)) == (h, m, s)

    def assert_datetime_bcd(self, h: int, mi: int, s: int, d: int, m: int, y: int) -> None:
        got = tuple(self.read(r) for r in (RTC_HOURS, RTC_MINUTES, RTC_SECONDS,
                                           RTC_DAY_OF_MONTH, RTC_MONTH, RTC_YEAR, RTC_CENTURY))
        assert got == (h, mi, s, d, m, y & 0xFF, y >> 8)


def bcd2dec(value: int) -> int:
    return ((value >> 4) & 0x0F) * 10 + (value & 0x0F)


@pytest.fixture(scope="module")
def rtc() -> Iterator[Rtc]:
    with QTest.emu("-M", "pc", "-m", "128M", "-display", "none", "-nodefaults",
                   "-rtc", "clock=vm") as qt:
        qt.irq_intercept_in("ioapic")
        yield Rtc(qt)


def check_time(rtc: Rtc, wiggle: int = 2) -> None:
    start = int(time.time())
    dates = [rtc.get_date_time() for _ in range(4)]
    end = int(time.time())
    date = next(a for a, b in itertools.pairwise(dates) if a == b)
    if not start <= date <= end:
        assert abs(date - start) <= wiggle


def test_check_time_bcd(rtc: Rtc) -> None:
    rtc.write(RTC_REG_B, REG_B_24H)
    check_time(rtc)


def test_check_time_dec(rtc: Rtc) -> None:
    rtc.write(RTC_REG_B, REG_B_24H | REG_B_DM)
    check_time(rtc)


def test_alarm_interrupt(rtc: Rtc) -> None:
    now = time.gmtime()
    rtc.write(RTC_REG_B, REG_B_24H | REG_B_DM)
    assert not rtc.irq()
    rtc.read(RTC_REG_C)
    rtc.write(RTC_SECONDS_ALARM, (now.tm_sec + 2) % 60)
    rtc.write(RTC_MINUTES_ALARM, RTC_ALARM_DONT_CARE)
    rtc.write(RTC_HOURS_ALARM, RTC_ALARM_DONT_CARE)
    rtc.write(RTC_REG_B, rtc.read(RTC_REG_B) | REG_B_AIE)
    for _ in range(2 + 2):
        if rtc.irq():
            break
        rtc.step(NS)
    assert rtc.irq()
    assert rtc.read(RTC_REG_C) & REG_C_AF
    assert rtc.read(RTC_REG_C) == 0


def test_alarm_am_pm(rtc: Rtc) -> None:
    rtc.write(RTC_MINUTES_ALARM, 0xC0)
    rtc.write(RTC_SECONDS_ALARM, 0xC0)
    rtc.write(RTC_REG_B, 0)  # BCD, 12 hour
    rtc.write(RTC_REG_A, 0x76)
    rtc.write(RTC_HOURS_ALARM, 0x82)
    rtc.write(RTC_HOURS, 0x81)
    rtc.write(RTC_MINUTES, 0x59)
    rtc.write(RTC_SECONDS, 0x00)
    rtc.read(RTC_REG_C)
    rtc.write(RTC_REG_A, 0x26)
    rtc.step(60 * NS)  # the alarm fires when AM/PM is set
    assert rtc.read(RTC_HOURS) == 0x82
    assert rtc.read(RTC_REG_C) & REG_C_AF

    rtc.qt.set_irq_in(PIT, None, 0, 0)  # see the module docstring
    rtc.write(RTC_REG_B, REG_B_DM)  # decimal, 12 hour
    rtc.write(RTC_REG_A, 0x76)
    rtc.write(RTC_HOURS_ALARM, 0x82)
    rtc.write(RTC_HOURS, 3)
    rtc.write(RTC_MINUTES, 0)
    rtc.write(RTC_SECONDS, 0)
    rtc.read(RTC_REG_C)
    rtc.write(RTC_REG_A, 0x26)
    rtc.step(3600 * 11 * NS)
    assert rtc.read(RTC_HOURS) == 0x82
    assert rtc.read(RTC_REG_C) & REG_C_AF

    rtc.write(RTC_REG_A, 0x76)  # inverted HOURS and HOURS_ALARM
    rtc.write(RTC_HOURS_ALARM, 2)
    rtc.write(RTC_HOURS, 3)
    rtc.write(RTC_MINUTES, 0)
    rtc.write(RTC_SECONDS, 0)
    rtc.read(RTC_REG_C)
    rtc.write(RTC_REG_A, 0x26)
    rtc.step(3600 * 11 * NS)  # hours that differ only by AM/PM do not match
    assert rtc.read(RTC_HOURS) == 0x82
    assert not rtc.read(RTC_REG_C) & REG_C_AF
    rtc.qt.set_irq_in(PIT, None, 0, 1)


def test_basic_dec_24h(rtc: Rtc) -> None:
    rtc.set_time(REG_B_24H | REG_B_DM, 9, 59, 0)
    rtc.step(NS)
    rtc.assert_time(9, 59, 1)
    rtc.step(59 * NS)
    rtc.assert_time(10, 0, 0)
    rtc.set_time(REG_B_24H | REG_B_DM, 9, 59, 0)
    rtc.step(60 * NS)
    rtc.assert_time(10, 0, 0)
    rtc.set_time(REG_B_24H | REG_B_DM, 23, 59, 0)
    rtc.step(60 * NS)
    rtc.assert_time(0, 0, 0)


def test_basic_bcd_24h(rtc: Rtc) -> None:
    rtc.set_time(REG_B_24H, 0x09, 0x59, 0x00)
    rtc.step(NS)
    rtc.assert_time(0x09, 0x59, 0x01)
    rtc.step(59 * NS)
    rtc.assert_time(0x10, 0x00, 0x00)
    rtc.set_time(REG_B_24H, 0x09, 0x59, 0x00)
    rtc.step(60 * NS)
    rtc.assert_time(0x10, 0x00, 0x00)
    rtc.set_time(REG_B_24H, 0x23, 0x59, 0x00)
    rtc.step(60 * NS)
    rtc.assert_time(0x00, 0x00, 0x00)


def test_basic_dec_12h(rtc: Rtc) -> None:
    rtc.set_time(REG_B_DM, 0x81, 59, 0)
    rtc.step(NS)
    rtc.assert_time(0x81, 59, 1)
    rtc.step(59 * NS)
    rtc.assert_time(0x82, 0, 0)
    for start, end in (((0x8C, 59, 59), (0x81, 0, 0)), ((0x0C, 59, 59), (0x01, 0, 0)),
                       ((0x0B, 59, 59), (0x8C, 0, 0)), ((0x8B, 59, 59), (0x0C, 0, 0))):
        rtc.set_time(REG_B_DM, *start)
        rtc.step(NS)
        rtc.assert_time(*end)


def test_basic_bcd_12h(rtc: Rtc) -> None:
    rtc.set_time(0, 0x81, 0x59, 0x00)
    rtc.step(NS)
    rtc.assert_time(0x81, 0x59, 0x01)
    rtc.step(59 * NS)
    rtc.assert_time(0x82, 0x00, 0x00)
    rtc.set_time(0, 0x09, 0x59, 0x59)
    rtc.step(60 * NS)
    rtc.assert_time(0x10, 0x00, 0x59)
    for start, end in (((0x12, 0x59, 0x59), (0x01, 0, 0)), ((0x92, 0x59, 0x59), (0x81, 0, 0)),
                       ((0x11, 0x59, 0x59), (0x92, 0, 0)), ((0x91, 0x59, 0x59), (0x12, 0, 0))):
        rtc.set_time(0, *start)
        rtc.step(NS)
        rtc.assert_time(*end)


def _check_set_date(rtc: Rtc, year: int, century: int) -> None:
    assert rtc.read(RTC_HOURS) == 0x02
    assert rtc.read(RTC_MINUTES) == 0x04
    assert rtc.read(RTC_SECONDS) >= 0x58
    assert rtc.read(RTC_DAY_OF_MONTH) == 0x02
    assert rtc.read(RTC_MONTH) == 0x02
    assert rtc.read(RTC_YEAR) == year
    assert rtc.read(RTC_CENTURY) == century


def test_set_year_20xx(rtc: Rtc) -> None:
    rtc.write(RTC_REG_B, REG_B_24H)
    rtc.write(RTC_REG_A, 0x76)
    for reg, val in ((RTC_YEAR, 0x11), (RTC_CENTURY, 0x20), (RTC_MONTH, 0x02),
                     (RTC_DAY_OF_MONTH, 0x02), (RTC_HOURS, 0x02), (RTC_MINUTES, 0x04),
                     (RTC_SECONDS, 0x58)):
        rtc.write(reg, val)
    rtc.write(RTC_REG_A, 0x26)
    _check_set_date(rtc, 0x11, 0x20)
    for year in (0x80, 0x11):  # 2080: no year-2038 overflow
        rtc.write(RTC_REG_A, 0x76)
        rtc.write(RTC_YEAR, year)
        rtc.write(RTC_REG_A, 0x26)
        _check_set_date(rtc, year, 0x20)


def test_set_year_1980(rtc: Rtc) -> None:
    rtc.write(RTC_REG_B, REG_B_24H)
    rtc.write(RTC_REG_A, 0x76)
    for reg, val in ((RTC_YEAR, 0x80), (RTC_CENTURY, 0x19), (RTC_MONTH, 0x02),
                     (RTC_DAY_OF_MONTH, 0x02), (RTC_HOURS, 0x02), (RTC_MINUTES, 0x04),
                     (RTC_SECONDS, 0x58)):
        rtc.write(reg, val)
    rtc.write(RTC_REG_A, 0x26)
    _check_set_date(rtc, 0x80, 0x19)


def test_update_register_b_set_flag(rtc: Rtc) -> None:
    if rtc.read(RTC_REG_A) & REG_A_UIP:
        rtc.step(UIP_HOLD_LENGTH + NS // 5)
    assert not rtc.read(RTC_REG_A) & REG_A_UIP
    rtc.write(RTC_REG_B, REG_B_24H | REG_B_SET)
    rtc.set_datetime_bcd(0x02, 0x04, 0x58, 0x02, 0x02, 0x2011)
    rtc.assert_datetime_bcd(0x02, 0x04, 0x58, 0x02, 0x02, 0x2011)
    rtc.step(NS)  # SET: the time does not advance
    rtc.assert_datetime_bcd(0x02, 0x04, 0x58, 0x02, 0x02, 0x2011)
    rtc.write(RTC_REG_B, rtc.read(RTC_REG_B) & ~REG_B_SET)
    rtc.assert_datetime_bcd(0x02, 0x04, 0x58, 0x02, 0x02, 0x2011)
    rtc.step(NS)
    rtc.assert_datetime_bcd(0x02, 0x04, 0x59, 0x02, 0x02, 0x2011)


def test_update_divider_reset(rtc: Rtc) -> None:
    rtc.write(RTC_REG_B, REG_B_24H)
    rtc.write(RTC_REG_A, 0x76)
    rtc.set_datetime_bcd(0x02, 0x04, 0x58, 0x02, 0x02, 0x2011)
    rtc.assert_datetime_bcd(0x02, 0x04, 0x58, 0x02, 0x02, 0x2011)
    rtc.step(NS)
    rtc.assert_datetime_bcd(0x02, 0x04, 0x58, 0x02, 0x02, 0x2011)
    rtc.write(RTC_REG_A, 0x26)  # the first update ends 500 ms after the divider reset
    rtc.step(500000000 - UIP_HOLD_LENGTH - 1)
    assert not rtc.read(RTC_REG_A) & REG_A_UIP
    rtc.assert_datetime_bcd(0x02, 0x04, 0x58, 0x02, 0x02, 0x2011)
    rtc.step(1)
    assert rtc.read(RTC_REG_A) & REG_A_UIP
    rtc.step(UIP_HOLD_LENGTH)
    assert not rtc.read(RTC_REG_A) & REG_A_UIP
    rtc.assert_datetime_bcd(0x02, 0x04, 0x59, 0x02, 0x02, 0x2011)


def test_update_uip_stuck(rtc: Rtc) -> None:
    rtc.set_datetime(REG_B_24H, 0x02, 0x04, 0x58, 0x02, 0x02, 0x2011)
    rtc.read(RTC_REG_C)
    rtc.step(500000000)
    assert not rtc.read(RTC_REG_A) & REG_A_UIP
    rtc.assert_datetime_bcd(0x02, 0x04, 0x59, 0x02, 0x02, 0x2011)
    rtc.write(RTC_HOURS_ALARM, 0x02)  # UF is set now
    rtc.write(RTC_MINUTES_ALARM, 0xC0)
    rtc.write(RTC_SECONDS_ALARM, 0xC0)
    rtc.step(NS - UIP_HOLD_LENGTH // 2)  # the alarm fires soon: reading A latches UIP
    assert rtc.read(RTC_REG_A) & REG_A_UIP
    rtc.write(RTC_HOURS_ALARM, 0x03)  # moving the alarm away must not leave UIP stuck
    rtc.step(UIP_HOLD_LENGTH)
    assert not rtc.read(RTC_REG_A) & REG_A_UIP


def test_misc_fuzz_registers(rtc: Rtc) -> None:
    rng = random.Random(1)
    for _ in range(1000):
        reg, val = rng.randrange(16), rng.randrange(256)
        rtc.write(reg, val)
        rtc.read(reg)
    assert rtc.qt.proc is not None and rtc.qt.proc.poll() is None


def periodic_period_to_clock(code: int) -> int:
    if code <= 2:
        code += 7
    return 1 << (code - 1)


def test_periodic_interrupt(rtc: Rtc) -> None:
    """50 rounds of an 8 Hz then a 2 Hz period take 50 * (1/8 + 1/2) s of virtual time."""
    code1, code2, rounds = 13, 15, 50
    rtc.write(RTC_REG_B, rtc.read(RTC_REG_B) & ~(REG_B_PIE | REG_B_AIE | REG_B_UIE))
    rtc.write(RTC_REG_A, code1)
    rtc.write(RTC_REG_B, rtc.read(RTC_REG_B) | REG_B_PIE)
    start = real = rtc.step()

    def wait(real: int) -> int:
        while not rtc.irq():
            real = rtc.step()
        assert rtc.read(RTC_REG_C) & REG_C_PF
        return real

    for _ in range(rounds):
        rtc.write(RTC_REG_A, code1)
        real = wait(real)
        rtc.write(RTC_REG_A, code2)
        real = wait(real)
    clocks = (periodic_period_to_clock(code1) + periodic_period_to_clock(code2)) * rounds
    period_time = clocks * NS // 32768
    assert abs((real - start) - period_time) <= NS * 0.5
