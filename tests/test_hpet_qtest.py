"""The pc's HPET (emu/devices/hpet.py) against QEMU 7.2's through qtest, and its timers on
emu's virtual clock.

- Register semantics: both emulators run ``-M pc`` paused with the same command streams; the
  values read and the interrupt levels at the IOAPIC's inputs (``irq_intercept_in ioapic``)
  must be equal: the capabilities, the configuration and timer write masks, 32-bit mode,
  periodic comparators with and without SETVAL, the counter while halted and running (the
  virtual clock stands still in both while paused), the status register, the legacy
  replacement route cutting off the RTC's interrupt, other access sizes, and random register
  sequences (hypothesis).
- Time (Debian's QEMU has no qtest accelerator, so its clock cannot be stepped): on emu with
  ``clock_step``, a periodic timer in legacy mode pulses GSI 2 through the IOAPIC every period,
  a one-shot timer fires once at its comparator, the counter counts 100 MHz ticks, and a
  level-triggered timer holds its line and status bit until the status is written.
- ``-M pc,hpet=off``: no HPET, as on QEMU.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pc_irq_qtest import Pair, qtest_pair

from emu.qtest.client import QTest

ARGS = ["-M", "pc", "-m", "128M", "-display", "none", "-nodefaults", "-rtc", "clock=vm"]
HPET = 0xFED00000
CFG, STATUS, COUNTER = 0x010, 0x020, 0x0F0
ENABLE, LEGACY = 0x1, 0x2
TN_LEVEL, TN_ENABLE, TN_PERIODIC, TN_SETVAL, TN_32BIT = 0x2, 0x4, 0x8, 0x40, 0x100
IOAPIC = "/machine/i440fx/ioapic"


def tn(n: int, reg: int) -> int:
    return HPET + 0x100 + 0x20 * n + reg


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    yield from qtest_pair("pc", *ARGS)


def reset(pair: Pair) -> None:
    for qt in (pair.emu, pair.qemu):
        qt.writel(HPET + CFG, 0)
        for n in range(3):
            qt.writel(tn(n, 0), 0)
        qt.writel(HPET + COUNTER, 0)
        qt.writel(HPET + COUNTER + 4, 0)


def test_capabilities_and_reset_state(pair: Pair) -> None:
    got = pair.same([f"readl 0x{HPET + off:x}" for off in
                     (0x0, 0x4, 0x8, 0x10, 0x14, 0x20, 0xF0, 0xF4)]
                    + [f"readl 0x{tn(n, reg):x}" for n in range(4) for reg in (0, 4, 8, 0xC)])
    assert got[0] == "OK 0x000000008086a201"  # vendor 8086, legacy route, 64-bit, 3 timers
    assert got[1] == "OK 0x0000000000989680"  # 10,000,000 fs: 100 MHz
    assert got[9] == "OK 0x0000000000000004"  # timer 0 routes: IRQ 2 only (pc-i440fx)


def test_register_semantics_match_qemu(pair: Pair) -> None:
    reset(pair)
    w = lambda addr, v: f"writel 0x{addr:x} 0x{v:x}"  # noqa: E731
    r = lambda addr: f"readl 0x{addr:x}"  # noqa: E731
    lines = [
        # configuration: only ENABLE and LEGACY stick; timer config: QEMU's write mask
        w(HPET + CFG, 0xFFFFFFFF), r(HPET + CFG), w(HPET + CFG, 0), r(HPET + CFG),
        w(tn(0, 0), 0xFFFFFFFF), r(tn(0, 0)), r(tn(0, 4)), w(tn(0, 0), 0),
        # the counter, written while halted, read in halves
        w(HPET + COUNTER, 0x12345678), w(HPET + COUNTER + 4, 0x9ABC), r(HPET + COUNTER),
        r(HPET + COUNTER + 4),
        # a 32-bit timer truncates its comparator
        w(tn(1, 8), 0xDEADBEEF), w(tn(1, 0xC), 0x1), r(tn(1, 8)), r(tn(1, 0xC)),
        w(tn(1, 0), TN_32BIT), r(tn(1, 8)), r(tn(1, 0xC)), w(tn(1, 0xC), 0x55), r(tn(1, 0xC)),
        # periodic: a comparator write without SETVAL sets only the period
        w(tn(2, 0), TN_PERIODIC), w(tn(2, 8), 0x1000), r(tn(2, 8)),
        w(tn(2, 0), TN_PERIODIC | TN_SETVAL), r(tn(2, 0)), w(tn(2, 8), 0x2000), r(tn(2, 8)),
        r(tn(2, 0)), w(tn(2, 0xC), 0x7), r(tn(2, 0xC)),
        # the FSB route registers hold what is written
        w(tn(0, 0x10), 0xFEE00000), w(tn(0, 0x14), 0x41), r(tn(0, 0x10)), r(tn(0, 0x14)),
        # enabled: the counter runs from where it stood (the clock stands still here)
        w(HPET + CFG, ENABLE), r(HPET + COUNTER), r(HPET + COUNTER + 4),
        w(HPET + COUNTER, 0), r(HPET + COUNTER), w(HPET + CFG, 0), r(HPET + COUNTER),
        # other access sizes are invalid: 0, and writes are dropped
        f"readb 0x{HPET:x}", f"readw 0x{HPET:x}", f"readq 0x{HPET:x}",
        f"writeb 0x{HPET + CFG:x} 0x1", r(HPET + CFG),
        # timers past the third: nothing (timer 3 reads 0 on both)
        r(tn(3, 0)), r(tn(5, 8)), r(HPET + 0x3FC),
    ]
    pair.same(lines)


def test_legacy_route_and_interrupts_match_qemu(pair: Pair) -> None:
    """The IOAPIC's inputs: entering legacy replacement mode lowers GSI 0 and 8 (the RTC's
    line is cut off); leaving it restores the RTC's level; a level timer's enable and
    disable and a status write move its line."""
    reset(pair)
    for qt in (pair.emu, pair.qemu):
        qt.irq_intercept_in(IOAPIC)
    w = lambda addr, v: f"writel 0x{addr:x} 0x{v:x}"  # noqa: E731
    lines = [
        w(HPET + CFG, LEGACY), "readl 0xfed00010", w(HPET + CFG, 0),
        w(HPET + CFG, ENABLE | LEGACY),
        w(tn(0, 8), 0xFFFFFFF0), w(tn(0, 0xC), 0xFFFFFFFF),
        w(tn(0, 0), TN_ENABLE | TN_LEVEL), "readl 0xfed00020",
        w(HPET + STATUS, 0xFF), w(tn(0, 0), 0), w(HPET + CFG, 0),
        # CMOS register B: periodic interrupt on (the RTC's line, not yet raised: no time)
        "outb 0x70 0xb", "outb 0x71 0x42", "outb 0x70 0xc", "inb 0x71",
    ]
    pair.same(lines)


OFFSETS = [0x0, 0x4, 0x10, 0x14, 0x20, 0xF0, 0xF4] + [
    0x100 + 0x20 * n + reg for n in range(3) for reg in (0, 4, 8, 0xC, 0x10, 0x14)]
VALUES = st.one_of(st.sampled_from([0, 1, 2, 3, 0xFFFFFFFF, 0x4, 0x8, 0xC, 0x4C, 0x14C,
                                    0x10E, 0x4000, 0x7F4E, 0x200, 0x400]),
                   st.integers(0, 0xFFFFFFFF))
OPS = st.lists(st.tuples(st.booleans(), st.sampled_from(OFFSETS), VALUES),
               min_size=1, max_size=40)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_random_register_sequences_match_qemu(pair: Pair,
                                              ops: list[tuple[bool, int, int]]) -> None:
    reset(pair)
    lines = [f"writel 0x{HPET + off:x} 0x{v:x}" if write else f"readl 0x{HPET + off:x}"
             for write, off, v in ops]
    pair.same(lines + [f"readl 0x{HPET + off:x}" for off in OFFSETS])


# -- time, on emu's qtest clock ----------------------------------------------------------------


@pytest.fixture()
def emu() -> Iterator[QTest]:
    qt = QTest.emu(*ARGS)
    try:
        qt.irq_intercept_in(IOAPIC)
        yield qt
    finally:
        qt.close()


def events(qt: QTest, since: int) -> list[str]:
    qt.endianness()  # every IRQ line sent so far has been read
    return qt.irq_events[since:]


def test_the_counter_counts_100mhz_ticks(emu: QTest) -> None:
    emu.writel(HPET + CFG, ENABLE)
    start = emu.readl(HPET + COUNTER)
    emu.clock_step(1_000_000)  # 1 ms
    assert emu.readl(HPET + COUNTER) - start == 100_000
    emu.writel(HPET + CFG, 0)  # halted: it keeps its count
    emu.clock_step(1_000_000)
    assert emu.readl(HPET + COUNTER) - start == 100_000


def test_periodic_legacy_timer_pulses_gsi2_every_period(emu: QTest) -> None:
    """Timer 0, periodic and 32-bit as Linux's clockevent programs it, in legacy replacement
    mode: GSI 0 (which the IOAPIC has on pin 2); QEMU's qemu_irq_pulse raises and lowers it at
    each match (period 10,000 ticks: 100 us)."""
    emu.writel(HPET + CFG, LEGACY)
    emu.writel(tn(0, 0), TN_ENABLE | TN_PERIODIC | TN_SETVAL | TN_32BIT)
    emu.writel(tn(0, 8), 10_000)  # first match at tick 10,000
    emu.writel(tn(0, 8), 10_000)  # the period
    before = len(emu.irq_events)
    emu.writel(HPET + CFG, LEGACY | ENABLE)
    emu.clock_step(99_990)
    assert events(emu, before) == []
    emu.clock_step(10)
    assert events(emu, before) == ["raise 0", "lower 0"]
    # qtest stops the clock exactly at each deadline, where the counter equals the
    # comparator: hpet_timer's hpet_time_after(cur, cmp) does not count that as passed, so
    # the comparator stays and the timer fires again one tick (10 ns) later, then moves on
    # by the period (QEMU's arithmetic; a running clock is past the deadline when it fires)
    emu.clock_step(10)
    assert events(emu, before) == ["raise 0", "lower 0"] * 2
    assert emu.readl(tn(0, 8)) == 20_000
    emu.clock_step(300_000 - 10)  # to 400 us: matches at 200 and 300 us twice, 400 us once
    assert events(emu, before) == ["raise 0", "lower 0"] * 7
    assert emu.readl(tn(0, 8)) == 40_000


def test_one_shot_timer_fires_once(emu: QTest) -> None:
    """A 64-bit comparator (both halves written: reset leaves it all ones) at tick 500."""
    emu.writel(tn(2, 0), TN_ENABLE | (2 << 9))  # route: IRQ 2 (its only capability)
    emu.writel(tn(2, 8), 500)
    emu.writel(tn(2, 0xC), 0)
    before = len(emu.irq_events)
    emu.writel(HPET + CFG, ENABLE)
    emu.clock_step(5_000)
    assert events(emu, before) == ["raise 2", "lower 2"]
    emu.clock_step(10_000_000)
    assert events(emu, before) == ["raise 2", "lower 2"]


def test_level_timer_holds_its_line_until_the_status_is_written(emu: QTest) -> None:
    emu.writel(tn(2, 0), TN_ENABLE | TN_LEVEL | TN_32BIT | (2 << 9))
    emu.writel(tn(2, 8), 100)
    before = len(emu.irq_events)
    emu.writel(HPET + CFG, ENABLE)
    emu.clock_step(1_000)
    assert events(emu, before) == ["raise 2"]
    assert emu.readl(HPET + STATUS) == 1 << 2
    emu.writel(HPET + STATUS, 1 << 2)
    assert events(emu, before) == ["raise 2", "lower 2"]
    assert emu.readl(HPET + STATUS) == 0


def test_without_the_hpet_nothing_answers_there() -> None:
    for pair in qtest_pair("pc", *ARGS, "-machine", "hpet=off"):
        got = pair.same([f"readl 0x{HPET:x}", f"readl 0x{HPET + 4:x}"])
        assert got[0] != "OK 0x000000008086a201"
