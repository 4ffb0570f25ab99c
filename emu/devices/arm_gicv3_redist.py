"""The GICv3 redistributors' registers, GICR_*, and their interrupts: PPIs, SGIs and LPIs
(QEMU 7.2 hw/intc/arm_gicv3_redist.c; Arm IHI 0069H 12.10 "The GIC Redistributor register
descriptions", 5.1 "LPIs").

Each CPU has two 64 KiB frames: RD_base (GICR_CTLR, IIDR, TYPER, WAKER, PROPBASER,
PENDBASER, the ID registers) and SGI_base at +0x10000 (GICR_IGROUPR0, I[SC]ENABLER0,
I[SC]PENDR0, I[SC]ACTIVER0, IPRIORITYR0-7, ICFGR0/1, IGRPMODR0, NSACR). Accesses of 1 byte
(GICR_IPRIORITYR only), 4 and 8 bytes (GICR_TYPER, PROPBASER, PENDBASER) are decoded as
QEMU decodes them; the rest reads as zero and ignores writes.

GICR_WAKER: only ProcessorSleep is writable and ChildrenAsleep follows it at once (the
interface is never asynchronous). GICR_ICFGR0 (the SGIs) is always edge-triggered.

LPIs (when the GIC has them, as virt's GICv3 under TCG does): GICR_CTLR.EnableLPIs is
writable (and clearable: CES), and setting it scans the pending table in guest memory
(GICR_PENDBASER) for pending LPIs whose entry in the configuration table (GICR_PROPBASER)
is enabled, as QEMU's ``gicv3_redist_update_lpi`` does; the best becomes a candidate for the
CPU interface (a Non-secure Group 1 interrupt with the table's priority). Taking it clears
its pending bit in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emu import trace as tracing
from emu.devices.arm_gicv3_common import (
    G0,
    G1,
    G1NS,
    GICD_CTLR_DS,
    GICD_TYPER_IDBITS,
    GICR_CTLR_ENABLE_LPIS,
    GICR_PENDBASER_PHYADDR_MASK,
    GICR_PROPBASER_IDBITS_MASK,
    GICR_PROPBASER_PHYADDR_MASK,
    GICR_SGI_OFFSET,
    GICR_TYPER_PLPIS,
    GICR_WAKER_CHILDREN_ASLEEP,
    GICR_WAKER_PROCESSOR_SLEEP,
    GICV3_IIDR,
    GICV3_LPI_INTID_START,
    GICV3_PIDR0_REDIST,
    GICV3_REDIST_SIZE,
    GicV3CpuState,
    PendingIrq,
    half_shuffle32,
    half_unshuffle32,
)
from emu.trace import trace

if TYPE_CHECKING:
    from emu.devices.arm_gicv3 import ArmGicV3

GICR_CTLR = 0x0000
GICR_IIDR = 0x0004
GICR_TYPER = 0x0008
GICR_STATUSR = 0x0010
GICR_WAKER = 0x0014
GICR_PROPBASER = 0x0070
GICR_PENDBASER = 0x0078
GICR_IDREGS = 0xFFD0
GICR_IGROUPR0 = GICR_SGI_OFFSET + 0x0080
GICR_ISENABLER0 = GICR_SGI_OFFSET + 0x0100
GICR_ICENABLER0 = GICR_SGI_OFFSET + 0x0180
GICR_ISPENDR0 = GICR_SGI_OFFSET + 0x0200
GICR_ICPENDR0 = GICR_SGI_OFFSET + 0x0280
GICR_ISACTIVER0 = GICR_SGI_OFFSET + 0x0300
GICR_ICACTIVER0 = GICR_SGI_OFFSET + 0x0380
GICR_IPRIORITYR = GICR_SGI_OFFSET + 0x0400
GICR_ICFGR0 = GICR_SGI_OFFSET + 0x0C00
GICR_ICFGR1 = GICR_SGI_OFFSET + 0x0C04
GICR_IGRPMODR0 = GICR_SGI_OFFSET + 0x0D00
GICR_NSACR = GICR_SGI_OFFSET + 0x0E00

#: an LPI configuration table entry: Priority [7:2], Enable [0]
LPI_PRIORITY_MASK = 0xFC
LPI_CTE_ENABLED = 1

#: the set/clear registers: offset -> (attribute of GicV3CpuState, set (True) or clear)
_BITMAPS = {GICR_ISENABLER0: ("gicr_ienabler0", True), GICR_ICENABLER0: ("gicr_ienabler0", False),
            GICR_ISPENDR0: ("gicr_ipendr0", True), GICR_ICPENDR0: ("gicr_ipendr0", False),
            GICR_ISACTIVER0: ("gicr_iactiver0", True),
            GICR_ICACTIVER0: ("gicr_iactiver0", False)}


def _split(s: ArmGicV3, offset: int) -> tuple[GicV3CpuState, int]:
    """The redistributor an offset of the region belongs to, and the offset in its frames."""
    return s.cpu[offset // GICV3_REDIST_SIZE], offset % GICV3_REDIST_SIZE


def _readl(cs: GicV3CpuState, s: ArmGicV3, offset: int) -> int | None:
    """gicr_readl: None for an offset QEMU does not decode."""
    if offset == GICR_CTLR:
        return cs.gicr_ctlr
    if offset == GICR_IIDR:
        return GICV3_IIDR
    if offset == GICR_TYPER:
        return cs.gicr_typer & 0xFFFFFFFF
    if offset == GICR_TYPER + 4:
        return cs.gicr_typer >> 32
    if offset == GICR_STATUSR:
        return 0
    if offset == GICR_WAKER:
        return cs.gicr_waker
    if offset in (GICR_PROPBASER, GICR_PENDBASER):
        return getattr(cs, "gicr_propbaser" if offset == GICR_PROPBASER else
                       "gicr_pendbaser") & 0xFFFFFFFF
    if offset in (GICR_PROPBASER + 4, GICR_PENDBASER + 4):
        return getattr(cs, "gicr_propbaser" if offset == GICR_PROPBASER + 4 else
                       "gicr_pendbaser") >> 32
    if offset == GICR_IGROUPR0:
        return cs.gicr_igroupr0
    if offset in (GICR_ISENABLER0, GICR_ICENABLER0):
        return cs.gicr_ienabler0
    if offset in (GICR_ISPENDR0, GICR_ICPENDR0):
        return (cs.gicr_ipendr0 | (~cs.edge_trigger & cs.level)) & 0xFFFFFFFF
    if offset in (GICR_ISACTIVER0, GICR_ICACTIVER0):
        return cs.gicr_iactiver0
    if GICR_IPRIORITYR <= offset < GICR_IPRIORITYR + 0x20:
        irq = offset - GICR_IPRIORITYR
        value = 0
        for i in range(irq + 3, irq - 1, -1):
            value = (value << 8) | (cs.gicr_ipriorityr[i] if i < 32 else 0)
        return value
    if offset in (GICR_ICFGR0, GICR_ICFGR1):
        half = (cs.edge_trigger >> (16 if offset == GICR_ICFGR1 else 0)) & 0xFFFF
        return half_shuffle32(half) << 1
    if offset in (GICR_IGRPMODR0, GICR_NSACR):
        return 0  # RAZ/WI without the Security Extensions
    if GICR_IDREGS <= offset < GICR_IDREGS + 0x30:
        return s.idreg(offset - GICR_IDREGS, GICV3_PIDR0_REDIST)
    return None


def _writel(cs: GicV3CpuState, s: ArmGicV3, offset: int, value: int) -> bool:
    """gicr_writel: False for an offset QEMU does not decode."""
    if offset == GICR_CTLR:
        # DPG*, UWP and RWP are RAZ/WI; EnableLPIs is programmable when LPIs exist
        if cs.gicr_typer & GICR_TYPER_PLPIS:
            if value & GICR_CTLR_ENABLE_LPIS:
                cs.gicr_ctlr |= GICR_CTLR_ENABLE_LPIS
                update_lpi(s, cs)
            else:
                cs.gicr_ctlr &= ~GICR_CTLR_ENABLE_LPIS
                s.redist_update(cs)
        return True
    if offset == GICR_STATUSR:
        return True
    if offset == GICR_WAKER:
        value &= GICR_WAKER_PROCESSOR_SLEEP
        if value & GICR_WAKER_PROCESSOR_SLEEP:
            value |= GICR_WAKER_CHILDREN_ASLEEP
        cs.gicr_waker = value
        return True
    if offset in (GICR_PROPBASER, GICR_PROPBASER + 4, GICR_PENDBASER, GICR_PENDBASER + 4):
        name = "gicr_propbaser" if offset < GICR_PENDBASER else "gicr_pendbaser"
        shift = 32 if offset & 4 else 0
        old = getattr(cs, name)
        setattr(cs, name, (old & ~(0xFFFFFFFF << shift)) | (value << shift))
        return True
    if offset == GICR_IGROUPR0:
        cs.gicr_igroupr0 = value
        s.redist_update(cs)
        return True
    if offset in _BITMAPS:
        name, setting = _BITMAPS[offset]
        old = getattr(cs, name)
        setattr(cs, name, old | value if setting else old & ~value)
        s.redist_update(cs)
        return True
    if GICR_IPRIORITYR <= offset < GICR_IPRIORITYR + 0x20:
        irq = offset - GICR_IPRIORITYR
        for i in range(irq, min(irq + 4, 32)):
            cs.gicr_ipriorityr[i] = value & 0xFF
            value >>= 8
        s.redist_update(cs)
        return True
    if offset == GICR_ICFGR0:
        return True  # all RAZ/WI or RAO/WI bits
    if offset == GICR_ICFGR1:
        value = half_unshuffle32(value >> 1) << 16
        mask = 0xFFFF0000
        cs.edge_trigger = (cs.edge_trigger & ~mask) | (value & mask)
        s.redist_update(cs)
        return True
    if offset in (GICR_IGRPMODR0, GICR_NSACR):
        return True
    # read-only
    return offset in (GICR_IIDR, GICR_TYPER) or GICR_IDREGS <= offset < GICR_IDREGS + 0x30


def redist_read(s: ArmGicV3, offset: int, size: int) -> int:
    """``gicv3_redist_read``: the register at ``offset`` in the redistributor region."""
    cs, offset = _split(s, offset)
    data: int | None = None
    if size == 1:
        if GICR_IPRIORITYR <= offset < GICR_IPRIORITYR + 0x20:
            data = cs.gicr_ipriorityr[offset - GICR_IPRIORITYR]
    elif size == 4:
        data = _readl(cs, s, offset)
    elif size == 8:
        data = {GICR_TYPER: cs.gicr_typer, GICR_PROPBASER: cs.gicr_propbaser,
                GICR_PENDBASER: cs.gicr_pendbaser}.get(offset)
    if data is None:
        if tracing.ON:
            trace("gicv3_redist_badread", cpu=cs.affid, offset=offset, size=size, secure=0)
        return 0
    if tracing.ON:
        trace("gicv3_redist_read", cpu=cs.affid, offset=offset, data=data, size=size,
              secure=0)
    return data


def redist_write(s: ArmGicV3, offset: int, size: int, value: int) -> None:
    """``gicv3_redist_write``: undecoded offsets and sizes are ignored."""
    cs, offset = _split(s, offset)
    ok = False
    if size == 1:
        if GICR_IPRIORITYR <= offset < GICR_IPRIORITYR + 0x20:
            cs.gicr_ipriorityr[offset - GICR_IPRIORITYR] = value & 0xFF
            s.redist_update(cs)
            ok = True
    elif size == 4:
        ok = _writel(cs, s, offset, value & 0xFFFFFFFF)
    elif size == 8:
        ok = True
        if offset == GICR_PROPBASER:
            cs.gicr_propbaser = value
        elif offset == GICR_PENDBASER:
            cs.gicr_pendbaser = value
        elif offset != GICR_TYPER:
            ok = False
    if tracing.ON:
        if ok:
            trace("gicv3_redist_write", cpu=cs.affid, offset=offset, data=value, size=size,
                  secure=0)
        else:
            trace("gicv3_redist_badwrite", cpu=cs.affid, offset=offset, data=value,
                  size=size, secure=0)


def redist_set_irq(s: ArmGicV3, cs: GicV3CpuState, irq: int, level: int) -> None:
    """``gicv3_redist_set_irq``: a PPI's input line changes; a rising edge latches the
    pending bit of an edge-triggered PPI."""
    if level == (cs.level >> irq & 1):
        return
    if tracing.ON:
        trace("gicv3_redist_set_irq", cpu=cs.affid, irq=irq, level=level)
    bit = 1 << irq
    if level:
        cs.level |= bit
        if cs.edge_trigger & bit:
            cs.gicr_ipendr0 |= bit
    else:
        cs.level &= ~bit
    s.redist_update(cs)


def send_sgi(s: ArmGicV3, cs: GicV3CpuState, grp: int, irq: int) -> None:
    """``gicv3_redist_send_sgi``: an SGI of group ``grp`` arrives; it pends only if the SGI
    is configured in that group (a Secure Group 1 request is taken for Group 0)."""
    irqgrp = s.irq_group(cs, irq)
    if grp == G1 and irqgrp == G0:
        grp = G0
    if grp != irqgrp:
        return
    if tracing.ON:
        trace("gicv3_redist_send_sgi", cpu=cs.affid, irq=irq)
    cs.gicr_ipendr0 |= 1 << irq
    s.redist_update(cs)


# -- LPIs ---------------------------------------------------------------------------------------

def _lpi_idbits(cs: GicV3CpuState) -> int:
    return min(cs.gicr_propbaser & GICR_PROPBASER_IDBITS_MASK, GICD_TYPER_IDBITS)


def _update_for_one_lpi(s: ArmGicV3, irq: int, ctbase: int, ds: bool,
                        hpp: PendingIrq) -> None:
    """update_for_one_lpi: ``irq`` is pending; make it ``hpp`` if it is enabled in the
    configuration table and better."""
    lpite = s.dma_read(ctbase + irq - GICV3_LPI_INTID_START, 1)[0]
    if not lpite & LPI_CTE_ENABLED:
        return
    prio = lpite & LPI_PRIORITY_MASK if ds else ((lpite & LPI_PRIORITY_MASK) >> 1) | 0x80
    if prio < hpp.prio or (prio == hpp.prio and irq <= hpp.irq):
        hpp.irq = irq
        hpp.prio = prio
        hpp.grp = G1NS  # LPIs are always Non-secure Group 1


def update_lpi_only(s: ArmGicV3, cs: GicV3CpuState) -> None:
    """gicv3_redist_update_lpi_only: rescan the pending table for ``cs.hpplpi``."""
    if not cs.gicr_ctlr & GICR_CTLR_ENABLE_LPIS:
        return
    ptbase = cs.gicr_pendbaser & GICR_PENDBASER_PHYADDR_MASK
    ctbase = cs.gicr_propbaser & GICR_PROPBASER_PHYADDR_MASK
    ds = bool(s.gicd_ctlr & GICD_CTLR_DS)
    hpp = cs.hpplpi
    hpp.prio = 0xFF
    first, end = GICV3_LPI_INTID_START // 8, (1 << (_lpi_idbits(cs) + 1)) // 8
    if end <= first:
        return
    table = s.dma_read(ptbase + first, end - first)
    for i, pend in enumerate(table, first):
        while pend:
            bit = (pend & -pend).bit_length() - 1
            _update_for_one_lpi(s, i * 8 + bit, ctbase, ds, hpp)
            pend &= pend - 1


def update_lpi(s: ArmGicV3, cs: GicV3CpuState) -> None:
    """gicv3_redist_update_lpi."""
    update_lpi_only(s, cs)
    s.redist_update(cs)


def lpi_pending(s: ArmGicV3, cs: GicV3CpuState, irq: int, level: int) -> None:
    """gicv3_redist_lpi_pending: set or clear ``irq``'s bit in the pending table."""
    addr = (cs.gicr_pendbaser & GICR_PENDBASER_PHYADDR_MASK) + irq // 8
    pend = s.dma_read(addr, 1)[0]
    if (pend >> (irq % 8) & 1) == level:
        return
    pend = pend | (1 << irq % 8) if level else pend & ~(1 << irq % 8)
    s.dma_write(addr, bytes([pend]))
    if level:
        _update_for_one_lpi(s, irq, cs.gicr_propbaser & GICR_PROPBASER_PHYADDR_MASK,
                            bool(s.gicd_ctlr & GICD_CTLR_DS), cs.hpplpi)
        s.redist_update(cs)
    elif irq == cs.hpplpi.irq:
        update_lpi(s, cs)
