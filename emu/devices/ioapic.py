"""The I/O APIC at 0xfec00000 (QEMU 7.2 hw/intc/ioapic.c, ioapic_common.c; Intel 82093AA
datasheet, order 290566).

24 input pins (``inputs``; pin n is GSI n, except that QEMU's ISA IRQ 0 arrives on input 0 and
is taken as pin 2, the PC's interrupt-source override). Registers, through the index
(IOREGSEL, offset 0x00) and the 32-bit data window (IOWIN, 0x10): 0x00 ID, 0x01 version
(0x20, 23 in bits 16-23: the highest entry), 0x02 arbitration, 0x10-0x3f the redirection table
(two 32-bit halves per pin: vector, delivery mode, destination mode, delivery status,
polarity, remote IRR, trigger mode, mask; destination in bits 56-63). Version 0x20 also has the
EOI register (0x40): writing a vector ends the level-triggered interrupts that have it, as the
local APIC's EOI broadcast does (:meth:`IoApic.eoi_broadcast`). Accesses to the window that are
not 32 bits wide are ignored; the 256-byte register block repeats over the 4 KiB page.

An unmasked request is sent as a :class:`ApicMessage`, the interrupt message QEMU writes to the
local APICs' MSI window (address 0xfee00000 | destination, data = vector | delivery mode |
trigger mode), to the ``deliver`` callable: the local APIC model receives it there. ExtINT
entries take their vector from the 8259s' acknowledge cycle (``extint``), as QEMU's
``pic_read_irq`` call does. Edge requests are dropped while the pin is masked; a level request
sets remote IRR when delivered and is not sent again until an EOI clears it. After 10000
successive EOIs that re-deliver the same level interrupt, delivery waits 10 ms of virtual time
(QEMU's interrupt-storm rule).

Trace events (QEMU's hw/intc/trace-events): ``ioapic_set_irq``, ``ioapic_mem_read``,
``ioapic_mem_write``, ``ioapic_set_remote_irr``, ``ioapic_clear_remote_irr``,
``ioapic_eoi_broadcast``, ``ioapic_eoi_delayed_reassert``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from emu import trace as tracing
from emu.bus import Region
from emu.clock import NANOSECONDS_PER_SECOND, Clock, Timer
from emu.irq import Gpios, input_lines
from emu.trace import trace

IOAPIC_BASE = 0xFEC00000
IOAPIC_NUM_PINS = 24
IOAPIC_VERSION = 0x20

LVT_DEST_IDX_SHIFT, LVT_MASKED_SHIFT, LVT_TRIGGER_MODE_SHIFT = 48, 16, 15
LVT_DEST_MODE_SHIFT, LVT_DELIV_MODE_SHIFT = 11, 8
LVT_MASKED = 1 << 16
LVT_TRIGGER_MODE = 1 << 15
LVT_REMOTE_IRR = 1 << 14
LVT_DELIV_STATUS = 1 << 12
RO_BITS = LVT_REMOTE_IRR | LVT_DELIV_STATUS
RW_BITS = ((1 << 64) - 1) & ~RO_BITS
TRIGGER_EDGE, TRIGGER_LEVEL = 0, 1
DM_EXTINT = 7
IOREGSEL, IOWIN, EOI = 0x00, 0x10, 0x40
REG_ID, REG_VER, REG_ARB, REG_REDTBL_BASE = 0x00, 0x01, 0x02, 0x10
SUCCESSIVE_IRQ_MAX_COUNT = 10000
APIC_DEFAULT_ADDRESS = 0xFEE00000


@dataclass(frozen=True)
class ApicMessage:
    """One interrupt message to the local APICs (what QEMU writes to their MSI window)."""

    vector: int
    delivery_mode: int  # 0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT
    dest_mode: int  # 0 physical, 1 logical
    dest: int  # APIC ID (physical) or logical destination, 8 bits
    trigger_mode: int  # 0 edge, 1 level
    address: int  # the MSI address: 0xfee00000 | dest_idx << 4 | dest_mode << 2
    data: int  # the MSI data: vector | delivery_mode << 8 | trigger_mode << 15


def entry_message(entry: int, extint: Callable[[], int]) -> ApicMessage:
    """``ioapic_entry_parse``: the message a redirection entry sends."""
    trig_mode = (entry >> LVT_TRIGGER_MODE_SHIFT) & 1
    dest_idx = (entry >> LVT_DEST_IDX_SHIFT) & 0xFFFF
    dest_mode = (entry >> LVT_DEST_MODE_SHIFT) & 1
    delivery_mode = (entry >> LVT_DELIV_MODE_SHIFT) & 7
    vector = extint() & 0xFF if delivery_mode == DM_EXTINT else entry & 0xFF
    return ApicMessage(vector=vector, delivery_mode=delivery_mode, dest_mode=dest_mode,
                       dest=dest_idx >> 8, trigger_mode=trig_mode,
                       address=APIC_DEFAULT_ADDRESS | (dest_idx << 4) | (dest_mode << 2),
                       data=vector | (trig_mode << 15) | (delivery_mode << 8))


class IoApic:
    """``ioapic``: ``region`` (4 KiB of MMIO), ``inputs`` (24 pins)."""

    def __init__(self, clock: Clock,
                 deliver: Callable[[ApicMessage], None] | None = None,
                 extint: Callable[[], int] | None = None) -> None:
        self.clock = clock
        #: where interrupt messages go (the local APIC); None: nowhere yet
        self.deliver = deliver
        #: the 8259s' acknowledge cycle, for ExtINT entries
        self.extint: Callable[[], int] = extint or (lambda: 0)
        self.inputs = input_lines("ioapic", IOAPIC_NUM_PINS, self.set_irq)
        self.gpios = Gpios("ioapic", inputs={None: self.inputs})
        self.region = Region("ioapic", 0x1000, self)
        self.delayed_service = Timer(clock, self.service)
        self.id = 0
        self.ioregsel = 0
        self.irr = 0
        self.ioredtbl = [LVT_MASKED] * IOAPIC_NUM_PINS
        self.irq_eoi = [0] * IOAPIC_NUM_PINS

    def reset(self) -> None:
        """``ioapic_reset_common``: every entry masked."""
        self.id = self.ioregsel = self.irr = 0
        self.ioredtbl = [LVT_MASKED] * IOAPIC_NUM_PINS

    # -- delivery -----------------------------------------------------------------------------

    def service(self) -> None:
        """``ioapic_service``: send every pending, unmasked request."""
        for i in range(IOAPIC_NUM_PINS):
            mask = 1 << i
            if not self.irr & mask:
                continue
            entry = self.ioredtbl[i]
            message = entry_message(entry, self.extint)  # ExtINT acknowledges the 8259s
            if entry & LVT_MASKED:
                continue
            if message.trigger_mode == TRIGGER_EDGE:
                self.irr &= ~mask
            else:
                coalesce = self.ioredtbl[i] & LVT_REMOTE_IRR
                if tracing.ON:
                    trace("ioapic_set_remote_irr", n=i)
                self.ioredtbl[i] |= LVT_REMOTE_IRR
                if coalesce:
                    continue  # the guest is still handling the previous one
            if self.deliver is not None:
                self.deliver(message)

    def set_irq(self, vector: int, level: int) -> None:
        """``ioapic_set_irq``: input ``vector`` changed."""
        if tracing.ON:
            trace("ioapic_set_irq", vector=vector, level=level)
        if vector == 0:
            vector = 2
        if vector >= IOAPIC_NUM_PINS:
            return
        mask = 1 << vector
        entry = self.ioredtbl[vector]
        if (entry >> LVT_TRIGGER_MODE_SHIFT) & 1 == TRIGGER_LEVEL:
            if level:
                self.irr |= mask
                if not entry & LVT_REMOTE_IRR:
                    self.service()
            else:
                self.irr &= ~mask
        elif level and not entry & LVT_MASKED:  # edges are dropped while masked
            self.irr |= mask
            self.service()

    def eoi_broadcast(self, vector: int) -> None:
        """``ioapic_eoi_broadcast``: the local APIC ended interrupt ``vector``."""
        if tracing.ON:
            trace("ioapic_eoi_broadcast", vector=vector)
        for n in range(IOAPIC_NUM_PINS):
            entry = self.ioredtbl[n]
            if (entry & 0xFF) != vector or \
                    (entry >> LVT_TRIGGER_MODE_SHIFT) & 1 != TRIGGER_LEVEL:
                continue
            if not entry & LVT_REMOTE_IRR:
                continue
            if tracing.ON:
                trace("ioapic_clear_remote_irr", n=n, vector=vector)
            self.ioredtbl[n] = entry & ~LVT_REMOTE_IRR
            if not entry & LVT_MASKED and self.irr & (1 << n):
                self.irq_eoi[n] += 1
                if self.irq_eoi[n] >= SUCCESSIVE_IRQ_MAX_COUNT:
                    self.irq_eoi[n] = 0
                    deadline = self.clock.now_ns() + NANOSECONDS_PER_SECOND // 100
                    if not self.delayed_service.pending or \
                            deadline < self.delayed_service.deadline:
                        self.delayed_service.arm(deadline)  # timer_mod_anticipate
                    if tracing.ON:
                        trace("ioapic_eoi_delayed_reassert", n=n)
                else:
                    self.service()
            else:
                self.irq_eoi[n] = 0

    # -- registers ----------------------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        """``ioapic_mem_read``."""
        addr = offset & 0xFF
        val = 0
        if addr == IOREGSEL:
            val = self.ioregsel
        elif addr == IOWIN and size == 4:
            sel = self.ioregsel
            if sel in (REG_ID, REG_ARB):
                val = self.id << 24
            elif sel == REG_VER:
                val = IOAPIC_VERSION | ((IOAPIC_NUM_PINS - 1) << 16)
            else:
                index = (sel - REG_REDTBL_BASE) >> 1
                if 0 <= index < IOAPIC_NUM_PINS:
                    entry = self.ioredtbl[index]
                    val = entry >> 32 if sel & 1 else entry & 0xFFFFFFFF
        if tracing.ON:
            trace("ioapic_mem_read", addr=addr, regsel=self.ioregsel, size=size, val=val)
        return val

    def write(self, offset: int, size: int, val: int) -> None:
        """``ioapic_mem_write``."""
        addr = offset & 0xFF
        if tracing.ON:
            trace("ioapic_mem_write", addr=addr, regsel=self.ioregsel, size=size, val=val)
        if addr == IOREGSEL:
            self.ioregsel = val & 0xFF
        elif addr == IOWIN and size == 4:
            sel = self.ioregsel
            if sel == REG_ID:
                self.id = (val >> 24) & 0xF
            elif sel in (REG_VER, REG_ARB):
                pass
            else:
                index = (sel - REG_REDTBL_BASE) >> 1
                if 0 <= index < IOAPIC_NUM_PINS:
                    entry = self.ioredtbl[index]
                    ro_bits = entry & RO_BITS
                    entry = ((entry & 0xFFFFFFFF) | (val << 32) if sel & 1
                             else (entry & ~0xFFFFFFFF) | val)
                    entry = (entry & RW_BITS) | ro_bits
                    if not entry & LVT_TRIGGER_MODE:  # edge: remote IRR reads 0
                        entry &= ~LVT_REMOTE_IRR
                    self.ioredtbl[index] = entry
                    self.irq_eoi[index] = 0
                    self.service()
        elif addr == EOI and size == 4:
            self.eoi_broadcast(val)
