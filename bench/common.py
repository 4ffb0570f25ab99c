"""Helpers shared by the benchmark scripts in ``bench/``.

The scripts are run as ``python3 bench/<name>.py`` from any directory; each puts its own
directory at the front of ``sys.path`` and then imports this module. Only the standard
library is used here.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: the checkout: the parent of ``bench/``
REPO = Path(__file__).resolve().parent.parent
#: the guest images, ``guest_images/<arch>/<image>.elf``
IMAGES = REPO / "guest_images"
#: QEMU binary whose version the header lines report
QEMU_X86_64 = "qemu-system-x86_64"

#: options both machines get: RAM, no display, the first serial port on stdio
_COMMON_OPTIONS: tuple[str, ...] = ("-m", "128M", "-display", "none", "-serial", "stdio")


@dataclass(frozen=True)
class Machine:
    """A machine both emulators run, with the same options."""

    name: str  # -M value
    arch: str  # guest_images/<arch>/
    qemu: str  # qemu-system-* binary
    options: tuple[str, ...]  # everything before -kernel, -fw_cfg and -append
    exit_status: int  # what an image that exits with value 0 exits with
    has_cmdline: bool  # whether -append reaches the guest


#: ``pc`` (x86_64): an exit value v leaves QEMU through isa-debug-exit with status 2v+1
PC = Machine(
    "pc",
    "x86_64",
    QEMU_X86_64,
    ("-M", "pc", *_COMMON_OPTIONS, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"),
    exit_status=1,
    has_cmdline=True,
)
#: ``virt`` (aarch64)
VIRT = Machine(
    "virt",
    "aarch64",
    "qemu-system-aarch64",
    ("-M", "virt", "-cpu", "cortex-a57", *_COMMON_OPTIONS),
    exit_status=0,
    has_cmdline=False,
)
MACHINES = (PC, VIRT)


class RunError(Exception):
    """A run that failed: wrong exit status, timeout, or unexpected output."""


# -- statistics and formatting ---------------------------------------------------------------


def median(xs: Sequence[float]) -> float | None:
    """The median of ``xs``, or None if it is empty."""
    return statistics.median(xs) if xs else None


def fmt(x: float | None) -> str:
    """``x`` with three decimals, or ``FAIL`` for None."""
    return "FAIL" if x is None else f"{x:.3f}"


def fmt_times(xs: Iterable[float]) -> str:
    """The values of ``xs`` with three decimals, separated by spaces."""
    return " ".join(f"{t:.3f}" for t in xs)


# -- the header line -------------------------------------------------------------------------


def version_line(argv: list[str]) -> str:
    """The first line ``argv`` prints (stdout, else stderr), or ``unknown ...``."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def qemu_version(binary: str = QEMU_X86_64) -> str:
    """QEMU's version as ``binary --version`` reports it, without the leading words."""
    return version_line([binary, "--version"]).removeprefix("QEMU emulator version ")


def unicorn_version() -> str:
    """The installed unicorn's version, from its metadata or else from the module."""
    try:
        return importlib.metadata.version("unicorn")
    except importlib.metadata.PackageNotFoundError:
        return version_line([sys.executable, "-c", "import unicorn; print(unicorn.__version__)"])


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (or the platform), else ``unknown``."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware"):
            return value.strip()
    return "unknown"


def nproc() -> int | None:
    """How many CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def now() -> str:
    """The local date and time, to the minute, with the time zone."""
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def header() -> str:
    """The line that says when and where the benchmark ran, with which versions."""
    unicorn = unicorn_version()
    qemu = qemu_version()
    return (
        f"{now()}; nproc {nproc()}; CPU {cpu_model()}; Python {platform.python_version()}; "
        f"unicorn {unicorn}; QEMU {qemu} (TCG)"
    )


# -- running the emulators -------------------------------------------------------------------


def emu_env() -> dict[str, str]:
    """This process's environment with the checkout at the front of ``PYTHONPATH``, and
    bytecode caching on (``PYTHONDONTWRITEBYTECODE`` dropped): emu then starts as an installed
    emu does, from cached bytecode, instead of compiling its modules at every run."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def run_process(who: str, argv: Sequence[str], env: dict[str, str],
                timeout: float) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` from the checkout with no stdin and its output captured; a run that
    outlives ``timeout`` seconds is killed and raised as a RunError naming ``who``."""
    try:
        return subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, env=env,
                              cwd=REPO, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RunError(f"{who}: timed out after {timeout:.0f} s: {' '.join(argv)}") from None


@dataclass
class TimedRun:
    """A run whose stdout was timestamped as it arrived (``time.monotonic()`` seconds)."""

    lines: list[bytes]  # stdout, line by line (newlines kept)
    starts: list[float]  # per line, when its first byte arrived
    ends: list[float]  # per line, when its newline arrived
    started: float  # just before the process was started
    exited: float  # when its exit was seen
    stderr: str


def run_lines(who: str, argv: Sequence[str], env: dict[str, str], expect_status: int,
              timeout: float) -> TimedRun:
    """Run ``argv`` from the checkout with its stdout read unbuffered, timestamping the
    arrival of each line's first byte and of its newline (the guests have no timer: the host
    times what they print).

    Raises RunError unless it exits with ``expect_status`` within ``timeout`` seconds.
    """
    with tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            cwd=REPO,
            bufsize=0,  # raw pipe: each read returns whatever has arrived
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        lines: list[bytes] = []
        starts: list[float] = []
        ends: list[float] = []
        partial = b""
        try:
            assert proc.stdout is not None
            fd = proc.stdout.fileno()
            while chunk := os.read(fd, 65536):
                now = time.monotonic()
                while chunk:
                    if not partial:
                        starts.append(now)
                    head, newline, chunk = chunk.partition(b"\n")
                    partial += head + newline
                    if newline:
                        ends.append(now)
                        lines.append(partial)
                        partial = b""
            if partial:
                lines.append(partial)
                ends.append(time.monotonic())
            status = proc.wait()
            exited = time.monotonic()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        stderr = err.read().decode(errors="replace").strip()
    if timed_out.is_set():
        raise RunError(f"{who}: timed out after {timeout:.0f} s: {' '.join(argv)}")
    if status != expect_status:
        raise RunError(
            f"{who}: exit status {status}, expected {expect_status}: {' '.join(argv)}\n"
            f"  stdout: {b''.join(lines)!r}\n  stderr: {stderr}"
        )
    return TimedRun(lines, starts, ends, started, exited, stderr)


def emu_argv(args: Sequence[str]) -> list[str]:
    """The command line that runs emu (``python -m emu``) with the QEMU options ``args``."""
    return [sys.executable, "-m", "emu", *args]


def have_programs(prog: str, binaries: Iterable[str]) -> bool:
    """Whether every one of ``binaries`` is on PATH; says which is not on stderr if not."""
    for binary in binaries:
        if shutil.which(binary) is None:
            print(f"{prog}: {binary} not found on PATH", file=sys.stderr)
            return False
    return True


# -- command line and result -----------------------------------------------------------------


def add_markdown_arg(parser: argparse.ArgumentParser) -> None:
    """Add the ``--markdown FILE`` option."""
    parser.add_argument(
        "--markdown", metavar="FILE", type=Path, help="also write the header and table to FILE"
    )


def finish(prog: str, text: str, markdown: Path | None, errors: list[str], what: str) -> int:
    """Print ``text`` (and write it to ``markdown``), then the ``errors`` on stderr.

    ``what`` names what failed, e.g. ``benchmark(s)``. Returns the exit status: 1 if there
    are errors, else 0.
    """
    print(text, end="")
    if markdown is not None:
        markdown.write_text(text)
    if errors:
        print(f"{prog}: {len(errors)} {what} failed:", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    return 0
