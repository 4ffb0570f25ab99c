"""The x86_64 test kernel's whole log on emu's pc is QEMU 7.2's, line for line, apart from
timestamps and the lines that name host-dependent values (the TSC's measured frequency and
what Linux derives from it), each listed below with the form both lines must have, and the
MP table's address (emu's f-segment is ROM: firmware/README.md).
"""

from __future__ import annotations

import re

from conftest import run_emu, run_qemu
from linux_boot import kernel_log, linux_args

#: lines whose values come from the host's clock: both must match the same pattern
HOST_DEPENDENT = [
    r"tsc: Detected [\d.]+ MHz processor",
    r"tsc: Fast TSC calibration (using PIT|failed)",
    r"tsc: Refined TSC clocksource calibration: [\d.]+ MHz",
    r"clocksource: tsc(-early)?: mask: 0xffffffffffffffff max_cycles: 0x[0-9a-f]+, "
    r"max_idle_ns: \d+ ns",
    r"Calibrating delay loop \(skipped\), value calculated using timer frequency\.\. "
    r"[\d.]+ BogoMIPS \(lpj=\d+\)",
    r"sched_clock: Marking stable \(-?\d+, -?\d+\)->\(-?\d+, -?\d+\)",
    r"clocksource: Switched to clocksource tsc(-early)?",
    r"\d+ pages? in unavailable ranges",
]
#: where emu differs by design (the reason is in the module docstring)
MP_TABLE = r"found SMP MP-table at \[mem 0x[0-9a-f]+-0x[0-9a-f]+\]"


def _same(mine: str, qemus: str) -> bool:
    if mine == qemus:
        return True
    return any(re.fullmatch(p, mine) and re.fullmatch(p, qemus)
               for p in [*HOST_DEPENDENT, MP_TABLE])


def test_pc_boot_log_matches_qemu() -> None:
    args = [*linux_args("pc", "restart"), "-no-reboot"]
    qemu, emu = run_qemu("pc", args, timeout=300), run_emu(args, timeout=600)
    assert qemu.returncode == emu.returncode == 0, emu.stderr.decode(errors="replace")[-2000:]
    ours = kernel_log(emu.stdout.decode(errors="replace"))
    theirs = kernel_log(qemu.stdout.decode(errors="replace"))
    assert theirs[-1] == "reboot: machine restart"
    # Lines of the TSC's calibration may come or go with the host's timing on either side:
    # compare the rest in order.
    optional = re.compile(r"tsc: (Refined TSC|Marking TSC unstable|Fast TSC calibration failed"
                          r"|Unable to calibrate|No reference)|clocksource: (Checking|"
                          r"timekeeping watchdog|'tsc')")
    ours = [line for line in ours if not optional.match(line)]
    theirs = [line for line in theirs if not optional.match(line)]
    diff = [(m, q) for m, q in zip(ours, theirs, strict=False) if not _same(m, q)]
    assert not diff and len(ours) == len(theirs), (diff[:10], len(ours), len(theirs))
