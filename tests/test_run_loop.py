"""The run loop: stop/inspect/resume from another thread, reset, lifecycle (Python API)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import MACHINES, ROOT, boot_args, image, run_qemu
from elftools.elf.elffile import ELFFile

from emu.config import DeviceSpec, MachineConfig
from emu.machine import Machine


def _config(machine: str, name: str, out: str, append: str = "") -> MachineConfig:
    devices = [DeviceSpec("isa-debug-exit,iobase=0xf4,iosize=0x04", "isa-debug-exit", {})] \
        if machine == "pc" else []
    return MachineConfig(machine=machine, kernel=image(machine, name), serial=[f"file:{out}"],
                         devices=devices, append=append, cpu=None if machine == "pc" else
                         "cortex-a57")


def _stress(machine: str, out: Path, append: str, cycles: int) -> tuple[int, list[int]]:
    """Run pulse while a monitor thread stops, inspects and resumes it up to ``cycles``
    times; returns how often it was served and the exit status."""
    m = Machine(_config(machine, "pulse", str(out), append))
    served: list[int] = []
    done = threading.Event()
    status: list[int] = []

    def cpu() -> None:
        status.append(m.run())
        done.set()

    def monitor() -> None:
        while not done.is_set() and len(served) < cycles:
            def inspect() -> None:
                m.pause()
                served.append(m.cpu.pc)  # the monitor reads CPU state while stopped
                m.resume()
            m.call_soon(inspect).result(timeout=30)

    t_cpu = threading.Thread(target=cpu)
    t_mon = threading.Thread(target=monitor)
    t_cpu.start()
    t_mon.start()
    t_cpu.join(120)
    t_mon.join(30)
    m.close()
    return len(served), status


@pytest.mark.parametrize("poll", ["1000", "0"], ids=["polling", "never-polling"])
def test_stop_resume_stress_keeps_the_guest_exact(machine: str, poll: str, tmp_path) -> None:
    """pulse does read-modify-writes and atomics; thousands of stop/inspect/resume cycles
    from a monitor thread must not change what it computes. With poll=0 it never touches a
    device, so every stop is taken at a block boundary (emu/cpu/stop_request.py)."""
    append = f"iters=20000000 poll={poll}"
    out = tmp_path / "pulse.txt"
    served, status = _stress(machine, out, append, 5000)
    assert served >= 2000, "the monitor must get the CPU back thousands of times"
    qemu = run_qemu(machine, boot_args(machine, "pulse", "-append", append))
    assert b"counter=20000000" in qemu.stdout
    assert out.read_bytes() == qemu.stdout
    assert status == [qemu.returncode]


def test_stop_resume_stress_repeated(tmp_path) -> None:
    """Twenty stressed runs of a guest that never touches a device, all exact."""
    append = "iters=3000000 poll=0"
    expected = run_qemu("pc", boot_args("pc", "pulse", "-append", append)).stdout
    assert b"counter=3000000" in expected
    for run in range(20):
        out = tmp_path / f"pulse{run}.txt"
        served, status = _stress("pc", out, append, 100_000)
        # (how many stops a run serves depends on the host's load: a shared machine starves
        # the monitor thread; the exactness below is what must hold)
        assert served >= 50
        assert status == [1]  # the guest exits through isa-debug-exit with 0
        assert out.read_bytes() == expected, f"run {run}"


def test_a_spinning_guest_can_be_stopped_and_dumped(machine: str, tmp_path) -> None:
    """spin computes for a long time without touching a device or halting: a monitor's
    stop, a look at the CPU and a dump are served at once, and the guest then goes on."""
    m = Machine(_config(machine, "spin", str(tmp_path / "spin.txt")))
    status: list[int] = []
    t = threading.Thread(target=lambda: status.append(m.run()))
    t.start()
    with open(image(machine, "spin"), "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        kernel_text = range(text["sh_addr"], text["sh_addr"] + text["sh_size"])

    def stop_and_look() -> int:
        m.call_soon(m.pause).result(timeout=30)
        assert m.call_soon(lambda: m.state).result(timeout=30) == "paused"
        pc = m.call_soon(lambda: m.cpu.pc).result(timeout=30)
        m.call_soon(m.resume).result(timeout=30)
        return pc

    deadline = time.monotonic() + 60  # the firmware runs first, then the kernel's loop
    while stop_and_look() not in kernel_text:
        assert time.monotonic() < deadline, "the guest never reached its kernel"
    assert all(stop_and_look() in kernel_text for _ in range(20))
    core = tmp_path / "spin.core"
    m.call_soon(lambda: m.dump(str(core))).result(timeout=60)
    m.call_soon(lambda: m.quit(0)).result(timeout=30)
    t.join(30)
    m.close()
    assert status == [0]
    assert (tmp_path / "spin.txt").read_bytes() == b""  # still spinning when it was ended
    assert core.read_bytes()[:4] == b"\x7fELF"


def test_native_stop_hook_is_current() -> None:
    """The committed native libraries are what native/build.py builds from stop_hook.c."""
    result = subprocess.run([sys.executable, "native/build.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _run_with_a_request_always_pending(m: Machine) -> None:
    def again() -> None:  # keep a request pending: the CPU stops at every stop point
        m.call_soon(again)

    m.call_soon(again)
    m.run()
    m.close()


def test_uninterrupted_and_interrupted_runs_agree(tmp_path) -> None:
    """A stop at every one of 200,000 device accesses changes nothing (block-boundary
    stops are switched off here, so that every stop is taken from a device callback)."""
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    m = Machine(_config("pc", "pulse", str(a), "iters=200000 poll=1"))
    m.run()
    m.close()
    m = Machine(_config("pc", "pulse", str(b), "iters=200000 poll=1"))
    m.cpu.stop_request.available = False  # as on a host without the native stop hook
    hits = []
    orig = m.port_bus.on_pending

    def count() -> None:
        hits.append(1)
        orig()

    m.port_bus.on_pending = count
    _run_with_a_request_always_pending(m)
    assert len(hits) > 100_000
    assert a.read_bytes() == b.read_bytes()


def test_a_stop_at_every_block_changes_nothing(machine: str, tmp_path) -> None:
    """With a request always pending and no device access, the CPU stops at the start of
    every translated block; the guest still computes exactly what QEMU computes."""
    append = "iters=20000 poll=0"
    out = tmp_path / "pulse.txt"
    m = Machine(_config(machine, "pulse", str(out), append))
    stops = []
    take = m.cpu.stop_request.taken

    def counted() -> bool:
        taken = take()
        stops.append(taken)
        return taken

    m.cpu.stop_request.taken = counted  # type: ignore[method-assign]
    _run_with_a_request_always_pending(m)
    assert sum(stops) > 20000  # a stop every one or two blocks: more than one per round
    assert out.read_bytes() == run_qemu(machine, boot_args(machine, "pulse", "-append",
                                                           append)).stdout


def test_paused_machine_runs_nothing_until_resumed(tmp_path) -> None:
    out = tmp_path / "hello.txt"
    cfg = _config("virt", "hello", str(out))
    cfg.start_paused = True
    m = Machine(cfg)
    status: list[int] = []
    t = threading.Thread(target=lambda: status.append(m.run()))
    t.start()
    assert m.call_soon(lambda: m.state).result(timeout=10) == "paused"
    assert out.read_bytes() == b""
    m.call_soon(m.resume).result(timeout=10)
    t.join(30)
    m.close()
    assert status == [0]
    assert out.read_bytes().startswith(b"Hello from the guest! (aarch64)")


def test_halted_machine_serves_requests_and_quits(tmp_path) -> None:
    m = Machine(_config("pc", "halt", str(tmp_path / "halt.txt")))
    status: list[int] = []
    t = threading.Thread(target=lambda: status.append(m.run()))
    t.start()
    # Requests are served at each console access while the guest prints, then at the halt:
    # poll until the guest has reached it (bounded, so a guest that never halts fails).
    deadline = time.monotonic() + 30
    while not m.call_soon(lambda: m.halted).result(timeout=10) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert m.call_soon(lambda: m.halted).result(timeout=10)
    m.call_soon(lambda: m.quit(0)).result(timeout=10)
    t.join(10)
    m.close()
    assert status == [0]


def test_reset_reloads_the_kernel_and_runs_it_again(tmp_path) -> None:
    out = tmp_path / "hello.txt"
    m = Machine(_config("pc", "hello", str(out), "exit=2"))
    m.request_reset()  # as PSCI SYSTEM_RESET or a monitor would, before the first slice
    assert m.run() == 5
    m.close()
    assert m.reset_count == 2
    assert out.read_bytes().count(b"Hello from the guest!") == 1


def test_no_reboot_turns_a_reset_into_an_exit(tmp_path) -> None:
    cfg = _config("virt", "hello", str(tmp_path / "o.txt"))
    cfg.no_reboot = True
    m = Machine(cfg)
    m.request_reset()
    assert m.run() == 0
    m.close()
    assert m.reset_count == 1


def test_pc_ram_layout_follows_qemu(tmp_path) -> None:
    from emu.config import GiB

    def low(end: int) -> list[tuple[int, int]]:
        """RAM below ``end`` around the VGA window, pc.rom and the 64 KiB BIOS's isa-bios
        alias (tests/test_pc_legacy_hole.py compares the hole with QEMU's)."""
        return [(0, 0xA0000), (0xE0000, 0x10000), (0x100000, end - 0x100000)]

    for size, blocks in [(128 << 20, low(128 << 20)),
                         (3 * GiB + (256 << 20), low(3 * GiB + (256 << 20))),
                         (0xE0000000, [*low(3 * GiB), (4 * GiB, 0xE0000000 - 3 * GiB)]),
                         (8 * GiB, [*low(3 * GiB), (4 * GiB, 5 * GiB)])]:
        cfg = _config("pc", "hello", str(tmp_path / "o.txt"))
        cfg.ram_size = size
        m = Machine(cfg)
        assert list(m.address_space.ranges()) == blocks
        m.close()
    assert MACHINES["pc"][0] == "x86_64"


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_a_big_guest_costs_little_host_memory(tmp_path) -> None:
    """RAM is allocated lazily: booting a 6 GiB guest adds far less than 100 MiB of RSS."""
    before = _rss_kib()
    cfg = _config("pc", "hello", str(tmp_path / "o.txt"), "exit=0")
    cfg.ram_size = 6 << 30
    m = Machine(cfg)
    assert m.run() == 1
    grown = _rss_kib() - before
    m.close()
    assert (tmp_path / "o.txt").read_bytes().startswith(b"Hello from the guest!")
    assert grown < 100 * 1024, f"RSS grew by {grown} KiB"
