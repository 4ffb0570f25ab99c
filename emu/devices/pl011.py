"""ARM PrimeCell PL011 UART (QEMU hw/char/pl011.c), the ``virt`` machine's UART at 0x09000000.

Registers modelled: DR (output), RSR/ECR, FR, ILPR, IBRD, FBRD, LCR_H, CR, IFLS, IMSC, RIS, MIS,
ICR, DMACR and the peripheral/PrimeCell ID registers at 0xfe0-0xffc with QEMU's values. The
transmit FIFO never fills: FR reports TXFE|RXFE at reset and every DR write is output at once.
The receive path takes the backend's host input (keys typed on emu's terminal,
emu.monitor.mux) into a queue that never overruns: FR.RXFE is clear while it holds a byte,
FR.RXFF is set once it holds a FIFO's worth (1 byte with LCR_H.FEN clear, 16 with it set: QEMU
keeps further input in its chardev until the guest reads), RIS.RXRIS is set while a byte
waits (QEMU's read trigger of 1), and a read of DR takes the oldest (with no error bits).
The combined interrupt output (``irq``, QEMU's first sysbus IRQ: virt's SPI 1) is high while
an interrupt enabled in IMSC is raised in RIS (``pl011_update``): TX is raised by every DR
write, as QEMU's never-full FIFO does, and cleared through ICR; RX is raised while input
waits. Host input arrives on the backend's thread; the board's ``on_input`` hook brings the
line's update to the machine's thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from emu.bus import Region
from emu.chardev import CharBackend
from emu.irq import Gpios, IrqLine
from emu.trace import trace

PL011_FR_RXFE = 0x10
PL011_FR_RXFF = 0x40
PL011_INT_RX = 0x10
PL011_INT_TX = 0x20
PL011_LCR_FEN = 0x10
PL011_FIFO_DEPTH = 16
PL011_FR_TXFE = 0x80
PL011_ID = (0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1)

_SIMPLE = {0x20: "ilpr", 0x24: "ibrd", 0x28: "fbrd", 0x2C: "lcr", 0x30: "cr",
           0x34: "ifl", 0x38: "int_enabled", 0x48: "dmacr"}


class PL011:
    """One PL011 with its 4 KiB register page."""

    def __init__(self, backend: CharBackend, name: str = "pl011") -> None:
        self.backend = backend
        self.region = Region(name, 0x1000, self)
        self.rx: deque[int] = deque()
        self.irq = IrqLine(f"{name}.irq")
        #: QEMU's six sysbus IRQs are a named list; emu has the combined one only
        self.gpios = Gpios(name, outputs={"sysbus-irq": [self.irq]})
        #: called (on the backend's thread) after host input arrived; the board makes it
        #: run :meth:`update_irq` on the machine's thread
        self.on_input: Callable[[], None] | None = None
        self.reset()
        backend.set_receiver(self.receive)

    def receive(self, data: bytes) -> None:
        """Host input from the backend (any thread: deque appends are atomic)."""
        self.rx.extend(data)
        if self.on_input is not None:
            self.on_input()

    def update_irq(self) -> None:
        """``pl011_update``: the combined interrupt output."""
        self.irq.set_level(1 if self._ris() & self.int_enabled else 0)

    def _ris(self) -> int:
        return self.int_level | (PL011_INT_RX if self.rx else 0)

    def reset(self) -> None:
        """Power-on state, as QEMU's pl011_reset."""
        self.rsr = 0
        self.ilpr = 0
        self.ibrd = 0
        self.fbrd = 0
        self.lcr = 0
        self.cr = 0x300
        self.ifl = 0x12
        self.int_enabled = 0
        self.int_level = 0
        self.dmacr = 0
        self.flags = PL011_FR_TXFE
        self.rx.clear()

    def read(self, offset: int, size: int) -> int:
        if 0xFE0 <= offset < 0x1000:
            value = PL011_ID[(offset - 0xFE0) >> 2]
        elif offset == 0x00:
            value = self.rx.popleft() if self.rx else 0
            self.update_irq()
        elif offset == 0x04:
            value = self.rsr
        elif offset == 0x18:
            depth = PL011_FIFO_DEPTH if self.lcr & PL011_LCR_FEN else 1
            value = self.flags | (0 if self.rx else PL011_FR_RXFE) | \
                (PL011_FR_RXFF if len(self.rx) >= depth else 0)
        elif offset == 0x3C:
            value = self._ris()
        elif offset == 0x40:
            value = self._ris() & self.int_enabled
        elif offset in _SIMPLE:
            value = getattr(self, _SIMPLE[offset])
        else:
            value = 0
        trace("pl011_read", addr=offset, value=value)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        trace("pl011_write", addr=offset, value=value)
        if offset == 0x00:
            self.backend.write(bytes((value & 0xFF,)))
            self.int_level |= PL011_INT_TX
            self.update_irq()
        elif offset == 0x04:
            self.rsr = 0
        elif offset == 0x44:
            self.int_level &= ~value
            self.update_irq()
        elif offset == 0x2C and (self.lcr ^ value) & PL011_LCR_FEN:
            # QEMU empties the FIFO when FEN changes; input beyond it is still waiting
            for _ in range(min(len(self.rx), PL011_FIFO_DEPTH if self.lcr & PL011_LCR_FEN
                               else 1)):
                self.rx.popleft()
            self.lcr = value & 0xFFFF
            self.update_irq()
        elif offset in _SIMPLE:
            setattr(self, _SIMPLE[offset], value & 0xFFFF)
            if offset == 0x38:
                self.update_irq()
