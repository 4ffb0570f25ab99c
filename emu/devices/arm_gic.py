"""The ARM Generic Interrupt Controller, architecture version 2 (QEMU 7.2 hw/intc/arm_gic.c,
arm_gic_common.c; ARM IHI 0048B, "ARM Generic Interrupt Controller Architecture
Specification, version 2.0", chapter 4 "Programmers' Model").

This is the ``arm_gic`` device of QEMU's ``virt`` machine with ``gic-version=2``:
``revision`` 2, ``num-irq`` 288 (NUM_IRQS 256 + the 32 internal interrupts), ``num-cpu`` 1,
8 priority bits, no Security Extensions (virt sets ``has-security-extensions`` only with
``secure=on``) and no Virtualization Extensions (only with ``virtualization=on``); emu
refuses both options, so neither is modelled. Interrupt IDs: 0-15 SGIs, 16-31 PPIs, 32-287
SPIs; 1022 and 1023 are the spurious IDs.

Regions: ``dist`` (the distributor, 4 KiB, GICD_*, IHI 0048B 4.3) and ``cpu`` (the CPU
interface, 8 KiB, GICC_*, 4.4; GICC_DIR at 0x1000). Registers are decoded as QEMU decodes
them: the distributor a byte at a time (a 16- or 32-bit access is 2 or 4 byte accesses,
except that GICD_SGIR at 0xf00 exists only as a 32-bit write), the CPU interface by offset
whatever the size. QEMU's GICv2 CPU interface has no GICC_AIAR/AEOIR/AHPPIR (0x20-0x28):
they read as zero and ignore writes, as every offset QEMU does not decode.

Inputs (``inputs``, QEMU's unnamed GPIO inputs): 0..255 are SPIs 32..287, then 32 per CPU
for its PPIs and SGI slots (input 256 + 32*cpu + n is interrupt n of that CPU; only
n >= 16 may be driven). Outputs, per CPU: ``cpu_irq``, ``cpu_fiq``, ``cpu_virq``,
``cpu_vfiq`` (the sysbus IRQs QEMU connects to the CPU's IRQ/FIQ/VIRQ/VFIQ inputs; the last
two stay low without the Virtualization Extensions).

Distributor state is kept per CPU as bitmaps indexed by interrupt ID (QEMU keeps per
interrupt CPU masks; the banks are the same bits). QEMU keeps eight banks whatever num-cpu
is (GIC_NCPU), and a guest can reach the absent CPUs' banks (GICD_SGIR's target list, the
PPI inputs of CPUs 1-7 do not exist): so does this model, so that every register reads as
QEMU's. The highest-priority pending interrupt (``gic_get_best_irq``) is found among the set
bits of one bitmap expression instead of a scan of all interrupts.

Trace events (QEMU's hw/intc/trace-events): ``gic_set_irq``, ``gic_enable_irq``,
``gic_disable_irq``, ``gic_update_bestirq``, ``gic_update_set_irq``,
``gic_acknowledge_irq``, ``gic_cpu_read``, ``gic_cpu_write``, ``gic_dist_read``,
``gic_dist_write``.
"""

from __future__ import annotations

from emu import trace as tracing
from emu.bus import Region
from emu.irq import Gpios, IrqLine, input_lines
from emu.trace import trace

GIC_MAXIRQ = 1020
GIC_INTERNAL = 32
GIC_NR_SGIS = 16
GIC_NCPU = 8
ALL_CPU_MASK = (1 << GIC_NCPU) - 1
GIC_MIN_BPR = 0
GIC_MIN_ABPR = GIC_MIN_BPR + 1
GIC_NR_APRS = 128 // 32  # MAX_NR_GROUP_PRIO / 32
SPURIOUS = 1023

GICD_CTLR_EN_GRP0 = 1 << 0
GICD_CTLR_EN_GRP1 = 1 << 1
GICC_CTLR_EN_GRP0 = 1 << 0
GICC_CTLR_EN_GRP1 = 1 << 1
GICC_CTLR_ACK_CTL = 1 << 2
GICC_CTLR_FIQ_EN = 1 << 3
GICC_CTLR_CBPR = 1 << 4
GICC_CTLR_EOIMODE = 1 << 9
GICC_CTLR_V2_MASK = 0x21F

#: GICD_PIDR4..7, PIDR0..3, CIDR0..3 of a GICv2 (QEMU's gic_id_gicv2), at 0xfd0..0xffc
GIC_ID_GICV2 = (0x04, 0x00, 0x00, 0x00, 0x90, 0xB4, 0x2B, 0x00, 0x0D, 0xF0, 0x05, 0xB1)

DIST_SIZE = 0x1000
CPU_IFACE_SIZE = 0x2000
#: QEMU hw/arm/virt.c: NUM_IRQS external interrupts, plus the 32 internal ones
VIRT_NUM_IRQ = 256 + GIC_INTERNAL
SGI_MASK = (1 << GIC_NR_SGIS) - 1
INTERNAL_MASK = (1 << GIC_INTERNAL) - 1


def _ctz(value: int) -> int:
    """Count trailing zeros (QEMU's ctz32: 32 for 0)."""
    return (value & -value).bit_length() - 1 if value else 32


class ArmGic:
    """A GICv2: ``dist`` and ``cpu`` regions, ``inputs``, ``cpu_irq[n]``/``cpu_fiq[n]``."""

    revision = 2

    def __init__(self, num_irq: int = VIRT_NUM_IRQ, num_cpu: int = 1,
                 name: str = "arm_gic") -> None:
        if not (GIC_INTERNAL <= num_irq <= GIC_MAXIRQ and num_irq % 32 == 0):
            raise ValueError(f"num-irq {num_irq}: not a multiple of 32 in 32..{GIC_MAXIRQ}")
        if not 1 <= num_cpu <= GIC_NCPU:
            raise ValueError(f"num-cpu {num_cpu}: 1..{GIC_NCPU}")
        self.num_irq = num_irq
        self.num_cpu = num_cpu
        self.n_prio_bits = 8
        self._irq_mask = (1 << num_irq) - 1
        self.inputs = input_lines(name, num_irq - GIC_INTERNAL + GIC_INTERNAL * num_cpu,
                                  self.set_irq)
        self.cpu_irq = [IrqLine(f"{name}.irq[{c}]") for c in range(num_cpu)]
        self.cpu_fiq = [IrqLine(f"{name}.fiq[{c}]") for c in range(num_cpu)]
        self.cpu_virq = [IrqLine(f"{name}.virq[{c}]") for c in range(num_cpu)]
        self.cpu_vfiq = [IrqLine(f"{name}.vfiq[{c}]") for c in range(num_cpu)]
        #: QEMU's sysbus IRQs are a named GPIO list ("sysbus-irq"): qtest's
        #: irq_intercept_out, which takes only the unnamed lists, does not reach them
        self.gpios = Gpios(name, inputs={None: self.inputs}, outputs={
            "sysbus-irq": self.cpu_irq + self.cpu_fiq + self.cpu_virq + self.cpu_vfiq})
        self.dist = Region("gic_dist", DIST_SIZE, _DistOps(self))
        self.cpu = Region("gic_cpu", CPU_IFACE_SIZE, _CpuOps(self))
        self.reset()

    # -- state ----------------------------------------------------------------------------

    def reset(self) -> None:
        """``arm_gic_common_reset`` for a GIC without the Security Extensions."""
        n = GIC_NCPU
        self.enabled = [SGI_MASK] * n  # SGIs are always enabled
        self.pending = [0] * n
        self.active = [0] * n
        self.level = [0] * n
        self.group = [0] * n
        self.edge_trigger = SGI_MASK  # SGIs are edge-triggered
        #: GICD_ITARGETSR bytes; a uniprocessor GIC targets every interrupt at CPU 0
        self.irq_target = [1 if self.num_cpu == 1 else 0] * GIC_MAXIRQ
        #: per CPU: the interrupts whose target includes it (internal ones always)
        self._targets = [INTERNAL_MASK] * n
        for cpu in range(n):
            self._refresh_targets(cpu)
        self.priority1 = [[0] * n for _ in range(GIC_INTERNAL)]
        self.priority2 = [0] * (GIC_MAXIRQ - GIC_INTERNAL)
        self.sgi_pending = [[0] * n for _ in range(GIC_NR_SGIS)]
        self.priority_mask = [0] * n
        self.current_pending = [SPURIOUS] * n
        self.running_priority = [0x100] * n
        self.cpu_ctlr = [0] * n
        self.bpr = [GIC_MIN_BPR] * n
        self.abpr = [GIC_MIN_ABPR] * n
        self.apr = [[0] * n for _ in range(GIC_NR_APRS)]
        self.nsapr = [[0] * n for _ in range(GIC_NR_APRS)]
        self.ctlr = 0
        # QEMU resets the CPU with the GIC, which forgets a pending IRQ or FIQ: lower the
        # outputs that are high, so that whatever they drive forgets it too
        for line in (*self.cpu_irq, *self.cpu_fiq):
            if line.level:
                line.set_level(0)

    def _refresh_targets(self, cpu: int) -> None:
        cm = 1 << cpu
        bits = INTERNAL_MASK
        for irq in range(GIC_INTERNAL, self.num_irq):
            if self.irq_target[irq] & cm:
                bits |= 1 << irq
        self._targets[cpu] = bits

    @staticmethod
    def _set(banks: list[int], irq: int, cm: int) -> None:
        bit = 1 << irq
        cpu = 0
        while cm:
            if cm & 1:
                banks[cpu] |= bit
            cm >>= 1
            cpu += 1

    @staticmethod
    def _clear(banks: list[int], irq: int, cm: int) -> None:
        bit = ~(1 << irq)
        cpu = 0
        while cm:
            if cm & 1:
                banks[cpu] &= bit
            cm >>= 1
            cpu += 1

    @staticmethod
    def _test(banks: list[int], irq: int, cm: int) -> bool:
        cpu = 0
        while cm:
            if cm & 1 and banks[cpu] >> irq & 1:
                return True
            cm >>= 1
            cpu += 1
        return False

    def _test_pending(self, irq: int, cm: int) -> bool:
        """``gic_test_pending``: pending, or a level-triggered interrupt whose line is high."""
        if self._test(self.pending, irq, cm):
            return True
        return not self.edge_trigger >> irq & 1 and self._test(self.level, irq, cm)

    def get_priority(self, irq: int, cpu: int) -> int:
        """``GIC_DIST_GET_PRIORITY``: banked for the internal interrupts."""
        return self.priority1[irq][cpu] if irq < GIC_INTERNAL else \
            self.priority2[irq - GIC_INTERNAL]

    def _group(self, irq: int, cpu: int) -> int:
        return self.group[cpu] >> irq & 1

    # -- signalling -----------------------------------------------------------------------

    def best_irq(self, cpu: int) -> tuple[int, int, int]:
        """``gic_get_best_irq``: (irq, priority, group) of the highest-priority pending,
        enabled, inactive interrupt targeting ``cpu``; (1023, 0x100, 0) if none. Equal
        priorities go to the lowest ID."""
        candidates = self.enabled[cpu] & ~self.active[cpu] & self._targets[cpu] & \
            (self.pending[cpu] | (self.level[cpu] & ~self.edge_trigger)) & self._irq_mask
        best_irq, best_prio = SPURIOUS, 0x100
        while candidates:
            low = candidates & -candidates
            irq = low.bit_length() - 1
            candidates ^= low
            prio = self.get_priority(irq, cpu)
            if prio < best_prio:
                best_prio, best_irq = prio, irq
                if prio == 0:
                    break
        group = self._group(best_irq, cpu) if best_irq < SPURIOUS else 0
        return best_irq, best_prio, group

    def _signaling_enabled(self, cpu: int, group_mask: int) -> bool:
        return bool(self.ctlr & group_mask) and bool(self.cpu_ctlr[cpu] & group_mask)

    def update(self) -> None:
        """``gic_update``: recompute each CPU's highest pending interrupt and its IRQ and FIQ
        lines (a group 0 interrupt is an FIQ when GICC_CTLR.FIQEn is set)."""
        for cpu in range(self.num_cpu):
            self.current_pending[cpu] = SPURIOUS
            if not self._signaling_enabled(cpu, GICD_CTLR_EN_GRP0 | GICD_CTLR_EN_GRP1):
                self.cpu_irq[cpu].set_level(0)
                self.cpu_fiq[cpu].set_level(0)
                continue
            best_irq, best_prio, group = self.best_irq(cpu)
            if tracing.ON and best_irq != SPURIOUS:
                trace("gic_update_bestirq", s="cpu", cpu=cpu, irq=best_irq, prio=best_prio,
                      priority_mask=self.priority_mask[cpu],
                      running_priority=self.running_priority[cpu])
            irq_level = fiq_level = 0
            if best_prio < self.priority_mask[cpu]:
                self.current_pending[cpu] = best_irq
                if best_prio < self.running_priority[cpu] and \
                        self._signaling_enabled(cpu, 1 << group):
                    if group == 0 and self.cpu_ctlr[cpu] & GICC_CTLR_FIQ_EN:
                        fiq_level = 1
                        if tracing.ON:
                            trace("gic_update_set_irq", cpu=cpu, name="fiq", level=1)
                    else:
                        irq_level = 1
                        if tracing.ON:
                            trace("gic_update_set_irq", cpu=cpu, name="irq", level=1)
            self.cpu_irq[cpu].set_level(irq_level)
            self.cpu_fiq[cpu].set_level(fiq_level)

    def set_irq(self, n: int, level: int) -> None:
        """``gic_set_irq``: input ``n`` (an SPI, or a PPI of one CPU) changes level."""
        spis = self.num_irq - GIC_INTERNAL
        if n < spis:
            cm = ALL_CPU_MASK
            irq = n + GIC_INTERNAL
            target = self.irq_target[irq]
        else:
            n -= spis
            cpu, irq = divmod(n, GIC_INTERNAL)
            cm = target = 1 << cpu
        if irq < GIC_NR_SGIS:
            raise ValueError(f"GIC input {n}: SGI {irq} has no input line")
        level = 1 if level else 0
        if level == self._test(self.level, irq, cm):
            return
        if level:
            self._set(self.level, irq, cm)
            if self.edge_trigger >> irq & 1:
                self._set(self.pending, irq, target)
        else:
            self._clear(self.level, irq, cm)
        if tracing.ON:
            trace("gic_set_irq", irq=irq, level=level, cpumask=cm, target=target)
        self.update()

    # -- CPU interface operations -----------------------------------------------------------

    def _current_pending_irq(self, cpu: int) -> int:
        """``gic_get_current_pending_irq`` (a GICv2 has groups; without the Security
        Extensions every access is Secure): a group 1 interrupt reads as 1022 unless
        GICC_CTLR.AckCtl is set."""
        pending = self.current_pending[cpu]
        if pending < GIC_MAXIRQ and self._group(pending, cpu) and \
                not self.cpu_ctlr[cpu] & GICC_CTLR_ACK_CTL:
            return 1022
        return pending

    def _group_priority(self, cpu: int, irq: int) -> int:
        if not self.cpu_ctlr[cpu] & GICC_CTLR_CBPR and self._group(irq, cpu):
            bpr = self.abpr[cpu] - 1
        else:
            bpr = self.bpr[cpu]
        return self.get_priority(irq, cpu) & (~0 << ((bpr & 7) + 1))

    def _activate_irq(self, cpu: int, irq: int) -> None:
        prio = self._group_priority(cpu, irq)
        preemption_level = prio >> (GIC_MIN_BPR + 1)
        regno, bitno = divmod(preemption_level, 32)
        aprs = self.nsapr if self._group(irq, cpu) else self.apr
        aprs[regno][cpu] |= 1 << bitno
        self.running_priority[cpu] = prio
        self.active[cpu] |= 1 << irq

    def _prio_from_apr_bits(self, cpu: int) -> int:
        for i in range(GIC_NR_APRS):
            apr = self.apr[i][cpu] | self.nsapr[i][cpu]
            if apr:
                return (i * 32 + _ctz(apr)) << (GIC_MIN_BPR + 1)
        return 0x100

    def _drop_prio(self, cpu: int, group: int) -> None:
        aprs = self.nsapr if group else self.apr
        for i in range(GIC_NR_APRS):
            if aprs[i][cpu]:
                aprs[i][cpu] &= aprs[i][cpu] - 1  # the lowest set bit
                break
        self.running_priority[cpu] = self._prio_from_apr_bits(cpu)

    def acknowledge(self, cpu: int = 0) -> int:
        """``gic_acknowledge_irq``, a read of GICC_IAR: the interrupt ID (with the source
        CPU in bits 10-12 for an SGI), now active; 1023 (or 1022) if none can be taken."""
        irq = self._current_pending_irq(cpu)
        if tracing.ON:
            trace("gic_acknowledge_irq", s="cpu", cpu=cpu, irq=irq)
        if irq >= GIC_MAXIRQ:
            return irq
        if self.get_priority(irq, cpu) >= self.running_priority[cpu]:
            return SPURIOUS
        self._activate_irq(cpu, irq)
        if irq < GIC_NR_SGIS:
            sources = self.sgi_pending[irq][cpu]
            src = _ctz(sources)
            self.sgi_pending[irq][cpu] = sources & ~(1 << src)
            if not self.sgi_pending[irq][cpu]:
                self.pending[cpu] &= ~(1 << irq)
            ret = irq | ((src & 7) << 10)
        else:
            self.pending[cpu] &= ~(1 << irq)
            ret = irq
        self.update()
        return ret

    def _eoi_split(self, cpu: int) -> bool:
        return bool(self.cpu_ctlr[cpu] & GICC_CTLR_EOIMODE)

    def complete(self, cpu: int, irq: int) -> None:
        """``gic_complete_irq``, a write of GICC_EOIR: drop the running priority and, unless
        GICC_CTLR.EOImode splits them, deactivate the interrupt."""
        if irq >= self.num_irq or self.running_priority[cpu] == 0x100:
            return
        self._drop_prio(cpu, self._group(irq, cpu))
        if not self._eoi_split(cpu):
            self.active[cpu] &= ~(1 << irq)
        self.update()

    def deactivate(self, cpu: int, irq: int) -> None:
        """``gic_deactivate_irq``, a write of GICC_DIR (ignored unless EOImode is set)."""
        if irq >= GIC_MAXIRQ or irq >= self.num_irq or not self._eoi_split(cpu):
            return
        self.active[cpu] &= ~(1 << irq)

    def running_priority_reg(self, cpu: int) -> int:
        """GICC_RPR: 0xff while idle."""
        prio = self.running_priority[cpu]
        return 0xFF if prio > 0xFF else prio

    def _fullprio_mask(self) -> int:
        return (0xFF << (8 - self.n_prio_bits)) & 0xFF

    def cpu_read(self, cpu: int, offset: int) -> int:
        """``gic_cpu_read``."""
        if offset == 0x00:
            value = self.cpu_ctlr[cpu]
        elif offset == 0x04:
            value = self.priority_mask[cpu]
        elif offset == 0x08:
            value = self.bpr[cpu]
        elif offset == 0x0C:
            value = self.acknowledge(cpu)
        elif offset == 0x14:
            value = self.running_priority_reg(cpu)
        elif offset == 0x18:
            value = self._current_pending_irq(cpu)
        elif offset == 0x1C:
            value = self.abpr[cpu]
        elif offset in (0xD0, 0xD4, 0xD8, 0xDC):
            value = self.apr[(offset - 0xD0) // 4][cpu]
        elif offset in (0xE0, 0xE4, 0xE8, 0xEC):
            value = self.nsapr[(offset - 0xE0) // 4][cpu]
        elif offset == 0xFC:
            value = (self.revision << 16) | 0x43B
        else:
            value = 0
        if tracing.ON:
            trace("gic_cpu_read", s="cpu", cpu=cpu, addr=offset, val=value)
        return value

    def cpu_write(self, cpu: int, offset: int, value: int) -> None:
        """``gic_cpu_write``."""
        value &= 0xFFFFFFFF
        if tracing.ON:
            trace("gic_cpu_write", s="cpu", cpu=cpu, addr=offset, val=value)
        if offset == 0x00:
            self.cpu_ctlr[cpu] = value & GICC_CTLR_V2_MASK
        elif offset == 0x04:
            self.priority_mask[cpu] = value & self._fullprio_mask()
        elif offset == 0x08:
            self.bpr[cpu] = max(value & 7, GIC_MIN_BPR)
        elif offset == 0x10:
            self.complete(cpu, value & 0x3FF)
            return
        elif offset == 0x1C:
            self.abpr[cpu] = max(value & 7, GIC_MIN_ABPR)
        elif offset in (0xD0, 0xD4, 0xD8, 0xDC):
            self.apr[(offset - 0xD0) // 4][cpu] = value
            self.running_priority[cpu] = self._prio_from_apr_bits(cpu)
        elif offset in (0xE0, 0xE4, 0xE8, 0xEC):
            self.nsapr[(offset - 0xE0) // 4][cpu] = value
            self.running_priority[cpu] = self._prio_from_apr_bits(cpu)
        elif offset == 0x1000:
            self.deactivate(cpu, value & 0x3FF)
        else:
            return
        self.update()

    # -- distributor ----------------------------------------------------------------------

    def dist_readb(self, offset: int, cpu: int = 0) -> int:
        """``gic_dist_readb``: one byte of the distributor."""
        cm = 1 << cpu
        if offset < 0x100:
            if offset == 0:
                return self.ctlr
            if offset == 4:  # GICD_TYPER: ITLinesNumber, CPUNumber
                return ((self.num_irq // 32) - 1) | ((self.num_cpu - 1) << 5)
            if offset == 8:  # GICD_IIDR: Arm's JEP106 code
                return 0x3B
            if offset == 9:
                return 0x04
            if offset < 0x80:
                return 0
            irq = (offset - 0x80) * 8  # GICD_IGROUPR
            if irq >= self.num_irq:
                return 0
            return self.group[cpu] >> irq & 0xFF
        if offset < 0x400:
            # ISENABLER/ICENABLER, ISPENDR/ICPENDR, ISACTIVER/ICACTIVER: 8 IDs per byte
            irq = (offset & 0x7F) * 8
            if irq >= self.num_irq:
                return 0
            if offset < 0x200:
                return self.enabled[cpu] >> irq & 0xFF
            mask = cm if irq < GIC_INTERNAL else ALL_CPU_MASK
            res = 0
            if offset < 0x300:
                for i in range(8):
                    if self._test_pending(irq + i, mask):
                        res |= 1 << i
            else:
                for i in range(8):
                    if self._test(self.active, irq + i, mask):
                        res |= 1 << i
            return res
        if offset < 0x800:  # GICD_IPRIORITYR
            irq = offset - 0x400
            if irq >= self.num_irq:
                return 0
            return self.get_priority(irq, cpu) & self._fullprio_mask()
        if offset < 0xC00:  # GICD_ITARGETSR
            if self.num_cpu == 1:
                return 0  # RAZ/WI on a uniprocessor GIC
            irq = offset - 0x800
            if irq >= self.num_irq:
                return 0
            return cm if irq < GIC_INTERNAL else self.irq_target[irq]
        if offset < 0xF00:  # GICD_ICFGR: bit 1 of each pair is edge-triggered
            irq = (offset - 0xC00) * 4
            if irq >= self.num_irq:
                return 0
            res = 0
            for i in range(4):
                if self.edge_trigger >> (irq + i) & 1:
                    res |= 2 << (i * 2)
            return res
        if offset < 0xF10:
            return 0
        if offset < 0xF30:  # GICD_CPENDSGIR / GICD_SPENDSGIR
            irq = (offset - 0xF10) & 0xF
            return self.sgi_pending[irq][cpu]
        if offset < 0xFD0:
            return 0
        if offset < 0x1000:
            return 0 if offset & 3 else GIC_ID_GICV2[(offset - 0xFD0) >> 2]
        return 0

    def dist_read(self, offset: int, size: int) -> int:
        """``gic_dist_read``: 1, 2 or 4 bytes, assembled from byte reads."""
        value = 0
        for i in range(min(size, 4)):
            value |= self.dist_readb(offset + i) << (8 * i)
        if tracing.ON:
            trace("gic_dist_read", addr=offset, size=size, val=value)
        return value

    def dist_writeb(self, offset: int, value: int, cpu: int = 0) -> None:
        """``gic_dist_writeb``: one byte of the distributor."""
        if offset < 0x100:
            if offset == 0:
                self.ctlr = value & (GICD_CTLR_EN_GRP0 | GICD_CTLR_EN_GRP1)
            elif offset < 4:
                pass
            elif offset >= 0x80:  # GICD_IGROUPR: banked for the internal interrupts
                irq = (offset - 0x80) * 8
                if irq >= self.num_irq:
                    return
                cm = (1 << cpu) if irq < GIC_INTERNAL else ALL_CPU_MASK
                for i in range(8):
                    if value & (1 << i):
                        self._set(self.group, irq + i, cm)
                    else:
                        self._clear(self.group, irq + i, cm)
            else:
                return
        elif offset < 0x180:  # GICD_ISENABLER
            irq = (offset - 0x100) * 8
            if irq >= self.num_irq:
                return
            if irq < GIC_NR_SGIS:
                value = 0xFF
            cm = (1 << cpu) if irq < GIC_INTERNAL else ALL_CPU_MASK
            for i in range(8):
                if value & (1 << i):
                    if tracing.ON and not self._test(self.enabled, irq + i, cm):
                        trace("gic_enable_irq", irq=irq + i)
                    self._set(self.enabled, irq + i, cm)
        elif offset < 0x200:  # GICD_ICENABLER
            irq = (offset - 0x180) * 8
            if irq >= self.num_irq:
                return
            if irq < GIC_NR_SGIS:
                value = 0
            cm = (1 << cpu) if irq < GIC_INTERNAL else ALL_CPU_MASK
            for i in range(8):
                if value & (1 << i):
                    if tracing.ON and self._test(self.enabled, irq + i, cm):
                        trace("gic_disable_irq", irq=irq + i)
                    self._clear(self.enabled, irq + i, cm)
        elif offset < 0x280:  # GICD_ISPENDR
            irq = (offset - 0x200) * 8
            if irq >= self.num_irq:
                return
            if irq < GIC_NR_SGIS:
                value = 0
            for i in range(8):
                if value & (1 << i):
                    self._set(self.pending, irq + i, self.irq_target[irq + i])
        elif offset < 0x300:  # GICD_ICPENDR (QEMU clears every CPU's bank, PPIs too)
            irq = (offset - 0x280) * 8
            if irq >= self.num_irq:
                return
            if irq < GIC_NR_SGIS:
                value = 0
            for i in range(8):
                if value & (1 << i):
                    self._clear(self.pending, irq + i, ALL_CPU_MASK)
        elif offset < 0x400:  # GICD_ISACTIVER / GICD_ICACTIVER
            irq = (offset & 0x7F) * 8
            if irq >= self.num_irq:
                return
            cm = (1 << cpu) if irq < GIC_INTERNAL else ALL_CPU_MASK
            for i in range(8):
                if value & (1 << i):
                    if offset < 0x380:
                        self._set(self.active, irq + i, cm)
                    else:
                        self._clear(self.active, irq + i, cm)
        elif offset < 0x800:  # GICD_IPRIORITYR
            irq = offset - 0x400
            if irq >= self.num_irq:
                return
            value &= self._fullprio_mask()
            if irq < GIC_INTERNAL:
                self.priority1[irq][cpu] = value
            else:
                self.priority2[irq - GIC_INTERNAL] = value
        elif offset < 0xC00:  # GICD_ITARGETSR
            if self.num_cpu != 1:
                irq = offset - 0x800
                if irq >= self.num_irq:
                    return
                if irq < GIC_INTERNAL:
                    value = ALL_CPU_MASK
                self.irq_target[irq] = value & ALL_CPU_MASK
                for c in range(GIC_NCPU):
                    if value >> c & 1:
                        self._targets[c] |= 1 << irq
                    else:
                        self._targets[c] &= ~(1 << irq) | INTERNAL_MASK
        elif offset < 0xF00:  # GICD_ICFGR
            irq = (offset - 0xC00) * 4
            if irq >= self.num_irq:
                return
            if irq < GIC_NR_SGIS:
                value |= 0xAA
            for i in range(4):
                if value & (2 << (i * 2)):
                    self.edge_trigger |= 1 << (irq + i)
                else:
                    self.edge_trigger &= ~(1 << (irq + i))
        elif offset < 0xF10:  # GICD_SGIR is a 32-bit register
            return
        elif offset < 0xF20:  # GICD_CPENDSGIR
            irq = offset - 0xF10
            self.sgi_pending[irq][cpu] &= ~value
            if not self.sgi_pending[irq][cpu]:
                self.pending[cpu] &= ~(1 << irq)
        elif offset < 0xF30:  # GICD_SPENDSGIR
            irq = offset - 0xF20
            self.pending[cpu] |= 1 << irq
            self.sgi_pending[irq][cpu] |= value
        else:
            return
        self.update()

    def send_sgi(self, value: int, cpu: int = 0) -> None:
        """A write of GICD_SGIR: SGI ``value & 0xf`` to the CPUs its filter selects."""
        irq = value & 0xF
        target_filter = (value >> 24) & 3
        if target_filter == 0:
            mask = (value >> 16) & ALL_CPU_MASK
        elif target_filter == 1:
            mask = ALL_CPU_MASK ^ (1 << cpu)
        elif target_filter == 2:
            mask = 1 << cpu
        else:
            mask = ALL_CPU_MASK
        self._set(self.pending, irq, mask)
        for target in range(GIC_NCPU):
            if mask >> target & 1:
                self.sgi_pending[irq][target] |= 1 << cpu
        self.update()

    def dist_write(self, offset: int, size: int, value: int) -> None:
        """``gic_dist_write``: bytes in ascending order; GICD_SGIR only as a 32-bit write."""
        if tracing.ON:
            trace("gic_dist_write", addr=offset, size=size, val=value)
        if size == 4 and offset == 0xF00:
            self.send_sgi(value)
            return
        for i in range(min(size, 4)):
            self.dist_writeb(offset + i, (value >> (8 * i)) & 0xFF)


class _DistOps:
    __slots__ = ("gic",)

    def __init__(self, gic: ArmGic) -> None:
        self.gic = gic

    def read(self, offset: int, size: int) -> int:
        return self.gic.dist_read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self.gic.dist_write(offset, size, value)


class _CpuOps:
    """The CPU interface of the accessing CPU (emu runs one: CPU 0, as QEMU's
    ``gic_get_current_cpu`` answers for one CPU and under qtest)."""

    __slots__ = ("gic",)

    def __init__(self, gic: ArmGic) -> None:
        self.gic = gic

    def read(self, offset: int, size: int) -> int:
        return self.gic.cpu_read(0, offset)

    def write(self, offset: int, size: int, value: int) -> None:
        self.gic.cpu_write(0, offset, value)
