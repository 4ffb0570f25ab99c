"""The GICv3 CPU interface: the ICC_* system registers and the CPU's IRQ and FIQ lines (QEMU
7.2 hw/intc/arm_gicv3_cpuif.c; Arm IHI 0069H 12.2 "AArch64 System register descriptions of
the CPU interface", 4.8 "Interrupt prioritization", 4.6 "Interrupt grouping and security").

System registers, through emu/cpu/arm64_sysregs.py's MRS/MSR dispatcher (``sysreg_keys``,
``read_sysreg``, ``write_sysreg``), for a CPU at EL1 in Non-secure state without EL2 or EL3
(virt's CPU without ``secure=`` and ``virtualization=``):

====================  ==============  ===============================================
register              op0,op1,n,m,2   semantics
====================  ==============  ===============================================
ICC_PMR_EL1           3,0,4,6,0       priority mask; bits below the 5 implemented
                                      priority bits read as zero
ICC_IAR0_EL1          3,0,12,8,0      acknowledge the highest pending Group 0 interrupt
ICC_EOIR0_EL1         3,0,12,8,1      priority drop (and deactivation unless EOImode)
ICC_HPPIR0_EL1        3,0,12,8,2      highest pending Group 0 interrupt, or 1023
ICC_BPR0_EL1          3,0,12,8,3      binary point, at least 2 (5 preemption bits)
ICC_AP0R0_EL1         3,0,12,8,4      active priorities of Group 0
ICC_AP1R0_EL1         3,0,12,9,0      active priorities of Non-secure Group 1
ICC_DIR_EL1           3,0,12,11,1     deactivate (with EOImode)
ICC_RPR_EL1           3,0,12,11,3     running priority; 0xff when idle
ICC_SGI1R_EL1         3,0,12,11,5     generate a Group 1 SGI
ICC_ASGI1R_EL1        3,0,12,11,6     "the other Security state's" Group 1: Group 0 here
ICC_SGI0R_EL1         3,0,12,11,7     generate a Group 0 SGI
ICC_IAR1_EL1          3,0,12,12,0     acknowledge the highest pending Group 1 interrupt
ICC_EOIR1_EL1         3,0,12,12,1     as EOIR0, for Group 1
ICC_HPPIR1_EL1        3,0,12,12,2     highest pending Group 1 interrupt, or 1023
ICC_BPR1_EL1          3,0,12,12,3     binary point of Group 1, at least 3; with CBPR
                                      it reads BPR0 + 1 (at most 7), writes are ignored
ICC_CTLR_EL1          3,0,12,12,4     CBPR and EOImode writable; A3V, IDbits 1
                                      (24-bit INTIDs), PRIbits 4 (5 bits) read-only
ICC_SRE_EL1           3,0,12,12,5     0x7 (system registers always enabled), WI
ICC_IGRPEN0_EL1       3,0,12,12,6     Group 0 enable
ICC_IGRPEN1_EL1       3,0,12,12,7     Group 1 enable
====================  ==============  ===============================================

Write-only registers cannot be read and read-only ones cannot be written: the dispatcher
leaves such an access to Unicorn, which does not know the register and raises the UNDEFINED
exception QEMU raises; likewise every access from EL0 (the registers are EL1's; ICC_SRE_EL1
does not enable EL0 access to anything). The EL2 and EL3 registers (ICC_SRE_EL2,
ICC_CTLR_EL3, ...) are UNDEFINED at EL1 and not handled. With 5 preemption bits only
ICC_AP0R0/AP1R0 exist.

Values are QEMU's, quirks included: ICC_PMR_EL1 keeps bits 31:3 of what is written (QEMU
masks with a 32-bit ``~0 << 3``), an ICC_BPR write of a value of 8 or more stores its low 3
bits, and an EOI is taken for the group of the highest active priority, whatever INTID is
written.

The lines (``gicv3_cpuif_update``): the CPU's highest pending interrupt is signalled if its
group is enabled (ICC_IGRPEN), its priority is below ICC_PMR_EL1 and, while another
interrupt is active, its group priority (priority masked by the group's binary point) is
below the running priority's. Group 0 is an FIQ; Non-secure Group 1, in Non-secure state,
an IRQ. The running priority is the lowest set bit of the active priority registers,
shifted back into a priority (``icc_highest_active_prio``).

ID_AA64PFR0_EL1 (3,0,0,4,0): QEMU's CPU reports GIC system registers (field GIC, bits 27:24,
= 1) when a GICv3 is connected to it; Unicorn's cortex-a57 reports 0. :class:`IdAa64Pfr0Gic`
answers Unicorn's value with that field set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from emu import trace as tracing
from emu.devices.arm_gicv3_common import (
    G0,
    G1,
    G1NS,
    GIC_INTERNAL,
    GICD_CTLR_DS,
    GICV3_LPI_INTID_START,
    ICC_CTLR_EL1_CBPR,
    ICC_CTLR_EL1_EOIMODE,
    INTID_SPURIOUS,
    NS,
    GicV3CpuState,
    S,
    ctz32,
)
from emu.devices.arm_gicv3_redist import lpi_pending, send_sgi
from emu.trace import trace

if TYPE_CHECKING:
    from emu.devices.arm_gicv3 import ArmGicV3

SysregKey = tuple[int, int, int, int, int]

ICC_PMR_EL1 = (3, 0, 4, 6, 0)
ICC_IAR0_EL1 = (3, 0, 12, 8, 0)
ICC_EOIR0_EL1 = (3, 0, 12, 8, 1)
ICC_HPPIR0_EL1 = (3, 0, 12, 8, 2)
ICC_BPR0_EL1 = (3, 0, 12, 8, 3)
ICC_AP0R0_EL1 = (3, 0, 12, 8, 4)
ICC_AP1R0_EL1 = (3, 0, 12, 9, 0)
ICC_DIR_EL1 = (3, 0, 12, 11, 1)
ICC_RPR_EL1 = (3, 0, 12, 11, 3)
ICC_SGI1R_EL1 = (3, 0, 12, 11, 5)
ICC_ASGI1R_EL1 = (3, 0, 12, 11, 6)
ICC_SGI0R_EL1 = (3, 0, 12, 11, 7)
ICC_IAR1_EL1 = (3, 0, 12, 12, 0)
ICC_EOIR1_EL1 = (3, 0, 12, 12, 1)
ICC_HPPIR1_EL1 = (3, 0, 12, 12, 2)
ICC_BPR1_EL1 = (3, 0, 12, 12, 3)
ICC_CTLR_EL1 = (3, 0, 12, 12, 4)
ICC_SRE_EL1 = (3, 0, 12, 12, 5)
ICC_IGRPEN0_EL1 = (3, 0, 12, 12, 6)
ICC_IGRPEN1_EL1 = (3, 0, 12, 12, 7)
ID_AA64PFR0_EL1 = (3, 0, 0, 4, 0)

_READABLE = (ICC_PMR_EL1, ICC_IAR0_EL1, ICC_HPPIR0_EL1, ICC_BPR0_EL1, ICC_AP0R0_EL1,
             ICC_AP1R0_EL1, ICC_RPR_EL1, ICC_IAR1_EL1, ICC_HPPIR1_EL1, ICC_BPR1_EL1,
             ICC_CTLR_EL1, ICC_SRE_EL1, ICC_IGRPEN0_EL1, ICC_IGRPEN1_EL1)
_WRITABLE = (ICC_PMR_EL1, ICC_EOIR0_EL1, ICC_BPR0_EL1, ICC_AP0R0_EL1, ICC_AP1R0_EL1,
             ICC_DIR_EL1, ICC_SGI1R_EL1, ICC_ASGI1R_EL1, ICC_SGI0R_EL1, ICC_EOIR1_EL1,
             ICC_BPR1_EL1, ICC_CTLR_EL1, ICC_SRE_EL1, ICC_IGRPEN0_EL1, ICC_IGRPEN1_EL1)


# -- priorities and the lines (shared with the distributor and redistributors) ------------------

def highest_active_prio(cs: GicV3CpuState) -> int:
    """icc_highest_active_prio: the running priority from the active priority registers,
    0xff when nothing is active."""
    for i in range(cs.num_aprs()):
        apr = cs.icc_apr[G0][i] | cs.icc_apr[G1][i] | cs.icc_apr[G1NS][i]
        if apr:
            return (i * 32 + ctz32(apr)) << (cs.min_bpr() + 1)
    return 0xFF


def gprio_mask(cs: GicV3CpuState, group: int) -> int:
    """icc_gprio_mask (GroupBits()): the mask that keeps an interrupt's group priority,
    from the binary point of its group (BPR0 for Group 1 with ICC_CTLR_EL1.CBPR)."""
    if (group == G1 and cs.icc_ctlr_el1[S] & ICC_CTLR_EL1_CBPR) or \
            (group == G1NS and cs.icc_ctlr_el1[NS] & ICC_CTLR_EL1_CBPR):
        group = G0
    bpr = cs.icc_bpr[group] & 7
    if group == G1NS:
        # QEMU asserts bpr > 0; a BPR1 of 0 (only reachable by writing 8) would abort it
        bpr = max(bpr - 1, -1)
    return (0xFFFFFFFF << (bpr + 1)) & 0xFFFFFFFF


def no_enabled_hppi(cs: GicV3CpuState) -> bool:
    """icc_no_enabled_hppi: nothing pending, or its group disabled at the CPU interface."""
    return cs.hppi.prio == 0xFF or cs.icc_igrpen[cs.hppi.grp] == 0


def hppi_can_preempt(cs: GicV3CpuState) -> bool:
    """icc_hppi_can_preempt: the highest pending interrupt may be signalled now."""
    if no_enabled_hppi(cs):
        return False
    if cs.hppi.prio >= cs.icc_pmr_el1:
        return False
    rprio = highest_active_prio(cs)
    if rprio == 0xFF:
        return True
    mask = gprio_mask(cs, cs.hppi.grp)
    return (cs.hppi.prio & mask) < (rprio & mask)


def cpuif_update(gic: ArmGicV3, cs: GicV3CpuState) -> None:
    """gicv3_cpuif_update: set the CPU's FIQ and IRQ lines from its highest pending
    interrupt (a CPU without EL3, in Non-secure state: Group 0 is an FIQ, Group 1 an
    IRQ)."""
    hppi = cs.hppi
    if tracing.ON:
        trace("gicv3_cpuif_update", cpuid=cs.affid, irq=hppi.irq, grp=hppi.grp,
              prio=hppi.prio)
    if hppi.grp == G1:  # a Secure Group 1 interrupt to a CPU without EL3 is Group 0
        hppi.grp = G0
    irqlevel = fiqlevel = 0
    if hppi_can_preempt(cs):
        if hppi.grp == G0:
            fiqlevel = 1
        else:
            irqlevel = 1
    if tracing.ON:
        trace("gicv3_cpuif_set_irqs", cpuid=cs.affid, fiqlevel=fiqlevel, irqlevel=irqlevel)
    cs.parent_fiq.set_level(fiqlevel)
    cs.parent_irq.set_level(irqlevel)


# -- the registers ------------------------------------------------------------------------------

class GicV3CpuInterface:
    """The ICC_* registers of CPU ``cpu`` of ``gic`` (QEMU's ``gicv3_cpuif_reginfo``)."""

    def __init__(self, gic: ArmGicV3, cpu: int = 0,
                 current_el: Callable[[], int] = lambda: 1) -> None:
        self.gic = gic
        self.cs = gic.cpu[cpu]
        #: the CPU's exception level: the registers are EL1's
        self.current_el = current_el

    def reset(self) -> None:
        """The CPU's reset (``icc_reset``)."""
        self.cs.reset_cpu_interface()

    def sysreg_keys(self) -> Iterable[SysregKey]:
        return tuple(dict.fromkeys(_READABLE + _WRITABLE))

    # -- operations ---------------------------------------------------------------------

    def _hppir0_value(self) -> int:
        """icc_hppir0_value: a Group 1 interrupt is not visible to Group 0 (outside EL3)."""
        cs = self.cs
        if no_enabled_hppi(cs) or cs.hppi.grp != G0:
            return INTID_SPURIOUS
        return cs.hppi.irq

    def _hppir1_value(self) -> int:
        """icc_hppir1_value: Group 0 interrupts are not visible through HPPIR1/IAR1."""
        cs = self.cs
        if no_enabled_hppi(cs) or cs.hppi.grp == G0:
            return INTID_SPURIOUS
        return cs.hppi.irq

    def _activate(self, irq: int) -> None:
        """icc_activate_irq: the interrupt becomes active (pending cleared) and its group
        priority is marked in the group's active priority register."""
        gic, cs = self.gic, self.cs
        prio = cs.hppi.prio & gprio_mask(cs, cs.hppi.grp)
        aprbit = prio >> (8 - cs.prebits)
        cs.icc_apr[cs.hppi.grp][aprbit // 32] |= 1 << (aprbit % 32)
        bit = 1 << irq
        if irq < GIC_INTERNAL:
            cs.gicr_iactiver0 |= bit
            cs.gicr_ipendr0 &= ~bit
            gic.redist_update(cs)
        elif irq < GICV3_LPI_INTID_START:
            gic.active |= bit
            gic.pending &= ~bit
            gic.update(irq, 1)
        else:
            lpi_pending(gic, cs, irq, 0)

    def acknowledge(self, group: int) -> int:
        """A read of ICC_IAR0_EL1 (``group`` 0) or ICC_IAR1_EL1 (1): the INTID, now
        active, or 1023."""
        cs = self.cs
        if not hppi_can_preempt(cs):
            intid = INTID_SPURIOUS
        else:
            intid = self._hppir1_value() if group else self._hppir0_value()
        if not 1020 <= intid <= 1023:
            self._activate(intid)
        if tracing.ON:
            if group:
                trace("gicv3_icc_iar1_read", cpu=cs.affid, val=intid)
            else:
                trace("gicv3_icc_iar0_read", cpu=cs.affid, val=intid)
        return intid

    def _highest_active_group(self) -> int:
        """icc_highest_active_group: the group whose APRs have the lowest set bit; -1 if
        none is set."""
        apr = self.cs.icc_apr
        for i in range(4):
            g0, g1, g1ns = ctz32(apr[G0][i]), ctz32(apr[G1][i]), ctz32(apr[G1NS][i])
            if g1ns < g0 and g1ns < g1:
                return G1NS
            if g1 < g0:
                return G1
            if g0 < 32:
                return G0
        return -1

    def _eoi_split(self) -> bool:
        return bool(self.cs.icc_ctlr_el1[NS] & ICC_CTLR_EL1_EOIMODE)

    def _drop_prio(self, grp: int) -> None:
        """icc_drop_prio: clear the lowest set bit of the group's active priorities."""
        cs = self.cs
        aprs = cs.icc_apr[grp]
        for i in range(cs.num_aprs()):
            if aprs[i]:
                aprs[i] &= aprs[i] - 1
                break
        cpuif_update(self.gic, cs)

    def _deactivate(self, irq: int) -> None:
        """icc_deactivate_irq."""
        gic, cs = self.gic, self.cs
        if irq < GIC_INTERNAL:
            cs.gicr_iactiver0 &= ~(1 << irq)
            gic.redist_update(cs)
        else:
            gic.active &= ~(1 << irq)
            gic.update(irq, 1)

    def end_of_interrupt(self, group: int, value: int) -> None:
        """A write of ICC_EOIR0_EL1 (``group`` 0) or ICC_EOIR1_EL1 (1)."""
        gic, cs = self.gic, self.cs
        irq = value & 0xFFFFFF
        if tracing.ON:
            trace("gicv3_icc_eoir_write", grp=group, cpu=cs.affid, val=value)
        is_lpi = gic.lpi_enable and irq >= GICV3_LPI_INTID_START
        if irq >= gic.num_irq and not is_lpi:
            return  # a special INTID, or one that does not exist: ignored
        grp = self._highest_active_group()
        if grp == G0:
            if group:
                return
        elif grp == G1NS:
            if not group:
                return
        else:
            return  # nothing active (a Secure Group 1 priority cannot be active here)
        self._drop_prio(grp)
        if not self._eoi_split() and not is_lpi:
            # (QEMU 7.2 "deactivates" an LPI in its SPI bitmaps, past their end; an LPI
            # has no active state)
            self._deactivate(irq)

    def deactivate(self, value: int) -> None:
        """A write of ICC_DIR_EL1: with EOImode set, deactivate the interrupt."""
        cs = self.cs
        irq = value & 0xFFFFFF
        if tracing.ON:
            trace("gicv3_icc_dir_write", cpu=cs.affid, val=value)
        if irq >= self.gic.num_irq or not self._eoi_split():
            return
        self._deactivate(irq)

    def generate_sgi(self, value: int, grp: int) -> None:
        """icc_generate_sgi: SGI ``value[27:24]`` to the CPUs the register selects (IRM,
        bit 40: every CPU but this one; else Aff3.Aff2.Aff1 and the target list)."""
        gic, cs = self.gic, self.cs
        aff = ((value >> 48) & 0xFF) << 16 | ((value >> 32) & 0xFF) << 8 | ((value >> 16) & 0xFF)
        targetlist = value & 0xFFFF
        irq = (value >> 24) & 0xF
        irm = (value >> 40) & 1
        if grp == G1 and gic.gicd_ctlr & GICD_CTLR_DS:
            grp = G0
        if tracing.ON:
            trace("gicv3_icc_generate_sgi", cpuid=cs.affid, irq=irq, irm=irm, aff=aff,
                  targetlist=targetlist)
        for ocs in gic.cpu:
            if irm:
                if ocs is cs:
                    continue
            else:
                if ocs.gicr_typer >> 40 != aff:
                    continue
                aff0 = (ocs.gicr_typer >> 32) & 0xFF
                if aff0 > 15 or not targetlist >> aff0 & 1:
                    continue
            send_sgi(gic, ocs, grp, irq)

    def _bpr_group(self, key: SysregKey) -> tuple[int, bool]:
        """The BPR an access of ``key`` reaches, and whether it is BPR1 read through
        CBPR (BPR0 + 1)."""
        if key == ICC_BPR0_EL1:
            return G0, False
        if self.cs.icc_ctlr_el1[NS] & ICC_CTLR_EL1_CBPR:
            return G0, True
        return G1NS, False

    # -- the dispatcher's interface ------------------------------------------------------

    def read_sysreg(self, op0: int, op1: int, crn: int, crm: int, op2: int) -> int | None:
        key = (op0, op1, crn, crm, op2)
        if key not in _READABLE or self.current_el() == 0:
            return None
        cs = self.cs
        if key == ICC_IAR1_EL1:
            return self.acknowledge(1)
        if key == ICC_IAR0_EL1:
            return self.acknowledge(0)
        if key == ICC_SRE_EL1:
            return cs.icc_sre_el1
        value: int
        if key == ICC_PMR_EL1:
            value = cs.icc_pmr_el1
            if tracing.ON:
                trace("gicv3_icc_pmr_read", cpu=cs.affid, val=value)
        elif key == ICC_HPPIR0_EL1:
            value = self._hppir0_value()
            if tracing.ON:
                trace("gicv3_icc_hppir0_read", cpu=cs.affid, val=value)
        elif key == ICC_HPPIR1_EL1:
            value = self._hppir1_value()
            if tracing.ON:
                trace("gicv3_icc_hppir1_read", cpu=cs.affid, val=value)
        elif key in (ICC_BPR0_EL1, ICC_BPR1_EL1):
            grp, satinc = self._bpr_group(key)
            value = min(cs.icc_bpr[grp] + 1, 7) if satinc else cs.icc_bpr[grp]
            if tracing.ON:
                trace("gicv3_icc_bpr_read", grp=0 if key == ICC_BPR0_EL1 else 1,
                      cpu=cs.affid, val=value)
        elif key in (ICC_AP0R0_EL1, ICC_AP1R0_EL1):
            value = cs.icc_apr[G0 if key == ICC_AP0R0_EL1 else G1NS][op2 & 3]
            if tracing.ON:
                trace("gicv3_icc_ap_read", grp=crm & 1, regno=op2 & 3, cpu=cs.affid,
                      val=value)
        elif key == ICC_RPR_EL1:
            value = highest_active_prio(cs)
            if tracing.ON:
                trace("gicv3_icc_rpr_read", cpu=cs.affid, val=value)
        elif key == ICC_CTLR_EL1:
            value = cs.icc_ctlr_el1[NS]
            if tracing.ON:
                trace("gicv3_icc_ctlr_read", cpu=cs.affid, val=value)
        else:  # ICC_IGRPEN0_EL1, ICC_IGRPEN1_EL1
            value = cs.icc_igrpen[G0 if key == ICC_IGRPEN0_EL1 else G1NS]
            if tracing.ON:
                trace("gicv3_icc_igrpen_read", grp=op2 & 1, cpu=cs.affid, val=value)
        return value

    def write_sysreg(self, op0: int, op1: int, crn: int, crm: int, op2: int,
                     value: int) -> bool:
        key = (op0, op1, crn, crm, op2)
        if key not in _WRITABLE or self.current_el() == 0:
            return False
        gic, cs = self.gic, self.cs
        if key == ICC_EOIR1_EL1:
            self.end_of_interrupt(1, value)
        elif key == ICC_EOIR0_EL1:
            self.end_of_interrupt(0, value)
        elif key == ICC_PMR_EL1:
            if tracing.ON:
                trace("gicv3_icc_pmr_write", cpu=cs.affid, val=value)
            cs.icc_pmr_el1 = value & (0xFFFFFFFF << (8 - cs.pribits)) & 0xFFFFFFFF
            cpuif_update(gic, cs)
        elif key == ICC_DIR_EL1:
            self.deactivate(value)
        elif key == ICC_SGI1R_EL1:
            self.generate_sgi(value, G1NS)
        elif key == ICC_ASGI1R_EL1:
            self.generate_sgi(value, G1)
        elif key == ICC_SGI0R_EL1:
            self.generate_sgi(value, G0)
        elif key in (ICC_BPR0_EL1, ICC_BPR1_EL1):
            if tracing.ON:
                trace("gicv3_icc_bpr_write", grp=0 if key == ICC_BPR0_EL1 else 1,
                      cpu=cs.affid, val=value)
            grp, satinc = self._bpr_group(key)
            if satinc:
                return True  # BPR1 with CBPR: writes are ignored
            minval = cs.min_bpr() + 1 if grp == G1NS else cs.min_bpr()
            cs.icc_bpr[grp] = max(value, minval) & 7
            cpuif_update(gic, cs)
        elif key in (ICC_AP0R0_EL1, ICC_AP1R0_EL1):
            if tracing.ON:
                trace("gicv3_icc_ap_write", grp=crm & 1, regno=op2 & 3, cpu=cs.affid,
                      val=value)
            grp = G0 if key == ICC_AP0R0_EL1 else G1NS
            cs.icc_apr[grp][op2 & 3] = value & 0xFFFFFFFF
            cpuif_update(gic, cs)
        elif key == ICC_CTLR_EL1:
            if tracing.ON:
                trace("gicv3_icc_ctlr_write", cpu=cs.affid, val=value)
            mask = ICC_CTLR_EL1_CBPR | ICC_CTLR_EL1_EOIMODE
            cs.icc_ctlr_el1[NS] = (cs.icc_ctlr_el1[NS] & ~mask) | (value & mask)
            cpuif_update(gic, cs)
        elif key == ICC_SRE_EL1:
            pass  # RAO/WI and RAZ/WI bits only
        else:  # ICC_IGRPEN0_EL1, ICC_IGRPEN1_EL1
            if tracing.ON:
                trace("gicv3_icc_igrpen_write", grp=op2 & 1, cpu=cs.affid, val=value)
            grp = G0 if key == ICC_IGRPEN0_EL1 else G1NS
            cs.icc_igrpen[grp] = value & 1
            cpuif_update(gic, cs)
        return True


class IdAa64Pfr0Gic:
    """ID_AA64PFR0_EL1 of a CPU with a GICv3: the CPU's own value (``read_cpu``, Unicorn's
    register) with GIC (bits 27:24) = 1, "System register interface to versions 3.0 and 4.0
    of the GIC CPU interface is supported" (Arm ARM DDI 0487 D17.2.64), as QEMU's
    id_aa64pfr0_read sets it when the CPU has a GICv3 CPU interface."""

    def __init__(self, read_cpu: Callable[[], int],
                 current_el: Callable[[], int] = lambda: 1) -> None:
        self.read_cpu = read_cpu
        self.current_el = current_el

    def sysreg_keys(self) -> Iterable[SysregKey]:
        return (ID_AA64PFR0_EL1,)

    def read_sysreg(self, op0: int, op1: int, crn: int, crm: int, op2: int) -> int | None:
        if self.current_el() == 0:
            return None  # Unicorn traps or emulates it as QEMU does
        return (self.read_cpu() & ~(0xF << 24)) | (1 << 24)

    def write_sysreg(self, op0: int, op1: int, crn: int, crm: int, op2: int,
                     value: int) -> bool:
        return False  # read-only: Unicorn's own handling
