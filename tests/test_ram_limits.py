"""RAM of any size the machine can address, and QEMU's answers where it cannot.

emu maps guest RAM without reserving swap (MAP_NORESERVE, which Python's mmap module names only
from 3.13), so a guest larger than the host's commit limit boots as it does on QEMU with a
``memory-backend-ram,reserve=off`` backend (plain ``-m 1T`` makes QEMU itself allocate and fail
on a small host, before any of the checks compared here). Where QEMU refuses a size — a number
beyond 64 bits, RAM the CPU's physical address width cannot reach — emu refuses it with QEMU's
words on one line.
"""

from __future__ import annotations

import mmap

import pytest
from conftest import MACHINES, boot_args, run_emu, run_qemu

from emu.config import parse_ram_size
from emu.memory import MAP_NORESERVE, RamBlock
from emu.qtest.client import QTest

HELLO_OUT = {"pc": b"Hello from the guest! (x86_64)\ncmdline: exit=0\n",
             "virt": b"Hello from the guest! (aarch64)\ncmdline: exit=0\n"}


def qemu_backend(size: str) -> list[str]:
    """QEMU's way to give a guest RAM that is not reserved up front."""
    return ["-object", f"memory-backend-ram,id=ram0,size={size},reserve=off",
            "-machine", "memory-backend=ram0"]


def with_ram(args: list[str], size: str, cpu: str | None = None) -> list[str]:
    """``args`` with ``-m size`` (and ``-cpu cpu``) instead of the defaults."""
    args = list(args)
    args[args.index("-m") + 1] = size
    if cpu is not None and "-cpu" in args:
        args[args.index("-cpu") + 1] = cpu
    elif cpu is not None:
        args += ["-cpu", cpu]
    return args




def commit_limit() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("CommitLimit:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no CommitLimit in /proc/meminfo")


def test_map_noreserve_is_linux_value() -> None:
    assert MAP_NORESERVE == getattr(mmap, "MAP_NORESERVE", 0x4000) == 0x4000


def test_block_beyond_commit_limit_is_allocated() -> None:
    """Four times the host's commit limit: only an address range until it is written."""
    size = (4 * commit_limit() + (1 << 30)) & ~((1 << 30) - 1)
    block = RamBlock.allocate("big", 0, size)
    try:
        block.view()[size - 1] = 0x5A
        assert block.view()[size - 1] == 0x5A
    finally:
        block.host.close()


@pytest.mark.parametrize(("machine", "size"), [("pc", "64G"), ("virt", "64G"), ("virt", "1T")])
def test_large_ram_boots_hello_as_on_qemu(machine: str, size: str) -> None:
    args = with_ram(boot_args(machine, "hello", "-append", "exit=0"), size)
    ours = run_emu(args, timeout=120)
    qemu = run_qemu(machine, [*args, *qemu_backend(size)], timeout=120)
    assert qemu.stdout == HELLO_OUT[machine], qemu.stderr
    assert ours.stdout == qemu.stdout, ours.stderr
    assert ours.returncode == qemu.returncode


@pytest.mark.parametrize(("machine", "cpu", "size"), [
    ("pc", None, "1T"),            # qemu64: AMD, RAM moves to 1 TiB, past 40 address bits
    ("pc", "kvm64", "1T"),         # Intel: RAM stays at 4 GiB, the PCI hole still does not fit
    ("pc", "qemu64", "1010G"),     # the smallest size that needs the move above the HT range
    ("pc", "athlon", "64G"),       # 36 address bits
    ("virt", "cortex-a53", "1T"),  # 40 bits
    ("virt", "cortex-a57", "16T"),  # 44 bits
])
def test_ram_beyond_the_address_width_is_refused_like_qemu(machine: str, cpu: str | None,
                                                           size: str) -> None:
    args = with_ram(boot_args(machine, "hello", "-append", "exit=0"), size, cpu)
    ours = run_emu(args)
    qemu = run_qemu(machine, [*args, *qemu_backend(size)])
    qemu_line = qemu.stderr.decode().strip().splitlines()[-1]
    assert qemu.returncode == 1 and ours.returncode == 1
    assert ours.stdout == b""
    lines = ours.stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].removeprefix("emu: ") == qemu_line.split(": ", 1)[1]


@pytest.mark.parametrize(("machine", "cpu", "size"), [
    ("pc", "qemu32", "1T"),  # 32 address bits: QEMU checks nothing, and accepts it
    ("pc", "kvm64", "1009G"),
    ("virt", "max", "16T"),  # 52 bits
])
def test_ram_within_the_address_width_is_accepted_like_qemu(machine: str, cpu: str,
                                                            size: str) -> None:
    """The machine comes up (a qtest session answers) with the RAM size in fw_cfg."""
    args = [*with_ram(list(MACHINES[machine][2]), size, cpu), "-display", "none",
            "-nodefaults"]
    sides = {"emu": QTest.emu(*args), "qemu": QTest.qemu(machine, *args, *qemu_backend(size))}
    try:
        for qt in sides.values():
            assert qt.endianness() == "little"
        if machine == "pc":  # FW_CFG_RAM_SIZE
            sizes = []
            for qt in sides.values():
                qt.outw(0x510, 0x03)
                sizes.append(bytes(qt.inb(0x511) for _ in range(8)))
            assert sizes[0] == sizes[1] == parse_ram_size(size).to_bytes(8, "little")
    finally:
        for qt in sides.values():
            qt.close()


def test_400_digit_size_is_one_line_like_qemu() -> None:
    size = "9" * 400
    args = with_ram(boot_args("pc", "hello"), size)
    ours, qemu = run_emu(args), run_qemu("pc", args)
    assert ours.returncode == qemu.returncode == 1
    lines = ours.stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0] == "emu: " + qemu.stderr.decode().strip().split(": ", 1)[1]
    assert "out of range for parameter 'size'" in lines[0]


def test_size_the_host_cannot_map_is_one_line() -> None:
    """More than the host's whole virtual address space: QEMU's allocation message."""
    args = with_ram(boot_args("virt", "hello"), "4096T")
    ours = run_emu(args)
    qemu = run_qemu("virt", [*args, *qemu_backend("4096T")])
    assert ours.returncode == qemu.returncode == 1
    assert ours.stderr.decode().splitlines() == [
        "emu: cannot set up guest memory 'mach-virt.ram': Cannot allocate memory"]
    assert "Cannot allocate memory" in qemu.stderr.decode()
