"""The pc's 8259 PICs, 8254 PIT, port 0x61 and MC146818 RTC against QEMU 7.2 through qtest.

Both emulators run ``-M pc`` paused (``-S``) with the same options and get the same command
streams; every answer (the bytes read, ``OK``/``FAIL``) and every asynchronous ``IRQ`` line
must be equal. Debian's QEMU has no qtest accelerator, so its virtual clock stands still while
paused and it answers ``clock_step`` with ``FAIL``; emu's qtest clock also stands still until a
``clock_step``. These tests therefore compare everything that does not need time to pass:
register semantics, the NVRAM contents, IRQ levels on the fabric (``irq_intercept_*``,
``set_irq_in``), and random port sequences (hypothesis) for the PICs with the PIT and for the
RTC. Time-driven behaviour is tested on emu with QEMU's own rtc-test assertions
(tests/test_rtc_qtest.py) and on the plain device objects (tests/test_pc_irq_devices.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu.qtest.client import QTest

ARGS = ["-M", "pc", "-m", "128M", "-display", "none", "-nodefaults", "-rtc", "clock=vm"]
MASTER, SLAVE = "/machine/unattached/device[6]", "/machine/unattached/device[7]"
PIT_PATH = "/machine/unattached/device[10]"



@dataclass
class Pair:
    """emu and QEMU side by side."""

    emu: QTest
    qemu: QTest

    def run(self, lines: list[str]) -> tuple[list[str], list[str]]:
        """Send ``lines`` to both; return emu's and QEMU's answers, each followed by the IRQ
        lines the command stream produced."""
        out = []
        for qt in (self.emu, self.qemu):
            before = len(qt.irq_events)
            answers = qt.batch(lines)
            qt.cmd("endianness")  # IRQ lines sent before this answer have been read
            out.append(answers + [f"IRQ {e}" for e in qt.irq_events[before:]])
        return out[0], out[1]

    def same(self, lines: list[str]) -> list[str]:
        got, want = self.run(lines)
        if got != want:
            diff = [f"{i}: {lines[i] if i < len(lines) else '(irq)'}: emu {g!r} qemu {w!r}"
                    for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w]
            raise AssertionError(f"emu differs from QEMU ({len(got)} vs {len(want)} lines):\n"
                                 + "\n".join(diff[:10]))
        return got


def qtest_pair(machine: str, *args: str) -> Iterator[Pair]:
    """emu and QEMU's ``machine`` under qtest with the same ``args``, closed afterwards."""
    emu = QTest.emu(*args)
    try:
        qemu = QTest.qemu(machine, *args)
    except BaseException:
        emu.close()
        raise
    try:
        yield Pair(emu, qemu)
    finally:
        emu.close()
        qemu.close()


def _pair(*extra: str) -> Iterator[Pair]:
    return qtest_pair("pc", *ARGS, *extra)


@pytest.fixture(scope="module")
def pic_pair() -> Iterator[Pair]:
    """A pair whose master 8259 output (the CPU's INTR pin) is intercepted: IRQ 0."""
    for pair in _pair():
        pair.same([f"irq_intercept_out {MASTER}"])
        yield pair


@pytest.fixture(scope="module")
def rtc_pair() -> Iterator[Pair]:
    """A pair whose IOAPIC inputs (the GSIs) are intercepted, as in QEMU's rtc-test."""
    for pair in _pair():
        pair.same(["irq_intercept_in ioapic"])
        yield pair


# -- reset state and NVRAM ---------------------------------------------------------------------

def test_reset_state_matches_qemu() -> None:
    """Every register the guest can read at power-on, before anything is written."""
    lines = ["inb 0x20", "inb 0x21", "inb 0xa0", "inb 0xa1", "inb 0x4d0", "inb 0x4d1",
             "outb 0x20 0x0b", "inb 0x20", "outb 0xa0 0x0b", "inb 0xa0",
             "inb 0x40", "inb 0x41", "inb 0x42", "inb 0x43", "outb 0x43 0xee",
             "inb 0x40", "inb 0x41", "inb 0x42", "inb 0x61", "inb 0x61", "inb 0x70",
             "inw 0x20", "inl 0x40"]
    lines += [cmd for r in (0x0A, 0x0B, 0x0C, 0x0D) for cmd in (f"outb 0x70 {r:#x}", "inb 0x71")]
    for pair in _pair():
        pair.same(lines)


@pytest.mark.parametrize("extra", [
    ["-m", "128M"], ["-m", "1M"], ["-m", "20M", "-boot", "order=n,menu=on"],
    ["-m", "3584M"], ["-m", "5G", "-smp", "2", "-boot", "order=dc"],
], ids=lambda e: " ".join(e))
def test_cmos_nvram_matches_qemu(extra: list[str]) -> None:
    """QEMU's pc_cmos_init: memory sizes, equipment, boot devices, CPU count, century. The
    time registers 0-9 depend on the second each emulator started in and are left out."""
    lines = [cmd for index in range(0x0A, 0x80) for cmd in (f"outb 0x70 {index:#x}", "inb 0x71")]
    emu = QTest.emu(*ARGS[:2], *ARGS[4:], *extra)
    try:
        qemu = QTest.qemu("pc", *ARGS[:2], *ARGS[4:], *extra)
        try:
            assert emu.batch(lines) == qemu.batch(lines)
        finally:
            qemu.close()
    finally:
        emu.close()


# -- the 8259 pair --------------------------------------------------------------------------------

#: a known state: inputs low, ELCR 0, both chips initialized with vectors 0x08 and 0x70
PIC_INIT = ([f"set_irq_in {path} unnamed-gpio-in {n} 0" for path in (MASTER, SLAVE)
             for n in range(8)]
            + ["outb 0x4d0 0", "outb 0x4d1 0",
               "outb 0x20 0x11", "outb 0x21 0x08", "outb 0x21 0x04", "outb 0x21 0x01",
               "outb 0xa0 0x11", "outb 0xa1 0x70", "outb 0xa1 0x02", "outb 0xa1 0x01"])


def _cmds(*blocks: list[str]) -> list[str]:
    return [line for block in blocks for line in block]


def test_pic_cascade_priority_and_eoi(pic_pair: Pair) -> None:
    """A slave request through the cascade, priorities, specific/non-specific EOI, poll."""
    lines = _cmds(PIC_INIT, [
        "outb 0x21 0x00", "outb 0xa1 0x00",
        f"set_irq_in {SLAVE} unnamed-gpio-in 4 1",  # IRQ 12
        "inb 0x20", "inb 0xa0",
        f"set_irq_in {MASTER} unnamed-gpio-in 1 1",  # IRQ 1: higher priority than 2
        "outb 0x20 0x0c", "inb 0x20",  # poll: acknowledges IRQ 1
        "outb 0x20 0x0b", "inb 0x20",  # ISR
        "outb 0x20 0x0c", "inb 0x20",  # poll again: IRQ 1 in service, 2 is lower
        "outb 0x20 0x20",  # non-specific EOI
        "outb 0x20 0x0c", "inb 0x20",  # now the cascade
        "outb 0xa0 0x0c", "inb 0xa0",  # the slave's poll: IRQ 4 | 0x80
        "outb 0xa0 0x0b", "inb 0xa0",
        "outb 0xa0 0x64", "outb 0x20 0x62",  # specific EOIs
        "outb 0xa0 0x0b", "inb 0xa0", "outb 0x20 0x0b", "inb 0x20",
    ])
    pic_pair.same(lines)


def test_pic_level_triggered_and_rotation(pic_pair: Pair) -> None:
    """ELCR level inputs stay requested until lowered; rotation commands move priority."""
    lines = _cmds(PIC_INIT, [
        "outb 0x4d0 0xff", "outb 0x4d1 0xff", "inb 0x4d0", "inb 0x4d1",
        f"set_irq_in {MASTER} unnamed-gpio-in 5 1", f"set_irq_in {MASTER} unnamed-gpio-in 3 1",
        "outb 0x20 0xc4",  # set priority: IRQ 5 lowest
        "outb 0x20 0x0c", "inb 0x20", "inb 0x20",
        "outb 0x20 0xa0",  # rotate on non-specific EOI
        "outb 0x20 0x0c", "inb 0x20",
        f"set_irq_in {MASTER} unnamed-gpio-in 5 0", "inb 0x20",
        "outb 0x20 0x68",  # special mask mode on
        "outb 0x21 0xff", "outb 0x20 0x0c", "inb 0x20",
        "outb 0x4d0 0", "outb 0x4d1 0",
    ])
    pic_pair.same(lines)


def test_pic_special_mask_mode(pic_pair: Pair) -> None:
    """Special mask mode: masking the in-service IRQ lets a lower priority one through."""
    lines = _cmds(PIC_INIT, [
        "outb 0x21 0x00", f"set_irq_in {MASTER} unnamed-gpio-in 3 1",
        "outb 0x20 0x0c", "inb 0x20",  # acknowledge IRQ 3: in service
        "outb 0x21 0x08", f"set_irq_in {MASTER} unnamed-gpio-in 5 1",
        "outb 0x20 0x0c", "inb 0x20",  # IRQ 5 is lower than the in-service 3: nothing
        "outb 0x20 0x68", "outb 0x20 0x0c", "inb 0x20",  # special mask: IRQ 5
        "outb 0x20 0x48", "outb 0x20 0x0b", "inb 0x20", "outb 0x20 0x20", "outb 0x20 0x20",
    ])
    pic_pair.same(lines)


def test_pic_auto_eoi_and_spurious(pic_pair: Pair) -> None:
    """ICW4 auto-EOI with rotation; a poll with nothing pending answers 0."""
    lines = _cmds(PIC_INIT, [
        "outb 0x20 0x11", "outb 0x21 0x20", "outb 0x21 0x04", "outb 0x21 0x03",  # AEOI
        "outb 0x20 0x80",  # rotate in auto-EOI mode
        f"set_irq_in {MASTER} unnamed-gpio-in 6 1",
        "outb 0x20 0x0c", "inb 0x20", "outb 0x20 0x0b", "inb 0x20",
        "outb 0x20 0x0c", "inb 0x20",
        "outb 0x20 0x13", "outb 0x21 0x30", "outb 0x21 0x1f",  # single mode, SFNM
        "inb 0x21", "outb 0x20 0x0a", "inb 0x20",
    ])
    pic_pair.same(lines)


# -- the PIT and port 0x61 ----------------------------------------------------------------------

#: a known state: every counter in mode 3, LSB/MSB, loaded with 0x10000, no latches pending,
#: counter 2's gate low, counter 0's interrupt enabled
PIT_INIT = _cmds(
    *[[f"outb 0x43 {(ch << 6) | 0x36:#x}", f"inb {0x40 + ch:#x}", f"inb {0x40 + ch:#x}",
       f"inb {0x40 + ch:#x}", f"outb 0x43 {(ch << 6) | 0x36:#x}",
       f"outb {0x40 + ch:#x} 0", f"outb {0x40 + ch:#x} 0"] for ch in range(3)],
    ["outb 0x61 0", f"set_irq_in {PIT_PATH} unnamed-gpio-in 0 1"])


def test_pit_modes_latches_and_readback(pic_pair: Pair) -> None:
    """Every mode's count and OUT at load time, counter latch, read-back of count and status,
    LSB-only and MSB-only access, BCD in the status byte, counter 2 through port 0x61."""
    lines = list(_cmds(PIC_INIT, PIT_INIT, ["outb 0x21 0"]))
    for mode in range(8):
        for access in (1, 2, 3):
            ctrl = (2 << 6) | (access << 4) | (mode << 1) | (mode & 1)
            lines += [f"outb 0x43 {ctrl:#x}", "outb 0x42 0x34", "outb 0x42 0x12",
                      "outb 0x43 0xe8", "inb 0x42", "inb 0x42", "inb 0x42", "inb 0x61",
                      "outb 0x61 1", "inb 0x61", "outb 0x43 0x80", "outb 0x42 0x99",
                      "inb 0x42", "inb 0x42", "outb 0x61 0"]
            ctrl0 = (access << 4) | (mode << 1)
            lines += [f"outb 0x43 {ctrl0:#x}", "outb 0x40 0x02", "outb 0x40 0x00",
                      "outb 0x43 0xc2", "inb 0x40", "outb 0x20 0x0a", "inb 0x20"]
    pic_pair.same(lines)


# -- differential fuzz ------------------------------------------------------------------------

_PIC_PORTS = (0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1)
_PIT_PORTS = (0x40, 0x41, 0x42, 0x43, 0x61)
_INTERESTING = st.sampled_from([0x11, 0x13, 0x19, 0x1B, 0x08, 0x0A, 0x0B, 0x0C, 0x0E, 0x48,
                                0x68, 0x20, 0x60, 0x62, 0x67, 0x80, 0xA0, 0xC3, 0xE0, 0xE5,
                                0x00, 0xFF, 0x04, 0x02, 0x01, 0x30, 0x34, 0x36, 0xB0, 0xB6,
                                0xD2, 0xE2, 0xC8, 0xF0, 0x70])
_BYTE = st.one_of(_INTERESTING, st.integers(0, 255))


def _pic_pit_op() -> st.SearchStrategy[list[str]]:
    out = st.builds(lambda p, v: [f"outb {p:#x} {v:#x}"],
                    st.sampled_from(_PIC_PORTS + _PIT_PORTS), _BYTE)
    read = st.builds(lambda p: [f"inb {p:#x}"], st.sampled_from(_PIC_PORTS + _PIT_PORTS))
    # wider accesses, split into bytes as QEMU splits them (bytes past a region's end included)
    wide = st.builds(lambda op, p, w: [f"in{op} {p:#x}"] if w is None else
                     [f"out{op} {p:#x} {w & (0xFFFF if op == 'w' else 0xFFFFFFFF):#x}"],
                     st.sampled_from("wl"), st.sampled_from((0x20, 0xA0, 0x40, 0x42, 0x4D0)),
                     st.none() | st.integers(0, 0xFFFFFFFF))
    line = st.builds(lambda path, n, level: [f"set_irq_in {path} unnamed-gpio-in {n} {level}"],
                     st.sampled_from((MASTER, SLAVE)), st.integers(0, 7), st.integers(0, 1))
    irq_control = st.builds(lambda level: [f"set_irq_in {PIT_PATH} unnamed-gpio-in 0 {level}"],
                            st.integers(0, 1))
    return st.one_of(out, out, read, read, wide, line, line, irq_control)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(st.lists(_pic_pit_op(), min_size=1, max_size=80))
def test_fuzz_pic_and_pit_against_qemu(pic_pair: Pair, ops: list[list[str]]) -> None:
    """Random port sequences on the PICs, ELCR, PIT and port 0x61, random input levels: every
    byte read and every change of the INTR line as QEMU has them."""
    pic_pair.same(_cmds(PIC_INIT, PIT_INIT, *ops))


#: a known RTC state: time set with SET, divider running, interrupts off, flags cleared
RTC_INIT = _cmds(
    ["outb 0x70 0x0b", "outb 0x71 0x82", "outb 0x70 0x0a", "outb 0x71 0x26"],
    *[[f"outb 0x70 {r:#x}", f"outb 0x71 {v:#x}"]
      for r, v in ((0, 0x58), (1, 0), (2, 0x04), (3, 0), (4, 0x02), (5, 0), (6, 4), (7, 0x02),
                   (8, 0x02), (9, 0x11), (0x32, 0x20))],
    ["outb 0x70 0x0b", "outb 0x71 0x02", "outb 0x70 0x0c", "inb 0x71"])


def _rtc_op() -> st.SearchStrategy[list[str]]:
    index = st.one_of(st.integers(0, 0x0D), st.sampled_from([0x32, 0x37, 0x0F, 0x14, 0x7F]),
                      st.integers(0, 0xFF))
    value = st.one_of(st.sampled_from([0x26, 0x76, 0x06, 0x2F, 0x0D, 0x02, 0x06, 0x12, 0x16,
                                       0x82, 0x42, 0x22, 0x72, 0x7E, 0xC0, 0xFF, 0x59, 0x99,
                                       0x23, 0x11, 0x12, 0x31]),
                      st.integers(0, 255))
    write = st.builds(lambda i, v: [f"outb 0x70 {i:#x}", f"outb 0x71 {v:#x}"], index, value)
    read = st.builds(lambda i: [f"outb 0x70 {i:#x}", "inb 0x71"], index)
    raw = st.sampled_from([["inb 0x71"], ["inb 0x70"], ["inw 0x70"], ["inl 0x70"],
                           ["outw 0x70 0x0c0c"], ["outl 0x70 0x0a0b0c0d"]])
    return st.one_of(write, write, read, read, read, raw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(st.lists(_rtc_op(), min_size=1, max_size=50))
def test_fuzz_rtc_against_qemu(rtc_pair: Pair, ops: list[list[str]]) -> None:
    """Random register writes and reads on the RTC (time in BCD and binary, 12/24 h, SET,
    divider reset, alarms, interrupt enables, NVRAM): every byte and every IRQ 8 change."""
    rtc_pair.same(_cmds(RTC_INIT, *ops))


# -- the IOAPIC -----------------------------------------------------------------------------------

IOAPIC = 0xFEC00000
#: a known IOAPIC state: every input low, every entry masked and edge-triggered, ID 0
IOAPIC_INIT = _cmds(
    *[[f"writel {IOAPIC:#x} {0x10 + 2 * n:#x}", f"writel {IOAPIC + 0x10:#x} 0x18000"]
      for n in range(24)],
    [f"set_irq_in ioapic unnamed-gpio-in {n} 0" for n in range(24)],
    *[[f"writel {IOAPIC:#x} {0x10 + 2 * n:#x}", f"writel {IOAPIC + 0x10:#x} 0x10000",
       f"writel {IOAPIC:#x} {0x11 + 2 * n:#x}", f"writel {IOAPIC + 0x10:#x} 0"]
      for n in range(24)],
    [f"writel {IOAPIC:#x} 0", f"writel {IOAPIC + 0x10:#x} 0"])


def _ioapic_entry(pin: int) -> list[str]:
    return [f"writel {IOAPIC:#x} {0x10 + 2 * pin:#x}", f"readl {IOAPIC + 0x10:#x}",
            f"writel {IOAPIC:#x} {0x11 + 2 * pin:#x}", f"readl {IOAPIC + 0x10:#x}"]


def test_ioapic_registers_remote_irr_and_eoi(pic_pair: Pair) -> None:
    """ID, version, the redirection table's read-only bits, level interrupts setting remote IRR
    until the EOI register ends them, edges dropped while masked, pin 0 taken as pin 2,
    ExtINT acknowledging the 8259s, and accesses that are not 32 bits wide."""
    lines = _cmds(PIC_INIT, IOAPIC_INIT, [
        f"writel {IOAPIC:#x} 0", f"writel {IOAPIC + 0x10:#x} 0xff000000",
        f"readl {IOAPIC + 0x10:#x}", f"writel {IOAPIC:#x} 1", f"readl {IOAPIC + 0x10:#x}",
        f"writel {IOAPIC:#x} 2", f"readl {IOAPIC + 0x10:#x}", f"readl {IOAPIC:#x}",
        f"readb {IOAPIC + 0x10:#x}", f"readw {IOAPIC:#x}", f"readl {IOAPIC + 0x110:#x}",
        # pin 9: level, vector 0x39, unmasked: remote IRR once raised, until the EOI
        f"writel {IOAPIC:#x} 0x22", f"writel {IOAPIC + 0x10:#x} 0xffffffff",
        f"writel {IOAPIC + 0x10:#x} 0x02000000",
        f"writel {IOAPIC:#x} 0x22", f"writel {IOAPIC + 0x10:#x} 0x00009039",
        "set_irq_in ioapic unnamed-gpio-in 9 1", *_ioapic_entry(9),
        f"writel {IOAPIC + 0x40:#x} 0x38", *_ioapic_entry(9),
        f"writel {IOAPIC + 0x40:#x} 0x39", *_ioapic_entry(9),  # still high: delivered again
        "set_irq_in ioapic unnamed-gpio-in 9 0", f"writel {IOAPIC + 0x40:#x} 0x39",
        *_ioapic_entry(9),
        f"writel {IOAPIC:#x} 0x22", f"writel {IOAPIC + 0x10:#x} 0xffffffff",  # RO bits kept
        *_ioapic_entry(9), f"writew {IOAPIC + 0x10:#x} 0", *_ioapic_entry(9),
        # pin 0 is pin 2; ExtINT takes the vector from the 8259s (their ISR shows it)
        f"writel {IOAPIC:#x} 0x14", f"writel {IOAPIC + 0x10:#x} 0x700",
        f"set_irq_in {MASTER} unnamed-gpio-in 4 1", "outb 0x20 0x0b", "inb 0x20",
        "set_irq_in ioapic unnamed-gpio-in 0 1", "outb 0x20 0x0b", "inb 0x20", "inb 0x20",
        f"writel {IOAPIC:#x} 0x14", f"writel {IOAPIC + 0x10:#x} 0x8700",
        "set_irq_in ioapic unnamed-gpio-in 2 1", "outb 0x20 0x0a", "inb 0x20",
        *_ioapic_entry(2), "outb 0x20 0x20", "outb 0x20 0x20",
        # a masked level ExtINT entry with its input high still acknowledges the 8259s
        # whenever the IOAPIC services its pins (QEMU parses the entry before the mask)
        "set_irq_in ioapic unnamed-gpio-in 0 0", "set_irq_in ioapic unnamed-gpio-in 2 0",
        f"writel {IOAPIC:#x} 0x14", f"writel {IOAPIC + 0x10:#x} 0x10000",
        f"set_irq_in {MASTER} unnamed-gpio-in 4 0", "outb 0x20 0x20",
        f"writel {IOAPIC:#x} 0x1a", f"writel {IOAPIC + 0x10:#x} 0x18700",
        "set_irq_in ioapic unnamed-gpio-in 5 1", f"set_irq_in {MASTER} unnamed-gpio-in 3 1",
        "outb 0x20 0x0b", "inb 0x20",
        f"writel {IOAPIC:#x} 0x30", f"writel {IOAPIC + 0x10:#x} 0x10000",
        "outb 0x20 0x0b", "inb 0x20", "outb 0x20 0x20", "outb 0x20 0x20",
    ])
    pic_pair.same(lines)


def _ioapic_op() -> st.SearchStrategy[list[str]]:
    sel = st.one_of(st.integers(0x10, 0x3F), st.sampled_from([0, 1, 2, 0x40, 0xFF]))
    word = st.one_of(
        st.builds(lambda vec, dm, dest_mode, trig, mask: vec | dm << 8 | dest_mode << 11
                  | trig << 15 | mask << 16, st.integers(0x20, 0xFF),
                  st.sampled_from([0, 1, 2, 4, 5, 7]), st.integers(0, 1), st.integers(0, 1),
                  st.integers(0, 1)),
        st.integers(0, 0xFFFFFFFF))
    select = st.builds(lambda s: [f"writel {IOAPIC:#x} {s:#x}"], sel)
    write = st.builds(lambda s, w: [f"writel {IOAPIC:#x} {s:#x}",
                                    f"writel {IOAPIC + 0x10:#x} {w:#x}"], sel, word)
    read = st.builds(lambda s: [f"writel {IOAPIC:#x} {s:#x}", f"readl {IOAPIC + 0x10:#x}"],
                     sel)
    odd = st.builds(lambda op, off: [f"{op} {IOAPIC + off:#x}"],
                    st.sampled_from(["readb", "readw", "readl"]),
                    st.sampled_from([0, 0x10, 0x11, 0x40, 0x100, 0x110, 0xFFC]))
    eoi = st.builds(lambda v: [f"writel {IOAPIC + 0x40:#x} {v:#x}"], st.integers(0x20, 0xFF))
    line = st.builds(lambda n, level: [f"set_irq_in ioapic unnamed-gpio-in {n} {level}"],
                     st.integers(0, 23), st.integers(0, 1))
    pic_line = st.builds(lambda n, level: [f"set_irq_in {MASTER} unnamed-gpio-in {n} {level}"],
                         st.integers(0, 7), st.integers(0, 1))
    pic_read = st.sampled_from([["outb 0x20 0x0b", "inb 0x20"], ["outb 0x20 0x0a", "inb 0x20"],
                                ["outb 0x20 0x20"]])
    return st.one_of(select, write, write, read, read, odd, eoi, line, line, pic_line, pic_read)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(st.lists(_ioapic_op(), min_size=1, max_size=60))
def test_fuzz_ioapic_against_qemu(pic_pair: Pair, ops: list[list[str]]) -> None:
    """Random IOAPIC register traffic, input levels and EOIs, with the 8259s it acknowledges
    for ExtINT entries: every value read and every INTR change as QEMU has them."""
    pic_pair.same(_cmds(PIC_INIT, IOAPIC_INIT, *ops))
