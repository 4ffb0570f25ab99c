"""The ARM generic timer of one CPU, as QEMU 7.2 runs it for ``-M virt`` under TCG
(target/arm/helper.c ``gt_*``; Arm ARM DDI 0487, chapter D11 "The Generic Timer in AArch64
state").

System registers (through emu/cpu/arm64_sysregs.py's MRS/MSR dispatcher):

=================  ====================  =============================================
register           (op0,op1,CRn,CRm,op2)  semantics
=================  ====================  =============================================
CNTFRQ_EL0         3,3,14,0,0            62500000 at reset (QEMU's NANOSECONDS_PER_SECOND
                                         / GTIMER_SCALE); writable at EL1, which is the
                                         highest EL of virt's CPU without secure= and
                                         virtualization=; writing it does not change the
                                         counter's rate (QEMU's does not either)
CNTPCT_EL0         3,3,14,0,1            the count: virtual-clock ns // 16
CNTVCT_EL0         3,3,14,0,2            the same (CNTVOFF_EL2 is 0: virt has no EL2)
CNTKCTL_EL1        3,0,14,1,0            EL0 access control, 0 at reset
CNTP_TVAL_EL0      3,3,14,2,0            (CVAL - count) as 32 bits; a write sets
                                         CVAL = count + sign-extended value
CNTP_CTL_EL0       3,3,14,2,1            ENABLE (bit 0), IMASK (bit 1), ISTATUS (bit 2,
                                         read-only)
CNTP_CVAL_EL0      3,3,14,2,2            the compare value
CNTV_TVAL/CTL/CVAL_EL0  3,3,14,3,0/1/2   the virtual timer, likewise
=================  ====================  =============================================

A timer's condition is met when the count (unsigned) is at or past CVAL; ISTATUS shows it
while the timer is enabled, and the timer's output is ISTATUS and not IMASK. As in QEMU the
state is recomputed (``gt_recalc_timer``) when CTL.ENABLE toggles, when CVAL or TVAL is
written, and when the deadline passes: an emu.clock.Timer armed at CVAL * 16 ns (or at
INT64_MAX ns once the condition is met, or when the deadline is past what a signed 64-bit
nanosecond time holds, as QEMU arms its timer); toggling only IMASK sets the output from the
last ISTATUS. Before each register access the clock's expired timers fire (``catch_up``), so
a guest that polls CTL sees ISTATUS as QEMU's asynchronously fired timers show it.

At EL0 the registers are accessible as CNTKCTL_EL1 allows (EL0PCTEN bit 0, EL0VCTEN bit 1,
EL0VTEN bit 8, EL0PTEN bit 9; CNTFRQ when either of bits 0-1 is set; CNTKCTL_EL1 never):
otherwise the access is left to Unicorn, whose QEMU raises the same trap (its copy of
CNTKCTL_EL1 stays 0, so it traps every such access). The secure (CNTPS_*) and EL2
(CNTHP_*, CNTHV_*) timers do not exist on virt's CPU without secure= and virtualization=;
they are not handled here, and their outputs stay low.

Outputs (``outputs``, QEMU's CPU GPIO outputs in its order: GTIMER_PHYS, GTIMER_VIRT,
GTIMER_HYP, GTIMER_SEC): virt wires them to PPIs 14, 11, 10 and 13 (interrupt IDs 30, 27,
26, 29) of the GIC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from emu.clock import NANOSECONDS_PER_SECOND, Clock, Timer
from emu.irq import IrqLine

GTIMER_PHYS, GTIMER_VIRT, GTIMER_HYP, GTIMER_SEC = 0, 1, 2, 3
GTIMER_SCALE = 16
#: QEMU's default CNTFRQ (the CPU's cntfrq property: NANOSECONDS_PER_SECOND / GTIMER_SCALE)
GT_CNTFRQ_HZ = NANOSECONDS_PER_SECOND // GTIMER_SCALE
INT64_MAX = (1 << 63) - 1
UINT64_MASK = (1 << 64) - 1
CTL_ENABLE, CTL_IMASK, CTL_ISTATUS = 1, 2, 4

CNTFRQ_EL0 = (3, 3, 14, 0, 0)
CNTPCT_EL0 = (3, 3, 14, 0, 1)
CNTVCT_EL0 = (3, 3, 14, 0, 2)
CNTKCTL_EL1 = (3, 0, 14, 1, 0)
CNTP_TVAL_EL0 = (3, 3, 14, 2, 0)
CNTP_CTL_EL0 = (3, 3, 14, 2, 1)
CNTP_CVAL_EL0 = (3, 3, 14, 2, 2)
CNTV_TVAL_EL0 = (3, 3, 14, 3, 0)
CNTV_CTL_EL0 = (3, 3, 14, 3, 1)
CNTV_CVAL_EL0 = (3, 3, 14, 3, 2)

#: virt's wiring (hw/arm/virt.c create_gic): timer output -> PPI number
VIRT_TIMER_PPI = {GTIMER_PHYS: 14, GTIMER_VIRT: 11, GTIMER_HYP: 10, GTIMER_SEC: 13}


class _Counter:
    """One EL1 timer (``ARMGenericTimer``: ctl, cval) and its QEMUTimer."""

    __slots__ = ("ctl", "cval", "output", "timer")

    def __init__(self, output: IrqLine, timer: Timer) -> None:
        self.ctl = 0
        self.cval = 0
        self.output = output
        self.timer = timer


class GenericTimer:
    """The counter and the EL1 physical and virtual timers of one CPU."""

    def __init__(self, clock: Clock, current_el: Callable[[], int] = lambda: 1,
                 cntfrq_hz: int = GT_CNTFRQ_HZ, name: str = "gt") -> None:
        self.clock = clock
        #: the CPU's current exception level (0 or 1), for the EL0 access checks
        self.current_el = current_el
        self.cntfrq_hz = cntfrq_hz
        #: gt_cntfrq_period_ns: the QEMUTimer scale, ns per tick
        self.period_ns = max(NANOSECONDS_PER_SECOND // cntfrq_hz, 1)
        self.outputs = [IrqLine(f"{name}[{n}]") for n in range(4)]
        self.timers = [
            _Counter(self.outputs[idx], Timer(clock, lambda idx=idx: self.recalc(idx)))
            for idx in (GTIMER_PHYS, GTIMER_VIRT)]
        self.cntfrq = cntfrq_hz
        self.cntkctl = 0

    def reset(self) -> None:
        """The CPU's reset: CTL and CVAL 0, the deadlines cancelled (``gt_timer_reset``),
        CNTFRQ back to the CPU's frequency, CNTKCTL 0. Like QEMU the outputs are left as they
        are (the GIC's reset forgets their levels)."""
        for t in self.timers:
            t.ctl = t.cval = 0
            t.timer.cancel()
        self.cntfrq = self.cntfrq_hz
        self.cntkctl = 0

    # -- the counter and the timers -------------------------------------------------------

    def count(self) -> int:
        """``gt_get_countervalue``: ticks of the virtual clock."""
        return self.clock.now_ns() // self.period_ns

    def recalc(self, idx: int) -> None:
        """``gt_recalc_timer``: ISTATUS, the output and the next deadline."""
        t = self.timers[idx]
        if t.ctl & CTL_ENABLE:
            istatus = self.count() >= t.cval  # CNTVOFF_EL2 is 0
            t.ctl = (t.ctl & ~CTL_ISTATUS) | (CTL_ISTATUS if istatus else 0)
            t.output.set_level(1 if istatus and not t.ctl & CTL_IMASK else 0)
            nexttick = UINT64_MASK if istatus else t.cval
            if nexttick > INT64_MAX // self.period_ns:
                t.timer.arm(INT64_MAX)
            else:
                t.timer.arm(nexttick * self.period_ns)
        else:
            t.ctl &= ~CTL_ISTATUS
            t.output.set_level(0)
            t.timer.cancel()

    def tval(self, idx: int) -> int:
        """``gt_tval_read``."""
        return (self.timers[idx].cval - self.count()) & 0xFFFFFFFF

    def set_tval(self, idx: int, value: int) -> None:
        """``gt_tval_write``: CVAL = count + the sign-extended low 32 bits."""
        low = value & 0xFFFFFFFF
        if low & 0x80000000:
            low -= 1 << 32
        self.timers[idx].cval = (self.count() + low) & UINT64_MASK
        self.recalc(idx)

    def set_cval(self, idx: int, value: int) -> None:
        """``gt_cval_write``."""
        self.timers[idx].cval = value & UINT64_MASK
        self.recalc(idx)

    def set_ctl(self, idx: int, value: int) -> None:
        """``gt_ctl_write``: ENABLE and IMASK; ISTATUS is read-only."""
        t = self.timers[idx]
        old = t.ctl
        t.ctl = (old & ~3) | (value & 3)
        if (old ^ value) & CTL_ENABLE:
            self.recalc(idx)
        elif (old ^ value) & CTL_IMASK:
            t.output.set_level(1 if old & CTL_ISTATUS and not value & CTL_IMASK else 0)

    # -- system registers -----------------------------------------------------------------

    def sysreg_keys(self) -> Iterable[tuple[int, int, int, int, int]]:
        return (CNTFRQ_EL0, CNTPCT_EL0, CNTVCT_EL0, CNTKCTL_EL1, CNTP_TVAL_EL0,
                CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTV_TVAL_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0)

    def _el0_allows(self, key: tuple[int, int, int, int, int]) -> bool:
        """The EL0 checks of ``gt_cntfrq_access``, ``gt_counter_access`` and
        ``gt_timer_access`` (no EL2: the HCR_EL2/CNTHCTL_EL2 cases do not arise)."""
        k = self.cntkctl
        if key == CNTFRQ_EL0:
            return bool(k & 3)
        if key == CNTPCT_EL0:
            return bool(k & 1)
        if key == CNTVCT_EL0:
            return bool(k & 2)
        if key[3] == 2:  # CNTP_*: EL0PTEN
            return bool(k >> 9 & 1)
        if key[3] == 3:  # CNTV_*: EL0VTEN
            return bool(k >> 8 & 1)
        return False  # CNTKCTL_EL1 is EL1 only

    def read_sysreg(self, op0: int, op1: int, crn: int, crm: int, op2: int) -> int | None:
        key = (op0, op1, crn, crm, op2)
        if self.current_el() == 0 and not self._el0_allows(key):
            return None
        if key in (CNTPCT_EL0, CNTVCT_EL0):
            return self.clock.settled_now() // self.period_ns
        self.clock.catch_up()
        if key == CNTFRQ_EL0:
            return self.cntfrq
        if key == CNTKCTL_EL1:
            return self.cntkctl
        idx = GTIMER_PHYS if crm == 2 else GTIMER_VIRT
        if op2 == 0:
            return self.tval(idx)
        if op2 == 1:
            return self.timers[idx].ctl
        return self.timers[idx].cval

    def write_sysreg(self, op0: int, op1: int, crn: int, crm: int, op2: int,
                     value: int) -> bool:
        key = (op0, op1, crn, crm, op2)
        if key in (CNTPCT_EL0, CNTVCT_EL0):
            return False  # read-only: Unicorn raises the UNDEFINED exception
        el = self.current_el()
        if el == 0 and (key == CNTFRQ_EL0 or not self._el0_allows(key)):
            return False
        self.clock.catch_up()
        if key == CNTFRQ_EL0:
            self.cntfrq = value
        elif key == CNTKCTL_EL1:
            self.cntkctl = value
        else:
            idx = GTIMER_PHYS if crm == 2 else GTIMER_VIRT
            if op2 == 0:
                self.set_tval(idx, value)
            elif op2 == 1:
                self.set_ctl(idx, value)
            else:
                self.set_cval(idx, value)
        return True
