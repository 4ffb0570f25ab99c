"""Linux 6.1 (the test kernels of tools/linux/build.py, with their initramfs) boots on both
machines to its own /init, whose lines, and the exit at its restart, are QEMU 7.2's: the init
prints uname, reads a ``-fw_cfg`` item back through Linux's fw_cfg driver and the size of
etc/vmcoreinfo (``-device vmcoreinfo``), and restarts the machine ("restart" on the kernel
command line), which ``-no-reboot`` turns into the end of the run.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import ROOT
from linux_boot import BOOTS, FW_CFG_ITEM, command, init_lines, linux_args


def boot(emulator: str, machine: str) -> tuple[int, str]:
    run = subprocess.run([*command(emulator, machine), *linux_args(machine, "restart"),
                          "-no-reboot"], capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL, cwd=ROOT)
    return run.returncode, run.stdout + run.stderr


@pytest.mark.parametrize("machine", sorted(BOOTS))
def test_linux_boots_to_init_as_on_qemu(machine: str) -> None:
    q_status, q_out = boot("qemu", machine)
    e_status, e_out = boot("emu", machine)
    q_init = init_lines(q_out)
    # (the kernel and init are the ones this test means)
    assert q_init[1:] == [f"emu-linux init: fw_cfg {FW_CFG_ITEM[0]}: {FW_CFG_ITEM[1]}",
                          "emu-linux init: fw_cfg etc/vmcoreinfo size: 16",
                          "emu-linux init: restarting"], q_out
    assert q_init[0].startswith("emu-linux init: uname: Linux 6.1.")
    assert init_lines(e_out) == q_init, e_out[-3000:]
    assert "reboot: Restarting system" in e_out
    assert (e_status, q_status) == (0, 0), e_out[-2000:]
