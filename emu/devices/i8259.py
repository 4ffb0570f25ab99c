"""The two cascaded 8259A programmable interrupt controllers of the PC (QEMU 7.2
hw/intc/i8259.c and i8259_common.c; Intel 8259A datasheet, order 231468).

Each :class:`I8259` has 8 input lines (``inputs``), an interrupt output ``int_out``, a command
and a data port (``region``, 2 ports) and an edge/level control register (``elcr_region``, 1
port). Registers: IRR (requests), ISR (in service), IMR (mask), and the initialization
sequence ICW1-ICW4 (vector base, single mode, ICW4 needed, special fully nested mode, auto-EOI);
operation commands OCW2 (non-specific / specific EOI, rotate on EOI, set priority, rotate in
auto-EOI mode) and OCW3 (read IRR or ISR, poll, special mask mode). Priorities rotate through
``priority_add`` (the lowest-priority line is ``priority_add - 1``). An input is
edge-triggered unless its ELCR bit is set (then level-triggered).

:class:`PicPair` wires QEMU's pc arrangement: master at 0x20-0x21 with ELCR 0x4d0 (mask 0xf8),
slave at 0xa0-0xa1 with ELCR 0x4d1 (mask 0xde), the slave's output on the master's input 2.
Its ``intr`` output is the CPU's INTR pin; :meth:`PicPair.acknowledge` is the CPU's interrupt
acknowledge cycle (QEMU's ``pic_read_irq``): it returns the vector and updates ISR/IRR,
answering a spurious IRQ 7 (or 15) when nothing is pending any more.

Trace events (QEMU's hw/intc/trace-events): ``pic_set_irq``, ``pic_update_irq``,
``pic_interrupt``, ``pic_ioport_write``, ``pic_ioport_read``.
"""

from __future__ import annotations

from collections.abc import Callable

from emu import trace as tracing
from emu.bus import Region
from emu.devices.byteio import byte_region
from emu.irq import Gpios, IrqLine, input_lines
from emu.trace import trace

MASTER_BASE, SLAVE_BASE = 0x20, 0xA0
MASTER_ELCR, SLAVE_ELCR = 0x4D0, 0x4D1
MASTER_ELCR_MASK, SLAVE_ELCR_MASK = 0xF8, 0xDE


class I8259:
    """One 8259A (``master``: the one whose input 2 takes the cascade)."""

    def __init__(self, master: bool, elcr_mask: int) -> None:
        self.master = master
        self.elcr_mask = elcr_mask
        name = "pic-master" if master else "pic-slave"
        self.inputs = input_lines(name, 8, self.set_irq)
        self.int_out = IrqLine(f"{name}.int_out")
        self.region = byte_region("pic", 2, self.ioport_read, self.ioport_write)
        self.elcr_region = byte_region("elcr", 1, lambda _o: self.elcr, self._elcr_write)
        self.gpios = Gpios("isa-i8259", inputs={None: self.inputs},
                           outputs={None: [self.int_out]})
        self.elcr = 0
        self.last_irr = self.irr = self.imr = self.isr = 0
        self.priority_add = self.irq_base = 0
        self.read_reg_select = self.poll = self.special_mask = 0
        self.init_state = self.auto_eoi = self.rotate_on_auto_eoi = 0
        self.special_fully_nested_mode = self.init4 = self.single_mode = 0

    # -- state --------------------------------------------------------------------------------

    def _reset_common(self) -> None:
        """``pic_reset_common``: ELCR is kept, level-triggered requests stay in IRR."""
        self.last_irr = 0
        self.irr &= self.elcr
        self.imr = self.isr = 0
        self.priority_add = self.irq_base = 0
        self.read_reg_select = self.poll = self.special_mask = 0
        self.init_state = self.auto_eoi = self.rotate_on_auto_eoi = 0
        self.special_fully_nested_mode = self.init4 = self.single_mode = 0

    def _init_reset(self) -> None:
        self._reset_common()
        self.update_irq()

    def reset(self) -> None:
        """Device reset (``pic_reset``): ELCR cleared too."""
        self.elcr = 0
        self._init_reset()

    def _priority(self, mask: int) -> int:
        """``get_priority``: the highest priority (0 best) in ``mask``, 8 if none."""
        if mask == 0:
            return 8
        priority = 0
        while not mask & (1 << ((priority + self.priority_add) & 7)):
            priority += 1
        return priority

    def get_irq(self) -> int:
        """The input the chip wants to signal, or -1 (``pic_get_irq``)."""
        priority = self._priority(self.irr & ~self.imr)
        if priority == 8:
            return -1
        mask = self.isr
        if self.special_mask:
            mask &= ~self.imr
        if self.special_fully_nested_mode and self.master:
            mask &= ~(1 << 2)
        if priority < self._priority(mask):
            return (priority + self.priority_add) & 7
        return -1

    def update_irq(self) -> None:
        """Recompute the output (``pic_update_irq``)."""
        irq = self.get_irq()
        if irq >= 0:
            if tracing.ON:
                trace("pic_update_irq", master=int(self.master), imr=self.imr, irr=self.irr,
                      padd=self.priority_add)
            self.int_out.raise_()
        else:
            self.int_out.lower()

    def set_irq(self, irq: int, level: int) -> None:
        """An input line changed (``pic_set_irq``): edges latch IRR, levels follow it."""
        if tracing.ON:
            trace("pic_set_irq", master=int(self.master), irq=irq, level=level)
        mask = 1 << irq
        if self.elcr & mask:
            if level:
                self.irr |= mask
                self.last_irr |= mask
            else:
                self.irr &= ~mask
                self.last_irr &= ~mask
        elif level:
            if not self.last_irr & mask:
                self.irr |= mask
            self.last_irr |= mask
        else:
            self.last_irr &= ~mask
        self.update_irq()

    def intack(self, irq: int) -> None:
        """Acknowledge ``irq`` (``pic_intack``)."""
        if self.auto_eoi:
            if self.rotate_on_auto_eoi:
                self.priority_add = (irq + 1) & 7
        else:
            self.isr |= 1 << irq
        if not self.elcr & (1 << irq):  # a level-triggered request stays in IRR
            self.irr &= ~(1 << irq)
        self.update_irq()

    # -- registers ----------------------------------------------------------------------------

    def ioport_write(self, addr: int, val: int) -> None:
        """``pic_ioport_write``: ICW1/OCW2/OCW3 at offset 0, ICW2-4/OCW1 at offset 1."""
        if tracing.ON:
            trace("pic_ioport_write", master=int(self.master), addr=addr, val=val)
        if addr == 0:
            if val & 0x10:  # ICW1
                self._init_reset()
                self.init_state = 1
                self.init4 = val & 1
                self.single_mode = val & 2
            elif val & 0x08:  # OCW3
                if val & 0x04:
                    self.poll = 1
                if val & 0x02:
                    self.read_reg_select = val & 1
                if val & 0x40:
                    self.special_mask = (val >> 5) & 1
            else:  # OCW2
                self._ocw2(val)
            return
        if self.init_state == 0:  # OCW1
            self.imr = val
            self.update_irq()
        elif self.init_state == 1:  # ICW2
            self.irq_base = val & 0xF8
            self.init_state = (3 if self.init4 else 0) if self.single_mode else 2
        elif self.init_state == 2:  # ICW3
            self.init_state = 3 if self.init4 else 0
        else:  # ICW4
            self.special_fully_nested_mode = (val >> 4) & 1
            self.auto_eoi = (val >> 1) & 1
            self.init_state = 0

    def _ocw2(self, val: int) -> None:
        cmd = val >> 5
        if cmd in (0, 4):  # rotate in auto-EOI mode: clear / set
            self.rotate_on_auto_eoi = cmd >> 2
        elif cmd in (1, 5):  # non-specific EOI, without / with rotation
            priority = self._priority(self.isr)
            if priority != 8:
                irq = (priority + self.priority_add) & 7
                self.isr &= ~(1 << irq)
                if cmd == 5:
                    self.priority_add = (irq + 1) & 7
                self.update_irq()
        elif cmd == 3:  # specific EOI
            self.isr &= ~(1 << (val & 7))
            self.update_irq()
        elif cmd == 6:  # set priority
            self.priority_add = (val + 1) & 7
            self.update_irq()
        elif cmd == 7:  # rotate on specific EOI
            irq = val & 7
            self.isr &= ~(1 << irq)
            self.priority_add = (irq + 1) & 7
            self.update_irq()
        # cmd 2: no operation

    def ioport_read(self, addr: int) -> int:
        """``pic_ioport_read``: a poll answer, else IRR/ISR (offset 0) or IMR (offset 1)."""
        if self.poll:
            ret = self.get_irq()
            if ret >= 0:
                self.intack(ret)
                ret |= 0x80
            else:
                ret = 0
            self.poll = 0
        elif addr == 0:
            ret = self.isr if self.read_reg_select else self.irr
        else:
            ret = self.imr
        if tracing.ON:
            trace("pic_ioport_read", master=int(self.master), addr=addr, val=ret)
        return ret

    def _elcr_write(self, _offset: int, val: int) -> None:
        self.elcr = val & self.elcr_mask


class PicPair:
    """Master and slave 8259 as the PC wires them; ``irqs[0..15]`` are the ISA IRQ inputs
    and ``intr`` the output to the CPU."""

    def __init__(self) -> None:
        self.master = I8259(True, MASTER_ELCR_MASK)
        self.slave = I8259(False, SLAVE_ELCR_MASK)
        self.slave.int_out.connect_to(self.master.inputs[2])
        self.intr = self.master.int_out
        self.irqs = self.master.inputs + self.slave.inputs

    def map(self, map_port: Callable[[int, Region], None]) -> None:
        """Place the four regions at QEMU's ports (``map_port(base, region)``)."""
        map_port(MASTER_BASE, self.master.region)
        map_port(SLAVE_BASE, self.slave.region)
        map_port(MASTER_ELCR, self.master.elcr_region)
        map_port(SLAVE_ELCR, self.slave.elcr_region)

    def reset(self) -> None:
        self.master.reset()
        self.slave.reset()

    @property
    def output(self) -> bool:
        """Whether the master asks the CPU for an interrupt (``pic_get_output``)."""
        return self.master.get_irq() >= 0

    def acknowledge(self) -> int:
        """The interrupt acknowledge cycle (``pic_read_irq``): the vector the CPU takes."""
        master, slave = self.master, self.slave
        irq = master.get_irq()
        if irq >= 0:
            if irq == 2:
                irq2 = slave.get_irq()
                if irq2 >= 0:
                    slave.intack(irq2)
                else:
                    irq2 = 7  # spurious IRQ on the slave
                intno = slave.irq_base + irq2
            else:
                intno = master.irq_base + irq
            master.intack(irq)
        else:
            irq = 7  # spurious IRQ on the master
            intno = master.irq_base + irq
        if tracing.ON:
            trace("pic_interrupt", irq=irq2 + 8 if irq == 2 else irq, intno=intno)
        return intno
