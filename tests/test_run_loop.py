"""The run loop: stop/inspect/resume from another thread, reset, lifecycle (Python API)."""

from __future__ import annotations

import threading

from conftest import MACHINES, boot_args, image, run_qemu

from emu.config import DeviceSpec, MachineConfig
from emu.machine import Machine


def _config(machine: str, name: str, out: str, append: str = "") -> MachineConfig:
    devices = [DeviceSpec("isa-debug-exit,iobase=0xf4,iosize=0x04", "isa-debug-exit", {})] \
        if machine == "pc" else []
    return MachineConfig(machine=machine, kernel=image(machine, name), serial=[f"file:{out}"],
                         devices=devices, append=append, cpu=None if machine == "pc" else
                         "cortex-a57")


def test_stop_resume_stress_keeps_the_guest_exact(machine: str, tmp_path) -> None:
    """pulse does read-modify-writes and atomics while polling a device; thousands of
    stop/inspect/resume cycles from a monitor thread must not change what it computes."""
    out = tmp_path / "pulse.txt"
    m = Machine(_config(machine, "pulse", str(out)))
    served: list[int] = []
    done = threading.Event()
    status: list[int] = []

    def cpu() -> None:
        status.append(m.run())
        done.set()

    def monitor() -> None:
        while not done.is_set() and len(served) < 5000:
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
    assert len(served) >= 2000, "the monitor must get the CPU back thousands of times"
    qemu = run_qemu(machine, boot_args(machine, "pulse"))
    assert b"checksum=0x" in qemu.stdout
    assert out.read_bytes() == qemu.stdout
    assert status == [qemu.returncode]


def test_uninterrupted_and_interrupted_runs_agree(tmp_path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    m = Machine(_config("pc", "pulse", str(a), "iters=200000 poll=1"))
    m.run()
    m.close()
    m = Machine(_config("pc", "pulse", str(b), "iters=200000 poll=1"))
    hits = []
    orig = m.port_bus.on_pending

    def count() -> None:
        hits.append(1)
        orig()

    def again() -> None:  # keep a request pending: the CPU stops at every device access
        m.call_soon(again)

    m.port_bus.on_pending = count
    m.call_soon(again)
    m.run()
    m.close()
    assert len(hits) > 100_000
    assert a.read_bytes() == b.read_bytes()


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
    for _ in range(50):
        if m.call_soon(lambda: m.halted).result(timeout=10):
            break
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
