"""The ARM Generic Interrupt Controller, architecture version 3 (QEMU 7.2 hw/intc/arm_gicv3.c:
the device, its inputs and the highest-priority-pending-interrupt computation; Arm IHI
0069H, chapter 4 "Physical Interrupt Handling and Prioritization").

This is the ``arm-gicv3`` of QEMU's ``virt`` with ``gic-version=3`` (or ``max``) under TCG:
``revision`` 3, ``num-irq`` 288 (256 SPIs), one CPU, ``has-lpi`` on (virt connects an ITS,
which emu does not model: see docs/devel/interrupts.md), no Security Extensions (virt sets
them only with ``secure=on``). Registers: the distributor (emu/devices/arm_gicv3_dist.py,
region ``gicv3_dist``, 64 KiB), one redistributor per CPU (emu/devices/arm_gicv3_redist.py,
region ``gicv3_redist_region[0]``, 128 KiB per CPU) and the CPU interface as system registers
(emu/devices/arm_gicv3_cpuif.py). State: emu/devices/arm_gicv3_common.py.

Inputs (``inputs``, QEMU's unnamed GPIO inputs): 0..255 are SPIs 32..287, then 32 per CPU
(input 256 + 32*cpu + n is interrupt n of that CPU; only PPIs, n >= 16, may be driven).
Outputs, per CPU: ``cpu_irq``, ``cpu_fiq``, ``cpu_virq``, ``cpu_vfiq`` (QEMU's sysbus IRQs,
connected to the CPU's IRQ, FIQ, VIRQ and VFIQ inputs; the virtual ones stay low: virt's CPU
has no EL2, so no virtual CPU interface).

Each CPU keeps its highest-priority pending interrupt (``hppi``) as QEMU does, updated by
the same incremental rules (``gicv3_update``, ``gicv3_redist_update``: a change in a range
of interrupts looks only at that range unless the previous best was in it and nothing
better was found, which recomputes everything), so that it is stale exactly where QEMU's
is: writing GICD_ICFGR recomputes nothing. Equal priorities go to the lowest INTID. Then
``gicv3_cpuif_update`` (emu/devices/arm_gicv3_cpuif.py) decides the CPU's IRQ and FIQ lines.

Trace events (QEMU's hw/intc/trace-events): ``gicv3_dist_read``, ``gicv3_dist_badread``,
``gicv3_dist_write``, ``gicv3_dist_badwrite``, ``gicv3_dist_set_irq``, ``gicv3_redist_read``,
``gicv3_redist_badread``, ``gicv3_redist_write``, ``gicv3_redist_badwrite``,
``gicv3_redist_set_irq``, ``gicv3_redist_send_sgi``, ``gicv3_cpuif_update``,
``gicv3_cpuif_set_irqs`` and the ``gicv3_icc_*`` register events.
"""

from __future__ import annotations

from typing import Protocol

from emu.bus import Region
from emu.devices.arm_gicv3_common import (
    GIC_INTERNAL,
    GIC_NR_SGIS,
    GICD_CTLR_DS,
    GICD_CTLR_EN_GRP0,
    GICD_CTLR_EN_GRP1NS,
    GICD_CTLR_EN_GRP1S,
    GICR_CTLR_ENABLE_LPIS,
    GICV3_LPI_INTID_START,
    GICV3_REDIST_SIZE,
    GicV3CpuState,
    GicV3State,
    word,
)
from emu.devices.arm_gicv3_cpuif import cpuif_update
from emu.devices.arm_gicv3_dist import DIST_SIZE, dist_read, dist_set_irq, dist_write
from emu.devices.arm_gicv3_redist import redist_read, redist_set_irq, redist_write
from emu.irq import Gpios, input_lines

#: QEMU hw/arm/virt.c: NUM_IRQS external interrupts, plus the 32 internal ones
VIRT_NUM_IRQ = 256 + GIC_INTERNAL


class DmaSpace(Protocol):
    """What the redistributors read and write the LPI tables through (QEMU's ``sysmem``
    link: emu.memory.AddressSpace)."""

    def dma_read(self, addr: int, size: int) -> tuple[bytes, bool]: ...

    def write_some(self, addr: int, data: bytes) -> bool: ...


def _irqbetter(cs: GicV3CpuState, irq: int, prio: int) -> bool:
    """irqbetter: ``irq`` at ``prio`` beats the recorded best (or is it)."""
    hppi = cs.hppi
    return prio < hppi.prio or (prio == hppi.prio and irq <= hppi.irq)


class ArmGicV3(GicV3State):
    """A GICv3: ``dist`` and ``redist`` regions, ``inputs``, ``cpu_irq[n]``/``cpu_fiq[n]``."""

    def __init__(self, num_irq: int = VIRT_NUM_IRQ, num_cpu: int = 1, *, revision: int = 3,
                 lpis: bool = True, dma: DmaSpace | None = None,
                 affinities: list[int] | None = None, name: str = "arm-gicv3") -> None:
        if lpis and dma is None:
            raise ValueError("Redist-ITS: Guest 'sysmem' reference link not set")
        super().__init__(num_irq, num_cpu, revision, lpis,
                         affinities if affinities is not None else list(range(num_cpu)), name)
        self.dma = dma
        self.inputs = input_lines(name, num_irq - GIC_INTERNAL + GIC_INTERNAL * num_cpu,
                                  self.set_irq)
        self.cpu_irq = [cs.parent_irq for cs in self.cpu]
        self.cpu_fiq = [cs.parent_fiq for cs in self.cpu]
        self.cpu_virq = [cs.parent_virq for cs in self.cpu]
        self.cpu_vfiq = [cs.parent_vfiq for cs in self.cpu]
        self.gpios = Gpios(name, inputs={None: self.inputs}, outputs={
            "sysbus-irq": self.cpu_irq + self.cpu_fiq + self.cpu_virq + self.cpu_vfiq})
        self.dist = Region("gicv3_dist", DIST_SIZE, _DistOps(self))
        self.redist = Region("gicv3_redist_region[0]", GICV3_REDIST_SIZE * num_cpu,
                             _RedistOps(self))
        for cs in self.cpu:
            cs.reset_cpu_interface()
        self.reset()

    def reset(self) -> None:
        """The device's reset (``arm_gicv3_common_reset``; the CPU interfaces are reset with
        the CPU: ``GicV3CpuInterface.reset``). QEMU resets the CPU too, which forgets a
        pending IRQ or FIQ: the outputs that are high are lowered."""
        self.reset_state()
        for line in (*self.cpu_irq, *self.cpu_fiq):
            if line.level:
                line.set_level(0)

    # -- guest memory (the LPI tables) ------------------------------------------------------

    def dma_read(self, addr: int, size: int) -> bytes:
        assert self.dma is not None
        return self.dma.dma_read(addr & 0xFFFFFFFFFFFFFFFF, size)[0]

    def dma_write(self, addr: int, data: bytes) -> None:
        assert self.dma is not None
        self.dma.write_some(addr & 0xFFFFFFFFFFFFFFFF, data)

    # -- pending interrupts -----------------------------------------------------------------

    def _grpmask(self, group: int, grpmod: int) -> int:
        ctlr = self.gicd_ctlr
        if ctlr & GICD_CTLR_DS:
            grpmod = 0
        mask = 0
        if ctlr & GICD_CTLR_EN_GRP1NS:
            mask |= group
        if ctlr & GICD_CTLR_EN_GRP1S:
            mask |= ~group & grpmod
        if ctlr & GICD_CTLR_EN_GRP0:
            mask |= ~group & ~grpmod
        return mask

    def gicd_int_pending(self, irq: int) -> int:
        """gicd_int_pending: the 32 SPIs from ``irq`` (a multiple of 32) that can be
        signalled: pending (latch, or level-triggered and high), enabled, not active, and
        in a group the distributor has enabled."""
        pend = word(self.pending, irq) | (~word(self.edge_trigger, irq) & word(self.level, irq))
        pend &= word(self.enabled, irq) & ~word(self.active, irq)
        return pend & self._grpmask(word(self.group, irq), word(self.grpmod, irq)) & 0xFFFFFFFF

    def gicr_int_pending(self, cs: GicV3CpuState) -> int:
        """gicr_int_pending: the same for a redistributor's SGIs and PPIs."""
        pend = cs.gicr_ipendr0 | (~cs.edge_trigger & cs.level)
        pend &= cs.gicr_ienabler0 & ~cs.gicr_iactiver0
        return pend & self._grpmask(cs.gicr_igroupr0, cs.gicr_igrpmodr0) & 0xFFFFFFFF

    def redist_update_noirqset(self, cs: GicV3CpuState) -> None:
        """gicv3_redist_update_noirqset: the best of the CPU's SGIs, PPIs and LPIs."""
        seenbetter = False
        pend = self.gicr_int_pending(cs)
        hppi = cs.hppi
        prios = cs.gicr_ipriorityr
        while pend:
            low = pend & -pend
            i = low.bit_length() - 1
            pend ^= low
            prio = prios[i]
            if _irqbetter(cs, i, prio):
                hppi.irq = i
                hppi.prio = prio
                seenbetter = True
        if seenbetter:
            hppi.grp = self.irq_group(cs, hppi.irq)
        lpi = cs.hpplpi
        if cs.gicr_ctlr & GICR_CTLR_ENABLE_LPIS and self.lpi_enable and \
                self.gicd_ctlr & GICD_CTLR_EN_GRP1NS and lpi.prio != 0xFF and \
                _irqbetter(cs, lpi.irq, lpi.prio):
            hppi.irq, hppi.prio, hppi.grp = lpi.irq, lpi.prio, lpi.grp
            seenbetter = True
        if not seenbetter and hppi.prio != 0xFF and \
                (hppi.irq < GIC_INTERNAL or hppi.irq >= GICV3_LPI_INTID_START):
            self.full_update_noirqset()

    def redist_update(self, cs: GicV3CpuState) -> None:
        """gicv3_redist_update: after a change in a redistributor or a CPU interface."""
        self.redist_update_noirqset(cs)
        cpuif_update(self, cs)

    def update_noirqset(self, start: int, length: int) -> None:
        """gicv3_update_noirqset: the SPIs ``start`` .. ``start + length - 1`` changed."""
        for cs in self.cpu:
            cs.seenbetter = False
        pend = 0
        prios = self.gicd_ipriority
        targets = self.gicd_irouter_target
        for i in range(start, start + length):
            if i == start or not i & 0x1F:
                pend = self.gicd_int_pending(i & ~0x1F)
            if not pend >> (i & 0x1F) & 1:
                continue
            cs = targets[i]
            if cs is None:
                continue  # pending, but routed to no implemented CPU
            prio = prios[i]
            if _irqbetter(cs, i, prio):
                cs.hppi.irq = i
                cs.hppi.prio = prio
                cs.seenbetter = True
        for cs in self.cpu:
            if cs.seenbetter:
                cs.hppi.grp = self.irq_group(cs, cs.hppi.irq)
            if not cs.seenbetter and cs.hppi.prio != 0xFF and \
                    start <= cs.hppi.irq < start + length:
                self.full_update_noirqset()
                break

    def update(self, start: int, length: int) -> None:
        """gicv3_update: after a change in the distributor's state for those SPIs."""
        self.update_noirqset(start, length)
        for cs in self.cpu:
            cpuif_update(self, cs)

    def full_update_noirqset(self) -> None:
        """gicv3_full_update_noirqset: recompute every CPU's best from scratch."""
        for cs in self.cpu:
            cs.hppi.prio = 0xFF
        self.update_noirqset(GIC_INTERNAL, self.num_irq - GIC_INTERNAL)
        for cs in self.cpu:
            self.redist_update_noirqset(cs)

    def full_update(self) -> None:
        """gicv3_full_update."""
        self.full_update_noirqset()
        for cs in self.cpu:
            cpuif_update(self, cs)

    # -- inputs ---------------------------------------------------------------------------

    def set_irq(self, n: int, level: int) -> None:
        """gicv3_set_irq: input ``n`` (an SPI, or a PPI of one CPU) changes level."""
        level = 1 if level else 0
        spis = self.num_irq - GIC_INTERNAL
        if n < spis:
            dist_set_irq(self, n + GIC_INTERNAL, level)
            return
        cpu, irq = divmod(n - spis, GIC_INTERNAL)
        if irq < GIC_NR_SGIS:
            raise ValueError(f"GIC input {n}: SGI {irq} has no input line")
        redist_set_irq(self, self.cpu[cpu], irq, level)


class _DistOps:
    __slots__ = ("gic",)

    def __init__(self, gic: ArmGicV3) -> None:
        self.gic = gic

    def read(self, offset: int, size: int) -> int:
        return dist_read(self.gic, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        dist_write(self.gic, offset, size, value)


class _RedistOps:
    __slots__ = ("gic",)

    def __init__(self, gic: ArmGicV3) -> None:
        self.gic = gic

    def read(self, offset: int, size: int) -> int:
        return redist_read(self.gic, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        redist_write(self.gic, offset, size, value)
