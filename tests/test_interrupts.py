"""Interrupts under load: the storm image (guest_images/src/storm.c) runs pulse's
read-modify-write loop while a 20 kHz timer interrupt also updates memory, then spins on a
variable only its interrupt handler changes. Every run must print exactly what QEMU prints:
no update lost or applied twice, however the interrupts and the run loop's stops fall.

On aarch64 it runs on both of virt's interrupt controllers: the default GICv2 (memory-mapped
CPU interface) and ``gic-version=3`` (redistributor and ICC_* system registers); storm finds
which one it has from the distributor's ID registers."""

from __future__ import annotations

import pytest
from conftest import boot_args, run_emu, run_qemu

STORM = (b"storm: iters=2000000 checksum=0x1e164b342d5d0459 counter=2000000\n"
         b"storm: handler ticked, tick_sum and slots consistent\n"
         b"storm: waited for 100 ticks\n")
EXIT = {"pc": 1, "virt": 0}  # isa-debug-exit's (0 << 1) | 1; PSCI SYSTEM_OFF
#: the machines storm runs on: pc, and virt with each interrupt controller
TARGETS = ["pc", "virt", "virt,gic-version=3"]


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    return request.param


def _storm_args(target: str, *append: str) -> list[str]:
    machine = target.split(",")[0]
    args = boot_args(machine, "storm", *append)
    args[args.index("-M") + 1] = target
    return args


def test_storm_prints_what_qemu_prints(target: str) -> None:
    machine = target.split(",")[0]
    args = _storm_args(target)
    qemu = run_qemu(machine, args)
    assert (qemu.returncode, qemu.stdout) == (EXIT[machine], STORM)
    ours = run_emu(args, timeout=120)
    assert (ours.returncode, ours.stdout, ours.stderr) == (EXIT[machine], STORM, b"")


@pytest.mark.parametrize("run", range(20))
def test_storm_is_exact_run_after_run(target: str, run: int) -> None:
    """Twenty runs, at a shorter length: each one exact (a stress test of the stop at block
    boundaries against interrupt delivery; QEMU's output is the literal above, computed the
    same way for any iters)."""
    ours = run_emu(_storm_args(target, "-append", "iters=300000 hz=20000 wait=50"),
                   timeout=120)
    assert ours.stdout == (b"storm: iters=300000 checksum=0x8a5bdb5d94611caa counter=300000\n"
                           b"storm: handler ticked, tick_sum and slots consistent\n"
                           b"storm: waited for 50 ticks\n"), ours.stderr
    assert ours.returncode == EXIT[target.split(",")[0]]


def test_icount_makes_interrupts_land_on_the_same_instructions(target: str) -> None:
    """-icount shift=N: guest time is the instruction count, so the timer interrupts the
    same instructions run after run (storm's show=1 prints how many it took and a hash of
    the addresses they interrupted). Without it they land where host time says."""
    machine = target.split(",")[0]
    args = _storm_args(target, "-append", "iters=200000 show=1", "-icount", "shift=2,sleep=off")
    runs = [run_emu(args, timeout=120) for _ in range(3)]
    for run in runs:
        assert run.returncode == EXIT[machine], run.stderr
        lines = run.stdout.splitlines()
        assert lines[1:3] == [b"storm: handler ticked, tick_sum and slots consistent",
                              b"storm: waited for 100 ticks"]
        assert lines[3].startswith(b"storm: ticks=")
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout


@pytest.mark.parametrize("value, message", [
    ("shift=abc", "-icount shift=abc: icount: Invalid shift value"),
    ("shift=11", "-icount shift=11: icount: Invalid shift value"),
    ("foo=1", "-icount foo=1: Invalid parameter 'foo'"),
    ("shift=2,sleep=maybe", "-icount shift=2,sleep=maybe: Parameter 'sleep' expects 'on' or 'off'"),
    ("shift=2,rr=record", "-icount shift=2,rr=record: File name not specified for replay"),
])
def test_bad_icount_gets_qemus_line(value: str, message: str) -> None:
    args = ["-M", "pc", "-display", "none", "-icount", value]
    qemu = run_qemu("pc", args, timeout=30)
    ours = run_emu(args, timeout=30)
    assert qemu.stderr.decode().splitlines()[0].endswith(message)
    assert ours.stderr.decode() == f"emu: {message}\n"
    assert ours.returncode == 1 and qemu.returncode == 1
