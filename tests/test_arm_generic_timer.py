"""The generic timer (emu/devices/arm_generic_timer.py) and the MRS/MSR dispatcher
(emu/cpu/arm64_sysregs.py).

Expected values come from the architecture (Arm ARM DDI 0487 D11: ISTATUS is set while the
enabled timer's count is at or past CVAL; the output is ISTATUS and not IMASK; TVAL is CVAL -
count as a signed 32-bit value) and from QEMU 7.2's constants: a 62.5 MHz counter
(CNTFRQ_EL0 reset value NANOSECONDS_PER_SECOND / GTIMER_SCALE, so one tick per 16 ns of
virtual time) and virt's PPIs (virtual timer 27, physical 30). qtest cannot reach system
registers, so the guest-visible part runs real MRS/MSR instructions on the virt board's
Unicorn CPU.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from unicorn import UC_ARCH_ARM64, UC_MODE_ARM, Uc, UcError
from unicorn import arm64_const as A

from emu.clock import Clock
from emu.config import MachineConfig
from emu.cpu.arm64_sysregs import SysregKey, _mrs, install_sysreg_hooks, unicorn_implements
from emu.devices.arm_generic_timer import (
    CNTFRQ_EL0,
    CNTKCTL_EL1,
    CNTP_CTL_EL0,
    CNTP_CVAL_EL0,
    CNTPCT_EL0,
    CNTV_CTL_EL0,
    CNTV_CVAL_EL0,
    CNTV_TVAL_EL0,
    CNTVCT_EL0,
    GTIMER_PHYS,
    GTIMER_VIRT,
    GenericTimer,
)
from emu.machine import Machine

ICC_PMR_EL1 = (3, 0, 4, 6, 0)


def _msr(key: SysregKey, rt: int) -> int:
    return _mrs(key, rt) & ~(1 << 21)


def _timer() -> tuple[Clock, GenericTimer, list[list[int]]]:
    clock = Clock("qtest")
    gt = GenericTimer(clock)
    levels: list[list[int]] = [[], [], [], []]
    for n, line in enumerate(gt.outputs):
        line.connect(levels[n].append)
    return clock, gt, levels


def test_counter_runs_at_62_5_mhz() -> None:
    clock, gt, _ = _timer()
    assert gt.read_sysreg(*CNTFRQ_EL0) == 62_500_000
    clock.warp_to(1_000_000)  # 1 ms
    assert gt.read_sysreg(*CNTPCT_EL0) == gt.read_sysreg(*CNTVCT_EL0) == 62_500
    clock.warp_to(1_000_015)
    assert gt.read_sysreg(*CNTVCT_EL0) == 62_500


def test_cval_deadline_sets_istatus_and_the_output() -> None:
    clock, gt, levels = _timer()
    gt.write_sysreg(*CNTV_CVAL_EL0, 100)
    gt.write_sysreg(*CNTV_CTL_EL0, 1)
    assert gt.read_sysreg(*CNTV_CTL_EL0) == 1 and levels[GTIMER_VIRT][-1] == 0
    clock.warp_to(100 * 16 - 1)
    assert gt.read_sysreg(*CNTV_CTL_EL0) == 1 and levels[GTIMER_VIRT][-1] == 0
    clock.warp_to(100 * 16)  # the deadline fires with the clock at it
    assert levels[GTIMER_VIRT][-1] == 1
    assert gt.read_sysreg(*CNTV_CTL_EL0) == 5  # ENABLE | ISTATUS
    gt.write_sysreg(*CNTV_CTL_EL0, 3)  # IMASK: the output drops, ISTATUS stays
    assert levels[GTIMER_VIRT][-1] == 0 and gt.read_sysreg(*CNTV_CTL_EL0) == 7
    gt.write_sysreg(*CNTV_CTL_EL0, 1)
    assert levels[GTIMER_VIRT][-1] == 1
    gt.write_sysreg(*CNTV_CTL_EL0, 0)  # disabled: ISTATUS and the output clear
    assert levels[GTIMER_VIRT][-1] == 0 and gt.read_sysreg(*CNTV_CTL_EL0) == 0
    assert levels[GTIMER_PHYS] == []  # the other timer is untouched


def test_writing_istatus_is_ignored_and_cval_moves_the_deadline() -> None:
    clock, gt, levels = _timer()
    gt.write_sysreg(*CNTP_CTL_EL0, 4 | 1)
    assert gt.read_sysreg(*CNTP_CTL_EL0) == 5  # CVAL 0: the condition holds at once
    gt.write_sysreg(*CNTP_CVAL_EL0, 1000)
    assert gt.read_sysreg(*CNTP_CTL_EL0) == 1 and levels[GTIMER_PHYS][-1] == 0
    assert clock.next_deadline() == 1000 * 16
    gt.write_sysreg(*CNTP_CVAL_EL0, 10)
    assert clock.next_deadline() == 10 * 16
    clock.step()
    assert levels[GTIMER_PHYS][-1] == 1 and gt.read_sysreg(*CNTP_CTL_EL0) == 5


def test_tval_is_signed_32_bits_of_cval_minus_count() -> None:
    clock, gt, levels = _timer()
    clock.warp_to(16 * 1000)
    gt.write_sysreg(*CNTV_TVAL_EL0, 0xFFFFFFFB)  # -5: CVAL = 995
    assert gt.read_sysreg(*CNTV_CVAL_EL0) == 995
    assert gt.read_sysreg(*CNTV_TVAL_EL0) == 0xFFFFFFFB
    gt.write_sysreg(*CNTV_CTL_EL0, 1)
    assert levels[GTIMER_VIRT][-1] == 1
    gt.write_sysreg(*CNTV_TVAL_EL0, 0x1_0000_0010)  # only the low 32 bits count
    assert gt.read_sysreg(*CNTV_CVAL_EL0) == 1016 and levels[GTIMER_VIRT][-1] == 0


def test_cntkctl_and_cntfrq_are_plain_at_el1() -> None:
    _, gt, _ = _timer()
    assert gt.read_sysreg(*CNTKCTL_EL1) == 0
    assert gt.write_sysreg(*CNTKCTL_EL1, 0x303)
    assert gt.read_sysreg(*CNTKCTL_EL1) == 0x303
    assert gt.write_sysreg(*CNTFRQ_EL0, 1000)
    assert gt.read_sysreg(*CNTFRQ_EL0) == 1000 and gt.period_ns == 16
    assert not gt.write_sysreg(*CNTVCT_EL0, 5)  # read-only: left to Unicorn's UNDEFINED
    gt.reset()
    assert gt.read_sysreg(*CNTFRQ_EL0) == 62_500_000 and gt.read_sysreg(*CNTKCTL_EL1) == 0


@pytest.mark.parametrize("cntkctl, allowed", [
    (0, set()), (1, {CNTPCT_EL0, CNTFRQ_EL0}), (2, {CNTVCT_EL0, CNTFRQ_EL0}),
    (0x100, {CNTV_CTL_EL0, CNTV_CVAL_EL0}), (0x200, {CNTP_CTL_EL0, CNTP_CVAL_EL0}),
])
def test_el0_access_follows_cntkctl(cntkctl: int, allowed: set[SysregKey]) -> None:
    """An EL0 access CNTKCTL_EL1 does not allow is left to Unicorn, which traps it."""
    el = [1]
    gt = GenericTimer(Clock("qtest"), current_el=lambda: el[0])
    gt.write_sysreg(*CNTKCTL_EL1, cntkctl)
    el[0] = 0
    for key in (CNTPCT_EL0, CNTVCT_EL0, CNTFRQ_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0,
                CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTKCTL_EL1):
        assert (gt.read_sysreg(*key) is not None) == (key in allowed), key
    assert not gt.write_sysreg(*CNTFRQ_EL0, 5) and not gt.write_sysreg(*CNTKCTL_EL1, 0)


# -- through the CPU ---------------------------------------------------------------------------

def _run(m: Machine, words: list[int], regs: dict[int, int] | None = None) -> Uc:
    uc = m.cpu.uc
    code = b"".join(w.to_bytes(4, "little") for w in words)
    m.address_space.write(0x40000000, code)
    for reg, value in (regs or {}).items():
        uc.reg_write(reg, value)
    end = 0x40000000 + len(code)
    uc.ctl_set_exits([end])  # (the machine runs with an empty exit list, so until is ignored)
    uc.emu_start(0x40000000, end)
    return uc


@pytest.fixture()
def virt() -> Iterator[Machine]:
    m = Machine(MachineConfig(machine="virt", accel="qtest"))
    yield m
    m.close()


def test_guest_reads_the_machine_clock_and_the_timer_reaches_the_gic(virt: Machine) -> None:
    """MRS/MSR from guest code reach the board's timer, not Unicorn's own registers (whose
    counter follows host time): the virtual timer's output pends PPI 27 in the GIC."""
    virt.clock.warp_to(16 * 20)
    uc = _run(virt, [_mrs(CNTFRQ_EL0, 0), _mrs(CNTVCT_EL0, 1), _msr(CNTV_CVAL_EL0, 2),
                     _msr(CNTV_CTL_EL0, 3), _mrs(CNTV_CTL_EL0, 4), _mrs(CNTPCT_EL0, 5)],
              {A.UC_ARM64_REG_X2: 10, A.UC_ARM64_REG_X3: 1})
    assert uc.reg_read(A.UC_ARM64_REG_X0) == 62_500_000
    assert uc.reg_read(A.UC_ARM64_REG_X1) == uc.reg_read(A.UC_ARM64_REG_X5) == 20
    assert uc.reg_read(A.UC_ARM64_REG_X4) == 5
    gic = virt.board.gic
    assert gic.dist_read(0x200, 4) >> 27 & 1  # ISPENDR0: the level of PPI 27
    assert not gic.dist_read(0x200, 4) >> 30 & 1


def test_register_unknown_to_unicorn_is_dispatched_once() -> None:
    """ICC_PMR_EL1 does not exist in Unicorn (QEMU registers it with a GICv3): the
    dispatcher handles it and steps over the instruction exactly once."""
    calls: list[tuple[str, int]] = []

    class Pmr:
        value = 0

        def read_sysreg(self, *key: int) -> int:
            calls.append(("read", self.value))
            return self.value

        def write_sysreg(self, *args: int) -> bool:
            self.value = args[5]
            calls.append(("write", args[5]))
            return True

    assert unicorn_implements([ICC_PMR_EL1, CNTVCT_EL0]) == {ICC_PMR_EL1: False,
                                                            CNTVCT_EL0: True}
    for handlers in ({}, {ICC_PMR_EL1: Pmr()}):
        uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM, cpu=A.UC_CPU_ARM64_A57)
        uc.mem_map(0, 0x1000)
        words = [_msr(ICC_PMR_EL1, 1), _mrs(ICC_PMR_EL1, 2), 0xD2800543]  # mov x3, #42
        uc.mem_write(0x100, b"".join(w.to_bytes(4, "little") for w in words))
        uc.reg_write(A.UC_ARM64_REG_X1, 0xF0)
        install_sysreg_hooks(uc, handlers)
        if not handlers:
            with pytest.raises(UcError):  # UNDEFINED
                uc.emu_start(0x100, 0x10C)
            continue
        uc.emu_start(0x100, 0x10C)
        assert calls == [("write", 0xF0), ("read", 0xF0)]
        assert uc.reg_read(A.UC_ARM64_REG_X2) == 0xF0 and uc.reg_read(A.UC_ARM64_REG_X3) == 42


def test_a_handler_declining_leaves_the_access_to_unicorn() -> None:
    class Decline:
        def read_sysreg(self, *key: int) -> None:
            return None

        def write_sysreg(self, *args: int) -> bool:
            return False

    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM, cpu=A.UC_CPU_ARM64_A57)
    uc.mem_map(0, 0x1000)
    uc.mem_write(0x100, _mrs(CNTFRQ_EL0, 0).to_bytes(4, "little"))
    install_sysreg_hooks(uc, {CNTFRQ_EL0: Decline()})
    uc.emu_start(0x100, 0x104)
    assert uc.reg_read(A.UC_ARM64_REG_X0) == 62_500_000  # Unicorn's own CNTFRQ_EL0
