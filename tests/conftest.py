"""Shared helpers: run emu and QEMU the same way, find the guest images."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "guest_images"
EXIT_DEVICE = ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]

#: machine -> (arch directory, QEMU binary, base options shared by emu and QEMU)
MACHINES = {
    "pc": ("x86_64", "qemu-system-x86_64", ["-M", "pc", "-m", "128M", *EXIT_DEVICE]),
    "virt": ("aarch64", "qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a57", "-m", "128M"]),
}


def image(machine: str, name: str) -> str:
    """Path of guest image ``name`` for ``machine``."""
    return str(IMAGES / MACHINES[machine][0] / f"{name}.elf")


def emu_cmd() -> list[str]:
    return [sys.executable, "-m", "emu"]


def run_emu(args: list[str], timeout: float = 60, env_extra: dict[str, str] | None = None,
            **kw: object) -> subprocess.CompletedProcess:
    """Run emu with ``args``; captures bytes."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env_extra or {}))
    return subprocess.run(emu_cmd() + args, capture_output=True, timeout=timeout, env=env,
                          cwd=ROOT, **kw)


def run_qemu(machine: str, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run Debian's qemu-system-* for ``machine`` with ``args``."""
    binary = shutil.which(MACHINES[machine][1])
    assert binary, f"{MACHINES[machine][1]} is not installed (the test command installs it)"
    return subprocess.run([binary, *args], capture_output=True, timeout=timeout, cwd=ROOT)


def boot_args(machine: str, name: str, *extra: str) -> list[str]:
    """The options that boot ``name`` on ``machine``; identical for emu and QEMU."""
    return [*MACHINES[machine][2], "-display", "none", "-serial", "stdio",
            "-kernel", image(machine, name), *extra]


@pytest.fixture(params=["pc", "virt"])
def machine(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on both machines."""
    return request.param


def read_until(proc: subprocess.Popen, marker: bytes) -> bytes:
    """What ``proc`` printed up to and including ``marker`` (fails if it ends first)."""
    assert proc.stdout is not None
    out = b""
    while marker not in out:
        chunk = proc.stdout.read1(4096)
        assert chunk, out
        out += chunk
    return out


def qmp_connect(sock: str, tries: int = 100):
    """A QMP client connected to ``sock``, retrying while the server is still starting."""
    from qemu.qmp.legacy import QEMUMonitorProtocol

    qmp = QEMUMonitorProtocol(sock)
    for _ in range(tries - 1):
        try:
            qmp.connect()
            return qmp
        except OSError:
            time.sleep(0.05)
    qmp.connect()
    return qmp
