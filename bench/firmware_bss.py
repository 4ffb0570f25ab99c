#!/usr/bin/env python3
"""A kernel with a 64 MiB .bss: how long until it prints its first line, emu against QEMU.

For each machine (``pc``/x86_64 and ``virt``/aarch64) this script writes, into a temporary
directory, a kernel made of the PT_LOAD segments of the committed
``guest_images/<arch>/hello.elf`` (same addresses, bytes and entry point; on x86_64 also its
PVH note) plus one more PT_LOAD segment with no file bytes and a p_memsz of 64 MiB (a
.bss: ``bench/firmware_boot.py``'s ``big_kernel`` with no data) at hello's highest end
rounded up to 2 MiB. Whoever loads the kernel must zero those 64 MiB; the guest then runs
as hello does.

It measures, median over ``--runs`` runs, the time from starting the process to the arrival
of the first byte of the guest's first line (``Hello from the guest! (<arch>)``), and to
the process's exit, for each way of booting it (all with ``-m 256M``):

* ``QEMU -kernel``: QEMU 7.2 loads the ELF itself (pc: SeaBIOS and QEMU's PVH option ROM
  enter it; virt: no firmware);
* ``QEMU -bios virt.bin`` (virt only): emu's virt firmware run by QEMU, which hands it the
  kernel through fw_cfg (the firmware zeroes the .bss);
* ``emu firmware``: emu's default boot, its firmware loads the kernel through fw_cfg;
* ``emu --direct-boot``: emu loads the segments itself.

``--virt-firmware FILE`` runs another virt firmware in the two firmware ways (to compare
ways of zeroing memory in the firmware). Every run must exit with the image's status (1 on
pc, 0 on virt) and print the same bytes, starting with hello's first line; otherwise the
script says so on stderr and exits with status 1.

Usage: ``python3 bench/firmware_bss.py [--runs N] [--bss MiB] [--virt-firmware FILE]
[--markdown FILE]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    IMAGES,
    MACHINES,
    REPO,
    Machine,
    RunError,
    add_markdown_arg,
    emu_argv,
    emu_env,
    finish,
    fmt,
    fmt_times,
    have_programs,
    header,
    median,
    run_lines,
)
from firmware_boot import big_kernel, machine_options

TIMEOUT_S = 120.0
VIRT_FIRMWARE = REPO / "emu" / "firmware" / "virt.bin"
WAY_LABELS = {
    "QEMU": "QEMU `-kernel`",
    "QEMU-bios": "QEMU `-bios virt.bin`",
    "emu": "emu firmware",
    "emu-direct": "emu `--direct-boot`",
}


def ways(m: Machine) -> tuple[str, ...]:
    """The boot ways run on ``m`` (emu's pc firmware cannot boot a kernel on QEMU)."""
    return ("QEMU", "QEMU-bios", "emu", "emu-direct") if m.name == "virt" else \
        ("QEMU", "emu", "emu-direct")


@dataclass
class Result:
    """Per boot way, the seconds to the first line and to the exit."""

    machine: Machine
    first: dict[str, list[float]] = field(default_factory=dict)
    exit: dict[str, list[float]] = field(default_factory=dict)
    output: bytes | None = None
    bss_paddr: int = 0
    failed: bool = False


def argv_for(m: Machine, way: str, kernel: Path, virt_firmware: Path | None) -> list[str]:
    args = [*machine_options(m), "-kernel", str(kernel)]
    if way == "QEMU":
        return [m.qemu, *args]
    if way == "QEMU-bios":
        return [m.qemu, *args, "-bios", str(virt_firmware or VIRT_FIRMWARE)]
    if way == "emu-direct":
        return emu_argv([*args, "--direct-boot"])
    if virt_firmware is not None and m.name == "virt":
        args += ["-bios", str(virt_firmware)]
    return emu_argv(args)


def run_machine(r: Result, kernel: Path, runs: int, env: dict[str, str],
                virt_firmware: Path | None) -> None:
    m = r.machine
    first_line = f"Hello from the guest! ({m.arch})\n".encode()
    for i in range(runs):
        for way in ways(m):  # in turn, so that drift in machine load hits all alike
            who = f"{way} ({m.name})"
            run = run_lines(who, argv_for(m, way, kernel, virt_firmware), env, m.exit_status,
                            TIMEOUT_S)
            out = b"".join(run.lines)
            if not out.startswith(first_line):
                raise RunError(f"{who}: printed {out!r}, not {first_line!r} first")
            if r.output is None:
                r.output = out
            elif out != r.output:
                raise RunError(f"{who}: output {out!r} differs from the first run's "
                               f"{r.output!r}")
            first, end = run.starts[0] - run.started, run.exited - run.started
            r.first.setdefault(way, []).append(first)
            r.exit.setdefault(way, []).append(end)
            print(f"  {m.name:4} run {i + 1}/{runs} {way:10} first line {first:7.3f} s, "
                  f"exit {end:7.3f} s", file=sys.stderr, flush=True)


def table(results: list[Result], bss_mib: int) -> str:
    rows = ["| machine | boot | first line, median s | exit, median s | first line / QEMU |",
            "| --- | --- | ---: | ---: | ---: |"]
    for r in results:
        name = f"{r.machine.name} ({r.machine.arch})"
        qemu = None if r.failed else median(r.first.get("QEMU", []))
        for way in ways(r.machine):
            if r.failed:
                rows.append(f"| {name} | {WAY_LABELS[way]} | FAIL | FAIL | FAIL |")
                continue
            first, end = median(r.first[way]), median(r.exit[way])
            ratio = "n/a" if not qemu or first is None else f"{first / qemu:.2f}x"
            rows.append(f"| {name} | {WAY_LABELS[way]} | {fmt(first)} | {fmt(end)} | {ratio} |")
    rows.append("")
    rows.append(f"- kernel: hello plus a PT_LOAD segment of 0 file bytes and {bss_mib} MiB "
                "p_memsz")
    for r in results:
        if r.output is not None:
            lines = r.output.decode(errors="replace").splitlines()
            rows.append(f"- {r.machine.name}: .bss at 0x{r.bss_paddr:x}; every run prints "
                        f"`{lines[0]}` ...")
        for way in ways(r.machine):
            rows.append(f"- {r.machine.name} {way}: first line [{fmt_times(r.first.get(way, []))}]"
                        f" s; exit [{fmt_times(r.exit.get(way, []))}] s")
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, metavar="N", help="runs of each way (default 5)")
    p.add_argument("--bss", type=int, default=64, metavar="MiB", help=".bss size (default 64)")
    p.add_argument("--virt-firmware", type=Path, metavar="FILE",
                   help="run this virt firmware instead of emu/firmware/virt.bin")
    p.add_argument("--machine", choices=[m.name for m in MACHINES], action="append",
                   help="only this machine (repeatable; default both)")
    add_markdown_arg(p)
    ns = p.parse_args(argv)
    if ns.runs < 1 or ns.bss < 1:
        p.error("--runs and --bss must be at least 1")
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    machines = [m for m in MACHINES if not ns.machine or m.name in ns.machine]
    if not have_programs("firmware_bss", (m.qemu for m in machines)):
        return 1
    env = emu_env()
    head = header()
    if ns.virt_firmware is not None:
        head += f"; virt firmware {ns.virt_firmware}"
    print(f"# {head}", file=sys.stderr, flush=True)
    results = [Result(m) for m in machines]
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="firmware_bss.") as tmp:
        for r in results:
            try:
                hello = (IMAGES / r.machine.arch / "hello.elf").read_bytes()
                image, r.bss_paddr = big_kernel(hello, b"", ns.bss << 20)
                kernel = Path(tmp) / f"hello-bss-{r.machine.arch}.elf"
                kernel.write_bytes(image)
                run_machine(r, kernel, ns.runs, env, ns.virt_firmware)
            except RunError as e:
                r.failed = True
                errors.append(str(e))
                print(f"firmware_bss: FAILED: {e}", file=sys.stderr, flush=True)
    text = f"{head}\n\n{table(results, ns.bss)}\n"
    return finish("firmware_bss", text, ns.markdown, errors, "machine(s)")


if __name__ == "__main__":
    sys.exit(main())
