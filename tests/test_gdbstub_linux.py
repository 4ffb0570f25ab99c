"""gdb on the Linux test kernels (tools/linux/build.py) through the gdb stub, as a kernel
developer uses it with QEMU: ``-s -S`` (here a Unix socket), the kernel's ``vmlinux`` for
the symbols, a hardware breakpoint on ``start_kernel`` (the kernel is not in memory before
the firmware loads it, so a software breakpoint has nowhere to go yet; QEMU likewise), then
``bt``, ``p jiffies``, the kernel's name from ``init_uts_ns``, and ``continue`` to the end of
the boot (the init restarts the machine, which ``-no-reboot`` turns into the exit).

Debian's gdb (x86_64) and gdb-multiarch (aarch64) run the same script against QEMU 7.2 and
emu booting the same kernel; the transcripts must be the same, but for the line where gdb
attached (the machine's reset state, which differs: tests/test_gdbstub.py) and QEMU's
race between its exit and gdb's ack, masked as there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from linux_boot import BOOTS, linux_args, vmlinux
from test_gdbstub import _masked, gdb_run

SCRIPT = """\
hbreak start_kernel
continue
bt
p jiffies
p init_uts_ns.name.sysname
delete
continue
"""


def _session(which: str, machine: str, tmp_path: Path) -> tuple[str, int]:
    args = [*linux_args(machine, "restart", "nokaslr"), "-no-reboot", "-S"]
    transcript, _out, status = gdb_run(which, machine, args, vmlinux(BOOTS[machine][0]),
                                       SCRIPT, tmp_path, timeout=600)
    return transcript, status


@pytest.mark.parametrize("machine", sorted(BOOTS))
def test_break_on_start_kernel_as_on_qemu(machine: str, tmp_path: Path) -> None:
    theirs, q_status = _session("qemu", machine, tmp_path)
    ours, e_status = _session("emu", machine, tmp_path)
    assert "\nBreakpoint 1, start_kernel () at " in theirs, theirs
    assert "\n#0  start_kernel () at " in theirs and "/init/main.c:" in theirs
    assert '= "Linux", ' in theirs  # init_uts_ns.name.sysname
    assert _masked(ours, machine) == _masked(theirs, machine)
    assert (e_status, q_status) == (0, 0)
