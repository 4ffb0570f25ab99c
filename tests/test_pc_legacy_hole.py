"""pc's memory below 1 MiB, as QEMU 7.2 lays it out (hw/i386/pc.c pc_memory_init,
hw/i386/pc_sysfw.c): RAM, the VGA window at 0xa0000 when a VGA exists (QEMU's default display
device; ``-nodefaults`` removes it and RAM shows through), the read-only option-ROM space
pc.rom at 0xc0000 and the isa-bios alias of the BIOS's last 128 KiB below 1 MiB.

Compared with QEMU on the same command line (same ``-bios`` file, so the BIOS sizes agree):
what DMA into each range reports and leaves there, what qtest reads there, and the PT_LOAD
list of ``dump-guest-memory``, whole and with ``begin``/``length``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import MACHINES, ROOT, emu_cmd
from elftools.elf.elffile import ELFFile
from qemu.qmp.legacy import QEMUMonitorProtocol
from qemu.qmp.protocol import ConnectError
from test_qtest import DMA_READ, DMA_SELECT, FwCfg

from emu.qtest.client import QTest

EMU_BIOS = str(ROOT / "emu" / "firmware" / "pc.bin")  # 64 KiB: isa-bios at 0xf0000
SEABIOS = "/usr/share/seabios/bios-256k.bin"  # QEMU's own: isa-bios at 0xe0000
BIOSES = [EMU_BIOS, *([SEABIOS] if os.path.exists(SEABIOS) else [])]
DEFAULTS = {"vga": ["-display", "none"], "nodefaults": ["-display", "none", "-nodefaults"]}


def pc_args(bios: str, defaults: str) -> list[str]:
    return ["-M", "pc", "-m", "128M", "-bios", bios, *DEFAULTS[defaults]]


def start(kind: str, args: list[str]) -> QTest:
    return QTest.emu(*args) if kind == "emu" else QTest.qemu("pc", *args)


@pytest.mark.parametrize("defaults", list(DEFAULTS))
@pytest.mark.parametrize("bios", BIOSES, ids=os.path.basename)
def test_dma_into_the_legacy_hole_and_reads_match_qemu(bios: str, defaults: str) -> None:
    """A DMA read of the signature into each 64 KiB of 0x90000-0x100000 and the BIOS: the
    status word and what qtest reads back there afterwards, on both."""
    targets = [*range(0x90000, 0x100000, 0x8000), 0x9FFF8, 0xBFFF8, 0xDFFF8, 0xFFFF8,
               0xFFFF0000]
    seen = {}
    for kind in ("emu", "qemu"):
        qt = start(kind, pc_args(bios, defaults))
        try:
            fw = FwCfg(qt, "pc")
            rows = []
            for dst in targets:
                qt.memwrite(dst, b"\xA5" * 16)  # RAM keeps it; ROM and the VGA window do not
                status = fw.dma(DMA_SELECT | DMA_READ, 16, dst)
                rows.append((hex(dst), status, qt.memread(dst, 16).hex()))
            seen[kind] = rows
        finally:
            qt.close()
    assert seen["emu"] == seen["qemu"]


@pytest.mark.parametrize("bios", BIOSES, ids=os.path.basename)
def test_isa_bios_is_the_end_of_the_bios(bios: str) -> None:
    size = min(os.path.getsize(bios), 0x20000)
    with open(bios, "rb") as f:
        tail = f.read()[-size:]
    for kind in ("emu", "qemu"):
        qt = start(kind, pc_args(bios, "nodefaults"))
        try:
            assert qt.b64read(0x100000 - size, size) == tail
            qt.writel(0x100000 - size, 0x12345678)  # read-only
            assert qt.b64read(0x100000 - size, 16) == tail[:16]
        finally:
            qt.close()


class Qmp:
    """emu or QEMU, stopped (-S), with a QMP socket."""

    def __init__(self, kind: str, args: list[str], tmp: Path) -> None:
        self.sock = str(tmp / f"{kind}.qmp")
        cmd = emu_cmd() if kind == "emu" else [MACHINES["pc"][1]]
        self.proc = subprocess.Popen(
            [*cmd, *args, "-S", "-kernel", str(ROOT / "guest_images/x86_64/hello.elf"),
             "-qmp", f"unix:{self.sock},server=on,wait=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)))
        for _ in range(200):
            self.qmp = QEMUMonitorProtocol(self.sock)
            try:
                self.qmp.connect(negotiate=True)
                break
            except (OSError, ConnectError):
                time.sleep(0.05)
        else:
            raise AssertionError(f"{kind}: no QMP socket: {self.proc.stderr}")

    def dump(self, path: Path, **range_args: int) -> list[tuple[int, int]]:
        reply = self.qmp.cmd_obj({"execute": "dump-guest-memory", "arguments": {
            "paging": False, "protocol": f"file:{path}", **range_args}})
        assert reply.get("return") == {}, reply
        with open(path, "rb") as f:
            return [(s["p_paddr"], s["p_memsz"]) for s in ELFFile(f).iter_segments()
                    if s["p_type"] == "PT_LOAD"]

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the answer may not come before the exit
            self.qmp.cmd_obj({"execute": "quit"})
            self.qmp.close()
        try:
            self.proc.wait(timeout=10)
        finally:
            self.proc.kill()


@pytest.mark.parametrize("defaults", list(DEFAULTS))
@pytest.mark.parametrize("bios", BIOSES, ids=os.path.basename)
def test_dump_ranges_match_qemu(bios: str, defaults: str, tmp_path: Path) -> None:
    ranges = [{}, {"begin": 0x9F000, "length": 0x62000}, {"begin": 0xA0000, "length": 0x20000},
              {"begin": 0xC8000, "length": 0x40000}, {"begin": 0xFFF00000, "length": 0x100000}]
    loads: dict[str, list[list[tuple[int, int]]]] = {}
    for kind in ("emu", "qemu"):
        vm = Qmp(kind, pc_args(bios, defaults), tmp_path)
        try:
            loads[kind] = []
            for i, r in enumerate(ranges):
                if defaults == "vga" and r.get("begin") == 0xA0000:  # only the VGA window
                    reply = vm.qmp.cmd_obj({"execute": "dump-guest-memory", "arguments": {
                        "paging": False, "protocol": f"file:{tmp_path}/{kind}{i}.core", **r}})
                    assert reply["error"]["class"] == "GenericError", reply
                    continue
                loads[kind].append(vm.dump(tmp_path / f"{kind}{i}.core", **r))
        finally:
            vm.close()
    assert loads["emu"] == loads["qemu"]
    whole = loads["emu"][0]
    assert all(not (a < 0xC0000 and a + n > 0xA0000) for a, n in whole) == (defaults == "vga")
    assert (0xC0000, 0x20000) in whole
