"""16550A UART (QEMU hw/char/serial.c), the ``pc`` machine's COM1 at I/O port 0x3f8.

Enough of the register file for polled output and for guests that probe the chip: THR/RBR,
IER, IIR/FCR, LCR (with the DLAB divisor latch), MCR, LSR, MSR and the scratch register.
The transmitter is always ready: LSR reports THRE|TEMT and every byte written to THR goes to
the backend at once. The receiver hears the backend's host input (keys typed on emu's
terminal, emu.monitor.mux) and the chip's own loopback (MCR.LOOP, which Linux's 8250 driver
uses to probe the chip): in loopback THR bytes come back through RBR and MSR shows the MCR
outputs. Received bytes wait in a queue that never overruns (host input is held, not lost,
until a FIFO flush discards it as QEMU's does); LSR.DR is set while it holds a byte, IIR
reports received data when IER enables it (with the FIFO on: at its trigger level), and a
read of RBR takes the oldest (with none: 0 with the FIFO on, the last byte with it off).
The FIFO's character timeout indication (QEMU's fifo_timeout_int, four character times of
virtual time) waits for a machine clock, which emu does not model: below the trigger level
IIR shows no interrupt, as QEMU's does while its virtual clock stands still.

The interrupt output (``irq``: ISA IRQ 4 for COM1, 3 for COM2) follows QEMU's
serial_update_irq: it is high while IIR shows an interrupt. Transmission is instant, so
THR empties (and, with IER.THRI, interrupts) as soon as a byte is written, which is what
QEMU's serial_xmit does with a backend that takes the byte at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from emu.bus import Region
from emu.chardev import CharBackend
from emu.irq import IrqLine
from emu.trace import trace

UART_LSR_DR = 0x01
UART_LSR_THRE = 0x20
UART_LSR_TEMT = 0x40
UART_IER_RDI = 0x01
UART_IER_THRI = 0x02
UART_IER_RLSI = 0x04
UART_LSR_OE = 0x02
UART_IIR_RLSI = 0x06
#: the receive FIFO's depth
UART_FIFO_LENGTH = 16
UART_IIR_NO_INT = 0x01
UART_IIR_THRI = 0x02
UART_IIR_RDI = 0x04
#: receive FIFO trigger levels selected by FCR bits 7:6
UART_FIFO_ITL = (1, 4, 8, 14)
UART_IIR_FE = 0xC0
UART_FCR_FE = 0x01
UART_FCR_RFR = 0x02
UART_LCR_DLAB = 0x80
UART_MCR_LOOP = 0x10
UART_MSR_DCD = 0x80
UART_MSR_DSR = 0x20
UART_MSR_CTS = 0x10


class Uart16550:
    """One 16550A: a single 8-byte I/O region."""

    def __init__(self, backend: CharBackend, name: str = "serial0") -> None:
        self.backend = backend
        self.region = Region("serial", 8, self)  # QEMU's region name
        self.rx: deque[int] = deque()
        self.irq = IrqLine(f"{name}.irq")
        #: called (on the backend's thread) after host input arrived; the board makes it
        #: run :meth:`update_irq` on the machine's thread
        self.on_input: Callable[[], None] | None = None
        self.reset()
        backend.set_receiver(self.receive)

    def reset(self) -> None:
        """Power-on state, as QEMU's serial_reset."""
        self.divider = 0x0C
        self.ier = 0
        self.fcr = 0
        self.lcr = 0
        self.mcr = 0x08  # OUT2 (QEMU's serial_reset)
        self.lsr = UART_LSR_TEMT | UART_LSR_THRE
        self.msr = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS
        self.scr = 0
        self.thr_ipending = False
        self.rbr = 0
        self.overrun = False
        self.rx.clear()
        self.irq.set_level(0)

    def receive(self, data: bytes) -> None:
        """Host input from the backend (any thread: deque appends are atomic)."""
        self.rx.extend(data)
        if self.on_input is not None:
            self.on_input()

    def _loop_back(self, value: int) -> None:
        """A byte the transmitter sends to its own receiver (MCR.LOOP), as QEMU's
        serial_receive1 takes it: into the 16-byte FIFO (dropped with an overrun when full),
        or, with the FIFO off, into RBR (an overrun when the last byte was not read)."""
        if self.fcr & UART_FCR_FE:
            if len(self.rx) < UART_FIFO_LENGTH:
                self.rx.append(value)
            else:
                self.overrun = True
        else:
            if self.rx:
                self.overrun = True
                self.rx.clear()
            self.rx.append(value)

    def update_irq(self) -> None:
        """``serial_update_irq``: the output is high while IIR shows an interrupt."""
        self.irq.set_level(0 if self._iir() & UART_IIR_NO_INT else 1)

    def _rx_byte(self) -> int:
        """RBR: the oldest received byte. With nothing received, QEMU's serial_ioport_read
        gives 0 with the FIFO on and the last byte received with it off (the register keeps
        it)."""
        if self.fcr & UART_FCR_FE:
            return self.rx.popleft() if self.rx else 0
        if self.rx:
            self.rbr = self.rx.popleft()
        return self.rbr

    def _iir(self) -> int:
        """serial_update_irq's priorities: received data (at the FIFO's trigger level),
        then the transmitter."""
        fifo = UART_IIR_FE if self.fcr & UART_FCR_FE else 0
        level = UART_FIFO_ITL[self.fcr >> 6] if fifo else 1
        if self.ier & UART_IER_RLSI and self.overrun:
            return fifo | UART_IIR_RLSI
        if self.ier & UART_IER_RDI and len(self.rx) >= level:
            return fifo | UART_IIR_RDI
        if self.ier & UART_IER_THRI and self.thr_ipending:
            return fifo | UART_IIR_THRI
        return fifo | UART_IIR_NO_INT

    def read(self, offset: int, size: int) -> int:
        dlab = self.lcr & UART_LCR_DLAB
        if offset == 0:
            if dlab:
                value = self.divider & 0xFF
            else:
                value = self._rx_byte()
                self.update_irq()
        elif offset == 1:
            value = self.divider >> 8 if dlab else self.ier
        elif offset == 2:
            value = self._iir()
            if value & 0x0F == UART_IIR_THRI:
                self.thr_ipending = False
                self.update_irq()
        elif offset == 3:
            value = self.lcr
        elif offset == 4:
            value = self.mcr
        elif offset == 5:
            value = self.lsr | (UART_LSR_DR if self.rx else 0) | \
                (UART_LSR_OE if self.overrun else 0)
            if self.overrun:  # reading LSR clears the overrun error
                self.overrun = False
                self.update_irq()
        elif offset == 6:
            if self.mcr & UART_MCR_LOOP:  # outputs wired to inputs (QEMU serial.c)
                m = self.mcr
                value = (m & 0x0C) << 4 | (m & 0x02) << 3 | (m & 0x01) << 5
            else:
                value = self.msr
        else:
            value = self.scr
        trace("serial_read", addr=offset, value=value)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        value &= 0xFF
        trace("serial_write", addr=offset, value=value)
        dlab = self.lcr & UART_LCR_DLAB
        if offset == 0:
            if dlab:
                self.divider = (self.divider & 0xFF00) | value
            else:
                # QEMU's THR write: THR full (the interrupt condition goes), then the
                # transmitter takes the byte and THR is empty again
                self.thr_ipending = False
                self.update_irq()
                if self.mcr & UART_MCR_LOOP:
                    self._loop_back(value)
                else:
                    self.backend.write(bytes((value,)))
                self.thr_ipending = True
                self.update_irq()
        elif offset == 1:
            if dlab:
                self.divider = (self.divider & 0x00FF) | value << 8
            else:
                changed = (self.ier ^ value) & 0x0F
                self.ier = value & 0x0F
                if changed:
                    # turning THRI on interrupts at once while THR is empty (QEMU's
                    # serial_ioport_write: "Windows relies on it")
                    if self.ier & UART_IER_THRI:
                        self.thr_ipending = True
                    self.update_irq()
        elif offset == 2:
            # a change of the FIFO enable flushes the FIFOs; RFR flushes the receiver's
            # (QEMU's serial_ioport_write; the received data is gone, as there)
            if (value ^ self.fcr) & UART_FCR_FE or value & UART_FCR_RFR:
                self.rx.clear()
            self.fcr = value & 0xC9
            self.update_irq()
        elif offset == 3:
            self.lcr = value
        elif offset == 4:
            self.mcr = value & 0x1F
            self.update_irq()
        elif offset == 7:
            self.scr = value
        # LSR (5) and MSR (6) are read-only.
