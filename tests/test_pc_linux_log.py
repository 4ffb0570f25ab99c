"""The x86_64 test kernel's whole log on emu's pc is QEMU 7.2's, line for line, apart from
timestamps and the lines that name host-dependent values (the TSC's measured frequency and
what Linux derives from it), each listed below with the form both lines must have, and the
MP table's address (emu's f-segment is ROM: firmware/README.md).
"""

from __future__ import annotations

import re

from conftest import run_emu, run_qemu
from linux_boot import kernel_log, linux_args

#: lines that follow the host's clock: whether Linux's TSC calibration against the PIT
#: succeeds (QEMU's too: it depends on how busy the host is), the frequency it measures, the
#: delay-loop calibration Linux falls back to, and the clocksource choices that follow
HOST_DEPENDENT = re.compile(
    r"tsc: |clocksource: (tsc|refined-jiffies|Switched to clocksource|Checking|"
    r"timekeeping watchdog|'tsc')|Calibrating delay loop|smpboot: Total of \d+ processors "
    r"activated \([\d.]+ BogoMIPS\)|sched_clock: Marking stable|process: using")
#: where emu differs by design (the reason is in the module docstring)
MP_TABLE = re.compile(r"found SMP MP-table at \[mem 0x[0-9a-f]+-0x[0-9a-f]+\]")


def _comparable(log: list[str]) -> list[str]:
    return ["found SMP MP-table" if MP_TABLE.fullmatch(line) else line
            for line in log if not HOST_DEPENDENT.match(line)]


def test_pc_boot_log_matches_qemu() -> None:
    args = [*linux_args("pc", "restart"), "-no-reboot"]
    qemu, emu = run_qemu("pc", args, timeout=300), run_emu(args, timeout=600)
    assert qemu.returncode == emu.returncode == 0, emu.stderr.decode(errors="replace")[-2000:]
    ours = kernel_log(emu.stdout.decode(errors="replace"))
    theirs = kernel_log(qemu.stdout.decode(errors="replace"))
    assert theirs[-1] == "reboot: machine restart"
    assert any(line.startswith("found SMP MP-table at [mem 0x0009fc00") for line in ours)
    assert _comparable(ours) == _comparable(theirs)
