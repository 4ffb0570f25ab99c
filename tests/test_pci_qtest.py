"""The pc's PCI bus against QEMU 7.2 through qtest: configuration mechanism #1 at
0xcf8/0xcfc (hw/pci/pci_host.c), the functions on bus 0 (hw/pci-host/i440fx.c,
hw/isa/piix3.c, hw/ide/piix.c, hw/acpi/piix4.c) and the PIIX4's power management I/O.

Both emulators run ``-M pc`` paused under qtest and get the same port accesses; every answer
(and every IRQ line at the IOAPIC's inputs) must be equal:

- all 256 bytes of configuration space of every devfn on bus 0, as dwords, words and bytes,
  with ``-nodefaults``; without it QEMU also has its VGA (02.0) and NIC (03.0), which emu
  does not model, and the parallel port, which the PIIX4 reports in 0x5f;
- the CONFIG_ADDRESS register's access rules, absent buses and functions, disabled cycles;
- BAR size probing (all ones written, read back) and random writes to every register
  (hypothesis), so write masks, write-one-to-clear bits and read-only bits are QEMU's;
- the PIIX4 PM block: placed by PMBA/PMIOSE, PM1 status/enable/control, the timer's
  overflow status and the SCI on GSI 9, APM's ACPI_ENABLE, GPE0.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pc_irq_qtest import Pair, qtest_pair

ARGS = ["-M", "pc", "-m", "128M", "-display", "none", "-nodefaults"]
#: the functions of QEMU's pc with -nodefaults: i440FX, PIIX3 ISA, IDE, PIIX4 PM
FUNCTIONS = (0x00, 0x08, 0x09, 0x0B)


def cfg(devfn: int, reg: int, bus: int = 0) -> int:
    return 0x80000000 | (bus << 16) | (devfn << 8) | reg


def read_space(devfn: int) -> list[str]:
    return [line for reg in range(0, 256, 4)
            for line in (f"outl 0xcf8 {cfg(devfn, reg):#x}", "inl 0xcfc")]


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    yield from qtest_pair("pc", *ARGS)


def test_every_devfn_matches_qemu(pair: Pair) -> None:
    """Bus 0's 256 functions, dword by dword: the four of QEMU's pc, all ones elsewhere."""
    answers = pair.same([line for devfn in range(256) for line in read_space(devfn)[:4]])
    present = [devfn for devfn in range(256) if answers[4 * devfn + 1] != "OK 0xffffffff"]
    assert present == list(FUNCTIONS)
    pair.same([line for devfn in FUNCTIONS for line in read_space(devfn)])


def test_word_and_byte_reads_match_qemu(pair: Pair) -> None:
    lines = []
    for devfn in FUNCTIONS:
        for reg in range(0, 0x100, 4):
            lines.append(f"outl 0xcf8 {cfg(devfn, reg):#x}")
            lines += ["inw 0xcfc", "inw 0xcfe", "inb 0xcfc", "inb 0xcfd", "inb 0xcfe",
                      "inb 0xcff"]
    pair.same(lines)


def test_config_address_register_matches_qemu(pair: Pair) -> None:
    """Only dword writes at 0xcf8 change it; reads of any width return it from its low
    byte; the enable bit, other buses, absent functions; register bits 1:0 are kept."""
    pair.same([
        "outl 0xcf8 0x80000000", "inl 0xcf8", "inw 0xcf8", "inw 0xcfa", "inb 0xcf8",
        "inb 0xcfb", "outw 0xcf8 0x1234", "inl 0xcf8", "outb 0xcfb 0x00", "inl 0xcf8",
        "outw 0xcfa 0x0000", "inl 0xcf8",
        "outl 0xcf8 0x00000000", "inl 0xcfc", "inw 0xcfc", "inb 0xcfd",
        f"outl 0xcf8 {cfg(0, 0, bus=1):#x}", "inl 0xcfc",
        f"outl 0xcf8 {cfg(0x10, 0):#x}", "inl 0xcfc",
        f"outl 0xcf8 {cfg(0x0A, 0):#x}", "inl 0xcfc",
        f"outl 0xcf8 {cfg(0, 0x01):#x}", "inl 0xcfc", "inb 0xcfc", "inw 0xcfe",
        f"outl 0xcf8 {cfg(0, 0x03):#x}", "inb 0xcfc", "inb 0xcfd",
        f"outl 0xcf8 {cfg(8, 0xFC):#x}", "inl 0xcfc", "inw 0xcfe", "inb 0xcff",
        "outl 0xcf8 0x7fffff00", "inl 0xcf8", "inl 0xcfc",
        f"outl 0xcf8 {cfg(0, 0):#x}", "outl 0xcfc 0xffffffff", "inl 0xcfc",
    ])


def test_bar_sizing_matches_qemu(pair: Pair) -> None:
    """All ones to each BAR and the ROM BAR, read back, old value restored."""
    lines = []
    for devfn in FUNCTIONS:
        for reg in (*range(0x10, 0x28, 4), 0x30):
            lines += [f"outl 0xcf8 {cfg(devfn, reg):#x}", "inl 0xcfc",
                      "outl 0xcfc 0xffffffff", "inl 0xcfc", "outw 0xcfc 0x0000", "inl 0xcfc",
                      "outb 0xcfe 0x00", "outb 0xcff 0x00", "inl 0xcfc"]
    pair.same(lines)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(FUNCTIONS), st.integers(0, 255),
                          st.sampled_from([1, 2, 4]), st.integers(0, 0xFFFFFFFF)),
                min_size=1, max_size=12))
def test_random_config_writes_match_qemu(pair: Pair, writes) -> None:
    """Writes of every width anywhere in the four functions, then the whole space reread.
    The PIIX4's PM and SMBus bases may move (both emulators move the PM block); SMRAM and
    PAM writes change QEMU's memory map, which the config space does not show."""
    lines = []
    for devfn, reg, size, value in writes:
        reg &= ~(size - 1)
        port = 0xCFC + (reg & 3)
        op = {1: "outb", 2: "outw", 4: "outl"}[size]
        lines += [f"outl 0xcf8 {cfg(devfn, reg & 0xFC):#x}",
                  f"{op} {port:#x} {value & ((1 << 8 * size) - 1):#x}"]
    for devfn in FUNCTIONS:
        lines += read_space(devfn)
    pair.same(lines)


def test_without_nodefaults_only_what_emu_lacks_differs() -> None:
    """Without -nodefaults QEMU's pc also has a VGA at 02.0 (1234:1111) and an e1000 NIC at
    03.0 (8086:100e), and a parallel port, which sets bit 7 of the PIIX4's 0x5f."""
    for p in qtest_pair("pc", "-M", "pc", "-m", "128M", "-display", "none", "-serial", "null"):
        lines = [line for devfn in range(32) for line in read_space(devfn)[:2]]
        got, want = p.run(lines)
        ids = {devfn: (got[2 * devfn + 1], want[2 * devfn + 1]) for devfn in range(32)}
        assert ids.pop(0x10) == ("OK 0xffffffff", "OK 0x11111234")
        assert ids.pop(0x18) == ("OK 0xffffffff", "OK 0x100e8086")
        assert all(a == b for a, b in ids.values())
        assert [d for d, (a, _b) in ids.items() if a != "OK 0xffffffff"] == list(FUNCTIONS)
        for devfn in FUNCTIONS:
            mine, theirs = p.run(read_space(devfn))
            if devfn == 0x0B:
                at = 2 * (0x5C // 4) + 1
                assert (mine[at], theirs[at]) == ("OK 0x10000000", "OK 0x90000000")
                mine[at] = theirs[at]
            assert mine == theirs, hex(devfn)


# -- the PIIX4 power management function ------------------------------------------------------

PM_ENABLE = [f"outl 0xcf8 {cfg(0x0B, 0x40):#x}", "outl 0xcfc 0x601",
             f"outl 0xcf8 {cfg(0x0B, 0x80):#x}", "outb 0xcfc 0x01"]


@pytest.fixture
def pm_pair() -> Iterator[Pair]:
    for p in qtest_pair("pc", *ARGS):
        p.same(["irq_intercept_in ioapic"])
        yield p


def test_pm_block_placement_matches_qemu(pm_pair: Pair) -> None:
    """Nothing at 0x600 until PMBA and PMIOSE place it; moving and disabling it."""
    pm_pair.same([
        "inw 0x600", "inw 0x604", "inl 0x608", *PM_ENABLE,
        "inw 0x600", "inw 0x602", "inw 0x604", "inb 0x604", "inb 0x605", "inl 0x608",
        "inw 0x606", "inl 0x60c", "inw 0x63e",
        f"outl 0xcf8 {cfg(0x0B, 0x40):#x}", "outl 0xcfc 0xb001", "inw 0x600", "inw 0xb004",
        f"outl 0xcf8 {cfg(0x0B, 0x80):#x}", "outb 0xcfc 0x00", "inw 0xb004",
        f"outl 0xcf8 {cfg(0x0B, 0x40):#x}", "inl 0xcfc",
    ])


def test_pm_registers_and_sci_match_qemu(pm_pair: Pair) -> None:
    """PM1 control (SCI_EN through APM's ACPI_ENABLE / ACPI_DISABLE, plain writes), PM1
    status and enable with the timer's overflow status raising the SCI on GSI 9 when
    TMR_EN is set, GPE0's status and enable bytes, APM's two registers."""
    answers = pm_pair.same([
        *PM_ENABLE,
        "inw 0x604", "outb 0xb2 0xf1", "inw 0x604", "inb 0xb2", "outb 0xb3 0x5a", "inb 0xb3",
        "inw 0xb2", "outb 0xb2 0xf0", "inw 0x604", "outw 0x604 0x0001", "inw 0x604",
        "outw 0x604 0x0401", "inw 0x604",
        "inw 0x600", "outw 0x602 0x0001", "inw 0x602", "inw 0x600",
        "outw 0x600 0x0001", "inw 0x600", "outw 0x602 0x0000", "inw 0x602",
        "outw 0x602 0x0520", "inw 0x602", "inb 0x602", "inb 0x603", "inb 0x601",
        "outb 0x600 0xff", "inw 0x600",
        "inl 0xafe0", "outl 0xafe0 0xffffffff", "inl 0xafe0", "outb 0xafe2 0x04", "inl 0xafe0",
        "inw 0xafe2", "inb 0xafe3", "outw 0xafe0 0xffff", "inl 0xafe0",
    ])
    irqs = [a for a in answers if a.startswith("IRQ")]
    assert irqs and all(a.endswith(" 9") for a in irqs), irqs
