"""The local APIC of the pc's CPU, in xAPIC mode (QEMU 7.2 hw/intc/apic.c, apic_common.c;
Intel SDM vol. 3A chapter 10 "Advanced Programmable Interrupt Controller (APIC)").

Registers (32-bit, at offset ``index << 4`` of the 4 KiB page at 0xfee00000; QEMU's region
``apic-msi`` covers 1 MiB, 0xfee00000-0xfeefffff, over everything else: priority 4096):

========  ================  ==========================================================
index     register          QEMU's behaviour, reproduced here
========  ================  ==========================================================
0x02      ID                bits 24-31; writable
0x03      version           0x00050014: version 0x14, 6 LVT entries (max LVT 5)
0x08      TPR               the whole low byte is kept; a write re-arbitrates
0x09      APR               reads 0 (QEMU does no arbitration)
0x0a      PPR               TPR, or the ISR's highest class if that is higher
0x0b      EOI               a write ends the highest vector in service; reads 0
0x0d/0e   LDR / DFR         bits 24-31 / 28-31 (DFR reads the other bits as ones)
0x0f      SVR               bits 0-8 (spurious vector, software enable) kept
0x10-27   ISR, TMR, IRR     8 x 32 bits each, read-only
0x28      ESR               read-only: only an access to an unknown register sets a bit
                            (0x80, illegal register address), and nothing clears it
0x30/31   ICR low / high    a write of the low half sends the IPI
0x32-37   LVT               timer, thermal, performance, LINT0, LINT1, error: stored as
                            written (all 32 bits)
0x38/39   timer counts      initial count (a write starts the timer), current count
0x3e      divide config     bits 0, 1 and 3
========  ================  ==========================================================

Accesses narrower than 4 bytes read 0 and are ignored, as are misaligned ones (QEMU's region
takes aligned accesses of 1 to 4 bytes). A 4-byte write at offset 0x000-0x00f or above 0xfff
is an MSI (the PCI bus's interrupt messages and QEMU's IOAPIC arrive that way): the offset's
bits 12-19 name the destination, bit 2 the destination mode, the data holds vector, delivery
mode and trigger mode. Reads above 0xfff read the register of the offset's bits 4-11. A
register access that is not the CPU's (QEMU's ``cpu_get_current_apic`` is NULL: a qtest or
monitor access) reads 0 and writes nothing; an MSI works from anywhere.

The timer counts in nanoseconds of the virtual clock shifted right by the divide
configuration's shift (``count_shift``: divide by 2 after reset), from the time the initial
count was written: one-shot fires once after ``initial_count + 1`` units, periodic every
``initial_count + 1`` units (``apic_next_timer``, ``apic_get_current_count``). QEMU 7.2 has
no TSC-deadline mode (the qemu64 model, and TCG, do not report it in CPUID): LVT timer mode
2 works as one-shot, mode 3 as periodic.

Interrupt delivery follows ``apic_update_irq`` / ``apic_irq_pending``: the CPU's interrupt
request (``intr``, QEMU's ``CPU_INTERRUPT_HARD``) is raised when the highest vector in IRR
has a higher class than PPR and the APIC is software-enabled, or for an ExtINT from LINT0;
:meth:`Apic.get_interrupt` is the acknowledge cycle. ``nmi``, ``smi``, ``init`` and ``sipi``
are QEMU's other ``cpu_interrupt`` requests.

Trace events (QEMU's hw/intc/trace-events): ``apic_local_deliver``, ``apic_deliver_irq``,
``apic_mem_readl``, ``apic_mem_writel``, ``apic_report_irq_delivered``,
``apic_reset_irq_delivered``, ``apic_get_irq_delivered``, ``cpu_set_apic_base``,
``cpu_get_apic_base``.
"""

from __future__ import annotations

from collections.abc import Callable

from emu import trace as tracing
from emu.bus import Region
from emu.clock import Clock, Timer
from emu.irq import IrqLine
from emu.trace import trace

APIC_DEFAULT_ADDRESS = 0xFEE00000
APIC_SPACE_SIZE = 0x100000
#: QEMU maps the APIC's region over the whole address space with this priority
APIC_REGION_PRIORITY = 0x1000
APIC_VERSION = 0x14
MAX_APICS = 255

MSR_IA32_APICBASE_BSP = 1 << 8
MSR_IA32_APICBASE_EXTD = 1 << 10
MSR_IA32_APICBASE_ENABLE = 1 << 11
MSR_IA32_APICBASE_BASE = 0xFFFFF << 12

APIC_LVT_TIMER, APIC_LVT_THERMAL, APIC_LVT_PERFORM = 0, 1, 2
APIC_LVT_LINT0, APIC_LVT_LINT1, APIC_LVT_ERROR = 3, 4, 5
APIC_LVT_NB = 6

APIC_DM_FIXED, APIC_DM_LOWPRI, APIC_DM_SMI = 0, 1, 2
APIC_DM_NMI, APIC_DM_INIT, APIC_DM_SIPI, APIC_DM_EXTINT = 4, 5, 6, 7
APIC_TRIGGER_EDGE, APIC_TRIGGER_LEVEL = 0, 1

APIC_LVT_TIMER_PERIODIC = 1 << 17
APIC_LVT_MASKED = 1 << 16
APIC_LVT_LEVEL_TRIGGER = 1 << 15
APIC_SV_ENABLE = 1 << 8
APIC_SV_DIRECTED_IO = 1 << 12
APIC_ESR_ILLEGAL_ADDRESS = 1 << 7

MSI_ADDR_DEST_ID_MASK = 0x000FF000
MSI_ADDR_DEST_ID_SHIFT = 12
MSI_ADDR_DEST_MODE_SHIFT = 2
MSI_DATA_DELIVERY_MODE_SHIFT = 8
MSI_DATA_TRIGGER_SHIFT = 15

_ALL = (1 << (MAX_APICS + 1)) - 1  # QEMU's deliver_bitmask of 8 x 32 bits, all set
_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1


def highest_bit(tab: int) -> int:
    """``get_highest_priority_int``: the highest vector set in a 256-bit table, or -1."""
    return tab.bit_length() - 1


class ApicBus:
    """What QEMU keeps in globals of apic.c and apic_common.c: the table of local APICs
    (``local_apics``, by the APIC ID each had when created) and the count of interrupts
    delivered (``apic_irq_delivered``), with the delivery functions that use them."""

    def __init__(self) -> None:
        self.apics: list[Apic | None] = [None] * (MAX_APICS + 1)
        self.irq_delivered = 0

    # -- apic_common.c: interrupt coalescing count ---------------------------------------------

    def report_irq_delivered(self, delivered: int) -> None:
        """``apic_report_irq_delivered``."""
        self.irq_delivered += delivered
        if tracing.ON:
            trace("apic_report_irq_delivered", apic_irq_delivered=self.irq_delivered)

    def reset_irq_delivered(self) -> None:
        """``apic_reset_irq_delivered``."""
        if tracing.ON:
            trace("apic_reset_irq_delivered", apic_irq_delivered=self.irq_delivered)
        self.irq_delivered = 0

    def get_irq_delivered(self) -> int:
        """``apic_get_irq_delivered``."""
        if tracing.ON:
            trace("apic_get_irq_delivered", apic_irq_delivered=self.irq_delivered)
        return self.irq_delivered

    # -- delivery ------------------------------------------------------------------------------

    def _each(self, bitmask: int) -> list[Apic]:
        """``foreach_apic``: the APICs whose table index is set in ``bitmask``, in order."""
        out = []
        while bitmask:
            low = bitmask & -bitmask
            apic = self.apics[low.bit_length() - 1]
            if apic is not None:
                out.append(apic)
            bitmask ^= low
        return out

    def find_dest(self, dest: int) -> int:
        """``apic_find_dest``: the table index of the APIC whose ID is ``dest``, or -1."""
        apic = self.apics[dest]
        if apic is not None and apic.id == dest:
            return dest
        for i in range(MAX_APICS):
            apic = self.apics[i]
            if apic is None:
                break
            if apic.id == dest:
                return i
        return -1

    def delivery_bitmask(self, dest: int, dest_mode: int) -> int:
        """``apic_get_delivery_bitmask``: physical (0xff: broadcast) or logical, flat or
        cluster model (QEMU's cluster match: same cluster and a common bit)."""
        if dest_mode == 0:
            if dest == 0xFF:
                return _ALL
            idx = self.find_dest(dest)
            return 1 << idx if idx >= 0 else 0
        mask = 0
        for i in range(MAX_APICS):
            apic = self.apics[i]
            if apic is None:
                break
            if apic.dest_mode == 0xF:
                if dest & apic.log_dest:
                    mask |= 1 << i
            elif apic.dest_mode == 0 and (dest & 0xF0) == (apic.log_dest & 0xF0) and \
                    dest & apic.log_dest & 0x0F:
                mask |= 1 << i
        return mask

    def bus_deliver(self, bitmask: int, delivery_mode: int, vector: int,
                    trigger_mode: int) -> None:
        """``apic_bus_deliver``: lowest priority goes to the first APIC of the mask (QEMU does
        no arbitration); fixed and ExtINT set IRR; SMI, NMI and INIT interrupt the CPUs;
        other modes are dropped."""
        if delivery_mode == APIC_DM_LOWPRI:
            if bitmask:
                apic = self.apics[(bitmask & -bitmask).bit_length() - 1]
                if apic is not None:
                    apic.set_irq(vector, trigger_mode)
            return
        if delivery_mode in (APIC_DM_SMI, APIC_DM_NMI, APIC_DM_INIT):
            for apic in self._each(bitmask):
                {APIC_DM_SMI: apic.smi, APIC_DM_NMI: apic.nmi,
                 APIC_DM_INIT: apic.init}[delivery_mode].raise_()
            return
        if delivery_mode not in (APIC_DM_FIXED, APIC_DM_EXTINT):
            return
        for apic in self._each(bitmask):
            apic.set_irq(vector, trigger_mode)

    def deliver_irq(self, dest: int, dest_mode: int, delivery_mode: int, vector: int,
                    trigger_mode: int) -> None:
        """``apic_deliver_irq``: an interrupt message on the APIC bus."""
        if tracing.ON:
            trace("apic_deliver_irq", dest=dest, dest_mode=dest_mode,
                  delivery_mode=delivery_mode, vector_num=vector, trigger_mode=trigger_mode)
        self.bus_deliver(self.delivery_bitmask(dest, dest_mode), delivery_mode, vector,
                         trigger_mode)

    def send_msi(self, address: int, data: int) -> None:
        """``apic_send_msi``: a write of ``data`` to ``address`` in the MSI window (the
        redirection hint is ignored, as QEMU does)."""
        self.deliver_irq((address & MSI_ADDR_DEST_ID_MASK) >> MSI_ADDR_DEST_ID_SHIFT,
                         (address >> MSI_ADDR_DEST_MODE_SHIFT) & 1,
                         (data >> MSI_DATA_DELIVERY_MODE_SHIFT) & 7, data & 0xFF,
                         (data >> MSI_DATA_TRIGGER_SHIFT) & 1)


class Apic:
    """One local APIC (``apic``): ``region`` is its MMIO window, ``intr`` / ``nmi`` / ``smi``
    / ``init`` / ``sipi`` the requests it makes of its CPU.

    ``pic_output`` tells whether the 8259s ask for an interrupt (QEMU's ``pic_get_output``;
    None: the machine has no 8259, QEMU's ``isa_pic == NULL``). ``eoi_broadcast`` receives
    the vector of each level-triggered interrupt the guest ends (the IOAPICs'
    ``ioapic_eoi_broadcast``). ``current`` says whether a register access comes from this
    APIC's CPU (QEMU's ``cpu_get_current_apic``)."""

    def __init__(self, clock: Clock, bus: ApicBus, initial_id: int = 0,
                 pic_output: Callable[[], bool] | None = None,
                 eoi_broadcast: Callable[[int], None] | None = None,
                 current: Callable[[], bool] | None = None,
                 version: int = APIC_VERSION) -> None:
        if initial_id >= MAX_APICS:
            raise ValueError(f"apic initialization failed. APIC ID {initial_id} is invalid")
        self.clock = clock
        self.bus = bus
        self.initial_apic_id = initial_id
        self.version = version
        self.pic_output = pic_output
        self.eoi_broadcast: Callable[[int], None] = eoi_broadcast or (lambda vector: None)
        self.current: Callable[[], bool] = current or (lambda: True)
        #: QEMU's cpu_interrupt / cpu_reset_interrupt requests: CPU_INTERRUPT_HARD (the INTR
        #: request, raised and lowered by the APIC), _NMI, _SMI, _INIT and _SIPI (raised by
        #: the APIC; the CPU lowers them when it takes them)
        self.intr = IrqLine("intr")
        self.nmi = IrqLine("nmi")
        self.smi = IrqLine("smi")
        self.init = IrqLine("init")
        self.sipi = IrqLine("sipi")
        self.region = Region("apic-msi", APIC_SPACE_SIZE, self,
                             priority=APIC_REGION_PRIORITY)
        self.timer = Timer(clock, self._timer_expired)
        #: the CPU's CR8 (get, set), when the CPU keeps it apart from the APIC: the TPR is
        #: then synchronised at each APIC access and acknowledge (see :meth:`_pull_cr8`)
        self.cr8: tuple[Callable[[], int], Callable[[int], None]] | None = None
        self._cr8_seen = 0
        # x86_cpu_apic_create: enabled at the default address, not yet the BSP
        self.apicbase = APIC_DEFAULT_ADDRESS | MSR_IA32_APICBASE_ENABLE
        self.id = initial_id
        self.arb_id = 0
        self.tpr = 0
        self.spurious_vec = 0xFF
        self.log_dest = 0
        self.dest_mode = 0xF
        self.isr = self.tmr = self.irr = 0
        self.lvt = [APIC_LVT_MASKED] * APIC_LVT_NB
        self.esr = 0
        self.icr = [0, 0]
        self.divide_conf = 0
        self.count_shift = 0
        self.initial_count = 0
        self.initial_count_load_time = 0
        self.next_time = 0
        self.timer_expiry = -1
        self.sipi_vector = 0
        self.wait_for_sipi = 0
        bus.apics[initial_id] = self

    # -- reset and the CPU's MSR / CR8 interface -----------------------------------------------

    @property
    def is_bsp(self) -> bool:
        """``cpu_is_bsp``: the BSP flag of IA32_APIC_BASE."""
        return bool(self.apicbase & MSR_IA32_APICBASE_BSP)

    def designate_bsp(self, bsp: bool) -> None:
        """``apic_designate_bsp`` (the CPU's reset: the first CPU is the BSP)."""
        if bsp:
            self.apicbase |= MSR_IA32_APICBASE_BSP
        else:
            self.apicbase &= ~MSR_IA32_APICBASE_BSP

    def reset(self) -> None:
        """``apic_reset_common`` (device reset, with the CPU's): enabled at 0xfee00000, the ID
        given at creation, then :meth:`init_reset`."""
        self.apicbase = APIC_DEFAULT_ADDRESS | (self.apicbase & MSR_IA32_APICBASE_BSP) | \
            MSR_IA32_APICBASE_ENABLE
        self.id = self.initial_apic_id
        self.bus.reset_irq_delivered()
        self.init_reset()

    def init_reset(self) -> None:
        """``apic_init_reset`` (reset, and an INIT): every LVT entry masked, SVR 0xff
        (software-disabled), flat logical model, timer stopped."""
        self.tpr = 0
        self.spurious_vec = 0xFF
        self.log_dest = 0
        self.dest_mode = 0xF
        self.isr = self.tmr = self.irr = 0
        self.lvt = [APIC_LVT_MASKED] * APIC_LVT_NB
        self.esr = 0
        self.icr = [0, 0]
        self.divide_conf = 0
        self.count_shift = 0
        self.initial_count = 0
        self.initial_count_load_time = 0
        self.next_time = 0
        self.wait_for_sipi = 0 if self.is_bsp else 1
        self.timer.cancel()
        self.timer_expiry = -1
        self._cr8_seen = 0  # (the CPU's reset clears CR8 too)

    def get_base(self) -> int:
        """``cpu_get_apic_base``: the IA32_APIC_BASE MSR (0x1b)."""
        if tracing.ON:
            trace("cpu_get_apic_base", val=self.apicbase)
        return self.apicbase

    def set_base(self, val: int) -> None:
        """``cpu_set_apic_base`` / ``apic_set_base``: a WRMSR of IA32_APIC_BASE. The BSP
        and enable bits only go down; once disabled the APIC cannot be enabled again (until
        reset), and disabling it clears SVR's enable bit. (The CPU side also clears CPUID's
        APIC bit then: QEMU's ``cpu_clear_apic_feature``.) The MMIO window stays where it is,
        as in QEMU."""
        if tracing.ON:
            trace("cpu_set_apic_base", val=val & _U64)
        if not self.apicbase & MSR_IA32_APICBASE_EXTD and val & MSR_IA32_APICBASE_EXTD:
            self.id = self.initial_apic_id
        self.apicbase = (val & 0xFFFFF000) | \
            (self.apicbase & (MSR_IA32_APICBASE_BSP | MSR_IA32_APICBASE_ENABLE))
        if not val & MSR_IA32_APICBASE_ENABLE:
            self.apicbase &= ~MSR_IA32_APICBASE_ENABLE
            self.spurious_vec &= ~APIC_SV_ENABLE

    def _pull_cr8(self) -> None:
        """A MOV to CR8 since the last look sets the TPR (QEMU: cpu_set_apic_tpr at the
        write; the CPU's CR8 write does not reach emu until then)."""
        if self.cr8 is not None:
            value = self.cr8[0]() & 0xF
            if value != self._cr8_seen:
                self._cr8_seen = value
                self.set_tpr(value)

    def _push_cr8(self) -> None:
        """CR8 reads TPR[7:4]: give the CPU the TPR the APIC holds."""
        if self.cr8 is not None:
            self._cr8_seen = self.tpr >> 4
            self.cr8[1](self._cr8_seen)

    def set_tpr(self, val: int) -> None:
        """``apic_set_tpr``: a write of CR8 (TPR = val << 4)."""
        self.tpr = (val << 4) & 0xFF
        self.update_irq()

    def get_tpr(self) -> int:
        """``apic_get_tpr``: a read of CR8 (TPR >> 4)."""
        return self.tpr >> 4

    # -- priorities ----------------------------------------------------------------------------

    def get_ppr(self) -> int:
        """``apic_get_ppr``: the processor priority."""
        tpr = self.tpr >> 4
        isrv = max(highest_bit(self.isr), 0) >> 4
        return self.tpr if tpr >= isrv else isrv << 4

    def irq_pending(self) -> int:
        """``apic_irq_pending``: the vector to deliver (> 0), 0 for none (or software
        disabled), -1 when the highest request is not above the processor priority."""
        if not self.spurious_vec & APIC_SV_ENABLE:
            return 0
        irrv = highest_bit(self.irr)
        if irrv < 0:
            return 0
        ppr = self.get_ppr()
        if ppr and (irrv & 0xF0) <= (ppr & 0xF0):
            return -1
        return irrv

    def accept_pic_intr(self) -> bool:
        """``apic_accept_pic_intr``: the 8259s' output reaches the CPU through this APIC
        when the APIC is globally disabled or LINT0 is unmasked."""
        if not self.apicbase & MSR_IA32_APICBASE_ENABLE or \
                not self.lvt[APIC_LVT_LINT0] & APIC_LVT_MASKED:
            return self.pic_output is not None
        return False

    def _pic_output(self) -> bool:
        return self.pic_output is not None and self.pic_output()

    def update_irq(self) -> None:
        """``apic_update_irq``: raise the CPU's interrupt request if a vector is deliverable;
        lower it unless the 8259s ask for one through this APIC."""
        if self.irq_pending() > 0:
            self.intr.raise_()
        elif not self.accept_pic_intr() or not self._pic_output():
            self.intr.lower()

    def set_irq(self, vector: int, trigger_mode: int) -> None:
        """``apic_set_irq``: a fixed interrupt arrives: IRR set, TMR as the trigger mode."""
        bit = 1 << vector
        self.bus.report_irq_delivered(0 if self.irr & bit else 1)
        self.irr |= bit
        if trigger_mode:
            self.tmr |= bit
        else:
            self.tmr &= ~bit
        self.update_irq()

    def eoi(self) -> None:
        """``apic_eoi``: end the highest vector in service; a level-triggered one is
        broadcast to the IOAPICs."""
        isrv = highest_bit(self.isr)
        if isrv < 0:
            return
        self.isr &= ~(1 << isrv)
        if not self.spurious_vec & APIC_SV_DIRECTED_IO and self.tmr >> isrv & 1:
            self.eoi_broadcast(isrv)
        self.update_irq()

    # -- local interrupts ----------------------------------------------------------------------

    def local_deliver(self, vector: int) -> None:
        """``apic_local_deliver``: LVT entry ``vector`` (APIC_LVT_*) fires."""
        lvt = self.lvt[vector]
        mode = (lvt >> 8) & 7
        if tracing.ON:
            trace("apic_local_deliver", vector=vector, lvt=mode)
        if lvt & APIC_LVT_MASKED:
            return
        if mode == APIC_DM_SMI:
            self.smi.raise_()
        elif mode == APIC_DM_NMI:
            self.nmi.raise_()
        elif mode == APIC_DM_EXTINT:
            self.intr.raise_()
        elif mode == APIC_DM_FIXED:
            trigger = APIC_TRIGGER_EDGE
            if vector in (APIC_LVT_LINT0, APIC_LVT_LINT1) and lvt & APIC_LVT_LEVEL_TRIGGER:
                trigger = APIC_TRIGGER_LEVEL
            self.set_irq(lvt & 0xFF, trigger)

    def deliver_pic_intr(self, level: int) -> None:
        """``apic_deliver_pic_intr``: the 8259s' output on LINT0."""
        if level:
            self.local_deliver(APIC_LVT_LINT0)
            return
        lvt = self.lvt[APIC_LVT_LINT0]
        mode = (lvt >> 8) & 7
        if mode == APIC_DM_FIXED:
            if not lvt & APIC_LVT_LEVEL_TRIGGER:
                return
            self.irr &= ~(1 << (lvt & 0xFF))
            self.update_irq()
        elif mode == APIC_DM_EXTINT:
            self.update_irq()

    def external_nmi(self) -> None:
        """``apic_external_nmi``: an NMI on LINT1 (QEMU's ``inject-nmi`` on a pc)."""
        self.local_deliver(APIC_LVT_LINT1)

    def check_pic(self) -> bool:
        """``apic_check_pic``: pass a pending 8259 request to LINT0."""
        if not self.accept_pic_intr() or not self._pic_output():
            return False
        self.deliver_pic_intr(1)
        return True

    def get_interrupt(self) -> int:
        """``apic_get_interrupt``: the acknowledge cycle. The vector moves from IRR to ISR;
        -1 when the APIC is software-disabled, has nothing, or an 8259 request goes first
        (ExtINT ignores priorities); the spurious vector when the request is masked by PPR."""
        self._pull_cr8()
        if not self.spurious_vec & APIC_SV_ENABLE:
            return -1
        intno = self.irq_pending()
        if intno == 0 or self.check_pic():
            return -1
        if intno < 0:
            return self.spurious_vec & 0xFF
        self.irr &= ~(1 << intno)
        self.isr |= 1 << intno
        self.update_irq()
        return intno

    def get_highest_priority_irr(self) -> int:
        """``apic_get_highest_priority_irr``."""
        return highest_bit(self.irr)

    # -- interprocessor interrupts -------------------------------------------------------------

    def deliver(self, dest: int, dest_mode: int, delivery_mode: int, vector: int,
                trigger_mode: int) -> None:
        """``apic_deliver``: send the IPI the ICR describes. Shorthands: none, self (the
        table entry of the current ID: after an ID change nothing receives it, as in QEMU),
        all, all but self. An INIT level de-assert only copies IDs to arbitration IDs; a
        startup IPI records its vector and asks the CPUs for SIPI."""
        shorthand = (self.icr[0] >> 18) & 3
        if shorthand == 0:
            mask = self.bus.delivery_bitmask(dest, dest_mode)
        elif shorthand == 1:
            mask = 1 << self.id
        elif shorthand == 2:
            mask = _ALL
        else:
            mask = _ALL & ~(1 << self.id)
        if delivery_mode == APIC_DM_INIT:
            trig_mode = (self.icr[0] >> 15) & 1
            level = (self.icr[0] >> 14) & 1
            if level == 0 and trig_mode == 1:
                for apic in self.bus._each(mask):
                    apic.arb_id = apic.id
                return
        elif delivery_mode == APIC_DM_SIPI:
            for apic in self.bus._each(mask):
                apic.startup(vector)
            return
        self.bus.bus_deliver(mask, delivery_mode, vector, trigger_mode)

    def startup(self, vector: int) -> None:
        """``apic_startup``: a startup IPI arrives."""
        self.sipi_vector = vector
        self.sipi.raise_()

    def take_sipi(self) -> int | None:
        """``apic_sipi`` (the CPU takes CPU_INTERRUPT_SIPI): the vector to start at, for a CPU
        waiting for one; None for the others (the BSP)."""
        self.sipi.lower()
        if not self.wait_for_sipi:
            return None
        self.wait_for_sipi = 0
        return self.sipi_vector

    # -- the timer -----------------------------------------------------------------------------

    def next_timer(self, current_time: int) -> bool:
        """``apic_next_timer``: when the timer fires next (``next_time``), if it does."""
        self.timer_expiry = -1
        lvt = self.lvt[APIC_LVT_TIMER]
        if lvt & APIC_LVT_MASKED:
            return False
        d = (current_time - self.initial_count_load_time) >> self.count_shift
        period = self.initial_count + 1
        if lvt & APIC_LVT_TIMER_PERIODIC:
            if not self.initial_count:
                return False
            d = (d // period + 1) * period
        else:
            if d >= self.initial_count:
                return False
            d = period
        self.next_time = self.initial_count_load_time + (d << self.count_shift)
        self.timer_expiry = self.next_time
        return True

    def current_count(self) -> int:
        """``apic_get_current_count``."""
        d = (self.clock.now_ns() - self.initial_count_load_time) >> self.count_shift
        if self.lvt[APIC_LVT_TIMER] & APIC_LVT_TIMER_PERIODIC:
            return (self.initial_count - d % (self.initial_count + 1)) & _U32
        if d >= self.initial_count:
            return 0
        return self.initial_count - d

    def _timer_update(self, current_time: int) -> None:
        """``apic_timer_update``."""
        if self.next_timer(current_time):
            self.timer.arm(self.next_time)
        else:
            self.timer.cancel()

    def _timer_expired(self) -> None:
        """``apic_timer``. A periodic timer the clock has left periods behind (a host too
        slow for the rate) goes on from the last two periods: the vector is latched in IRR
        once however many expiries there were, with no guest code between them."""
        self.local_deliver(APIC_LVT_TIMER)
        now = self.clock.now_ns()
        period = (self.initial_count + 1) << self.count_shift
        if self.lvt[APIC_LVT_TIMER] & APIC_LVT_TIMER_PERIODIC and \
                now - self.next_time > 4 * period:
            self._timer_update(now - 2 * period)
        else:
            self._timer_update(self.next_time)

    # -- registers -----------------------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        """``apic_mem_read``."""
        if size < 4 or offset & (size - 1) or not self.current():
            return 0
        self._pull_cr8()
        self.clock.catch_up()
        index = (offset >> 4) & 0xFF
        if index == 0x02:
            val = self.id << 24
        elif index == 0x03:
            val = self.version | ((APIC_LVT_NB - 1) << 16)
        elif index == 0x08:
            val = self.tpr
        elif index == 0x09:
            val = 0  # apic_get_arb_pri: no arbitration
        elif index == 0x0A:
            val = self.get_ppr()
        elif index == 0x0B:
            val = 0
        elif index == 0x0D:
            val = self.log_dest << 24
        elif index == 0x0E:
            val = (self.dest_mode << 28) | 0xFFFFFFF
        elif index == 0x0F:
            val = self.spurious_vec
        elif 0x10 <= index <= 0x17:
            val = (self.isr >> (32 * (index & 7))) & _U32
        elif 0x18 <= index <= 0x1F:
            val = (self.tmr >> (32 * (index & 7))) & _U32
        elif 0x20 <= index <= 0x27:
            val = (self.irr >> (32 * (index & 7))) & _U32
        elif index == 0x28:
            val = self.esr
        elif index in (0x30, 0x31):
            val = self.icr[index & 1]
        elif 0x32 <= index <= 0x37:
            val = self.lvt[index - 0x32]
        elif index == 0x38:
            val = self.initial_count
        elif index == 0x39:
            val = self.current_count()
        elif index == 0x3E:
            val = self.divide_conf
        else:
            self.esr |= APIC_ESR_ILLEGAL_ADDRESS
            val = 0
        if tracing.ON:
            trace("apic_mem_readl", addr=offset, val=val)
        return val

    def write(self, offset: int, size: int, val: int) -> None:
        """``apic_mem_write``."""
        if size < 4 or offset & (size - 1):
            return
        self._pull_cr8()
        self._write(offset, size, val)
        self._push_cr8()

    def _write(self, offset: int, size: int, val: int) -> None:
        index = (offset >> 4) & 0xFF
        if offset > 0xFFF or not index:
            # the MSI window shares the address (QEMU: MSI is on the PCI bus, the APIC on
            # the CPU, and each one's registers are reserved in the other)
            self.bus.send_msi(offset, val)
            return
        if not self.current():
            return
        self.clock.catch_up()
        if tracing.ON:
            trace("apic_mem_writel", addr=offset, val=val)
        if index == 0x02:
            self.id = (val >> 24) & 0xFF
        elif index == 0x08:
            self.tpr = val & 0xFF
            self.update_irq()
        elif index == 0x0B:
            self.eoi()
        elif index == 0x0D:
            self.log_dest = (val >> 24) & 0xFF
        elif index == 0x0E:
            self.dest_mode = (val >> 28) & 0xFF
        elif index == 0x0F:
            self.spurious_vec = val & 0x1FF
            self.update_irq()
        elif index == 0x30:
            self.icr[0] = val
            self.deliver((self.icr[1] >> 24) & 0xFF, (val >> 11) & 1, (val >> 8) & 7,
                         val & 0xFF, (val >> 15) & 1)
        elif index == 0x31:
            self.icr[1] = val
        elif 0x32 <= index <= 0x37:
            n = index - 0x32
            self.lvt[n] = val
            if n == APIC_LVT_TIMER:
                self._timer_update(self.clock.now_ns())
            elif n == APIC_LVT_LINT0 and self.check_pic():
                self.update_irq()
        elif index == 0x38:
            self.initial_count = val
            self.initial_count_load_time = self.clock.now_ns()
            self._timer_update(self.initial_count_load_time)
        elif index == 0x3E:
            self.divide_conf = val & 0xB
            v = (self.divide_conf & 3) | ((self.divide_conf >> 1) & 4)
            self.count_shift = (v + 1) & 7
        elif index in (0x03, 0x09, 0x0A, 0x39) or 0x10 <= index <= 0x28:
            pass  # read-only
        else:
            self.esr |= APIC_ESR_ILLEGAL_ADDRESS
