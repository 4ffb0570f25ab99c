"""End to end: the shipped guest images on both boards, compared with QEMU."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import ROOT, boot_args, emu_cmd, run_emu, run_qemu

HELLO = {"pc": b"Hello from the guest! (x86_64)\n", "virt": b"Hello from the guest! (aarch64)\n"}


def test_hello_matches_qemu(machine: str) -> None:
    extra = ["-append", "exit=3"] if machine == "pc" else []
    args = boot_args(machine, "hello", *extra)
    ours, qemu = run_emu(args), run_qemu(machine, args)
    assert qemu.stdout.startswith(HELLO[machine])
    assert ours.stdout == qemu.stdout
    assert ours.returncode == qemu.returncode == (7 if machine == "pc" else 0)
    assert ours.stderr == b""


def test_nographic_prints_only_the_guest(machine: str) -> None:
    """The documented main command: -nographic puts the serial port on stdio."""
    args = boot_args(machine, "hello")
    args.remove("-display"), args.remove("none")
    args.remove("-serial"), args.remove("stdio")
    result = run_emu([*args, "-nographic"])
    assert result.stdout == HELLO[machine] + b"cmdline: \n"


def test_exit_status_follows_the_guest_value() -> None:
    for value in (0, 1, 42, 127):
        result = run_emu(boot_args("pc", "hello", "-append", f"exit={value}"))
        assert result.returncode == ((value << 1) | 1) & 0xFF


def test_spin_checksum_matches_qemu() -> None:
    args = boot_args("pc", "spin", "-append", "iters=3000000")
    ours, qemu = run_emu(args), run_qemu("pc", args)
    assert b"checksum=0x" in qemu.stdout
    assert ours.stdout == qemu.stdout


def test_serial_file_and_none(machine: str, tmp_path) -> None:
    out = tmp_path / "console.txt"
    args = boot_args(machine, "hello")
    args[args.index("stdio")] = f"file:{out}"
    result = run_emu(args)
    assert result.stdout == b""
    assert out.read_bytes().startswith(HELLO[machine])
    args[args.index(f"file:{out}")] = "none"
    result = run_emu(args)
    assert result.stdout == b"" and result.returncode in (0, 1)


def test_large_pc_guest_boots_and_costs_little() -> None:
    """4 GiB and 6 GiB guests: RAM split at 3 GiB and continued at 4 GiB, allocated lazily."""
    for size in ("4G", "6G"):
        args = boot_args("pc", "hello", "-append", "exit=5")
        args[args.index("128M")] = size
        result = run_emu(args)
        assert result.stdout.startswith(HELLO["pc"]), result.stderr
        assert result.returncode == 11


def _wait_for(proc: subprocess.Popen, text: bytes, timeout: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < deadline, f"no {text!r} in {seen!r}"
        chunk = os.read(proc.stdout.fileno(), 4096)
        assert chunk, f"emu ended before printing {text!r}: {seen!r}"
        seen += chunk
    return seen


def _own_name() -> bytes:
    """This process's argv[0], as QEMU names a signal's sender."""
    return Path(f"/proc/{os.getpid()}/cmdline").read_bytes().split(b"\0")[0]


def test_halted_guest_stays_alive_until_signalled(machine: str) -> None:
    args = boot_args(machine, "halt")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(emu_cmd() + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT)
    try:
        _wait_for(proc, b"halt: halting with interrupts off\n")
        time.sleep(1.0)
        assert proc.poll() is None, "a halted guest must keep emu running, as in QEMU"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr.read() == b"emu: terminating on signal 15 from pid %d (%s)\n" % (
            os.getpid(), _own_name())
    finally:
        proc.kill()
        proc.wait()


def test_sigint_stops_a_computing_guest() -> None:
    args = boot_args("virt", "spin")  # about 4 s of pure computation
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(emu_cmd() + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT)
    try:
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr.read() == b"emu: terminating on signal 2 from pid %d (%s)\n" % (
            os.getpid(), _own_name())
    finally:
        proc.kill()
        proc.wait()


def test_unrecoverable_cpu_state_is_one_line_and_exit_2(machine: str) -> None:
    result = run_emu(boot_args(machine, "unmapped"), timeout=30)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(b"emu: fatal: ")
    assert b"instruction fetch from unmapped memory" in lines[0] and b" at pc=0x" in lines[0]


def test_triple_fault_resets_the_pc_as_qemu_does() -> None:
    """trap's #UD with an IDT of limit 0: #GP, #DF, then a triple fault, which resets the
    machine (the guest boots again and again); -no-reboot turns the reset into an exit
    with status 0, as QEMU's qemu_system_reset_request does."""
    args = boot_args("pc", "trap", "-no-reboot")
    result = run_emu(args, timeout=30)
    qemu = run_qemu("pc", args, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, qemu.stdout, b"")
    assert qemu.returncode == 0
    assert result.stdout == b"trap: executing an undefined instruction\n"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(emu_cmd() + boot_args("pc", "trap"), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    try:
        seen = b""
        while seen.count(b"trap: executing") < 3:
            chunk = os.read(proc.stdout.fileno(), 4096)  # type: ignore[union-attr]
            assert chunk, seen
            seen += chunk
    finally:
        proc.kill()
        proc.wait()


def test_exception_vector_in_unmapped_memory_is_fatal() -> None:
    """virt's trap points VBAR_EL1 at 0x7fff0000, where there is no memory, and executes
    udf: the CPU enters the vector (VBAR + 0x200) and cannot fetch it. QEMU takes an
    external abort there for ever; emu stops with the address."""
    result = run_emu(boot_args("virt", "trap"), timeout=30)
    assert result.returncode == 2
    assert result.stderr == (b"emu: fatal: instruction fetch from unmapped memory "
                             b"at pc=0x000000007fff0200\n")


def test_unmapped_names_the_target_address() -> None:
    for machine, pc in (("pc", b"pc=0x00000000dead0000"), ("virt", b"pc=0x000000007fff0000")):
        assert pc in run_emu(boot_args(machine, "unmapped")).stderr


def test_version() -> None:
    result = run_emu(["-version"])
    assert result.returncode == 0 and result.stdout.startswith(b"emu version ")
