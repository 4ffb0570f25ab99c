"""The GICv3 distributor's registers, GICD_* (QEMU 7.2 hw/intc/arm_gicv3_dist.c; Arm IHI
0069H 12.9 "The GIC Distributor register descriptions").

Decoded as QEMU decodes them, by access size: most registers are 32-bit only; a byte access
reaches only GICD_IPRIORITYR<n> (and the RAZ/WI GICD_ITARGETSR, CPENDSGIR, SPENDSGIR), a
64-bit access only GICD_IROUTER<n>, and no register takes a 16-bit access. Whatever QEMU does
not decode reads as zero and ignores writes (the spec's RAZ/WI for reserved registers;
QEMU's ``gicv3_dist_badread`` / ``badwrite`` trace events). SGIs and PPIs are the
redistributor's: their bits here are RAZ/WI, as are the bits of interrupts past num-irq.

Without the Security Extensions (GICD_CTLR.DS = 1): only GICD_CTLR's EnableGrp0 and
EnableGrp1 are writable (ARE and DS read as one), GICD_TYPER.SecurityExtn is 0, IGRPMODR
and NSACR are RAZ/WI. GICD_TYPER: No1N, A3V, IDbits 15 (16-bit INTIDs), LPIS when the GIC
has LPIs, ITLinesNumber. Writing GICD_ICFGR does not recompute the pending interrupts,
as in QEMU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emu import trace as tracing
from emu.devices.arm_gicv3_common import (
    GIC_INTERNAL,
    GICD_CTLR_EN_GRP0,
    GICD_CTLR_EN_GRP1NS,
    GICD_TYPER_IDBITS,
    GICD_TYPER_LPIS_SHIFT,
    GICV3_IIDR,
    GICV3_PIDR0_DIST,
    half_shuffle32,
    half_unshuffle32,
    set_word,
    word,
)
from emu.trace import trace

if TYPE_CHECKING:
    from emu.devices.arm_gicv3 import ArmGicV3

GICD_CTLR = 0x0000
GICD_TYPER = 0x0004
GICD_IIDR = 0x0008
GICD_STATUSR = 0x0010
GICD_IGROUPR = 0x0080
GICD_ISENABLER = 0x0100
GICD_ICENABLER = 0x0180
GICD_ISPENDR = 0x0200
GICD_ICPENDR = 0x0280
GICD_ISACTIVER = 0x0300
GICD_ICACTIVER = 0x0380
GICD_IPRIORITYR = 0x0400
GICD_ITARGETSR = 0x0800
GICD_ICFGR = 0x0C00
GICD_IGRPMODR = 0x0D00
GICD_NSACR = 0x0E00
GICD_SGIR = 0x0F00
GICD_CPENDSGIR = 0x0F10
GICD_SPENDSGIR = 0x0F20
GICD_IROUTER = 0x6000
GICD_IDREGS = 0xFFD0

DIST_SIZE = 0x10000

#: the bitmap registers: offset -> (attribute, set (True) or clear (False))
_BITMAPS = {GICD_ISENABLER: ("enabled", True), GICD_ICENABLER: ("enabled", False),
            GICD_ISPENDR: ("pending", True), GICD_ICPENDR: ("pending", False),
            GICD_ISACTIVER: ("active", True), GICD_ICACTIVER: ("active", False)}


def _in_range(s: ArmGicV3, irq: int) -> bool:
    return GIC_INTERNAL <= irq < s.num_irq


def _read_bitmap(s: ArmGicV3, name: str, offset: int) -> int:
    """gicd_read_bitmap_reg: RAZ for SGIs, PPIs and unimplemented interrupts; the pending
    registers show the latch ORed with the line of each level-triggered interrupt."""
    irq = offset * 8
    if not _in_range(s, irq):
        return 0
    if name == "pending":
        return word(s.pending | (~s.edge_trigger & s.level), irq)
    return word(getattr(s, name), irq)


def _write_bitmap(s: ArmGicV3, name: str, setting: bool, offset: int, value: int) -> None:
    """gicd_write_set_bitmap_reg / gicd_write_clear_bitmap_reg: a 1 sets (clears) the bit."""
    irq = offset * 8
    if not _in_range(s, irq):
        return
    old = word(getattr(s, name), irq)
    new = old | value if setting else old & ~value
    setattr(s, name, set_word(getattr(s, name), irq, new))
    s.update(irq, 32)


def _read_ipriorityr(s: ArmGicV3, irq: int) -> int:
    return s.gicd_ipriority[irq] if _in_range(s, irq) else 0


def _read_irouter(s: ArmGicV3, irq: int) -> int:
    return s.gicd_irouter[irq] if _in_range(s, irq) else 0


def _write_irouter(s: ArmGicV3, irq: int, value: int) -> None:
    """gicd_write_irouter: every bit is stored (QEMU keeps the RES0 bits and
    Interrupt_Routing_Mode); the target is the CPU with that affinity, if any."""
    if not _in_range(s, irq):
        return
    s.gicd_irouter[irq] = value & 0xFFFFFFFFFFFFFFFF
    s.cache_target_cpustate(irq)
    s.update(irq, 1)


def _readl(s: ArmGicV3, offset: int) -> int | None:
    """gicd_readl: None for an offset QEMU does not decode."""
    if offset == GICD_CTLR:
        return s.gicd_ctlr
    if offset == GICD_TYPER:
        itlinesnumber = (s.num_irq - GIC_INTERNAL) // 32 - 1
        dvis = 1 if s.revision >= 4 else 0
        return (1 << 25) | (1 << 24) | (dvis << 18) | \
            ((1 if s.lpi_enable else 0) << GICD_TYPER_LPIS_SHIFT) | \
            (GICD_TYPER_IDBITS << 19) | itlinesnumber
    if offset == GICD_IIDR:
        return GICV3_IIDR
    if offset == GICD_STATUSR:
        return 0
    if GICD_IGROUPR <= offset < GICD_IGROUPR + 0x80:
        irq = (offset - GICD_IGROUPR) * 8
        return word(s.group, irq) if _in_range(s, irq) else 0
    if GICD_ISENABLER <= offset < GICD_ICACTIVER + 0x80:
        base = offset & ~0x7F
        return _read_bitmap(s, _BITMAPS[base][0], offset - base)
    if GICD_IPRIORITYR <= offset < GICD_IPRIORITYR + 0x400:
        irq = offset - GICD_IPRIORITYR
        value = 0
        for i in range(irq + 3, irq - 1, -1):
            value = (value << 8) | _read_ipriorityr(s, i)
        return value
    if GICD_ITARGETSR <= offset < GICD_ITARGETSR + 0x400:
        return 0  # RAZ/WI: affinity routing is always enabled
    if GICD_ICFGR <= offset < GICD_ICFGR + 0x100:
        irq = (offset - GICD_ICFGR) * 4
        if not _in_range(s, irq):
            return 0
        value = word(s.edge_trigger, irq)
        value = (value >> (16 if irq & 0x1F else 0)) & 0xFFFF
        return half_shuffle32(value) << 1
    if GICD_IGRPMODR <= offset < GICD_IGRPMODR + 0x100 or \
            GICD_NSACR <= offset < GICD_NSACR + 0x100:
        return 0  # RAZ/WI without the Security Extensions
    if GICD_CPENDSGIR <= offset < GICD_SPENDSGIR + 0x10:
        return 0
    if GICD_IROUTER <= offset < GICD_IROUTER + 0x1FE0:
        router = _read_irouter(s, (offset - GICD_IROUTER) // 8)
        return router >> 32 if offset & 7 else router & 0xFFFFFFFF
    if GICD_IDREGS <= offset < GICD_IDREGS + 0x30:
        return s.idreg(offset - GICD_IDREGS, GICV3_PIDR0_DIST)
    if offset == GICD_SGIR:
        return 0  # write-only: reads return zero
    return None


def _writel(s: ArmGicV3, offset: int, value: int) -> bool:
    """gicd_writel: False for an offset QEMU does not decode."""
    if offset == GICD_CTLR:
        mask = GICD_CTLR_EN_GRP0 | GICD_CTLR_EN_GRP1NS
        s.gicd_ctlr = (s.gicd_ctlr & ~mask) | (value & mask)
        s.full_update()
        return True
    if offset == GICD_STATUSR:
        return True
    if GICD_IGROUPR <= offset < GICD_IGROUPR + 0x80:
        irq = (offset - GICD_IGROUPR) * 8
        if _in_range(s, irq):
            s.group = set_word(s.group, irq, value)
            s.update(irq, 32)
        return True
    if GICD_ISENABLER <= offset < GICD_ICACTIVER + 0x80:
        base = offset & ~0x7F
        name, setting = _BITMAPS[base]
        _write_bitmap(s, name, setting, offset - base, value)
        return True
    if GICD_IPRIORITYR <= offset < GICD_IPRIORITYR + 0x400:
        irq = offset - GICD_IPRIORITYR
        if irq < GIC_INTERNAL or irq + 3 >= s.num_irq:
            return True
        for i in range(irq, irq + 4):
            s.gicd_ipriority[i] = value & 0xFF
            value >>= 8
        s.update(irq, 4)
        return True
    if GICD_ITARGETSR <= offset < GICD_ITARGETSR + 0x400:
        return True
    if GICD_ICFGR <= offset < GICD_ICFGR + 0x100:
        irq = (offset - GICD_ICFGR) * 4
        if not _in_range(s, irq):
            return True
        value = half_unshuffle32(value >> 1)
        mask = 0xFFFFFFFF
        if irq & 0x1F:
            value <<= 16
            mask &= 0xFFFF0000
        else:
            mask &= 0xFFFF
        old = word(s.edge_trigger, irq)
        s.edge_trigger = set_word(s.edge_trigger, irq, (old & ~mask) | (value & mask))
        return True  # QEMU does not recompute the pending interrupts here
    if GICD_IGRPMODR <= offset < GICD_IGRPMODR + 0x100 or \
            GICD_NSACR <= offset < GICD_NSACR + 0x100:
        return True
    if offset == GICD_SGIR or GICD_CPENDSGIR <= offset < GICD_SPENDSGIR + 0x10:
        return True  # RES0 / RAZ/WI with affinity routing
    if GICD_IROUTER <= offset < GICD_IROUTER + 0x1FE0:
        irq = (offset - GICD_IROUTER) // 8
        if not _in_range(s, irq):
            return True
        router = _read_irouter(s, irq)
        shift = 32 if offset & 7 else 0
        router = (router & ~(0xFFFFFFFF << shift)) | ((value & 0xFFFFFFFF) << shift)
        _write_irouter(s, irq, router)
        return True
    # the ID registers, TYPER and IIDR are read-only
    return GICD_IDREGS <= offset < GICD_IDREGS + 0x30 or offset in (GICD_TYPER, GICD_IIDR)


def dist_read(s: ArmGicV3, offset: int, size: int) -> int:
    """``gicv3_dist_read``: the register at ``offset``, zero if QEMU does not decode it."""
    data: int | None = None
    if size == 1:
        if GICD_CPENDSGIR <= offset < GICD_SPENDSGIR + 0x10 or \
                GICD_ITARGETSR <= offset < GICD_ITARGETSR + 0x400:
            data = 0
        elif GICD_IPRIORITYR <= offset < GICD_IPRIORITYR + 0x400:
            data = _read_ipriorityr(s, offset - GICD_IPRIORITYR)
    elif size == 4:
        data = _readl(s, offset)
    elif size == 8 and GICD_IROUTER <= offset < GICD_IROUTER + 0x1FE0:
        data = _read_irouter(s, (offset - GICD_IROUTER) // 8)
    if data is None:
        if tracing.ON:
            trace("gicv3_dist_badread", offset=offset, size=size, secure=0)
        return 0
    if tracing.ON:
        trace("gicv3_dist_read", offset=offset, data=data, size=size, secure=0)
    return data


def dist_write(s: ArmGicV3, offset: int, size: int, value: int) -> None:
    """``gicv3_dist_write``: undecoded offsets and sizes are ignored."""
    ok = False
    if size == 1:
        if GICD_CPENDSGIR <= offset < GICD_SPENDSGIR + 0x10 or \
                GICD_ITARGETSR <= offset < GICD_ITARGETSR + 0x400:
            ok = True
        elif GICD_IPRIORITYR <= offset < GICD_IPRIORITYR + 0x400:
            ok = True
            irq = offset - GICD_IPRIORITYR
            if _in_range(s, irq):
                s.gicd_ipriority[irq] = value & 0xFF
                s.update(irq, 1)
    elif size == 4:
        ok = _writel(s, offset, value & 0xFFFFFFFF)
    elif size == 8 and GICD_IROUTER <= offset < GICD_IROUTER + 0x1FE0:
        ok = True
        _write_irouter(s, (offset - GICD_IROUTER) // 8, value)
    if tracing.ON:
        if ok:
            trace("gicv3_dist_write", offset=offset, data=value, size=size, secure=0)
        else:
            trace("gicv3_dist_badwrite", offset=offset, data=value, size=size, secure=0)


def dist_set_irq(s: ArmGicV3, irq: int, level: int) -> None:
    """``gicv3_dist_set_irq``: an SPI's input line changes; a rising edge latches the
    pending bit of an edge-triggered interrupt."""
    if level == (s.level >> irq & 1):
        return
    if tracing.ON:
        trace("gicv3_dist_set_irq", irq=irq, level=level)
    bit = 1 << irq
    if level:
        s.level |= bit
        if s.edge_trigger & bit:
            s.pending |= bit
    else:
        s.level &= ~bit
    s.update(irq, 1)
