"""bzImage kernels on pc (emu/boot/bzimage.py, firmware/pc/linux.c).

- What emu's pc publishes for a Linux/x86 boot protocol ``-kernel`` is what QEMU 7.2's
  x86_load_linux publishes (every FW_CFG_SETUP_*, FW_CFG_KERNEL_*, FW_CFG_CMDLINE_* and
  FW_CFG_INITRD_* item, read through qtest on both), for the test kernel's bzImage and for
  headers that take QEMU's other branches (boot protocol versions, ``vga=``, initrd limits);
  QEMU's fw_cfg files differ only by its linuxboot_dma.bin option ROM.
- The test kernel's bzImage boots to its /init through emu's firmware and with --direct-boot,
  with the /init lines QEMU's (SeaBIOS's linuxboot_dma) boot gives.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

import pytest
from linux_boot import FW_CFG_ITEM, built, linux_args, run_to_end
from test_qtest import FwCfg, launch

FW_CFG_KERNEL_ADDR, FW_CFG_KERNEL_SIZE = 0x07, 0x08
FW_CFG_INITRD_ADDR, FW_CFG_INITRD_SIZE = 0x0A, 0x0B
FW_CFG_KERNEL_ENTRY, FW_CFG_KERNEL_DATA, FW_CFG_INITRD_DATA = 0x10, 0x11, 0x12
FW_CFG_CMDLINE_ADDR, FW_CFG_CMDLINE_SIZE, FW_CFG_CMDLINE_DATA = 0x13, 0x14, 0x15
FW_CFG_SETUP_ADDR, FW_CFG_SETUP_SIZE, FW_CFG_SETUP_DATA = 0x16, 0x17, 0x18
DMA_READ, DMA_SELECT = 0x02, 0x08
ADDRESSES = (FW_CFG_KERNEL_ADDR, FW_CFG_KERNEL_SIZE, FW_CFG_KERNEL_ENTRY, FW_CFG_INITRD_ADDR,
             FW_CFG_INITRD_SIZE, FW_CFG_CMDLINE_ADDR, FW_CFG_CMDLINE_SIZE, FW_CFG_SETUP_ADDR,
             FW_CFG_SETUP_SIZE)
DATA = {FW_CFG_KERNEL_DATA: FW_CFG_KERNEL_SIZE, FW_CFG_INITRD_DATA: FW_CFG_INITRD_SIZE,
        FW_CFG_CMDLINE_DATA: FW_CFG_CMDLINE_SIZE, FW_CFG_SETUP_DATA: FW_CFG_SETUP_SIZE}
INIT_LINES = [f"emu-linux init: fw_cfg {FW_CFG_ITEM[0]}: {FW_CFG_ITEM[1]}",
              "emu-linux init: fw_cfg etc/vmcoreinfo size: 16", "emu-linux init: restarting"]


def kernel_bzimage() -> Path:
    """The test kernel's bzImage (tools/linux/build.py keeps it next to vmlinux)."""
    return Path(built("x86_64")).parent / "bzImage"


def _dma_read(fw: FwCfg, key: int, size: int) -> bytes:
    buf = fw.scratch + 0x1000
    out = b""
    while len(out) < size:  # in pieces, to keep each qtest answer small
        n = min(size - len(out), 0x10000)
        control = ((key << 16) | DMA_SELECT | DMA_READ) if not out else DMA_READ
        assert fw.dma(control, n, buf) == 0
        out += fw.qt.b64read(buf, n)
    return out


def published(kind: str, *args: str) -> dict[int, object]:
    """Every kernel item the pc publishes (absent ones read as 0 / empty on both)."""
    with launch(kind, "pc", "-m", "256M", *args) as qt:
        fw = FwCfg(qt, "pc")
        items: dict[int, object] = {key: fw.get_u32(key) for key in ADDRESSES}
        for key, size_key in DATA.items():
            items[key] = hashlib.sha256(_dma_read(fw, key, int(items[size_key]))).hexdigest()
        return items


def _header(version: int, loadflags: int = 0x01, xloadflags: int = 0,
            initrd_max: int = 0x7FFFFFFF, setup_sects: int = 4) -> bytes:
    """A file with a Linux/x86 setup header (boot.rst) and a made-up protected-mode part."""
    setup = bytearray(hashlib.shake_256(b"setup").digest((setup_sects + 1) * 512))
    setup[0x1F1] = setup_sects
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    setup[0x200] = 0xEB
    setup[0x201] = 0x6A  # header end at 0x26c
    struct.pack_into("<IH", setup, 0x202, 0x53726448, version)
    setup[0x210] = 0
    setup[0x211] = loadflags
    struct.pack_into("<I", setup, 0x214, 0x100000)
    struct.pack_into("<I", setup, 0x22C, initrd_max)
    struct.pack_into("<H", setup, 0x236, xloadflags)
    return bytes(setup) + hashlib.shake_256(b"kernel").digest(70001)


HEADERS = {
    "2.15-above-4g": (_header(0x20F, xloadflags=0x02), "console=ttyS0 vga=ask"),
    "2.10": (_header(0x20A, initrd_max=0x37FFFFFF), "vga=0x317 quiet"),
    "2.01-low": (_header(0x201, loadflags=0), "vga=normal label=\u00e9t\u00e9"),
    "2.00-high": (_header(0x200), "root=/dev/sda"),
}


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_bzimage_headers_published_as_qemu(name: str, tmp_path: Path) -> None:
    data, cmdline = HEADERS[name]
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(data)
    initrd = tmp_path / "initrd"
    initrd.write_bytes(hashlib.shake_256(b"initrd").digest(54321))
    args = ("-kernel", str(kernel), "-append", cmdline, "-initrd", str(initrd))
    qemu = published("qemu", *args)
    assert qemu[FW_CFG_SETUP_ADDR]  # QEMU took it as a bzImage
    assert published("emu", *args) == qemu


def test_test_kernel_bzimage_published_as_qemu(tmp_path: Path) -> None:
    initrd = tmp_path / "initrd"
    initrd.write_bytes(hashlib.shake_256(b"initrd").digest(12345))
    args = ("-kernel", str(kernel_bzimage()), "-append", "console=ttyS0 vga=ext",
            "-initrd", str(initrd))
    qemu = published("qemu", *args)
    assert (qemu[FW_CFG_SETUP_ADDR], qemu[FW_CFG_KERNEL_ADDR]) == (0x10000, 0x100000)
    assert published("emu", *args) == qemu


@pytest.mark.parametrize("how", ["firmware", "direct"])
def test_bzimage_boots_to_init_as_on_qemu(how: str) -> None:
    args = [*linux_args("pc", "restart"), "-no-reboot"]
    args[args.index("-kernel") + 1] = str(kernel_bzimage())
    q_status, q_lines = run_to_end(["qemu-system-x86_64", *args])
    extra = ["--direct-boot"] if how == "direct" else []
    e_status, e_lines = run_to_end([sys.executable, "-m", "emu", *args, *extra])
    q_init = [line for line in q_lines if line.startswith("emu-linux init:")]
    e_init = [line for line in e_lines if line.startswith("emu-linux init:")]
    assert q_init[1:] == INIT_LINES, "\n".join(q_lines[-20:])
    assert e_init == q_init, "\n".join(e_lines[-30:])
    # Linux's restart ends in the BIOS (machine_real_restart jumps to the reset vector): the
    # firmware asks for a hard reset, and -no-reboot ends the run, both ways.
    assert any("reboot: Restarting system" in line for line in e_lines)
    assert (e_status, q_status) == (0, 0), "\n".join(e_lines[-10:])


def test_bzimage_file_directory_is_qemus_but_the_option_rom(tmp_path: Path) -> None:
    """QEMU adds the linuxboot_dma.bin option ROM for a bzImage; emu's firmware does that
    ROM's work itself. The other files are those of test_fw_cfg_items (no -kernel)."""
    from test_fw_cfg_items import NOT_MODELLED

    kernel = tmp_path / "bzImage"
    kernel.write_bytes(HEADERS["2.15-above-4g"][0])
    names = {}
    for kind in ("emu", "qemu"):
        with launch(kind, "pc", "-kernel", str(kernel)) as qt:
            names[kind] = set(FwCfg(qt, "pc").files())
    assert names["qemu"] - names["emu"] == NOT_MODELLED["pc"] | {"genroms/linuxboot_dma.bin"}
    assert names["emu"] <= names["qemu"]
