"""The Linux 6.1 test kernel's boot log on virt (GICv2), emu against QEMU 7.2.

Both boot the cached arm64 Image (tools/linux/build.py) with the same command line, with and
without early console and full log level; the logs, timestamps stripped, must be equal line
for line, the GICv2m line ("GICv2m: range[mem 0x08020000-0x08020fff], SPI[80:143]") and the
"Memory:" line included. One exception, explicit below: in the "Memory:" line the available
and reserved amounts differ by 32 KiB, the memory Linux takes to unflatten QEMU's larger
device tree (nodes for 32 virtio-mmio transports, PCIe, flash, PL031, PL061, gpio-keys and
the PMU, which emu does not model: QEMU booted with emu's tree with ``-dtb`` reports emu's
numbers). The rest of that line (the 1 MiB device tree's reservation included) must match.
"""

from __future__ import annotations

import re

import pytest
from conftest import run_emu, run_qemu
from linux_boot import linux_args

#: the device tree size difference above, in KiB, on the available and reserved amounts
DT_UNFLATTEN_KIB = 32
MEMORY = re.compile(r"Memory: (\d+)K/(\d+)K available \((.*), (\d+)K reserved, (.*)\)")


def _log(stdout: bytes) -> list[str]:
    return [re.sub(r"^\[ *[0-9.]*\] ", "", line) for line in stdout.decode().splitlines()]


@pytest.mark.parametrize("append", [[], ["earlycon=pl011,0x9000000", "loglevel=8"]])
def test_boot_log_matches_qemu(append: list[str]) -> None:
    args = [*linux_args("virt", *append, "restart"), "-no-reboot"]
    qemu, emu = run_qemu("virt", args, timeout=120), run_emu(args, timeout=300)
    assert qemu.returncode == emu.returncode == 0, emu.stderr
    ours, theirs = _log(emu.stdout), _log(qemu.stdout)
    assert "GICv2m: range[mem 0x08020000-0x08020fff], SPI[80:143]" in theirs
    assert theirs[-1] == "reboot: Restarting system"
    assert len(ours) == len(theirs), (ours[-3:], theirs[-3:])
    for mine, qemus in zip(ours, theirs, strict=True):
        m, q = MEMORY.fullmatch(mine), MEMORY.fullmatch(qemus)
        if q is None:
            assert mine == qemus
            continue
        assert m is not None, mine
        assert int(m[1]) == int(q[1]) + DT_UNFLATTEN_KIB, (mine, qemus)
        assert int(m[4]) == int(q[4]) - DT_UNFLATTEN_KIB, (mine, qemus)
        assert (m[2], m[3], m[5]) == (q[2], q[3], q[5])
