"""A gzip-compressed arm64 Image (``Image.gz``) on virt boots as the Image inside it, as on
QEMU 7.2 (hw/arm/boot.c load_aarch64_image; hw/nvram/fw_cfg.c load_image_to_fw_cfg
decompresses it for firmware), through emu's firmware and with --direct-boot.

- What virt publishes for an Image.gz with -bios is QEMU's (the decompressed Image).
- A small guest image made into an Image.gz prints the same on emu and QEMU.
- The Linux test kernel's Image, gzip-compressed, boots to /init as on QEMU.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MACHINES, ROOT, image, run_emu, run_qemu
from linux_boot import FW_CFG_ITEM, built, linux_args
from test_firmware import FLASH, _arm64_image
from test_qtest import FwCfg, launch

FW_CFG_KERNEL_SIZE, FW_CFG_KERNEL_DATA = 0x08, 0x11
DMA_READ, DMA_SELECT = 0x02, 0x08
INIT_LINES = [f"emu-linux init: fw_cfg {FW_CFG_ITEM[0]}: {FW_CFG_ITEM[1]}",
              "emu-linux init: fw_cfg etc/vmcoreinfo size: 16", "emu-linux init: restarting"]


def _gz(data: bytes, **kw: object) -> bytes:
    return gzip.compress(data, mtime=0, **kw)  # type: ignore[arg-type]


def test_image_gz_published_decompressed_as_qemu(tmp_path: Path) -> None:
    """With a file name in the gzip header (FNAME), as gzip(1) writes it."""
    plain = _arm64_image(image("virt", "hello"))
    kernel = tmp_path / "Image.gz"
    with gzip.GzipFile(filename="Image", mode="wb", fileobj=kernel.open("wb"), mtime=0) as f:
        f.write(plain)
    answers = {}
    for kind in ("emu", "qemu"):
        with launch(kind, "virt", "-bios", str(FLASH["virt"]), "-kernel", str(kernel)) as qt:
            fw = FwCfg(qt, "virt")
            size = fw.get_u32(FW_CFG_KERNEL_SIZE)
            buf = fw.scratch + 0x1000
            assert fw.dma((FW_CFG_KERNEL_DATA << 16) | DMA_SELECT | DMA_READ, size, buf) == 0
            answers[kind] = fw.qt.b64read(buf, size)
    assert answers["qemu"] == plain  # QEMU decompressed it
    assert answers["emu"] == answers["qemu"]


@pytest.mark.parametrize("how", ["firmware", "direct"])
def test_image_gz_boots_as_qemu_boots_it(how: str, tmp_path: Path) -> None:
    kernel = tmp_path / "Image.gz"
    kernel.write_bytes(_gz(_arm64_image(image("virt", "hello"))))
    args = [*MACHINES["virt"][2], "-display", "none", "-serial", "stdio", "-kernel", str(kernel),
            "-append", "exit=0 from an Image.gz"]
    qemu = run_qemu("virt", args)
    ours = run_emu([*args, *(["--direct-boot"] if how == "direct" else [])])
    assert b"cmdline: exit=0 from an Image.gz\n" in qemu.stdout, qemu.stdout + qemu.stderr
    assert ours.stdout == qemu.stdout
    assert ours.returncode == qemu.returncode == 0


def test_linux_image_gz_boots_to_init_as_on_qemu(tmp_path: Path) -> None:
    kernel = tmp_path / "Image.gz"
    kernel.write_bytes(_gz(Path(built("arm64")).read_bytes(), compresslevel=6))
    args = [*linux_args("virt", "restart"), "-no-reboot"]
    args[args.index("-kernel") + 1] = str(kernel)
    lines = {}
    for name, cmd in (("qemu", ["qemu-system-aarch64"]),
                      ("emu", [sys.executable, "-m", "emu"])):
        run = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300,
                             stdin=subprocess.DEVNULL, cwd=ROOT)
        lines[name] = [line for line in (run.stdout + run.stderr).splitlines()
                       if line.startswith("emu-linux init:")]
        assert run.returncode == 0, (name, run.stdout[-2000:], run.stderr[-2000:])
    assert lines["qemu"][1:] == INIT_LINES
    assert lines["emu"] == lines["qemu"]
