#!/usr/bin/env python3
"""Boot the Linux test kernels (tools/linux/build.py) and Debian's distribution kernels
(tools/linux/debian_kernels.py) on QEMU 7.2 and on emu, on both machines, in the same run,
and print the wall time from starting the process to the first
line of the kernel's /init (``emu-linux init: uname: ...``) and to the exit (the init
restarts the machine: ``restart`` on the command line, ``-no-reboot``).

For emu it also counts the TLB misses the Python walk filled (``Cpu._on_tlb_fill``, timed
with ``time.perf_counter`` around each call), those the native walk filled
(emu/cpu/native_walk.py, where the checkout has it) and the calls of the Python MRS/MSR
hook (emu/cpu/arm64_sysregs.py): ``--emu-root`` runs another checkout
of emu (for a before/after comparison) with the same interpreter.

    python3 bench/linux_boot.py [--runs N] [--emu-root DIR] [--markdown FILE] [--no-count]
                                [--linux-build tools/linux/build.py] [--kernel MACHINE=PATH]
                                [--kinds test,debian]

It needs the test kernels (built on first use, a few minutes), Debian's kernels (fetched on
first use), ``qemu-system-x86_64`` and
``qemu-system-aarch64``, and emu's dependencies for the interpreter that runs it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRST_LINE = b"emu-linux init: "

#: machine -> Debian's architecture name (tools/linux/debian_kernels.py)
DEBIAN = {"pc": "amd64", "virt": "arm64"}
#: machine -> (tools/linux/build.py architecture, QEMU binary, options, console)
BOOTS = {
    "pc": ("x86_64", "qemu-system-x86_64", ["-M", "pc"], "ttyS0"),
    "virt": ("arm64", "qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a57"], "ttyAMA0"),
}

#: runs emu with Cpu._on_tlb_fill counted and timed; the counts go to stderr at exit
LAUNCHER = r"""
import atexit, runpy, sys, time
import emu.cpu as c
stats = [0, 0.0]
cpus = []
fill, set_ram = c.Cpu._on_tlb_fill, getattr(c.Cpu, "set_ram", None)
def counted(self, *args):
    t = time.perf_counter()
    try:
        return fill(self, *args)
    finally:
        stats[0] += 1
        stats[1] += time.perf_counter() - t
c.Cpu._on_tlb_fill = counted
sysreg_calls = [0]
try:
    import emu.cpu.arm64_sysregs as sysregs
    cfunc = sysregs.HOOK_INSN_SYS_CFUNC
    def counting_cfunc(fn):
        def hook(*args):
            sysreg_calls[0] += 1
            return fn(*args)
        return cfunc(hook)
    if cfunc is not None:
        sysregs.HOOK_INSN_SYS_CFUNC = counting_cfunc
except ImportError:
    pass
if set_ram is not None:
    def keep(self, blocks):
        cpus.append(self)
        return set_ram(self, blocks)
    c.Cpu.set_ram = keep
def report():
    walk = cpus and getattr(cpus[0], "native_walk", None)
    native = walk.fills[0] if walk else 0
    sys.stderr.write(f"\nTLBSTATS {stats[0]} {stats[1]:.3f} {native} {sysreg_calls[0]}\n")
atexit.register(report)
sys.argv = ["emu", *sys.argv[1:]]
runpy.run_module("emu", run_name="__main__", alter_sys=True)
"""


#: the build script of the kernels (--linux-build: another checkout's)
LINUX_BUILD = [str(REPO / "tools/linux/build.py")]


def built(arch: str, what: str) -> str:
    out = subprocess.run([sys.executable, LINUX_BUILD[0], what, arch],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


#: machine -> a kernel to boot instead of the built one (--kernel MACHINE=PATH)
KERNELS: dict[str, str] = {}


def debian(machine: str, what: str) -> str:
    out = subprocess.run([sys.executable, str(REPO / "tools/linux/debian_kernels.py"), what,
                          DEBIAN[machine]], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def args_for(machine: str, kind: str) -> list[str]:
    """The options that boot the ``kind`` of kernel ("test" or "debian") on ``machine``."""
    arch, _qemu, options, console = BOOTS[machine]
    if kind == "debian":
        kernel, initrd = debian(machine, "--print-path"), debian(machine, "--print-initrd")
    else:
        kernel = KERNELS.get(machine) or built(arch, "--print-path")
        initrd = built(arch, "--print-initrd")
    return [*options, "-m", "256M", "-display", "none", "-serial", "stdio", "-no-reboot",
            "-device", "vmcoreinfo", "-kernel", kernel,
            "-initrd", initrd, "-append", f"console={console} restart"]


def run(cmd: list[str], env: dict[str, str] | None, cwd: str | None) -> dict[str, float]:
    """One boot: seconds to the init's first line and to the exit, and emu's counts."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    assert proc.stdout is not None
    first = None
    seen = b""
    while chunk := os.read(proc.stdout.fileno(), 65536):
        seen = (seen + chunk)[-4096:]
        if first is None and FIRST_LINE in seen:
            first = time.monotonic() - start
    err = proc.stderr.read() if proc.stderr else b""
    status = proc.wait(timeout=600)
    end = time.monotonic() - start
    if first is None or status != 0:
        sys.exit(f"linux_boot.py: {cmd[0]} did not reach /init (status {status}):\n"
                 f"{seen.decode(errors='replace')}\n{err.decode(errors='replace')[-2000:]}")
    result = {"first": first, "exit": end}
    for line in err.decode(errors="replace").splitlines():
        if line.startswith("TLBSTATS "):
            count, seconds, native, sysreg = line.split()[1:]
            result.update(python_fills=int(count), python_fill_s=float(seconds),
                          native_fills=int(native), sysreg_calls=int(sysreg))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--emu-root", default=str(REPO), help="the emu checkout to run")
    parser.add_argument("--machines", default="pc,virt")
    parser.add_argument("--kinds", default="test,debian",
                        help="which kernels: the test kernels, Debian's, or both")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--linux-build", default=LINUX_BUILD[0],
                        help="the tools/linux/build.py that builds the kernels")
    parser.add_argument("--no-count", action="store_true",
                        help="run emu as python -m emu, without the counting wrappers")
    parser.add_argument("--kernel", action="append", default=[], metavar="MACHINE=PATH",
                        help="boot this kernel on MACHINE instead of the built one")
    opts = parser.parse_args()
    LINUX_BUILD[0] = opts.linux_build
    KERNELS.update(k.split("=", 1) for k in opts.kernel)
    env = dict(os.environ, PYTHONPATH=opts.emu_root)
    # emu as pip installs it, byte-compiled: without this, a PYTHONDONTWRITEBYTECODE in the
    # environment makes every run compile emu's sources again (about 0.1 s)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    rows = ["| machine | kernel | emulator | first init line, median s | exit, median s | "
            "Python TLB fills | their time, s | native TLB fills | MRS/MSR hook calls in Python |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for machine, kind in ((m, k) for k in opts.kinds.split(",")
                          for m in opts.machines.split(",")):
        options = args_for(machine, kind)
        results: dict[str, list[dict[str, float]]] = {"QEMU": [], "emu": []}
        for n in range(opts.runs):
            for name, cmd, cmd_env in (
                    ("QEMU", [BOOTS[machine][1], *options], None),
                    ("emu", [sys.executable, *(["-m", "emu"] if opts.no_count
                                               else ["-c", LAUNCHER]), *options], env)):
                # (python -c puts the working directory first on sys.path)
                r = run(cmd, cmd_env, opts.emu_root if cmd_env else None)
                results[name].append(r)
                print(f"{machine} {kind} {name} run {n + 1}: first line {r['first']:.3f} s, "
                      f"exit {r['exit']:.3f} s", file=sys.stderr)
        for name, rs in results.items():
            med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            fills = (f"{med['python_fills']:.0f} | {med['python_fill_s']:.2f} | "
                     f"{med['native_fills']:.0f} | {med['sysreg_calls']:.0f}"
                     if "python_fills" in med else "| | |")
            rows.append(f"| {machine} | {kind} | {name} | {med['first']:.2f} | {med['exit']:.2f} | "
                        f"{fills} |")
    table = "\n".join(rows)
    print(table)
    if opts.markdown:
        Path(opts.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
