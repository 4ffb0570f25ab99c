"""CPUID of the default x86 model (qemu64) is QEMU 7.2's, leaf by leaf (emu/cpu/x86_cpuid.py):
the cpuid guest image prints every leaf on emu and on QEMU, with one CPU and with -smp
topologies (QEMU 7.2 makes ``-smp N[,maxcpus=M]`` one socket of M cores)."""

from __future__ import annotations

import pytest
from conftest import boot_args, run_emu, run_qemu


@pytest.mark.parametrize("smp", [None, "2", "4", "2,maxcpus=3"])
def test_qemu64_cpuid_is_qemus(smp: str | None) -> None:
    args = boot_args("pc", "cpuid", *(["-smp", smp] if smp else []))
    qemu, ours = run_qemu("pc", args), run_emu(args)
    assert b"cpuid 0x00000001.0x00: 0x00060fb1 " in qemu.stdout, qemu.stdout + qemu.stderr
    assert ours.stdout == qemu.stdout
    assert ours.returncode == qemu.returncode == 1  # isa-debug-exit with value 0
