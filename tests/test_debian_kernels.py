"""Debian's distribution kernels, unchanged (linux-image-amd64 and linux-image-arm64, 6.1,
fetched and cached by tools/linux/debian_kernels.py), boot on emu to the /init of an
initramfs (tools/linux/init.c) with the /init lines QEMU 7.2 gives.

These kernels build the fw_cfg driver as a module, which the initramfs does not hold: /init
reports the fw_cfg items absent on both. They probe far more than the test kernels (PCI, ACPI,
CPUID leaves, every platform device), which is the point; the kernel logs still differ where
emu's machines lack devices QEMU's have (docs/devel/linux.md, "Debian's kernels").
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT
from linux_boot import run_to_end

BOOTS = {
    "amd64": ("qemu-system-x86_64", ["-M", "pc", "-append", "console=ttyS0 restart"]),
    "arm64": ("qemu-system-aarch64",
              ["-M", "virt", "-cpu", "cortex-a57", "-append", "console=ttyAMA0 restart"]),
}
COMMON = ["-m", "256M", "-display", "none", "-serial", "stdio", "-no-reboot",
          "-device", "vmcoreinfo"]
INIT_LINES = ["emu-linux init: fw_cfg opt/emu/test: absent",
              "emu-linux init: fw_cfg etc/vmcoreinfo size: absent",
              "emu-linux init: restarting"]


def debian(arch: str, what: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "tools/linux/debian_kernels.py"), what,
                          arch], capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("arch", sorted(BOOTS))
def test_debian_kernel_boots_to_init_as_on_qemu(arch: str) -> None:
    qemu, args = BOOTS[arch]
    files = ["-kernel", debian(arch, "--print-path"), "-initrd", debian(arch, "--print-initrd")]
    q_status, q_lines = run_to_end([qemu, *args, *COMMON, *files], timeout=3000)
    e_status, e_lines = run_to_end([sys.executable, "-m", "emu", *args, *COMMON, *files],
                                   timeout=3000)
    q_init = [line for line in q_lines if line.startswith("emu-linux init:")]
    e_init = [line for line in e_lines if line.startswith("emu-linux init:")]
    assert q_init[0].startswith("emu-linux init: uname: Linux 6.1.")
    assert q_init[1:] == INIT_LINES, "\n".join(q_lines[-20:])
    assert e_init == q_init, "\n".join(e_lines[-30:])
    assert any("reboot: Restarting system" in line for line in e_lines)
    assert (e_status, q_status) == (0, 0), "\n".join(e_lines[-10:])
