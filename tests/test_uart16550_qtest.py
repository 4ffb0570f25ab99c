"""The pc's COM1 (16550A at 0x3f8, ISA IRQ 4) against QEMU 7.2 through qtest: register
values and the interrupt line (serial_update_irq in hw/char/serial.c), which Linux's 8250
driver needs for its interrupt-driven output (a shell's and /init's lines).

Both run ``-M pc -nodefaults -serial null`` paused with the IOAPIC inputs intercepted; every
byte read and every change of IRQ 4 must be the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pc_irq_qtest import Pair, qtest_pair

ARGS = ["-M", "pc", "-m", "128M", "-display", "none", "-nodefaults", "-serial", "null"]
COM1 = 0x3F8


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    for p in qtest_pair("pc", *ARGS):
        p.same(["irq_intercept_in ioapic"])
        yield p


def _out(offset: int, value: int) -> str:
    return f"outb {COM1 + offset:#x} {value:#x}"


def _in(offset: int) -> str:
    return f"inb {COM1 + offset:#x}"


#: a known state: no loopback, FIFO off, interrupts off, divisor latch closed, IIR read
RESET = [_out(3, 0x03), _out(4, 0x00), _out(2, 0x00), _out(1, 0x00), _in(2), _in(5), _in(0)]


def test_transmitter_empty_interrupt(pair: Pair) -> None:
    """Enabling THRI with THR empty interrupts at once; reading IIR (THRI) acknowledges it; a
    byte written to THR empties at once and interrupts again; disabling THRI lowers."""
    pair.same([*RESET, _out(1, 0x02), _in(2), _in(2), _out(0, 0x41), _in(5), _in(2),
               _out(0, 0x42), _out(1, 0x00), _in(2), _out(1, 0x02), _out(1, 0x00)])


def test_received_data_interrupt_in_loopback(pair: Pair) -> None:
    """Loopback (Linux's probe): a byte written comes back, raising RDI when enabled, with the
    FIFO off and at the FIFO trigger level; reading RBR lowers it."""
    pair.same([*RESET, _out(4, 0x10), _out(1, 0x01), _out(0, 0x55), _in(5), _in(2), _in(0),
               _in(5), _in(2),
               _out(2, 0x47), _out(0, 0x01), _in(2), _out(0, 0x02), _out(0, 0x03),
               _out(0, 0x04), _in(2), _in(0), _in(2), _in(0), _in(0), _in(0), _in(5),
               _out(2, 0x00), _out(4, 0x00), _in(6)])


def test_linux_8250_start_tx_sequence(pair: Pair) -> None:
    """What serial8250_start_tx / the interrupt handler do for a line of output: THRI on,
    IIR, LSR, bytes to THR, IIR until no interrupt, THRI off."""
    lines = [*RESET, _out(4, 0x0B), _out(1, 0x05), _in(2), _out(1, 0x07)]
    for ch in b"ok\n":
        lines += [_in(2), _in(5), _out(0, ch)]
    lines += [_in(2), _in(5), _in(2), _out(1, 0x05), _in(2)]
    pair.same(lines)


def _op() -> st.SearchStrategy[str]:
    write = st.builds(_out, st.integers(0, 7),
                      st.one_of(st.sampled_from([0, 1, 2, 3, 5, 7, 0x0F, 0x10, 0x47, 0x80,
                                                 0x87, 0xC7, 0x1B]), st.integers(0, 255)))
    read = st.builds(_in, st.integers(0, 7))
    return st.one_of(write, read, read)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(st.lists(_op(), min_size=1, max_size=60))
def test_fuzz_uart_against_qemu(ops: list[str]) -> None:
    """Random register accesses from power-on (a new pair each time: state the register
    file does not show, such as a byte left in RBR, would otherwise carry over): every byte
    and every change of IRQ 4 as QEMU has them."""
    for pair in qtest_pair("pc", *ARGS):
        pair.same(["irq_intercept_in ioapic", *ops])
