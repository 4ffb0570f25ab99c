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
