#!/usr/bin/env python3
"""Firmware boot of a 32 MiB kernel: emu's firmware (fw_cfg DMA) against QEMU's ``-kernel``.

For each machine (``pc``/x86_64 and ``virt``/aarch64) this script writes, into a temporary
directory, a "big" kernel: a new ELF64 file with the PT_LOAD segments of the committed
``guest_images/<arch>/hello.elf`` (same physical addresses, same bytes, same entry point;
on x86_64 also its PT_NOTE, the Xen PVH note ``XEN_ELFNOTE_PHYS32_ENTRY`` that QEMU and emu
boot it by) plus one more PT_LOAD segment of exactly 32 MiB of pseudo-random bytes
(``random.Random(1).randbytes``) at hello's highest end rounded up to 2 MiB. The guest runs
exactly as hello does; the extra segment only has to be loaded.

It then measures the wall time from starting the process to its exit, median over ``--runs``
runs, of three ways to boot it, with the same options (``-m 256M``) and ``-kernel``:

* QEMU 7.2 (``qemu-system-*``; QEMU loads the ELF itself: on pc as ROM blobs that its PVH
  option ROM boots after SeaBIOS, on virt directly without firmware);
* emu, default firmware boot: emu's firmware reads the kernel through fw_cfg DMA (on pc the
  flat memory image, lowest PT_LOAD paddr to highest end, with one transfer; on virt the
  ``-kernel`` file, one transfer per PT_LOAD segment);
* emu ``--direct-boot``: emu loads the segments into RAM itself;

and the same three with the small ``hello.elf`` (a copy taken at the start). From the two
it estimates the throughput of loading the extra segment, 32 MiB / (t_big - t_small) in
MiB/s, for each of the three; for emu's firmware boot that is the fw_cfg DMA path (with emu
reading the file and building the items it publishes).

Before timing, every variant is run once and must exit with the image's status and print
``Hello from the guest! (<arch>)``; all runs of a machine must print the same bytes. One more
untimed firmware boot of the big image with ``-trace fw_cfg_dma`` must show a DMA read that
covers the whole 32 MiB segment. A run that fails a check is reported on stderr and the
script exits with status 1.

Usage: ``python3 bench/firmware_boot.py [--runs N] [--markdown FILE]``
"""

from __future__ import annotations

import argparse
import random
import re
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
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
TIMEOUT_S = 300.0
DMA_TIMED_RUNS = 5
RAM = "256M"
BIG_SIZE = 32 << 20  # bytes in the extra PT_LOAD segment
BIG_ALIGN = 2 << 20  # it starts at hello's highest end rounded up to this
SEED = 1  # random.Random(SEED).randbytes(BIG_SIZE) is its contents
#: a successful DMA read in emu's ``-trace fw_cfg_dma`` output: (address, length)
DMA_READ_RE = re.compile(
    r"^fw_cfg_dma .*op=read address=(0x[0-9a-f]+) length=(0x[0-9a-f]+) "
    r"result=ok$",
    re.M,
)

#: the emulators and boot paths, in the order each run goes through them
WAYS: tuple[str, ...] = ("QEMU", "emu", "emu-direct")
WAY_LABELS = {
    "QEMU": "QEMU `-kernel`",
    "emu": "emu firmware (default)",
    "emu-direct": "emu `--direct-boot`",
}
IMAGE_KINDS: tuple[str, ...] = ("big", "small")

# -- the big kernel image --------------------------------------------------------------------

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr
PHDR = struct.Struct("<IIQQQQQQ")  # Elf64_Phdr
PT_LOAD = 1
PT_NOTE = 4
PF_R = 4


@dataclass(frozen=True)
class Phdr:
    """One ELF64 program header."""

    type: int
    flags: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    align: int

    def pack(self) -> bytes:
        return PHDR.pack(
            self.type,
            self.flags,
            self.offset,
            self.vaddr,
            self.paddr,
            self.filesz,
            self.memsz,
            self.align,
        )


def align_up(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def big_kernel(hello: bytes, data: bytes, bss: int = 0) -> tuple[bytes, int]:
    """A new ELF64 executable: ``hello``'s PT_LOAD and PT_NOTE segments at their file offsets
    (so a note inside a loaded segment stays there) and ``data`` as one more read-only PT_LOAD
    segment above them, followed by ``bss`` zero bytes (p_memsz = len(data) + bss); the same
    header fields and entry point, no section headers.

    Returns the file's bytes and the physical address of the new segment.
    """
    (
        ident,
        e_type,
        e_machine,
        e_version,
        e_entry,
        e_phoff,
        _shoff,
        e_flags,
        _ehsize,
        e_phentsize,
        e_phnum,
        _shentsize,
        _shnum,
        _shstrndx,
    ) = EHDR.unpack_from(hello)
    if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1 or e_phentsize != PHDR.size:
        raise RunError("hello.elf is not a little-endian ELF64 file with the usual headers")
    phdrs = [Phdr(*PHDR.unpack_from(hello, e_phoff + i * PHDR.size)) for i in range(e_phnum)]
    kept = [p for p in phdrs if p.type in (PT_LOAD, PT_NOTE)]
    loads = [p for p in kept if p.type == PT_LOAD and p.memsz]
    if not loads:
        raise RunError("hello.elf has no PT_LOAD segment")

    big_paddr = align_up(max(p.paddr + p.memsz for p in loads), BIG_ALIGN)
    phdr_end = EHDR.size + (len(kept) + 1) * PHDR.size
    # hello's segments keep their offsets; they must not overlap the new program headers
    if any(p.filesz and p.offset < phdr_end for p in kept):
        raise RunError("hello.elf has segment data where the new program headers go")
    body_end = max(p.offset + p.filesz for p in kept)
    big_offset = align_up(body_end, 0x1000)  # congruent to big_paddr modulo the page size
    big = Phdr(PT_LOAD, PF_R, big_offset, big_paddr, big_paddr, len(data), len(data) + bss,
               0x1000)

    out = bytearray(big_offset)
    out[: EHDR.size] = EHDR.pack(
        ident,
        e_type,
        e_machine,
        e_version,
        e_entry,
        EHDR.size,  # e_phoff
        0,  # e_shoff: no section headers
        e_flags,
        EHDR.size,
        PHDR.size,
        len(kept) + 1,
        0,  # e_shentsize
        0,  # e_shnum
        0,  # e_shstrndx: SHN_UNDEF
    )
    out[EHDR.size : phdr_end] = b"".join(p.pack() for p in (*kept, big))
    for p in kept:
        out[p.offset : p.offset + p.filesz] = hello[p.offset : p.offset + p.filesz]
    return bytes(out) + data, big_paddr


# -- running ---------------------------------------------------------------------------------


@dataclass
class Result:
    """The runs of one machine: wall seconds per (way, image kind)."""

    machine: Machine
    kernels: dict[str, Path] = field(default_factory=dict)  # image kind -> file
    big_paddr: int = 0
    times: dict[tuple[str, str], list[float]] = field(
        default_factory=lambda: {(w, k): [] for w in WAYS for k in IMAGE_KINDS}
    )
    output: bytes | None = None  # the first run's stdout
    failed: bool = False
    #: per timed-DMA run, the seconds of emu's longest fw_cfg DMA transfer (the kernel's)
    dma_seconds: list[float] = field(default_factory=list)


def machine_options(m: Machine) -> list[str]:
    """``m``'s options with ``-m RAM`` instead of the common 128M."""
    opts = list(m.options)
    opts[opts.index("-m") + 1] = RAM
    return opts


def argv_for(m: Machine, way: str, kernel: Path) -> list[str]:
    args = [*machine_options(m), "-kernel", str(kernel)]
    if way == "QEMU":
        return [m.qemu, *args]
    if way == "emu-direct":
        return emu_argv([*args, "--direct-boot"])
    return emu_argv(args)


def run_once(
    who: str, argv: Sequence[str], env: dict[str, str], expect: int
) -> tuple[float, bytes, str]:
    """Run ``argv``, return (wall seconds, stdout, stderr); raise RunError unless it exits as
    expected."""
    start = time.perf_counter()
    proc = run_process(who, argv, env, TIMEOUT_S)
    elapsed = time.perf_counter() - start
    err = proc.stderr.decode(errors="replace").strip()
    if proc.returncode != expect:
        raise RunError(
            f"{who}: exit status {proc.returncode}, expected {expect}: "
            f"{' '.join(argv)}\n  stdout: {proc.stdout!r}\n  stderr: {err}"
        )
    return elapsed, proc.stdout, err


def check_output(r: Result, who: str, out: bytes) -> None:
    """``out`` must start with hello's first line and equal every earlier run's output."""
    first = f"Hello from the guest! ({r.machine.arch})\n".encode()
    if not out.startswith(first):
        raise RunError(f"{who}: {r.machine.name} printed {out!r}, not {first!r} first")
    if r.output is None:
        r.output = out
    elif out != r.output:
        raise RunError(
            f"{who}: {r.machine.name} output differs from the first run's:\n"
            f"  first: {r.output!r}\n  {who}: {out!r}"
        )


#: runs emu's command line (sys.argv[1:]) with each fw_cfg DMA transfer timed in-process;
#: prints "dma-seconds S" per transfer on stderr
TIMED_DMA_CHILD = """
import sys, time
from emu import cli
from emu.devices.fw_cfg import FwCfg
untimed = FwCfg.dma_transfer
def timed(self):
    start = time.perf_counter()
    untimed(self)
    print(f"dma-seconds {time.perf_counter() - start:.9f}", file=sys.stderr)
FwCfg.dma_transfer = timed
sys.exit(cli.main(sys.argv[1:]))
"""
DMA_SECONDS_RE = re.compile(r"^dma-seconds ([0-9.]+)$", re.M)


def check_dma(r: Result, env: dict[str, str]) -> None:
    """Untimed firmware boots of the big image with ``-trace fw_cfg_dma``: one successful
    DMA read must cover the whole 32 MiB segment at its address. The same runs time each
    transfer inside emu (TIMED_DMA_CHILD); the median over the runs of the longest one, the
    kernel's, gives the DMA throughput."""
    m = r.machine
    args = [*machine_options(m), "-kernel", str(r.kernels["big"]), "-trace", "fw_cfg_dma"]
    argv = [sys.executable, "-c", TIMED_DMA_CHILD, *args]
    for _ in range(DMA_TIMED_RUNS):
        _, out, err = run_once("emu (big image, timed DMA)", argv, env, m.exit_status)
        check_output(r, "emu (big image, timed DMA)", out)
        r.dma_seconds.append(max(float(x) for x in DMA_SECONDS_RE.findall(err)))
    check_output(r, "emu (big image, -trace fw_cfg_dma)", out)
    end = r.big_paddr + BIG_SIZE
    for match in DMA_READ_RE.finditer(err):
        addr, length = int(match[1], 16), int(match[2], 16)
        if addr <= r.big_paddr and addr + length >= end:
            print(
                f"  {m.name:4} check big   emu firmware: one DMA read of 0x{length:x} bytes "
                f"to 0x{addr:x}",
                file=sys.stderr,
                flush=True,
            )
            return
    raise RunError(
        f"emu: {m.name} firmware boot has no fw_cfg DMA read of 0x{r.big_paddr:x}-0x{end - 1:x}"
        f" in its trace:\n{err}"
    )


def run_machine(r: Result, runs: int, env: dict[str, str]) -> None:
    m = r.machine
    # one untimed run of every variant: checks that each boots, and warms the page cache
    for kind in IMAGE_KINDS:
        for way in WAYS:
            who = f"{way} ({kind} image)"
            elapsed, out, _ = run_once(who, argv_for(m, way, r.kernels[kind]), env, m.exit_status)
            check_output(r, who, out)
            print(
                f"  {m.name:4} check {kind:5} {way:10} {elapsed:7.3f} s: boots, prints hello",
                file=sys.stderr,
                flush=True,
            )
    check_dma(r, env)
    for i in range(runs):
        # go through all six in turn, so that drift in machine load hits all alike
        for kind in IMAGE_KINDS:
            for way in WAYS:
                who = f"{way} ({kind} image)"
                argv = argv_for(m, way, r.kernels[kind])
                elapsed, out, _ = run_once(who, argv, env, m.exit_status)
                check_output(r, who, out)
                r.times[way, kind].append(elapsed)
                print(
                    f"  {m.name:4} run {i + 1}/{runs} {kind:5} {way:10} {elapsed:7.3f} s",
                    file=sys.stderr,
                    flush=True,
                )


# -- the table -------------------------------------------------------------------------------


def medians(r: Result) -> dict[tuple[str, str], float] | None:
    if r.failed:
        return None
    out: dict[tuple[str, str], float] = {}
    for key, xs in r.times.items():
        med = median(xs)
        if med is None:
            return None
        out[key] = med
    return out


def throughput(med: dict[tuple[str, str], float], way: str) -> float | None:
    """32 MiB / (t_big - t_small) in MiB/s, or None if the difference is not positive."""
    diff = med[way, "big"] - med[way, "small"]
    return BIG_SIZE / (1 << 20) / diff if diff > 0 else None


def ratio(e: float | None, q: float | None) -> str:
    return "n/a" if e is None or q is None else f"{e / q:.2f}x"


def table(results: list[Result]) -> str:
    cols = " | ".join(WAY_LABELS[w] for w in WAYS)
    rows = [
        f"| machine | measure | {cols} | firmware/QEMU | direct/QEMU |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    labels = {"big": "hello + 32 MiB, median s", "small": "hello, median s"}
    for r in results:
        name = f"{r.machine.name} ({r.machine.arch})"
        med = medians(r)
        if med is None:
            for label in (*labels.values(), "load throughput estimate, MiB/s",
                          "fw_cfg DMA of the kernel, MiB/s"):
                rows.append(f"| {name} | {label} | FAIL | FAIL | FAIL | FAIL | FAIL |")
            continue
        for kind in IMAGE_KINDS:
            t = [med[w, kind] for w in WAYS]
            cells = " | ".join(fmt(x) for x in t)
            rows.append(
                f"| {name} | {labels[kind]} | {cells} | {ratio(t[1], t[0])} | {ratio(t[2], t[0])} |"
            )
        tp = [throughput(med, w) for w in WAYS]
        cells = " | ".join("n/a" if x is None else f"{x:.0f}" for x in tp)
        rows.append(
            f"| {name} | load throughput estimate, MiB/s | {cells} "
            f"| {ratio(tp[1], tp[0])} | {ratio(tp[2], tp[0])} |"
        )
        dma = median(r.dma_seconds)
        rate = "n/a" if not dma else f"{(BIG_SIZE + (1 << 20)) / dma / (1 << 20):.0f}"
        rows.append(f"| {name} | fw_cfg DMA of the kernel, MiB/s | - | {rate} | - | | |")
    return "\n".join(rows)


def notes(results: list[Result]) -> str:
    lines = [
        "- load throughput estimate = 32 MiB / (median t_big - median t_small) of the same "
        "column: an estimate from the difference of two start-to-exit times, not a "
        "measured transfer; it holds everything the extra 32 MiB costs (reading the file, "
        "building the fw_cfg items, the copy into guest RAM). For emu's firmware boot that "
        "copy is the fw_cfg DMA transfer; QEMU and `--direct-boot` load the ELF themselves. "
        "n/a: the difference is not positive. For throughput, above 1.00x means emu is faster; "
        "for times, below 1.00x does.",
        f"- fw_cfg DMA of the kernel: the longest fw_cfg DMA transfer of a firmware boot of the "
        f"big image, timed inside emu around the device's transfer (median of "
        f"{DMA_TIMED_RUNS} runs), as MiB/s of about 33 MiB (the 32 MiB segment and hello: on "
        "pc the whole memory image, on virt the segment alone; the rate uses 33 MiB for both). "
        "QEMU has no such transfer: it copies the kernel into RAM itself.",
    ]
    for r in results:
        if r.kernels:
            big = r.kernels["big"]
            lines.append(
                f"- {r.machine.name}: big image {big.stat().st_size} bytes, the 32 MiB "
                f"segment at paddr 0x{r.big_paddr:x}-0x{r.big_paddr + BIG_SIZE - 1:x}"
            )
        if r.output is not None and not r.failed:
            first = r.output.decode(errors="replace").splitlines()[0]
            lines.append(f"- {r.machine.name}, every run prints: `{first}` ...")
    for r in results:
        for kind in IMAGE_KINDS:
            parts = "; ".join(f"{w} [{fmt_times(r.times[w, kind])}]" for w in WAYS)
            lines.append(f"- {r.machine.name} {kind}: {parts} s")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--runs", type=int, default=5, metavar="N", help="timed runs of each variant (default 5)"
    )
    add_markdown_arg(p)
    ns = p.parse_args(argv)
    if ns.runs < 1:
        p.error("--runs must be at least 1")
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    if not have_programs("firmware_boot", (m.qemu for m in MACHINES)):
        return 1
    env = emu_env()

    head = header()
    print(f"# {head}", file=sys.stderr, flush=True)
    results = [Result(m) for m in MACHINES]
    errors: list[str] = []
    data = random.Random(SEED).randbytes(BIG_SIZE)
    with tempfile.TemporaryDirectory(prefix="firmware_boot.") as tmp:
        for r in results:
            try:
                # both images from one read of hello.elf: a copy, so that a rebuild of
                # guest_images/ during the run cannot make them differ
                hello = (IMAGES / r.machine.arch / "hello.elf").read_bytes()
                small = Path(tmp) / f"hello-{r.machine.arch}.elf"
                small.write_bytes(hello)
                image, r.big_paddr = big_kernel(hello, data)
                big = Path(tmp) / f"hello-32m-{r.machine.arch}.elf"
                big.write_bytes(image)
                r.kernels = {"big": big, "small": small}
                run_machine(r, ns.runs, env)
            except RunError as e:
                r.failed = True
                errors.append(str(e))
                print(f"firmware_boot: FAILED: {e}", file=sys.stderr, flush=True)
        text = f"{head}\n\n{table(results)}\n\n{notes(results)}\n"
    return finish("firmware_boot", text, ns.markdown, errors, "machine(s)")


if __name__ == "__main__":
    sys.exit(main())
