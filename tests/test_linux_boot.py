"""Linux 6.1 (the test kernels of tools/linux/build.py) boots on both machines to its own
/init, whose lines, and the exit at its restart, are QEMU 7.2's. The init reports whether
Linux's fw_cfg driver found etc/vmcoreinfo (``-device vmcoreinfo``), which it then fills.

The kernels are built once per machine into a cache (tests/run.sh builds them before the
suite; a missing one is built here).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOTS = {
    "pc": ("x86_64", "qemu-system-x86_64",
           ["-M", "pc", "-append", "console=ttyS0 qemu_fw_cfg.ioport=0xc@0x510"]),
    "virt": ("arm64", "qemu-system-aarch64",
             ["-M", "virt", "-cpu", "cortex-a57", "-append", "console=ttyAMA0"]),
}
COMMON = ["-m", "256M", "-display", "none", "-serial", "stdio", "-no-reboot",
          "-device", "vmcoreinfo"]
INIT_LINES = ["emu-linux init: running", "emu-linux init: fw_cfg etc/vmcoreinfo present",
              "emu-linux init: restarting"]


def kernel(arch: str) -> str:
    """The cached test kernel's path (built if missing)."""
    out = subprocess.run([sys.executable, str(ROOT / "tools/linux/build.py"), "--print-path",
                          arch], capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def boot(command: list[str]) -> tuple[int, list[str]]:
    """Run to the end; the exit status and the lines the guest printed."""
    run = subprocess.run(command, capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL, cwd=ROOT)
    return run.returncode, (run.stdout + run.stderr).splitlines()


@pytest.mark.parametrize("machine", sorted(BOOTS))
def test_linux_boots_to_init_as_on_qemu(machine: str) -> None:
    arch, qemu, args = BOOTS[machine]
    image = kernel(arch)
    q_status, q_lines = boot([qemu, *args, *COMMON, "-kernel", image])
    e_status, e_lines = boot([sys.executable, "-m", "emu", *args, *COMMON, "-kernel", image])
    q_init = [line for line in q_lines if line.startswith("emu-linux init:")]
    e_init = [line for line in e_lines if line.startswith("emu-linux init:")]
    assert q_init == INIT_LINES  # (the kernel is the one this test means)
    assert e_init == q_init, "\n".join(e_lines[-30:])
    assert any("reboot: Restarting system" in line for line in e_lines)
    assert (e_status, q_status) == (0, 0), "\n".join(e_lines[-10:])
