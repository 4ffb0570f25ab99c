"""Boot information seen by the guest: the command line and the initrd, on QEMU and on emu.

The ``hello`` image echoes its command line (pc: PVH start_info; virt: /chosen/bootargs of the
device tree) and, only when it was given an initrd (pc: the first PVH module; virt: /chosen
linux,initrd-start/end), prints ``initrd: size=N sum=0x<16 hex digits>``, where sum is the
64-bit FNV-1a hash of the initrd's bytes (guest_images/README.md).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import MACHINES, boot_args, run_emu, run_qemu

GREETING = {"pc": b"Hello from the guest! (x86_64)\n", "virt": b"Hello from the guest! (aarch64)\n"}
APPEND = "exit=0 some words"
#: hello exits with value 0 (exit=0): isa-debug-exit status (0 << 1) | 1 on pc, PSCI on virt
STATUS = {"pc": 1, "virt": 0}
EMU_BOOTS = {"firmware": [], "direct": ["--direct-boot"]}


def fnv1a64(data: bytes) -> int:
    """64-bit FNV-1a (http://www.isthe.com/chongo/tech/comp/fnv/), written out here so that the
    expected value does not come from the guest."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def test_fnv1a64_reference_values() -> None:
    """The published FNV-1a 64 test vectors, so that the reference above is the real hash."""
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8


def write_initrd(tmp_path: Path, size: int = 6151) -> tuple[Path, bytes]:
    """A few KiB of deterministic, non-repeating bytes (not a multiple of the page size)."""
    data = random.Random(20240607).randbytes(size)
    path = tmp_path / "initrd.bin"
    path.write_bytes(data)
    return path, data


def initrd_line(data: bytes) -> bytes:
    return f"initrd: size={len(data)} sum=0x{fnv1a64(data):016x}\n".encode()


def run_all_emu(args: list[str]) -> dict[str, object]:
    return {boot: run_emu([*args, *extra]) for boot, extra in EMU_BOOTS.items()}


@pytest.mark.parametrize("machine", list(MACHINES))
def test_cmdline_from_append_matches_qemu(machine: str) -> None:
    args = boot_args(machine, "hello", "-append", APPEND)
    expected = GREETING[machine] + f"cmdline: {APPEND}\n".encode()  # no initrd: no initrd line
    qemu = run_qemu(machine, args)
    assert qemu.stdout == expected
    assert qemu.returncode == STATUS[machine]
    for boot, ours in run_all_emu(args).items():
        assert ours.stderr == b"", boot
        assert ours.stdout == qemu.stdout, boot
        assert ours.returncode == qemu.returncode, boot


def test_virt_command_line_reaches_the_image() -> None:
    """spin takes iters=N from the command line, on virt too now: QEMU and emu agree, and the
    checksum is the one pc computes for the same N (it does not depend on the architecture)."""
    pc = run_qemu("pc", boot_args("pc", "spin", "-append", "iters=1000"))
    assert pc.stdout.startswith(b"spin: iters=1000 checksum=0x")
    args = boot_args("virt", "spin", "-append", "iters=1000")
    qemu = run_qemu("virt", args)
    assert qemu.stdout == pc.stdout
    for boot, ours in run_all_emu(args).items():
        assert ours.stdout == qemu.stdout, boot
        assert ours.returncode == qemu.returncode == 0, boot


def test_pc_initrd_matches_qemu(tmp_path: Path) -> None:
    path, data = write_initrd(tmp_path)
    args = boot_args("pc", "hello", "-append", APPEND, "-initrd", str(path))
    expected = GREETING["pc"] + f"cmdline: {APPEND}\n".encode() + initrd_line(data)
    qemu = run_qemu("pc", args)
    assert qemu.stdout == expected
    assert qemu.returncode == STATUS["pc"]
    for boot, ours in run_all_emu(args).items():
        assert ours.stderr == b"", boot
        assert ours.stdout == qemu.stdout, boot
        assert ours.returncode == qemu.returncode, boot


def test_pc_initrd_without_append(tmp_path: Path) -> None:
    """The module list does not depend on a command line being there."""
    path, data = write_initrd(tmp_path, size=4096)
    args = boot_args("pc", "hello", "-initrd", str(path))
    expected = GREETING["pc"] + b"cmdline: \n" + initrd_line(data)
    assert run_qemu("pc", args).stdout == expected
    for boot, ours in run_all_emu(args).items():
        assert ours.stdout == expected, boot


@pytest.mark.parametrize("ram", ["128M", "512M"])
def test_virt_initrd_on_emu(tmp_path: Path, ram: str) -> None:
    """Not compared with QEMU: QEMU 7.2's -kernel of an ELF that is not a Linux kernel on virt
    neither loads the initrd nor names it in /chosen (hw/arm/boot.c does that only for Linux
    images), so hello prints no initrd line there.  emu passes it both ways (firmware and
    --direct-boot), at the place QEMU gives a Linux kernel's initrd (0x44000000 with 128M,
    0x48000000 with 512M)."""
    path, data = write_initrd(tmp_path)
    args = boot_args("virt", "hello", "-append", APPEND, "-initrd", str(path))
    args[args.index("128M")] = ram
    expected = GREETING["virt"] + f"cmdline: {APPEND}\n".encode() + initrd_line(data)
    for boot, ours in run_all_emu(args).items():
        assert ours.stderr == b"", boot
        assert ours.stdout == expected, boot
        assert ours.returncode == STATUS["virt"], boot
