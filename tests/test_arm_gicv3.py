"""The GICv3 objects (emu/devices/arm_gicv3*.py) without a CPU: the CPU interface's
registers through ``read_sysreg`` / ``write_sysreg``, the distributor and redistributor
through their regions, the IRQ/FIQ outputs as lists of levels.

Expected values are QEMU 7.2's, as the gicv3 guest image prints them under
``qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a57`` (tests/test_virt_gicv3_guest.py
compares the whole output with emu's), and the GIC specification's where it is explicit
(Arm IHI 0069H: 4.8 priorities and preemption, 12.2 the ICC_* registers).
"""

from __future__ import annotations

import pytest

from emu.devices.arm_gicv3 import ArmGicV3
from emu.devices.arm_gicv3_cpuif import (
    ICC_AP0R0_EL1,
    ICC_AP1R0_EL1,
    ICC_ASGI1R_EL1,
    ICC_BPR0_EL1,
    ICC_BPR1_EL1,
    ICC_CTLR_EL1,
    ICC_DIR_EL1,
    ICC_EOIR0_EL1,
    ICC_EOIR1_EL1,
    ICC_HPPIR0_EL1,
    ICC_HPPIR1_EL1,
    ICC_IAR0_EL1,
    ICC_IAR1_EL1,
    ICC_IGRPEN0_EL1,
    ICC_IGRPEN1_EL1,
    ICC_PMR_EL1,
    ICC_RPR_EL1,
    ICC_SGI0R_EL1,
    ICC_SGI1R_EL1,
    ICC_SRE_EL1,
    ID_AA64PFR0_EL1,
    GicV3CpuInterface,
    IdAa64Pfr0Gic,
)

SysregKey = tuple[int, int, int, int, int]
S = 0x10000  # SGI_base in the redistributor region


class Ram:
    """A bus master's view of 1 MiB of RAM at 0x41000000 (the LPI tables)."""

    BASE = 0x41000000

    def __init__(self) -> None:
        self.data = bytearray(1 << 20)

    def dma_read(self, addr: int, size: int) -> tuple[bytes, bool]:
        off = addr - self.BASE
        if off >= 0 and off + size <= len(self.data):
            return bytes(self.data[off:off + size]), True
        return bytes(size), False

    def write_some(self, addr: int, data: bytes) -> bool:
        off = addr - self.BASE
        if off >= 0 and off + len(data) <= len(self.data):
            self.data[off:off + len(data)] = data
            return True
        return False


class Cpu:
    """One CPU's view: its GIC CPU interface, its IRQ and FIQ lines, its EL."""

    def __init__(self) -> None:
        self.ram = Ram()
        self.gic = ArmGicV3(dma=self.ram)
        self.el = 1
        self.icc = GicV3CpuInterface(self.gic, 0, current_el=lambda: self.el)
        self.irq: list[int] = []
        self.fiq: list[int] = []
        self.gic.cpu_irq[0].connect(self.irq.append)
        self.gic.cpu_fiq[0].connect(self.fiq.append)

    def mrs(self, key: SysregKey) -> int | None:
        return self.icc.read_sysreg(*key)

    def msr(self, key: SysregKey, value: int) -> bool:
        return self.icc.write_sysreg(*key, value)

    def dist(self, offset: int, value: int | None = None, size: int = 4) -> int:
        if value is not None:
            self.gic.dist.ops.write(offset, size, value)
            return 0
        return self.gic.dist.ops.read(offset, size)

    def redist(self, offset: int, value: int | None = None, size: int = 4) -> int:
        if value is not None:
            self.gic.redist.ops.write(offset, size, value)
            return 0
        return self.gic.redist.ops.read(offset, size)

    @property
    def lines(self) -> tuple[int, int]:
        """(IRQ, FIQ) as last set."""
        return self.gic.cpu_irq[0].level, self.gic.cpu_fiq[0].level

    def enable(self) -> None:
        """As the guest image's "sgi" step: both groups on, SGIs 8-15 and PPIs 24-31 in
        Group 1, every SGI/PPI enabled, PMR 0xff."""
        self.redist(0x14, 0)
        self.dist(0x0, 3)
        self.redist(S + 0x80, 0xFF00FF00)
        self.redist(S + 0x100, 0xFFFFFFFF)
        self.msr(ICC_PMR_EL1, 0xFF)
        self.msr(ICC_IGRPEN0_EL1, 1)
        self.msr(ICC_IGRPEN1_EL1, 1)


@pytest.fixture()
def cpu() -> Cpu:
    return Cpu()


def test_reset_values(cpu: Cpu) -> None:
    """ICC_SRE_EL1 7 (SRE, DFB, DIB: system registers only); ICC_CTLR_EL1 0x8c00 (A3V,
    IDbits 1: 24-bit INTIDs, PRIbits 4: 5 priority bits); PMR 0; BPR0 2 and BPR1 3 (the
    minimums with 5 preemption bits); idle running priority 0xff; nothing pending."""
    assert [cpu.mrs(k) for k in (ICC_SRE_EL1, ICC_CTLR_EL1, ICC_PMR_EL1, ICC_BPR0_EL1,
                                 ICC_BPR1_EL1, ICC_IGRPEN0_EL1, ICC_IGRPEN1_EL1,
                                 ICC_AP0R0_EL1, ICC_AP1R0_EL1, ICC_RPR_EL1, ICC_HPPIR0_EL1,
                                 ICC_HPPIR1_EL1, ICC_IAR0_EL1, ICC_IAR1_EL1)] == \
        [7, 0x8C00, 0, 2, 3, 0, 0, 0, 0, 0xFF, 1023, 1023, 1023, 1023]
    assert cpu.lines == (0, 0)


def test_write_masks(cpu: Cpu) -> None:
    """QEMU's values: PMR keeps bits 31:3; BPR0 at least 2, BPR1 at least 3, a value of 8
    stores 0; with ICC_CTLR_EL1.CBPR, BPR1 reads BPR0 + 1 (at most 7) and ignores writes;
    only CBPR and EOImode of ICC_CTLR_EL1 are writable; IGRPEN keeps bit 0; SRE ignores
    writes."""
    got = []
    for value in (0xFF, 0x1FF, 0x7, 0xFFFFFFFFFFFFFFF0):
        cpu.msr(ICC_PMR_EL1, value)
        got.append(cpu.mrs(ICC_PMR_EL1))
    assert got == [0xF8, 0x1F8, 0, 0xFFFFFFF0]
    got = []
    for key, value in ((ICC_BPR0_EL1, 0), (ICC_BPR0_EL1, 7), (ICC_BPR0_EL1, 8),
                       (ICC_BPR0_EL1, 3), (ICC_BPR1_EL1, 0), (ICC_BPR1_EL1, 5)):
        cpu.msr(key, value)
        got.append(cpu.mrs(key))
    assert got == [2, 7, 0, 3, 3, 5]
    cpu.msr(ICC_CTLR_EL1, 0xFFFFFFFFFFFFFFFF)
    assert cpu.mrs(ICC_CTLR_EL1) == 0x8C03
    assert cpu.mrs(ICC_BPR1_EL1) == 4
    cpu.msr(ICC_BPR1_EL1, 6)
    assert cpu.mrs(ICC_BPR1_EL1) == 4
    cpu.msr(ICC_BPR0_EL1, 7)
    assert cpu.mrs(ICC_BPR1_EL1) == 7
    cpu.msr(ICC_CTLR_EL1, 0)
    assert (cpu.mrs(ICC_CTLR_EL1), cpu.mrs(ICC_BPR1_EL1)) == (0x8C00, 5)
    cpu.msr(ICC_IGRPEN0_EL1, 0xFF)
    cpu.msr(ICC_IGRPEN1_EL1, 0xFE)
    cpu.msr(ICC_SRE_EL1, 0)
    assert (cpu.mrs(ICC_IGRPEN0_EL1), cpu.mrs(ICC_IGRPEN1_EL1), cpu.mrs(ICC_SRE_EL1)) == \
        (1, 0, 7)


def test_active_priorities_and_running_priority(cpu: Cpu) -> None:
    """The running priority is the lowest set APR bit << 3 (5 preemption bits); an EOI drops
    the lowest bit of the group whose bit is lowest, and only through that group's EOIR;
    1023 is ignored."""
    cpu.msr(ICC_AP0R0_EL1, 0xFFFFFFFFFFFFFFFF)
    assert (cpu.mrs(ICC_AP0R0_EL1), cpu.mrs(ICC_RPR_EL1)) == (0xFFFFFFFF, 0)
    cpu.msr(ICC_AP0R0_EL1, 0x100)
    assert cpu.mrs(ICC_RPR_EL1) == 0x40
    cpu.msr(ICC_AP1R0_EL1, 0x10)
    assert cpu.mrs(ICC_RPR_EL1) == 0x20
    cpu.msr(ICC_EOIR0_EL1, 1023)
    cpu.msr(ICC_EOIR0_EL1, 40)  # Group 1 has the lowest bit: EOIR0 is ignored
    assert (cpu.mrs(ICC_AP1R0_EL1), cpu.mrs(ICC_AP0R0_EL1)) == (0x10, 0x100)
    cpu.msr(ICC_EOIR1_EL1, 40)
    assert (cpu.mrs(ICC_AP1R0_EL1), cpu.mrs(ICC_RPR_EL1)) == (0, 0x40)
    cpu.msr(ICC_EOIR1_EL1, 40)  # now Group 0's: EOIR1 is ignored
    assert cpu.mrs(ICC_AP0R0_EL1) == 0x100


def test_sgis_to_self_groups_and_lines(cpu: Cpu) -> None:
    """ICC_SGI1R_EL1 pends a Group 1 SGI (an IRQ); ICC_SGI0R_EL1 and ICC_ASGI1R_EL1 a
    Group 0 one (an FIQ); an SGI not configured in the requested group is dropped; IAR1
    does not see Group 0, IAR0 does not see Group 1; the APR bit is the group priority."""
    cpu.enable()
    cpu.msr(ICC_SGI1R_EL1, 9 << 24 | 1)
    assert (cpu.redist(S + 0x200), cpu.mrs(ICC_HPPIR0_EL1), cpu.mrs(ICC_HPPIR1_EL1),
            cpu.lines) == (0x200, 1023, 9, (1, 0))
    assert (cpu.mrs(ICC_IAR0_EL1), cpu.mrs(ICC_IAR1_EL1)) == (1023, 9)
    assert (cpu.redist(S + 0x200), cpu.redist(S + 0x300), cpu.mrs(ICC_RPR_EL1),
            cpu.mrs(ICC_AP1R0_EL1), cpu.lines) == (0, 0x200, 0, 1, (0, 0))
    cpu.msr(ICC_EOIR1_EL1, 9)
    assert (cpu.redist(S + 0x300), cpu.mrs(ICC_RPR_EL1)) == (0, 0xFF)

    cpu.msr(ICC_SGI1R_EL1, 2 << 24 | 1)  # SGI 2 is Group 0
    assert cpu.redist(S + 0x200) == 0
    cpu.msr(ICC_SGI0R_EL1, 2 << 24 | 1)
    assert (cpu.redist(S + 0x200), cpu.mrs(ICC_HPPIR0_EL1), cpu.mrs(ICC_HPPIR1_EL1),
            cpu.lines) == (4, 2, 1023, (0, 1))
    assert (cpu.mrs(ICC_IAR1_EL1), cpu.mrs(ICC_IAR0_EL1)) == (1023, 2)
    cpu.msr(ICC_EOIR1_EL1, 2)
    assert cpu.mrs(ICC_RPR_EL1) == 0
    cpu.msr(ICC_EOIR0_EL1, 2)
    assert cpu.mrs(ICC_RPR_EL1) == 0xFF
    cpu.msr(ICC_ASGI1R_EL1, 3 << 24 | 1)
    assert cpu.redist(S + 0x200) == 8
    cpu.redist(S + 0x280, 8)
    cpu.msr(ICC_SGI0R_EL1, 11 << 24 | 1)  # SGI 11 is Group 1
    assert cpu.redist(S + 0x200) == 0


def test_sgi_routing(cpu: Cpu) -> None:
    """The target list names Aff0 values within Aff3.Aff2.Aff1; IRM sends to every CPU but
    this one: with one CPU (affinity 0) only Aff 0.0.0 with bit 0 reaches it."""
    cpu.enable()
    for value in (2, 1 << 16 | 1, 1 << 32 | 1, 1 << 48 | 1, 1 << 40 | 1):
        cpu.msr(ICC_SGI1R_EL1, 9 << 24 | value)
    assert cpu.redist(S + 0x200) == 0
    cpu.msr(ICC_SGI1R_EL1, 9 << 24 | 0xFFFF)
    assert cpu.redist(S + 0x200) == 0x200


def test_priority_mask_and_preemption(cpu: Cpu) -> None:
    """The guest image's "prio" steps: the highest priority pending SPI first; while one is
    active another preempts only if its group priority (bits above BPR1 - 1) is higher;
    PMR masks priorities at or above it; nested EOIs unwind the running priority."""
    cpu.enable()
    cpu.dist(0x84, 0xFFFFFFFF)
    cpu.dist(0x104, 0xFFFFFFFF)
    for irq, prio in ((40, 0xA0), (41, 0x60), (42, 0x58)):
        cpu.dist(0x400 + irq, prio, size=1)
    cpu.dist(0x204, 0x3 << 8)
    assert (cpu.mrs(ICC_HPPIR1_EL1), cpu.mrs(ICC_IAR1_EL1)) == (41, 41)
    assert (cpu.mrs(ICC_RPR_EL1), cpu.mrs(ICC_AP1R0_EL1), cpu.dist(0x304)) == \
        (0x60, 1 << 12, 0x200)
    cpu.dist(0x204, 1 << 10)
    assert (cpu.mrs(ICC_HPPIR1_EL1), cpu.lines) == (42, (1, 0))
    cpu.msr(ICC_BPR1_EL1, 6)  # group priority [7:6]: 0x40 and 0x40
    assert (cpu.lines, cpu.mrs(ICC_IAR1_EL1)) == ((0, 0), 1023)
    cpu.msr(ICC_BPR1_EL1, 5)  # [7:5]: 0x40 beats 0x60
    assert (cpu.lines, cpu.mrs(ICC_IAR1_EL1)) == ((1, 0), 42)
    assert (cpu.mrs(ICC_RPR_EL1), cpu.mrs(ICC_AP1R0_EL1)) == (0x40, 0x1100)
    cpu.msr(ICC_EOIR1_EL1, 42)
    assert (cpu.mrs(ICC_RPR_EL1), cpu.dist(0x304)) == (0x60, 0x200)
    cpu.msr(ICC_EOIR1_EL1, 41)
    assert (cpu.mrs(ICC_RPR_EL1), cpu.mrs(ICC_HPPIR1_EL1), cpu.lines) == (0xFF, 40, (1, 0))
    cpu.msr(ICC_PMR_EL1, 0xA0)
    assert (cpu.lines, cpu.mrs(ICC_HPPIR1_EL1), cpu.mrs(ICC_IAR1_EL1)) == ((0, 0), 40, 1023)
    cpu.msr(ICC_PMR_EL1, 0xA8)
    assert (cpu.lines, cpu.mrs(ICC_IAR1_EL1)) == ((1, 0), 40)


def test_equal_priorities_and_group_enables(cpu: Cpu) -> None:
    """Equal priorities: the lower INTID. A group disabled in GICD_CTLR or ICC_IGRPEN1_EL1
    signals nothing and reads 1023; a disabled interrupt is skipped."""
    cpu.enable()
    cpu.dist(0x84, 0xFFFFFFFF)
    cpu.dist(0x104, 0xFFFFFFFF)
    cpu.dist(0x428, 0x80808080)
    cpu.dist(0x42C, 0x80808080)
    cpu.dist(0x204, 0x3 << 11)
    assert cpu.mrs(ICC_HPPIR1_EL1) == 43
    cpu.dist(0x0, 1)
    assert (cpu.mrs(ICC_HPPIR1_EL1), cpu.lines) == (1023, (0, 0))
    cpu.dist(0x0, 3)
    cpu.msr(ICC_IGRPEN1_EL1, 0)
    assert (cpu.mrs(ICC_HPPIR1_EL1), cpu.lines) == (1023, (0, 0))
    cpu.msr(ICC_IGRPEN1_EL1, 1)
    cpu.dist(0x184, 1 << 11)
    assert (cpu.mrs(ICC_HPPIR1_EL1), cpu.lines) == (44, (1, 0))


def test_routing_to_no_cpu_keeps_an_spi_pending(cpu: Cpu) -> None:
    """GICD_IROUTER naming an affinity no CPU has: pending, signalled to nobody."""
    cpu.enable()
    cpu.dist(0x84, 0xFFFFFFFF)
    cpu.dist(0x104, 0xFFFFFFFF)
    cpu.dist(0x6000 + 8 * 45, 0x100)
    cpu.dist(0x204, 1 << 13)
    assert (cpu.dist(0x204), cpu.mrs(ICC_HPPIR1_EL1)) == (1 << 13, 1023)
    cpu.dist(0x6000 + 8 * 45, 0)
    assert cpu.mrs(ICC_HPPIR1_EL1) == 45


def test_eoimode_splits_drop_and_deactivation(cpu: Cpu) -> None:
    """With ICC_CTLR_EL1.EOImode, EOIR only drops the priority and DIR deactivates; without
    it DIR does nothing."""
    cpu.enable()
    cpu.dist(0x84, 0xFFFFFFFF)
    cpu.dist(0x104, 0xFFFFFFFF)
    cpu.dist(0x42C, 0x80808080)
    cpu.dist(0x204, 1 << 13)
    assert cpu.mrs(ICC_IAR1_EL1) == 45
    cpu.msr(ICC_DIR_EL1, 45)  # EOImode 0: ignored
    assert cpu.dist(0x304) == 1 << 13
    cpu.msr(ICC_EOIR1_EL1, 45)
    cpu.msr(ICC_CTLR_EL1, 2)
    cpu.dist(0x204, 1 << 13)
    assert cpu.mrs(ICC_IAR1_EL1) == 45
    cpu.msr(ICC_EOIR1_EL1, 45)
    assert (cpu.mrs(ICC_RPR_EL1), cpu.dist(0x304)) == (0xFF, 1 << 13)
    cpu.dist(0x204, 1 << 13)
    assert cpu.mrs(ICC_HPPIR1_EL1) == 1023  # pending and active: not a candidate
    cpu.msr(ICC_DIR_EL1, 1023)
    cpu.msr(ICC_DIR_EL1, 45)
    assert (cpu.dist(0x304), cpu.mrs(ICC_HPPIR1_EL1), cpu.lines) == (0, 45, (1, 0))


def test_ppi_level_and_edge(cpu: Cpu) -> None:
    """The virtual timer's PPI (input 256 + 27): level-triggered, it stays pending after the
    EOI while the line is high; edge-triggered (GICR_ICFGR1), a rising edge is latched."""
    cpu.enable()
    timer = cpu.gic.inputs[256 + 27]
    timer.set_level(1)
    assert (cpu.redist(S + 0x200), cpu.mrs(ICC_IAR1_EL1)) == (1 << 27, 27)
    cpu.msr(ICC_EOIR1_EL1, 27)
    assert cpu.mrs(ICC_HPPIR1_EL1) == 27
    timer.set_level(0)
    assert (cpu.redist(S + 0x200), cpu.mrs(ICC_HPPIR1_EL1)) == (0, 1023)
    cpu.redist(S + 0xC04, 0x00800000)
    assert (cpu.redist(S + 0xC04), cpu.redist(S + 0xC00)) == (0x00800000, 0xAAAAAAAA)
    timer.set_level(1)
    timer.set_level(0)
    assert (cpu.redist(S + 0x200), cpu.mrs(ICC_IAR1_EL1)) == (1 << 27, 27)
    cpu.msr(ICC_EOIR1_EL1, 27)
    assert cpu.redist(S + 0x200) == 0


def test_icfgr_write_leaves_the_pending_interrupt_stale(cpu: Cpu) -> None:
    """QEMU does not recompute the highest pending interrupt when GICD_ICFGR changes: a
    level-triggered SPI held high and made edge-triggered (latch clear) is no longer pending,
    but the CPU interface still offers it until something recomputes (the guest image's
    "level to edge" step)."""
    cpu.enable()
    cpu.dist(0x84, 0xFFFFFFFF)
    cpu.dist(0x104, 0xFFFFFFFF)
    cpu.gic.inputs[1].set_level(1)  # SPI 1: INTID 33
    assert cpu.mrs(ICC_IAR1_EL1) == 33
    cpu.msr(ICC_EOIR1_EL1, 33)
    cpu.dist(0xC08, 0x8)
    assert (cpu.dist(0x204), cpu.mrs(ICC_HPPIR1_EL1), cpu.lines) == (0, 33, (1, 0))
    assert cpu.mrs(ICC_IAR1_EL1) == 33
    cpu.msr(ICC_EOIR1_EL1, 33)
    cpu.dist(0xC08, 0)
    assert (cpu.dist(0x204), cpu.mrs(ICC_HPPIR1_EL1)) == (2, 1023)
    cpu.dist(0x104, 0)  # a write that recomputes
    assert cpu.mrs(ICC_HPPIR1_EL1) == 33


def test_lpis_from_the_tables_in_memory(cpu: Cpu) -> None:
    """GICR_CTLR.EnableLPIs scans the pending table (GICR_PENDBASER) for LPIs enabled in the
    configuration table (GICR_PROPBASER, IDbits 13); the best is offered as a Group 1
    interrupt; acknowledging it clears its pending bit in memory."""
    cpu.enable()
    config, pending = Ram.BASE, Ram.BASE + 0x10000
    ram = cpu.ram.data
    ram[3] = 0x40 | 1          # LPI 8195: priority 0x40, enabled
    ram[5] = 0x30              # LPI 8197: disabled
    ram[9] = 0x50 | 1          # LPI 8201
    ram[0x10000 + 1024] = 0x28  # 8195, 8197 pending
    ram[0x10000 + 8201 // 8] = 0x02
    cpu.redist(0x70, config | 13, size=8)
    cpu.redist(0x78, pending, size=8)
    assert cpu.mrs(ICC_HPPIR1_EL1) == 1023
    cpu.redist(0x0, 1)
    assert (cpu.redist(0x0), cpu.mrs(ICC_HPPIR1_EL1), cpu.lines) == (3, 8195, (1, 0))
    assert cpu.mrs(ICC_IAR1_EL1) == 8195
    assert (ram[0x10000 + 1024], cpu.mrs(ICC_RPR_EL1), cpu.mrs(ICC_HPPIR1_EL1)) == \
        (0x20, 0x40, 8201)
    cpu.msr(ICC_EOIR1_EL1, 8195)
    assert (cpu.mrs(ICC_RPR_EL1), cpu.mrs(ICC_IAR1_EL1)) == (0xFF, 8201)
    cpu.msr(ICC_EOIR1_EL1, 8201)
    assert (ram[0x10000 + 8201 // 8], cpu.mrs(ICC_HPPIR1_EL1)) == (0, 1023)
    cpu.redist(0x0, 0)
    assert cpu.redist(0x0) == 2


def test_undefined_accesses_are_left_to_the_cpu(cpu: Cpu) -> None:
    """Reads of write-only registers, writes of read-only ones and every access from EL0
    are not handled: the dispatcher lets Unicorn raise UNDEFINED, as QEMU does."""
    for key in (ICC_SGI1R_EL1, ICC_SGI0R_EL1, ICC_ASGI1R_EL1, ICC_EOIR0_EL1, ICC_EOIR1_EL1,
                ICC_DIR_EL1):
        assert cpu.mrs(key) is None
    for key in (ICC_IAR0_EL1, ICC_IAR1_EL1, ICC_HPPIR0_EL1, ICC_HPPIR1_EL1, ICC_RPR_EL1):
        assert cpu.msr(key, 0) is False
    cpu.el = 0
    assert cpu.mrs(ICC_PMR_EL1) is None and cpu.msr(ICC_PMR_EL1, 0xFF) is False
    assert cpu.mrs(ICC_SRE_EL1) is None
    cpu.el = 1
    assert cpu.mrs(ICC_PMR_EL1) == 0


def test_id_aa64pfr0_reports_the_gic_system_registers() -> None:
    """ID_AA64PFR0_EL1.GIC (bits 27:24) = 1, the rest as the CPU has it (Unicorn's
    cortex-a57: 0x2222, GIC 0); not at EL0; writes are not handled."""
    el = [1]
    reg = IdAa64Pfr0Gic(lambda: 0x2222 | 0xF << 24, lambda: el[0])
    assert reg.read_sysreg(*ID_AA64PFR0_EL1) == 0x1002222
    assert not reg.write_sysreg(*ID_AA64PFR0_EL1, 0)
    el[0] = 0
    assert reg.read_sysreg(*ID_AA64PFR0_EL1) is None


def test_reset_lowers_the_outputs_and_keeps_the_cpu_interface(cpu: Cpu) -> None:
    """The GIC's reset clears its state and lowers a raised IRQ; the CPU interface is reset
    with the CPU (``GicV3CpuInterface.reset``)."""
    cpu.enable()
    cpu.msr(ICC_SGI1R_EL1, 9 << 24 | 1)
    assert cpu.lines == (1, 0)
    cpu.gic.reset()
    assert cpu.lines == (0, 0)
    assert (cpu.redist(S + 0x200), cpu.dist(0x0), cpu.redist(0x14)) == (0, 0x50, 6)
    assert cpu.mrs(ICC_PMR_EL1) == 0xF8
    cpu.icc.reset()
    assert (cpu.mrs(ICC_PMR_EL1), cpu.mrs(ICC_IGRPEN1_EL1)) == (0, 0)


def test_bad_construction_is_refused() -> None:
    with pytest.raises(ValueError, match="not divisible by 32"):
        ArmGicV3(num_irq=100, dma=Ram())
    with pytest.raises(ValueError, match="sysmem"):
        ArmGicV3()
    with pytest.raises(ValueError, match="SGI 3 has no input"):
        ArmGicV3(dma=Ram()).set_irq(256 + 3, 1)
