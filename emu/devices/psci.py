"""PSCI firmware calls on the virt machine (Arm DEN 0022; QEMU target/arm/psci.c).

QEMU acts as the PSCI firmware when it emulates no EL2/EL3; emu does the same for calls made
with HVC or SMC. With one CPU: SYSTEM_OFF powers the machine off (exit status 0),
SYSTEM_RESET resets it, CPU_OFF stops the only CPU (the machine then idles, as QEMU's does),
CPU_SUSPEND returns at once as a WFI would. PSCI_VERSION reports 1.1 and PSCI_FEATURES answers
for the implemented functions, as QEMU 7.2 does. Function IDs that are not PSCI return
NOT_SUPPORTED (where QEMU would raise UNDEF; emu keeps the guest running instead).
"""

from __future__ import annotations

from collections.abc import Callable

from emu.trace import trace

PSCI_VERSION = 0x84000000
CPU_SUSPEND, CPU_SUSPEND64 = 0x84000001, 0xC4000001
CPU_OFF = 0x84000002
CPU_ON, CPU_ON64 = 0x84000003, 0xC4000003
AFFINITY_INFO, AFFINITY_INFO64 = 0x84000004, 0xC4000004
MIGRATE, MIGRATE64 = 0x84000005, 0xC4000005
MIGRATE_INFO_TYPE = 0x84000006
SYSTEM_OFF = 0x84000008
SYSTEM_RESET = 0x84000009
PSCI_FEATURES = 0x8400000A
# PSCI 0.1 function IDs that QEMU's device trees advertise
PSCI01_CPU_SUSPEND, PSCI01_CPU_OFF, PSCI01_CPU_ON, PSCI01_MIGRATE = (
    0x95C1BA5E, 0x95C1BA5F, 0x95C1BA60, 0x95C1BA61)

RET_SUCCESS = 0
RET_NOT_SUPPORTED = -1
RET_INVALID_PARAMS = -2
RET_ALREADY_ON = -4
VERSION_1_1 = 0x00010001  # what QEMU 7.2's TCG PSCI reports (checked with a guest)
TOS_MIGRATION_NOT_REQUIRED = 2
MPIDR_CPU0 = 0x80000000  # what QEMU's MPIDR_EL1 reads for CPU 0 (U bit clear, RES1 bit 31)


#: the functions PSCI_FEATURES reports as implemented (QEMU target/arm/psci.c)
_FEATURES = frozenset({PSCI_VERSION, MIGRATE_INFO_TYPE, AFFINITY_INFO, AFFINITY_INFO64,
                       SYSTEM_RESET, SYSTEM_OFF, CPU_ON, CPU_ON64, CPU_OFF, CPU_SUSPEND,
                       CPU_SUSPEND64, PSCI_FEATURES})


class Psci:
    """The PSCI function dispatcher for one CPU."""

    def __init__(self, power_off: Callable[[int], None], reset: Callable[[], None],
                 cpu_off: Callable[[], None]) -> None:
        self.power_off = power_off
        self.reset = reset
        self.cpu_off = cpu_off

    def call(self, conduit: str, args: list[int]) -> int | None:
        """Handle a call with x0..x3 = ``args``; returns the value for x0."""
        fn = args[0] & 0xFFFFFFFF if args[0] >> 32 == 0 else args[0]
        result = self._dispatch(fn, args)
        trace("psci_call", conduit=conduit, function=fn, result=result & 0xFFFFFFFF
              if result is not None else "none")
        return result

    def _dispatch(self, fn: int, args: list[int]) -> int | None:
        if fn == PSCI_VERSION:
            return VERSION_1_1
        if fn == PSCI_FEATURES:
            return RET_SUCCESS if args[1] in _FEATURES else RET_NOT_SUPPORTED
        if fn == MIGRATE_INFO_TYPE:
            return TOS_MIGRATION_NOT_REQUIRED
        if fn in (AFFINITY_INFO, AFFINITY_INFO64):
            if args[2] != 0:
                return 0  # everything above level 0 is on
            return 0 if args[1] & 0xFFFFFF == 0 else RET_INVALID_PARAMS
        if fn == SYSTEM_OFF:
            self.power_off(0)
            return None
        if fn == SYSTEM_RESET:
            self.reset()
            return None
        if fn in (CPU_OFF, PSCI01_CPU_OFF):
            self.cpu_off()
            return None
        if fn in (CPU_ON, CPU_ON64, PSCI01_CPU_ON):
            return RET_ALREADY_ON if args[1] & 0xFFFFFF == 0 else RET_INVALID_PARAMS
        if fn in (CPU_SUSPEND, CPU_SUSPEND64, PSCI01_CPU_SUSPEND):
            return RET_INVALID_PARAMS if args[1] & 0xFFFE0000 else RET_SUCCESS
        return RET_NOT_SUPPORTED
