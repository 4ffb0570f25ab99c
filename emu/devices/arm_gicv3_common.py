"""GICv3 state shared by the distributor, the redistributors and the CPU interfaces (QEMU 7.2
hw/intc/arm_gicv3_common.c, gicv3_internal.h, include/hw/intc/arm_gicv3_common.h; Arm IHI
0069H, "Arm Generic Interrupt Controller Architecture Specification, GIC architecture
version 3 and version 4").

The state is QEMU's ``GICv3State`` (distributor: bitmaps indexed by interrupt ID, priorities,
GICD_IROUTER) and one ``GICv3CPUState`` per CPU (its redistributor: SGI/PPI state, LPI table
registers; its CPU interface: ICC_* registers), with the same names and reset values
(``arm_gicv3_common_reset`` for the GIC, ``icc_reset`` for the CPU interface, which QEMU
resets with the CPU). Bitmaps are Python ints (bit n is interrupt n), so QEMU's 32-bit words
are ``(bitmap >> irq) & 0xffffffff`` for ``irq`` a multiple of 32.

emu's virt has what QEMU's virt has without ``secure=on``: no Security Extensions, so
GICD_CTLR.DS is set at reset and cannot be cleared (IHI 0069H 12.9.4); every interrupt is
Group 0 or Non-secure Group 1 (``irq_group``); GICD/GICR_IGRPMODR and NSACR are RAZ/WI. The
Secure views QEMU implements for ``has-security-extensions`` are not modelled.
"""

from __future__ import annotations

from emu.irq import IrqLine

GICV3_MAXIRQ = 1020
GIC_INTERNAL = 32
GIC_NR_SGIS = 16
GICV3_LPI_INTID_START = 8192
#: two 64 KiB frames per CPU (RD_base, SGI_base); a GICv4 has four
GICV3_REDIST_SIZE = 0x20000
GICR_SGI_OFFSET = 0x10000

#: interrupt groups (QEMU's GICV3_G0, GICV3_G1, GICV3_G1NS) and banks (GICV3_S, GICV3_NS)
G0, G1, G1NS = 0, 1, 2
S, NS = 0, 1

INTID_SECURE, INTID_NONSECURE, INTID_SPURIOUS = 1020, 1021, 1023

GICD_CTLR_EN_GRP0 = 1 << 0
GICD_CTLR_EN_GRP1NS = 1 << 1
GICD_CTLR_EN_GRP1S = 1 << 2
GICD_CTLR_ARE = 1 << 4
GICD_CTLR_ARE_NS = 1 << 5
GICD_CTLR_DS = 1 << 6
GICD_TYPER_LPIS_SHIFT = 17
GICD_TYPER_IDBITS = 0xF

GICR_CTLR_ENABLE_LPIS = 1 << 0
GICR_CTLR_CES = 1 << 1
GICR_TYPER_PLPIS = 1 << 0
GICR_TYPER_VLPIS = 1 << 1
GICR_TYPER_LAST = 1 << 4
GICR_WAKER_PROCESSOR_SLEEP = 1 << 1
GICR_WAKER_CHILDREN_ASLEEP = 1 << 2
#: GICR_PROPBASER.IDbits [4:0], PA [51:12]; GICR_PENDBASER.PA [51:16]
GICR_PROPBASER_IDBITS_MASK = 0x1F
GICR_PROPBASER_PHYADDR_MASK = ((1 << 40) - 1) << 12
GICR_PENDBASER_PHYADDR_MASK = ((1 << 36) - 1) << 16

ICC_CTLR_EL1_CBPR = 1 << 0
ICC_CTLR_EL1_EOIMODE = 1 << 1
ICC_CTLR_EL1_PRIBITS_SHIFT = 8
ICC_CTLR_EL1_IDBITS_SHIFT = 11
ICC_CTLR_EL1_A3V = 1 << 15
ICC_CTLR_EL3_EOIMODE_EL3 = 1 << 2
ICC_CTLR_EL3_PRIBITS_SHIFT = 8
ICC_CTLR_EL3_IDBITS_SHIFT = 11
ICC_CTLR_EL3_A3V = 1 << 15
ICC_CTLR_EL3_NDS = 1 << 17

#: GICD/GICR_IIDR (gicv3_iidr: Arm, r0p0, ProductID 0, as a GIC-500 r0p0)
GICV3_IIDR = 0x43B
#: CoreSight PIDR0 of the distributor and the redistributor
GICV3_PIDR0_DIST = 0x92
GICV3_PIDR0_REDIST = 0x93
#: PIDR4..7, PIDR0..3, CIDR0..3 at 0xffd0 (PIDR0 and PIDR2's ArchRev filled in by idreg)
_GICD_IDS = (0x44, 0x00, 0x00, 0x00, 0x92, 0xB4, 0x0B, 0x00, 0x0D, 0xF0, 0x05, 0xB1)


def ctz32(value: int) -> int:
    """QEMU's ctz32: the index of the lowest set bit of a 32-bit value, 32 for 0."""
    value &= 0xFFFFFFFF
    return (value & -value).bit_length() - 1 if value else 32


def half_shuffle32(value: int) -> int:
    """Bit i of the low 16 bits to bit 2i (QEMU's half_shuffle32)."""
    out = 0
    for i in range(16):
        out |= ((value >> i) & 1) << (2 * i)
    return out


def half_unshuffle32(value: int) -> int:
    """Bit 2i to bit i; the odd bits are dropped (QEMU's half_unshuffle32)."""
    out = 0
    for i in range(16):
        out |= ((value >> (2 * i)) & 1) << i
    return out


def word(bitmap: int, irq: int) -> int:
    """The 32-bit word of ``bitmap`` that holds interrupt ``irq`` (gic_bmp_ptr32)."""
    return (bitmap >> (irq & ~31)) & 0xFFFFFFFF


def set_word(bitmap: int, irq: int, value: int) -> int:
    """``bitmap`` with the 32-bit word holding ``irq`` replaced by ``value``."""
    shift = irq & ~31
    return (bitmap & ~(0xFFFFFFFF << shift)) | ((value & 0xFFFFFFFF) << shift)


class PendingIrq:
    """QEMU's PendingIrq: a cached highest-priority pending interrupt (prio 0xff: none)."""

    __slots__ = ("grp", "irq", "prio")

    def __init__(self) -> None:
        self.irq = 0
        self.prio = 0xFF
        self.grp = G0


class GicV3CpuState:
    """One CPU's redistributor and CPU interface (QEMU's GICv3CPUState)."""

    def __init__(self, index: int, affinity: int, name: str) -> None:
        self.index = index
        self.parent_irq = IrqLine(f"{name}.irq[{index}]")
        self.parent_fiq = IrqLine(f"{name}.fiq[{index}]")
        self.parent_virq = IrqLine(f"{name}.virq[{index}]")
        self.parent_vfiq = IrqLine(f"{name}.vfiq[{index}]")
        # -- redistributor
        self.level = 0
        self.gicr_ctlr = 0
        #: Aff3.Aff2.Aff1.Aff0 in the top half, CommonLPIAff 1, Processor_Number (realize)
        self.gicr_typer = (affinity << 32) | (1 << 24) | (index << 8)
        self.gicr_statusr = [0, 0]
        self.gicr_waker = 0
        self.gicr_propbaser = 0
        self.gicr_pendbaser = 0
        self.gicr_igroupr0 = 0
        self.gicr_ienabler0 = 0
        self.gicr_ipendr0 = 0
        self.gicr_iactiver0 = 0
        self.edge_trigger = 0
        self.gicr_igrpmodr0 = 0
        self.gicr_nsacr = 0
        self.gicr_ipriorityr = [0] * GIC_INTERNAL
        # -- CPU interface (cortex-a53/a57/a72 and max: 5 priority bits, 5 preemption bits)
        self.pribits = 5
        self.prebits = 5
        self.icc_sre_el1 = 0x7
        self.icc_ctlr_el1 = [0, 0]
        self.icc_pmr_el1 = 0
        self.icc_bpr = [0, 0, 0]
        self.icc_apr = [[0] * 4 for _ in range(3)]
        self.icc_igrpen = [0, 0, 0]
        self.icc_ctlr_el3 = 0
        # -- cached
        self.hppi = PendingIrq()
        self.hpplpi = PendingIrq()
        self.seenbetter = False

    @property
    def affid(self) -> int:
        """gicv3_redist_affid: the 32-bit affinity of the CPU."""
        return self.gicr_typer >> 32

    def reset_redistributor(self, lpi_enable: bool) -> None:
        """The per-CPU part of ``arm_gicv3_common_reset``."""
        self.level = 0
        self.gicr_ctlr = GICR_CTLR_CES if lpi_enable else 0
        self.gicr_statusr = [0, 0]
        self.gicr_waker = GICR_WAKER_PROCESSOR_SLEEP | GICR_WAKER_CHILDREN_ASLEEP
        self.gicr_propbaser = 0
        self.gicr_pendbaser = 0
        self.gicr_igroupr0 = 0
        self.gicr_ienabler0 = 0
        self.gicr_ipendr0 = 0
        self.gicr_iactiver0 = 0
        self.edge_trigger = 0xFFFF  # SGIs are edge-triggered
        self.gicr_igrpmodr0 = 0
        self.gicr_nsacr = 0
        self.gicr_ipriorityr = [0] * GIC_INTERNAL
        self.hppi.prio = 0xFF
        self.hpplpi.prio = 0xFF

    def min_bpr(self) -> int:
        """icc_min_bpr: the minimum BPR of the physical interface."""
        return 7 - self.prebits

    def num_aprs(self) -> int:
        """icc_num_aprs: ICC_AP0R<n>/AP1R<n> registers implemented (1, 2 or 4)."""
        return 1 << max(self.prebits - 5, 0)

    def reset_cpu_interface(self) -> None:
        """``icc_reset``, which QEMU runs with the CPU's reset (the ICC_* registers are in
        the CPU's reset domain, IHI 0069H 2.1)."""
        ctlr = ICC_CTLR_EL1_A3V | (1 << ICC_CTLR_EL1_IDBITS_SHIFT) | \
            ((self.pribits - 1) << ICC_CTLR_EL1_PRIBITS_SHIFT)
        self.icc_ctlr_el1 = [ctlr, ctlr]
        self.icc_pmr_el1 = 0
        self.icc_bpr = [self.min_bpr(), self.min_bpr(), self.min_bpr() + 1]
        self.icc_apr = [[0] * 4 for _ in range(3)]
        self.icc_igrpen = [0, 0, 0]
        self.icc_ctlr_el3 = ICC_CTLR_EL3_NDS | ICC_CTLR_EL3_A3V | \
            (1 << ICC_CTLR_EL3_IDBITS_SHIFT) | ((self.pribits - 1) << ICC_CTLR_EL3_PRIBITS_SHIFT)


class GicV3State:
    """The distributor's state and the CPUs' (QEMU's GICv3State), without the code that
    recomputes the pending interrupts (emu/devices/arm_gicv3.py)."""

    def __init__(self, num_irq: int, num_cpu: int, revision: int, lpi_enable: bool,
                 affinities: list[int], name: str) -> None:
        if revision not in (3, 4):
            raise ValueError(f"unsupported GIC revision {revision}")
        if num_irq > GICV3_MAXIRQ:
            raise ValueError(f"requested {num_irq} interrupt lines exceeds GIC maximum "
                             f"{GICV3_MAXIRQ}")
        if num_irq < GIC_INTERNAL:
            raise ValueError(f"requested {num_irq} interrupt lines is below GIC minimum "
                             f"{GIC_INTERNAL}")
        if num_irq % 32:
            raise ValueError(f"{num_irq} interrupt lines unsupported: not divisible by 32")
        if num_cpu < 1 or len(affinities) != num_cpu:
            raise ValueError("num-cpu must be at least 1, with one affinity per CPU")
        self.num_irq = num_irq
        self.num_cpu = num_cpu
        self.revision = revision
        self.lpi_enable = lpi_enable
        self.cpu = [GicV3CpuState(i, aff, name) for i, aff in enumerate(affinities)]
        for cs in self.cpu:
            if lpi_enable:
                cs.gicr_typer |= GICR_TYPER_PLPIS
                if revision > 3:
                    cs.gicr_typer |= GICR_TYPER_VLPIS
        # one redistributor region: its last redistributor has GICR_TYPER.Last
        self.cpu[-1].gicr_typer |= GICR_TYPER_LAST
        self.gicd_ctlr = 0
        self.gicd_statusr = [0, 0]
        self.group = 0
        self.grpmod = 0
        self.enabled = 0
        self.pending = 0
        self.active = 0
        self.level = 0
        self.edge_trigger = 0
        self.gicd_ipriority = [0] * GICV3_MAXIRQ
        self.gicd_irouter = [0] * GICV3_MAXIRQ
        #: gicd_irouter_target: the CPU each SPI's GICD_IROUTER names, or None
        self.gicd_irouter_target: list[GicV3CpuState | None] = [None] * GICV3_MAXIRQ
        self.gicd_nsacr = [0] * ((GICV3_MAXIRQ + 15) // 16)

    def reset_state(self) -> None:
        """``arm_gicv3_common_reset`` for a GIC without the Security Extensions: affinity
        routing always on (ARE) and a single Security state (DS)."""
        for cs in self.cpu:
            cs.reset_redistributor(self.lpi_enable)
        self.gicd_ctlr = GICD_CTLR_DS | GICD_CTLR_ARE
        self.gicd_statusr = [0, 0]
        self.group = self.grpmod = self.enabled = self.pending = self.active = 0
        self.level = self.edge_trigger = 0
        self.gicd_ipriority = [0] * GICV3_MAXIRQ
        self.gicd_irouter = [0] * GICV3_MAXIRQ
        self.gicd_nsacr = [0] * len(self.gicd_nsacr)
        for irq in range(GIC_INTERNAL, GICV3_MAXIRQ):
            self.cache_target_cpustate(irq)

    def cache_target_cpustate(self, irq: int) -> None:
        """gicv3_cache_target_cpustate: the CPU whose affinity GICD_IROUTER<irq> names
        (Aff3 in bits 39:32, Aff2.Aff1.Aff0 in 23:0; Interrupt_Routing_Mode is ignored)."""
        router = self.gicd_irouter[irq]
        tgtaff = (router & 0xFFFFFF) | (((router >> 32) & 0xFF) << 24)
        self.gicd_irouter_target[irq] = next(
            (cs for cs in self.cpu if cs.gicr_typer >> 32 == tgtaff), None)

    def irq_group(self, cs: GicV3CpuState, irq: int) -> int:
        """gicv3_irq_group: Non-secure Group 1 if the group bit is set, else Group 0
        (with GICD_CTLR.DS set the modifier bit is ignored)."""
        if irq < GIC_INTERNAL:
            grpbit = cs.gicr_igroupr0 >> irq & 1
            grpmodbit = cs.gicr_igrpmodr0 >> irq & 1
        else:
            grpbit = self.group >> irq & 1
            grpmodbit = self.grpmod >> irq & 1
        if grpbit:
            return G1NS
        if self.gicd_ctlr & GICD_CTLR_DS:
            return G0
        return G1 if grpmodbit else G0

    def idreg(self, regoffset: int, pidr0: int) -> int:
        """gicv3_idreg: the CoreSight ID register at ``regoffset`` from 0xffd0: PIDR2's
        ArchRev (bits 7:4) is the GIC's revision."""
        n = regoffset // 4
        if n == 4:
            return pidr0
        value = _GICD_IDS[n]
        if n == 6:
            value |= self.revision << 4
        return value
