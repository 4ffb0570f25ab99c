"""Register-level behaviour of the device models: 16550, PL011, isa-debug-exit, PSCI, trace."""

from __future__ import annotations

import io
import sys

import pytest

from emu import trace
from emu.bus import MmioBus, PortBus
from emu.chardev import CharBackend
from emu.devices.debug_exit import DebugExit
from emu.devices.pl011 import PL011
from emu.devices.psci import Psci
from emu.devices.uart16550 import Uart16550


class Capture(CharBackend):
    """An in-memory character backend."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


COM1 = 0x3F8
THR, IER, IIR, LCR, MCR, LSR, MSR, SCR = range(8)
DLL, DLM, FCR = 0, 1, 2


@pytest.fixture
def com1():
    out = Capture()
    uart = Uart16550(out)
    bus = PortBus()
    bus.map(COM1, uart.region)
    return bus, uart, out


# --------------------------------------------------------------------------- 16550


def test_uart_reset_state(com1):
    bus, _, _ = com1
    assert bus.port_read(COM1 + LSR, 1) == 0x60  # THRE | TEMT
    assert bus.port_read(COM1 + IIR, 1) == 0x01  # no interrupt pending
    assert bus.port_read(COM1 + MSR, 1) == 0xB0  # DCD | DSR | CTS
    assert bus.port_read(COM1 + IER, 1) == 0
    assert bus.port_read(COM1 + LCR, 1) == 0
    assert bus.port_read(COM1 + MCR, 1) == 0x08  # OUT2, as QEMU's serial_reset leaves it
    assert bus.port_read(COM1 + SCR, 1) == 0


def test_uart_thr_write_outputs_byte(com1):
    bus, _, out = com1
    for b in b"Hi\n\x00\xff":
        bus.port_write(COM1 + THR, 1, b)
    assert bytes(out.data) == b"Hi\n\x00\xff"
    assert bus.port_read(COM1 + LSR, 1) & 0x60 == 0x60  # transmitter still ready


def test_uart_divisor_latch(com1):
    bus, _, out = com1
    bus.port_write(COM1 + LCR, 1, 0x83)  # DLAB, 8N1
    bus.port_write(COM1 + DLL, 1, 0x01)
    bus.port_write(COM1 + DLM, 1, 0x02)
    assert out.data == b""  # DLL write is not a THR write
    assert bus.port_read(COM1 + DLL, 1) == 0x01
    assert bus.port_read(COM1 + DLM, 1) == 0x02
    assert bus.port_read(COM1 + LCR, 1) == 0x83
    bus.port_write(COM1 + LCR, 1, 0x03)
    assert bus.port_read(COM1 + IER, 1) == 0  # IER, not DLM, without DLAB
    bus.port_write(COM1 + THR, 1, ord("x"))
    assert out.data == b"x"
    bus.port_write(COM1 + LCR, 1, 0x83)
    assert bus.port_read(COM1 + DLL, 1) == 0x01  # the THR write left the divisor alone
    assert bus.port_read(COM1 + DLM, 1) == 0x02


def test_uart_scratch_register(com1):
    bus, _, _ = com1
    for v in (0x55, 0xAA, 0x00, 0xFF):
        bus.port_write(COM1 + SCR, 1, v)
        assert bus.port_read(COM1 + SCR, 1) == v


def test_uart_lsr_msr_read_only(com1):
    bus, _, _ = com1
    bus.port_write(COM1 + LSR, 1, 0x00)
    bus.port_write(COM1 + MSR, 1, 0x00)
    assert bus.port_read(COM1 + LSR, 1) == 0x60
    assert bus.port_read(COM1 + MSR, 1) == 0xB0


def test_uart_thre_interrupt_identification(com1):
    bus, _, _ = com1
    bus.port_write(COM1 + IER, 1, 0x02)  # enable THR empty interrupt; THR is empty
    assert bus.port_read(COM1 + IER, 1) == 0x02
    assert bus.port_read(COM1 + IIR, 1) == 0x02  # THRI pending
    assert bus.port_read(COM1 + IIR, 1) == 0x01  # reading IIR acknowledged it


def test_uart_fifo_enable_shows_in_iir(com1):
    bus, _, _ = com1
    bus.port_write(COM1 + FCR, 1, 0x01)
    assert bus.port_read(COM1 + IIR, 1) == 0xC1
    bus.port_write(COM1 + FCR, 1, 0x00)
    assert bus.port_read(COM1 + IIR, 1) == 0x01


def test_uart_reset_restores_power_on_state(com1):
    bus, uart, _ = com1
    bus.port_write(COM1 + LCR, 1, 0x80)
    bus.port_write(COM1 + DLL, 1, 0x99)
    bus.port_write(COM1 + SCR, 1, 0x42)
    uart.reset()
    assert bus.port_read(COM1 + LCR, 1) == 0
    assert bus.port_read(COM1 + SCR, 1) == 0
    assert bus.port_read(COM1 + LSR, 1) == 0x60
    assert bus.port_read(COM1 + IIR, 1) == 0x01


# --------------------------------------------------------------------------- PL011

UART0 = 0x0900_0000


@pytest.fixture
def pl011():
    out = Capture()
    dev = PL011(out)
    bus = MmioBus()
    bus.map(UART0, dev.region)
    return bus, dev, out


def test_pl011_flags_at_reset(pl011):
    bus, _, _ = pl011
    assert bus.mmio_read(UART0 + 0x18, 4) == 0x90  # TXFE | RXFE


def test_pl011_id_registers(pl011):
    bus, _, _ = pl011
    ids = [bus.mmio_read(UART0 + off, 4) for off in range(0xFE0, 0x1000, 4)]
    assert ids == [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1]


def test_pl011_cr_reset(pl011):
    bus, _, _ = pl011
    assert bus.mmio_read(UART0 + 0x30, 4) == 0x300


def test_pl011_dr_write_outputs_byte(pl011):
    bus, _, out = pl011
    for b in b"ok\r\n":
        bus.mmio_write(UART0 + 0x00, 4, b)
    bus.mmio_write(UART0 + 0x00, 1, 0xFF)
    assert bytes(out.data) == b"ok\r\n\xff"
    assert bus.mmio_read(UART0 + 0x18, 4) & 0x80  # TX FIFO still empty


def test_pl011_registers_read_back(pl011):
    bus, _, out = pl011
    bus.mmio_write(UART0 + 0x24, 4, 0x27)  # IBRD
    bus.mmio_write(UART0 + 0x28, 4, 0x04)  # FBRD
    bus.mmio_write(UART0 + 0x2C, 4, 0x70)  # LCR_H
    bus.mmio_write(UART0 + 0x30, 4, 0x301)  # CR: UARTEN | TXE | RXE
    assert bus.mmio_read(UART0 + 0x24, 4) == 0x27
    assert bus.mmio_read(UART0 + 0x28, 4) == 0x04
    assert bus.mmio_read(UART0 + 0x2C, 4) == 0x70
    assert bus.mmio_read(UART0 + 0x30, 4) == 0x301
    assert out.data == b""


def test_pl011_reset_restores_cr(pl011):
    bus, dev, _ = pl011
    bus.mmio_write(UART0 + 0x30, 4, 0)
    dev.reset()
    assert bus.mmio_read(UART0 + 0x30, 4) == 0x300
    assert bus.mmio_read(UART0 + 0x18, 4) == 0x90


# --------------------------------------------------------------------------- isa-debug-exit


@pytest.mark.parametrize(("value", "status"), [(0, 1), (1, 3), (0x10, 0x21), (0x7F, 0xFF)])
def test_debug_exit_status(value, status):
    exits: list[int] = []
    dev = DebugExit(4, exits.append)
    bus = PortBus()
    bus.map(0xF4, dev.region)
    bus.port_write(0xF4, 1, value)
    assert exits == [status]


def test_debug_exit_any_size_and_port():
    exits: list[int] = []
    dev = DebugExit(4, exits.append)
    bus = PortBus()
    bus.map(0xF4, dev.region)
    bus.port_write(0xF6, 2, 0x31)
    bus.port_write(0xF4, 4, 0x2)
    assert exits == [0x63, 0x5]


def test_debug_exit_read_returns_zero():
    exits: list[int] = []
    dev = DebugExit(2, exits.append)
    bus = PortBus()
    bus.map(0x501, dev.region)
    assert bus.port_read(0x501, 1) == 0
    assert bus.port_read(0x501, 2) == 0
    assert exits == []


# --------------------------------------------------------------------------- PSCI


class PsciHarness:
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.psci = Psci(power_off=lambda status: self.events.append(("off", status)),
                         reset=lambda: self.events.append(("reset",)),
                         cpu_off=lambda: self.events.append(("cpu_off",)))

    def call(self, fn: int, *args: int, conduit: str = "hvc"):
        regs = [fn, *args] + [0] * (4 - 1 - len(args))
        return self.psci.call(conduit, regs)


@pytest.fixture
def psci():
    return PsciHarness()


def test_psci_version(psci):
    # QEMU 7.2's TCG PSCI reports version 1.1 (read from x0 after HVC under QEMU itself)
    assert psci.call(0x84000000) == 0x00010001
    assert psci.events == []


def test_psci_features(psci):
    assert psci.call(0x8400000A, 0x84000008) == 0  # SYSTEM_OFF is implemented
    assert psci.call(0x8400000A, 0xC4000003) == 0  # CPU_ON (64-bit)
    assert psci.call(0x8400000A, 0x84000005) & 0xFFFFFFFF == 0xFFFFFFFF  # MIGRATE: no
    assert psci.call(0x8400000A, 0x12345678) & 0xFFFFFFFF == 0xFFFFFFFF


def test_psci_system_off(psci):
    psci.call(0x84000008, conduit="smc")
    assert psci.events == [("off", 0)]


def test_psci_system_reset(psci):
    psci.call(0x84000009)
    assert psci.events == [("reset",)]


def test_psci_cpu_off(psci):
    psci.call(0x84000002)
    assert psci.events == [("cpu_off",)]


def test_psci_migrate_info_type(psci):
    assert psci.call(0x84000006) == 2  # trusted OS not present / migration not required
    assert psci.events == []


@pytest.mark.parametrize("fn", [0x84001234, 0x8400001F, 0xC2000000, 0x0, 0x12345678])
def test_psci_unknown_function_not_supported(psci, fn):
    assert psci.call(fn) & 0xFFFFFFFF == 0xFFFFFFFF
    assert psci.events == []


# --------------------------------------------------------------------------- trace


@pytest.fixture
def trace_out():
    stream = io.StringIO()
    trace.set_output(stream)
    yield stream
    trace.reset()
    trace.set_output(sys.stderr)


def test_trace_serial_write(com1, trace_out):
    bus, _, out = com1
    trace.enable("serial_*")
    bus.port_write(COM1 + THR, 1, 0x41)
    lines = trace_out.getvalue().splitlines()
    assert out.data == b"A"
    assert lines
    assert lines[0].startswith("serial_write")
    assert all(line.startswith("serial_") for line in lines)


def test_trace_pattern_does_not_match_other_devices(pl011, trace_out):
    bus, _, out = pl011
    trace.enable("serial_*")
    bus.mmio_write(UART0, 4, 0x41)
    assert out.data == b"A"
    assert trace_out.getvalue() == ""


def test_trace_disabled_prints_nothing(com1, trace_out):
    bus, _, _ = com1
    bus.port_write(COM1 + THR, 1, 0x41)
    bus.port_read(COM1 + LSR, 1)
    assert trace_out.getvalue() == ""


# --------------------------------------------------------------------------- 16550 loopback
# QEMU serial.c: with MCR.LOOP the transmitter feeds the receiver instead of the chardev, and
# MSR reflects the MCR outputs (RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD).


def test_uart_loopback_msr_mirrors_mcr(com1):
    bus, _, _ = com1
    bus.port_write(COM1 + MCR, 1, 0x10 | 0x0A)  # LOOP | RTS | OUT2
    assert bus.port_read(COM1 + MSR, 1) & 0xF0 == 0x90  # CTS | DCD


def test_uart_loopback_thr_not_output(com1):
    bus, _, out = com1
    bus.port_write(COM1 + MCR, 1, 0x10)
    bus.port_write(COM1 + THR, 1, ord("L"))
    assert out.data == b""
    assert bus.port_read(COM1 + LSR, 1) & 0x01  # data ready: the byte came back
    assert bus.port_read(COM1 + THR, 1) == ord("L")
    assert not bus.port_read(COM1 + LSR, 1) & 0x01
