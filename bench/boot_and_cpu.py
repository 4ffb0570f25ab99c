#!/usr/bin/env python3
"""Boot-time and CPU-bound benchmarks: emu against QEMU, both run here in the same invocation.

For each machine (``pc``/x86_64 and ``virt``/aarch64) two guest images from
``guest_images/`` are run under ``qemu-system-*`` and under ``python -m emu`` with the same
options, alternating QEMU and emu run by run:

* ``hello``: start-to-exit wall time of the whole process (QEMU's ``pc`` runs its default
  firmware, SeaBIOS, before the kernel; emu boots the PVH kernel directly).
* ``spin``: a CPU-bound loop (default 1e9 rounds); both must print the same
  ``spin: iters=N checksum=...`` line.

Every run must exit with the status the image asks for and both emulators must print the
same bytes, otherwise the script says so on stderr and exits with status 1. The result is a
Markdown table of medians and the ratio emu/QEMU (below 1 means emu is faster).

Usage: ``python3 bench/boot_and_cpu.py [--runs N] [--quick] [--markdown FILE]``
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    IMAGES,
    MACHINES,
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
    run_process,
)

#: a run that takes longer than this is killed and counts as a failure
TIMEOUT_S = 900.0
QUICK_SPIN_ITERS = 100_000_000
SPIN_RE = re.compile(rb"^spin: iters=(\d+) checksum=0x[0-9a-f]{16}\n\Z")


@dataclass
class Bench:
    machine: Machine
    image: str
    label: str
    append: str | None
    runs: int
    qemu_times: list[float] = field(default_factory=list)
    emu_times: list[float] = field(default_factory=list)
    output: bytes | None = None  # QEMU's stdout of the first run
    failed: bool = False


def guest_args(bench: Bench) -> list[str]:
    args = [
        *bench.machine.options,
        "-kernel",
        str(IMAGES / bench.machine.arch / f"{bench.image}.elf"),
    ]
    if bench.append is not None:
        args += ["-append", bench.append]
    return args


def run_once(
    who: str,
    argv: list[str],
    env: dict[str, str],
    expect_status: int,
) -> tuple[float, bytes]:
    """Run ``argv``, return (wall seconds, stdout); raise RunError unless it exits as expected."""
    start = time.perf_counter()
    proc = run_process(who, argv, env, TIMEOUT_S)
    elapsed = time.perf_counter() - start
    if proc.returncode != expect_status:
        err = proc.stderr.decode(errors="replace").strip()
        raise RunError(
            f"{who}: exit status {proc.returncode}, expected {expect_status}: "
            f"{' '.join(argv)}\n  stdout: {proc.stdout!r}\n  stderr: {err}"
        )
    return elapsed, proc.stdout


def check_output(bench: Bench, who: str, out: bytes) -> None:
    """Check ``out`` is what the image must print and the same as every earlier run's."""
    if bench.image == "spin":
        m = SPIN_RE.match(out)
        if not m:
            raise RunError(
                f"{who}: {bench.machine.name} spin printed {out!r}, "
                "not one 'spin: iters=N checksum=0x...' line"
            )
        want_iters = "1000000000"
        if bench.append is not None:
            want_iters = bench.append.removeprefix("iters=")
        if m.group(1).decode() != want_iters:
            raise RunError(
                f"{who}: {bench.machine.name} spin ran {m.group(1).decode()} "
                f"rounds, expected {want_iters}"
            )
    else:
        first = f"Hello from the guest! ({bench.machine.arch})\n".encode()
        if not out.startswith(first):
            raise RunError(f"{who}: {bench.machine.name} hello printed {out!r}")
    if bench.output is None:
        bench.output = out
    elif out != bench.output:
        raise RunError(
            f"{who}: {bench.machine.name} {bench.image} output differs:\n"
            f"  QEMU: {bench.output!r}\n  {who}: {out!r}"
        )


def run_bench(bench: Bench, env: dict[str, str]) -> None:
    args = guest_args(bench)
    qemu_argv = [bench.machine.qemu, *args]
    status = bench.machine.exit_status
    for i in range(bench.runs):
        # alternate the two so that drift in machine load hits both alike
        for who, argv, times in (
            ("QEMU", qemu_argv, bench.qemu_times),
            ("emu", emu_argv(args), bench.emu_times),
        ):
            elapsed, out = run_once(who, argv, env, status)
            check_output(bench, who, out)
            times.append(elapsed)
            print(
                f"  {bench.machine.name:4} {bench.label:22} run {i + 1}/{bench.runs} "
                f"{who:4} {elapsed:8.3f} s",
                file=sys.stderr,
                flush=True,
            )


def table(benches: list[Bench]) -> str:
    rows = [
        "| machine | benchmark | QEMU median (s) | emu median (s) | emu/QEMU |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for b in benches:
        q, e = median(b.qemu_times), median(b.emu_times)
        ratio = "FAIL" if b.failed or q is None or e is None else f"{e / q:.2f}x"
        q_s = "FAIL" if b.failed else fmt(q)
        e_s = "FAIL" if b.failed else fmt(e)
        rows.append(
            f"| {b.machine.name} ({b.machine.arch}) | {b.label} | {q_s} | {e_s} | {ratio} |"
        )
    return "\n".join(rows)


def details(benches: list[Bench]) -> str:
    lines = []
    for b in benches:
        if b.output and b.image == "spin":
            lines.append(f"- {b.machine.name} spin, both print: `{b.output.decode().strip()}`")
    for b in benches:
        q = fmt_times(b.qemu_times)
        e = fmt_times(b.emu_times)
        lines.append(f"- {b.machine.name} {b.label}: {b.runs} runs; QEMU [{q}] s; emu [{e}] s")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--runs",
        type=int,
        metavar="N",
        help="runs of each benchmark (default 5 for hello, 3 for spin; with --quick 3 and 1)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"fewer runs; spin with iters={QUICK_SPIN_ITERS} on pc (aarch64 "
        "spin has no command line and keeps its default)",
    )
    add_markdown_arg(p)
    ns = p.parse_args(argv)
    if ns.runs is not None and ns.runs < 1:
        p.error("--runs must be at least 1")
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    if not have_programs("boot_and_cpu", (m.qemu for m in MACHINES)):
        return 1
    env = emu_env()
    hello_runs = ns.runs or (3 if ns.quick else 5)
    spin_runs = ns.runs or (1 if ns.quick else 3)

    benches: list[Bench] = []
    for m in MACHINES:
        benches.append(Bench(m, "hello", "hello (start-to-exit)", None, hello_runs))
        if ns.quick and m.has_cmdline:
            benches.append(
                Bench(
                    m,
                    "spin",
                    f"spin (iters={QUICK_SPIN_ITERS:.0e})".replace("e+0", "e"),
                    f"iters={QUICK_SPIN_ITERS}",
                    spin_runs,
                )
            )
        else:
            benches.append(Bench(m, "spin", "spin (iters=1e9)", None, spin_runs))

    head = header()
    print(f"# {head}", file=sys.stderr, flush=True)
    errors: list[str] = []
    for b in benches:
        try:
            run_bench(b, env)
        except RunError as e:
            b.failed = True
            errors.append(str(e))
            print(f"boot_and_cpu: FAILED: {e}", file=sys.stderr, flush=True)

    text = f"{head}\n\n{table(benches)}\n\n{details(benches)}\n"
    return finish("boot_and_cpu", text, ns.markdown, errors, "benchmark(s)")


if __name__ == "__main__":
    sys.exit(main())
