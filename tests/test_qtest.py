"""qtest: the client in emu/qtest/client.py against emu's server and Debian's QEMU.

The protocol is QEMU's (docs/devel/qtest.rst). The fw_cfg tests port the assertions of QEMU's
tests/qtest/fw_cfg-test.c and tests/qtest/vmcoreinfo-test.c (docs/specs/fw_cfg.rst for the
registers and DMA) to both machines: pc through the I/O ports 0x510/0x511/0x514, virt through the
MMIO registers at 0x09020000. Every common test runs on emu and on QEMU with the same options
(``-S``, the subset both accept), and a differential fuzz test sends one random command stream to
both and compares every answer and the guest memory the transfers touched.
"""

from __future__ import annotations

import random
import struct
import uuid
from collections.abc import Callable, Iterator

import pytest

from emu.qtest.client import ROOT, QTest, QTestError

KINDS = ("emu", "qemu")
MACHINE_ARGS = {"pc": ["-machine", "pc"], "virt": ["-machine", "virt", "-cpu", "cortex-a57"]}
COMMON_ARGS = ["-display", "none", "-nodefaults"]
RAM_SIZE = 128 << 20
RAM_BASE = {"pc": 0, "virt": 0x40000000}
SCRATCH = {"pc": 0x100000, "virt": 0x40100000}  # descriptors and buffers live here

FW_CFG_SIGNATURE, FW_CFG_ID, FW_CFG_UUID, FW_CFG_RAM_SIZE = 0x00, 0x01, 0x02, 0x03
FW_CFG_NOGRAPHIC, FW_CFG_NB_CPUS, FW_CFG_NUMA, FW_CFG_BOOT_MENU = 0x04, 0x05, 0x0D, 0x0E
FW_CFG_MAX_CPUS, FW_CFG_FILE_DIR, FW_CFG_FILE_FIRST = 0x0F, 0x19, 0x20
DMA_ERROR, DMA_READ, DMA_SKIP, DMA_SELECT, DMA_WRITE = 0x01, 0x02, 0x04, 0x08, 0x10
DESC = struct.Struct(">IIQ")  # FWCfgDmaAccess: control, length, address; big-endian
VMCOREINFO = struct.Struct("<HHIQ")  # FWCfgVMCoreInfo: host_format, guest_format, size, paddr
UUID = "4600cb32-38ec-4b2f-8acb-81c6ea54f2d8"
M32 = 0xFFFFFFFF

PC_SEL, PC_DATA, PC_DMA_HI, PC_DMA_LO = 0x510, 0x511, 0x514, 0x518
VIRT_DATA, VIRT_SEL, VIRT_DMA = 0x09020000, 0x09020008, 0x09020010


def bswap16(v: int) -> int:
    return int.from_bytes(v.to_bytes(2, "little"), "big")


def bswap32(v: int) -> int:
    return int.from_bytes(v.to_bytes(4, "little"), "big")


def bswap64(v: int) -> int:
    return int.from_bytes(v.to_bytes(8, "little"), "big")


def launch(kind: str, machine: str, *extra: str) -> QTest:
    """Start ``kind`` ("emu" or "qemu") for ``machine`` under qtest, paused with ``-S``."""
    args = [*MACHINE_ARGS[machine], *COMMON_ARGS]
    if "-m" not in extra:
        args += ["-m", "128M"]
    args += extra
    if kind == "emu":
        return QTest.emu(*args)
    return QTest.qemu(machine, *args)


Start = Callable[..., QTest]


@pytest.fixture(params=KINDS)
def start(request: pytest.FixtureRequest) -> Iterator[Start]:
    """A factory ``start(machine, *extra_args) -> QTest``; each test runs on emu and on QEMU."""
    started: list[QTest] = []

    def factory(machine: str, *extra: str) -> QTest:
        qt = launch(request.param, machine, *extra)
        started.append(qt)
        return qt

    yield factory
    for qt in started:
        qt.close()


def ok_value(line: str) -> int:
    """The number in an ``OK 0x...`` response."""
    word, _, value = line.partition(" ")
    assert word == "OK", line
    return int(value, 0)


class FwCfg:
    """The guest's view of fw_cfg through qtest (tests/qtest/libqos/fw_cfg.c)."""

    def __init__(self, qt: QTest, machine: str) -> None:
        self.qt = qt
        self.machine = machine
        self.scratch = SCRATCH[machine]

    def select(self, key: int) -> None:
        if self.machine == "pc":
            self.qt.outw(PC_SEL, key)
        else:
            self.qt.writew(VIRT_SEL, bswap16(key))

    def read(self, n: int) -> bytes:
        """``n`` bytes from the data register, one byte access each (pipelined)."""
        line = f"inb {PC_DATA:#x}" if self.machine == "pc" else f"readb {VIRT_DATA:#x}"
        return bytes(ok_value(r) for r in self.qt.batch([line] * n))

    def get(self, key: int, n: int) -> bytes:
        self.select(key)
        return self.read(n)

    def get_u16(self, key: int) -> int:
        return int.from_bytes(self.get(key, 2), "little")

    def get_u32(self, key: int) -> int:
        return int.from_bytes(self.get(key, 4), "little")

    def get_u64(self, key: int) -> int:
        return int.from_bytes(self.get(key, 8), "little")

    def files(self) -> dict[str, tuple[int, int]]:
        """The file directory: name -> (selector, size)."""
        count = int.from_bytes(self.get(FW_CFG_FILE_DIR, 4), "big")
        raw = self.read(64 * count)
        out = {}
        for i in range(count):
            size, select, _, name = struct.unpack(">IHH56s", raw[64 * i:64 * i + 64])
            out[name.rstrip(b"\0").decode()] = (select, size)
        return out

    def find_file(self, name: str) -> tuple[int, int]:
        files = self.files()
        assert name in files, f"{name} not in {sorted(files)}"
        return files[name]

    def get_file(self, name: str) -> bytes:
        select, size = self.find_file(name)
        return self.get(select, size)

    def kick(self, addr: int) -> None:
        if self.machine == "pc":
            self.qt.outl(PC_DMA_HI, bswap32(addr >> 32))
            self.qt.outl(PC_DMA_LO, bswap32(addr & M32))
        else:
            self.qt.writeq(VIRT_DMA, bswap64(addr))

    def dma(self, control: int, length: int, address: int, desc: int | None = None) -> int:
        """One DMA transfer; returns the control word the device wrote back."""
        desc = self.scratch if desc is None else desc
        self.qt.memwrite(desc, DESC.pack(control, length, address))
        self.kick(desc)
        ctl, ln, ad = DESC.unpack(self.qt.memread(desc, 16))
        assert (ln, ad) == (length, address)
        return ctl


# -- the protocol itself ----------------------------------------------------------------------


def test_endianness_and_memory(start: Start, machine: str) -> None:
    qt = start(machine)
    assert qt.endianness() == "little"
    base = SCRATCH[machine]
    qt.memwrite(base, bytes(range(16)))
    assert qt.memread(base, 16) == bytes(range(16))
    assert qt.readb(base + 1) == 0x01
    assert qt.readw(base + 2) == 0x0302
    assert qt.readl(base + 4) == 0x07060504
    assert qt.readq(base + 8) == 0x0F0E0D0C0B0A0908
    qt.writeb(base, 0xAB)
    qt.writew(base + 2, 0xBEEF)
    qt.writel(base + 4, 0xDEADBEEF)
    qt.writeq(base + 8, 0x0123456789ABCDEF)
    assert qt.memread(base, 16) == bytes.fromhex("ab01efbeefbeadde efcdab8967452301")
    qt.b64write(base, b"qtest b64 data!")
    assert qt.b64read(base, 15) == b"qtest b64 data!"
    assert qt.memread(base, 15) == b"qtest b64 data!"
    qt.memset(base, 8, 0x5A)
    assert qt.memread(base, 9) == b"Z" * 8 + b"4"


@pytest.mark.parametrize("machine_name", ["pc", "virt"])
def test_answer_format_matches_qemu(machine_name: str) -> None:
    """The raw response lines (padding of the hex values included) are QEMU's."""
    base = SCRATCH[machine_name]
    lines = [f"write {base:#x} 0x10 0x00112233445566778899aabbccddeeff",
             f"readb {base:#x}", f"readw {base:#x}", f"readl {base:#x}", f"readq {base:#x}",
             f"read {base:#x} 0x3", f"b64read {base:#x} 0x4", f"writeb {base + 1:#x} 0x7",
             f"memset {base:#x} 0x2 0x0", f"readq {base:#x}", "endianness"]
    if machine_name == "pc":
        lines += ["outw 0x510 0x0", "inb 0x511", "inw 0x510", "inl 0x514", "outb 0x80 0x1"]
    else:
        lines += ["writew 0x9020008 0x0", "readb 0x9020000", "readl 0x9020000"]
    answers = {}
    for kind in KINDS:
        with launch(kind, machine_name) as qt:
            answers[kind] = qt.batch(lines)
    assert answers["emu"] == answers["qemu"]


def test_port_reads_straddling_fw_cfg_match_qemu() -> None:
    """Wide port reads that cover fw_cfg's data byte and the unassigned port after it are split
    into byte accesses, as QEMU's memory core splits them (unassigned bytes read as 0xff)."""
    lines = ["outw 0x510 0x0", "inw 0x511", "inl 0x511", "inb 0x512", "inw 0x510", "inl 0x510"]
    answers = {}
    for kind in KINDS:
        with launch(kind, "pc") as qt:
            answers[kind] = qt.batch(lines)
    assert answers["emu"] == answers["qemu"]


# -- tests/qtest/fw_cfg-test.c ----------------------------------------------------------------


def test_fw_cfg_signature(start: Start, machine: str) -> None:
    fw = FwCfg(start(machine), machine)
    assert fw.get(FW_CFG_SIGNATURE, 4) == b"QEMU"


def test_fw_cfg_id(start: Start, machine: str) -> None:
    fw = FwCfg(start(machine), machine)
    assert fw.get_u32(FW_CFG_ID) == 3  # traditional interface and DMA


def test_fw_cfg_uuid(start: Start, machine: str) -> None:
    fw = FwCfg(start(machine, "-uuid", UUID), machine)
    assert fw.get(FW_CFG_UUID, 16) == uuid.UUID(UUID).bytes
    fw = FwCfg(start(machine), machine)
    assert fw.get(FW_CFG_UUID, 16) == bytes(16)


@pytest.mark.parametrize("mem", ["128M", "256M"])
def test_fw_cfg_ram_size(start: Start, mem: str) -> None:
    fw = FwCfg(start("pc", "-m", mem), "pc")
    assert fw.get_u64(FW_CFG_RAM_SIZE) == int(mem[:-1]) << 20


def test_fw_cfg_nographic(start: Start, machine: str) -> None:
    fw = FwCfg(start(machine), machine)
    assert fw.get_u16(FW_CFG_NOGRAPHIC) == 0


@pytest.mark.parametrize("smp,cpus", [(None, 1), ("2", 2)])
def test_fw_cfg_nb_cpus(start: Start, machine: str, smp: str | None, cpus: int) -> None:
    fw = FwCfg(start(machine, *(["-smp", smp] if smp else [])), machine)
    assert fw.get_u16(FW_CFG_NB_CPUS) == cpus


@pytest.mark.parametrize("smp,cpus", [(None, 1), ("1,maxcpus=4", 4)])
def test_fw_cfg_max_cpus(start: Start, smp: str | None, cpus: int) -> None:
    fw = FwCfg(start("pc", *(["-smp", smp] if smp else [])), "pc")
    assert fw.get_u16(FW_CFG_MAX_CPUS) == cpus


def test_fw_cfg_numa(start: Start) -> None:
    fw = FwCfg(start("pc"), "pc")
    assert fw.get_u64(FW_CFG_NUMA) == 0  # no NUMA nodes


@pytest.mark.parametrize("boot,menu", [(None, 0), ("menu=on", 1), ("menu=off", 0)])
def test_fw_cfg_boot_menu(start: Start, machine: str, boot: str | None, menu: int) -> None:
    fw = FwCfg(start(machine, *(["-boot", boot] if boot else [])), machine)
    assert fw.get_u16(FW_CFG_BOOT_MENU) == menu


def test_fw_cfg_reboot_timeout(start: Start, machine: str) -> None:
    fw = FwCfg(start(machine, "-boot", "reboot-timeout=15"), machine)
    data = fw.get_file("etc/boot-fail-wait")
    assert len(data) == 4
    assert int.from_bytes(data, "little") == 15


def test_fw_cfg_reboot_timeout_default(start: Start, machine: str) -> None:
    fw = FwCfg(start(machine), machine)
    assert fw.get_file("etc/boot-fail-wait") == b"\xff\xff\xff\xff"  # -1: never reboot


def test_fw_cfg_splash_time(start: Start, machine: str) -> None:
    fw = FwCfg(start(machine, "-boot", "splash-time=12"), machine)
    data = fw.get_file("etc/boot-menu-wait")
    assert len(data) == 2
    assert int.from_bytes(data, "little") == 12


def test_fw_cfg_file_dir_sorted(start: Start, machine: str) -> None:
    fw = FwCfg(start(machine), machine)
    files = fw.files()
    assert list(files) == sorted(files)
    assert sorted(sel for sel, _ in files.values()) == list(
        range(FW_CFG_FILE_FIRST, FW_CFG_FILE_FIRST + len(files)))


def test_fw_cfg_virt_wide_data_reads(start: Start) -> None:
    """virt's data register returns wider reads in address order (a little-endian value)."""
    qt = start("virt")
    fw = FwCfg(qt, "virt")
    fw.select(FW_CFG_SIGNATURE)
    assert qt.readq(VIRT_DATA) == int.from_bytes(b"QEMU\0\0\0\0", "little")
    fw.select(FW_CFG_SIGNATURE)
    assert qt.readl(VIRT_DATA) == int.from_bytes(b"QEMU", "little")
    assert qt.readl(VIRT_DATA) == 0  # past the end
    fw.select(FW_CFG_SIGNATURE)
    assert qt.readw(VIRT_DATA) == int.from_bytes(b"QE", "little")
    assert qt.readb(VIRT_DATA) == ord("M")


def test_fw_cfg_dma_read(start: Start, machine: str) -> None:
    qt = start(machine, "-uuid", UUID)
    fw = FwCfg(qt, machine)
    buf = fw.scratch + 0x1000
    qt.memset(buf, 32, 0xAA)
    assert fw.dma((FW_CFG_SIGNATURE << 16) | DMA_SELECT | DMA_READ, 4, buf) == 0
    assert qt.memread(buf, 8) == b"QEMU" + b"\xaa" * 4
    assert fw.dma((FW_CFG_UUID << 16) | DMA_SELECT | DMA_SKIP, 4, buf) == 0
    assert fw.dma(DMA_READ, 16, buf) == 0  # 12 bytes left, then zeros
    assert qt.memread(buf, 17) == uuid.UUID(UUID).bytes[4:] + bytes(4) + b"\xaa"


def test_fw_cfg_dma_write_to_read_only_item_fails(start: Start, machine: str) -> None:
    qt = start(machine)
    fw = FwCfg(qt, machine)
    buf = fw.scratch + 0x1000
    qt.memwrite(buf, b"ABCD")
    assert fw.dma((FW_CFG_SIGNATURE << 16) | DMA_SELECT | DMA_WRITE, 4, buf) == DMA_ERROR
    assert fw.get(FW_CFG_SIGNATURE, 4) == b"QEMU"


# -- tests/qtest/vmcoreinfo-test.c ------------------------------------------------------------


@pytest.mark.parametrize("where", ["ram-end", "above-ram", "wrap", "rom"])
def test_dma_write_with_source_outside_ram_matches_qemu(machine: str, where: str) -> None:
    """A 16-byte DMA write into etc/vmcoreinfo whose source is partly or wholly not RAM:
    QEMU stores the RAM (and ROM) bytes and zeros for the rest, and reports ERROR unless all
    of it was memory; past 2^64 - 1 the source goes on at address 0."""
    base, end = RAM_BASE[machine], RAM_BASE[machine] + RAM_SIZE
    src = {"ram-end": end - 8, "above-ram": end + 0x1000, "wrap": (1 << 64) - 12,
           "rom": 0xFFFF0000 if machine == "pc" else 0x0}[where]
    seen = {}
    for kind in KINDS:
        qt = launch(kind, machine, "-device", "vmcoreinfo", "-bios",
                    FUZZ_BIOS[machine])
        try:
            fw = FwCfg(qt, machine)
            sel, _ = fw.find_file("etc/vmcoreinfo")
            qt.memwrite(end - 8, b"\x11" * 8)
            if machine == "pc":
                qt.memwrite(base, bytes(range(1, 17)))
            status = fw.dma((sel << 16) | DMA_SELECT | DMA_WRITE, 16, src)
            seen[kind] = (status, fw.get(sel, 16))
        finally:
            qt.close()
    assert seen["emu"] == seen["qemu"]
    if where == "ram-end":
        assert seen["emu"] == (DMA_ERROR, b"\x11" * 8 + bytes(8))


def test_dma_into_virt_flash_matches_qemu() -> None:
    """virt: a DMA read into either flash bank completes (QEMU's pflash takes the bytes as
    commands; these are none), and the flash reads back as before on both; past the flash,
    into QEMU's GIC, emu has no device and reports ERROR (emu/boards/virt.py)."""
    seen = {}
    for kind in KINDS:
        qt = launch(kind, "virt", "-bios", FUZZ_BIOS["virt"])
        try:
            fw = FwCfg(qt, "virt")
            rows = []
            for dst in (0x0, 0x1000, 0x3FFFFF8, 0x4000000, 0x7FFFFF0):
                status = fw.dma(DMA_SELECT | DMA_READ | FW_CFG_SIGNATURE << 16, 16, dst)
                rows.append((status, qt.memread(dst, 16)))
            seen[kind] = rows
        finally:
            qt.close()
    assert seen["emu"] == seen["qemu"]
    assert [status for status, _ in seen["emu"]] == [0] * 5
    with open(FUZZ_BIOS["virt"], "rb") as f:
        assert seen["emu"][0][1] == f.read(16)  # the firmware, unchanged


def test_vmcoreinfo(start: Start, machine: str) -> None:
    qt = start(machine, "-device", "vmcoreinfo")
    fw = FwCfg(qt, machine)
    select, size = fw.find_file("etc/vmcoreinfo")
    assert size == VMCOREINFO.size
    # traditional interface, as vmcoreinfo-test.c reads it
    assert VMCOREINFO.unpack(fw.get(select, size)) == (1, 0, 0, 0)  # host_format ELF
    buf = fw.scratch + 0x1000
    qt.memset(buf, 32, 0)
    assert fw.dma((select << 16) | DMA_SELECT | DMA_READ, size, buf) == 0
    host_format, guest_format, note_size, paddr = VMCOREINFO.unpack(qt.memread(buf, size))
    assert (host_format, guest_format, note_size, paddr) == (1, 0, 0, 0)
    note = VMCOREINFO.pack(1, 1, 0x1000, 0x12345000)  # what Linux registers
    qt.memwrite(buf, note)
    assert fw.dma((select << 16) | DMA_SELECT | DMA_WRITE, size, buf) == 0
    qt.memset(buf, 32, 0)
    assert fw.dma((select << 16) | DMA_SELECT | DMA_READ, size, buf) == 0
    assert qt.memread(buf, size) == note
    assert fw.get(select, size) == note


# -- emu only -----------------------------------------------------------------------------------


def test_emu_accel_qtest(machine: str) -> None:
    with QTest.emu(*MACHINE_ARGS[machine], *COMMON_ARGS, "-m", "128M", "-accel", "qtest",
                   stopped=False) as qt:
        fw = FwCfg(qt, machine)
        assert fw.get(FW_CFG_SIGNATURE, 4) == b"QEMU"
        assert qt.endianness() == "little"
        assert qt.clock_step(1000) >= 1000


MALFORMED = [
    "frobnicate", "outb", "outb zz 1", "outb 0x80", "inb", "read 0x0", "readq notanumber",
    "write 0x0 2 0xzz", "write 0x0 2 0x", "write 0x0 2 12", "b64write 0x0 4 !!!!",
    "memset 0x0", "readq", "writeq 0x0", "outw 0x510 0x1 0x2 0x3", "x" * 100_000,
    "read 0x100000 " + "9" * 40, "read 0x100000 0x1000000000",
    "memset 0x100000 0xffffffffffff 0x1",
    "",  # last: a server that stays silent here leaves the stream out of step
]


def test_emu_malformed_lines_fail_and_server_stays_up() -> None:
    """Every malformed line gets one ``FAIL`` answer (QEMU aborts on most of them, and answers
    ``ERR invalid argument size`` to ``write`` data shorter than ``0x`` plus one digit)."""
    wrong = []
    with QTest.emu(*MACHINE_ARGS["pc"], *COMMON_ARGS, "-m", "128M", timeout=5) as qt:
        for line in MALFORMED:
            try:
                answer = qt.raw(line)
            except QTestError as e:
                wrong.append((line[:40], str(e)[:80]))
                break
            if not answer.startswith("FAIL"):
                wrong.append((line[:40], answer[:80]))
            elif qt.endianness() != "little":
                wrong.append((line[:40], "server out of step"))
        if not wrong:
            assert FwCfg(qt, "pc").get(FW_CFG_SIGNATURE, 4) == b"QEMU"
            with pytest.raises(QTestError, match="frobnicate"):
                qt.cmd("frobnicate")
    assert not wrong


# -- differential fuzz ------------------------------------------------------------------------

FUZZ_SEED = 0x5EED
#: the same firmware on both sides, so that DMA from ROM reads the same bytes
FUZZ_BIOS = {"pc": str(ROOT / "emu/firmware/pc.bin"), "virt": str(ROOT / "emu/firmware/virt.bin")}
FLASH_END = 0x08000000  # virt's two flash banks
ROM_ADDRESSES = {"pc": [0xBFFF0, 0xC0000, 0xDFFF0, 0xEFFF0, 0xF0000, 0xFFFF0, 0xFFFF0000,
                        0xFFFFFFC0],
                 "virt": [0x0, 0x1000, 0x3FFFFC0, 0x4000000, 0x7FFFFC0]}
FUZZ_OPS = {"pc": 6000, "virt": 4000}
VMCOREINFO_TOKEN = -1  # "the selector of etc/vmcoreinfo", translated on each side


def probe_common_keys(sides: dict[str, FwCfg]) -> list[int]:
    """The keys 0x00..0x1f whose contents emu and QEMU agree on (the file dir excluded)."""
    common = []
    for key in range(FW_CFG_FILE_FIRST):
        if key == FW_CFG_FILE_DIR:
            continue
        if len({fw.get(key, 64) for fw in sides.values()}) == 1:
            common.append(key)
    return common


class FuzzStream:
    """Random fw_cfg traffic, as abstract operations that each side turns into command lines."""

    def __init__(self, machine: str, common: list[int], seed: int) -> None:
        self.machine = machine
        self.rng = random.Random(seed)
        self.keys = [*common, VMCOREINFO_TOKEN]
        self.ram_lo = RAM_BASE[machine] + 0x100000
        self.ram_end = RAM_BASE[machine] + RAM_SIZE

    def key(self) -> int:
        r = self.rng.random()
        if r < 0.6:
            return self.rng.choice(self.keys)
        if r < 0.7:
            return self.rng.choice([0x3FFF, 0xFFFF, 0x8000 | 0x3FFF])
        if r < 0.8:
            return self.rng.choice([k for k in self.keys if k >= 0]) | 0x4000  # write channel
        return self.rng.randrange(FW_CFG_FILE_FIRST + 32, 0x4000)

    def length(self, control: int) -> int:
        r = self.rng.random()
        if r < 0.05:
            if control & DMA_READ:  # QEMU zero-fills the whole length, 512 bytes a step: keep
                return self.rng.choice([0x1000000, 0x10001])  # its runtime reasonable
            return self.rng.choice([0xFFFFFFFF, 0x80000000, 0x10001])
        if r < 0.3:
            return self.rng.randrange(0, 17)
        return self.rng.randrange(0, 4097)

    def address(self, length: int, rom: bool = True) -> int:
        """Where a transfer's buffer goes: mostly RAM; else across the end of RAM, wholly
        outside it, across 2^64 (QEMU does not wrap inside one access, but the next chunk of a
        transfer starts at the wrapped address), into ROM (pc's BIOS and legacy hole, virt's
        flash: DMA reads them, and a write fails on pc and is taken by the flash on virt).
        Descriptors are not put in ROM: the firmware's bytes there would describe transfers of
        gigabytes, which QEMU takes minutes to zero-fill."""
        r = self.rng.random()
        if r < 0.6:
            return self.rng.randrange(self.ram_lo, self.ram_end - 0x2000) & ~0x7 | (
                self.rng.randrange(8) if self.rng.random() < 0.3 else 0)
        if r < 0.72:  # straddles the end of RAM
            return self.ram_end - self.rng.randrange(1, max(2, min(length, 4096)))
        if r < 0.8:  # wholly outside RAM
            return self.rng.choice([0x20000000, 0x30000000, 0x7FFFF000, 1 << 40]) + (
                RAM_BASE[self.machine] * 2 if self.machine == "virt" else 0)
        if r < 0.88 or not rom:  # the last bytes below 2^64
            return (1 << 64) - self.rng.randrange(1, 64)
        return self.rng.choice(ROM_ADDRESSES[self.machine]) + self.rng.randrange(0, 64)

    def control(self, key: int) -> int:
        r = self.rng.random()
        if r < 0.15:
            return self.rng.getrandbits(16) | (self.rng.getrandbits(16) << 16)
        bits = self.rng.choice([DMA_READ, DMA_SKIP, DMA_WRITE, DMA_READ | DMA_WRITE,
                                DMA_SKIP | DMA_WRITE, 0, DMA_ERROR | DMA_READ])
        if self.rng.random() < 0.5:
            bits |= DMA_SELECT | (key << 16)
        return bits

    def ops(self, count: int) -> list[tuple]:
        out: list[tuple] = []
        for _ in range(count):
            r = self.rng.random()
            if r < 0.25:
                out.append(("select", self.key()))
                if self.rng.random() < 0.5:  # mostly read what was selected
                    out.append(("read", self.rng.choice([1, 2, 4, 8]) if self.machine == "virt"
                                else 1, self.rng.randrange(1, 17)))
            elif r < 0.55:
                out.append(("read", self.rng.choice([1, 2, 4, 8]) if self.machine == "virt"
                            else 1, self.rng.randrange(1, 9)))
            elif r < 0.62:
                out.append(("write", self.rng.choice([1, 2, 4, 8]) if self.machine == "virt"
                            else 1, self.rng.getrandbits(64)))
            else:
                key = self.key()
                control = self.control(0)
                if control & DMA_SELECT:
                    control = (control & 0xFFFF) | DMA_SELECT
                length = self.length(control)
                if control & DMA_WRITE and not control & DMA_READ and self.rng.random() < 0.5:
                    # a write that fits the writable item: its source decides the outcome
                    key, control = VMCOREINFO_TOKEN, (control & 0xFFFF) | DMA_SELECT
                    length = self.rng.randrange(1, 17)
                address = self.address(length)
                if self.machine == "virt" and address < FLASH_END:
                    # QEMU's pflash takes the bytes as CFI commands; emu's flash takes none
                    # (emu/boards/virt.py): send it only bytes that are no command
                    # (and not megabytes of them: QEMU takes each as a command and logs it)
                    key = self.rng.choice([FW_CFG_SIGNATURE, FW_CFG_ID, FW_CFG_NB_CPUS])
                    control = (control & 0xFFFF) | DMA_SELECT
                    # nor past the flash into the GIC, which emu does not have
                    length = min(length, 4096, FLASH_END - address)
                elif self.machine == "virt" and address + length > 1 << 64:
                    length = min(length, 4096)  # zeros past 2^64 go on into the flash at 0
                desc = (self.rng.randrange(self.ram_lo, self.ram_end - 16) & ~0xF
                        if self.rng.random() < 0.9 else self.address(16, rom=False))
                fill = self.rng.getrandbits(8 * 16).to_bytes(16, "little")
                out.append(("dma", key, control, length, address, desc, fill))
                if control & DMA_WRITE and not control & DMA_READ:
                    # what the write left in the writable item, zeros for what was not RAM
                    out.append(("select", VMCOREINFO_TOKEN))
                    out.append(("read", 1, 16))
        return out


def clip(start: int, size: int, lo: int, hi: int) -> tuple[int, int] | None:
    a, b = max(start, lo), min(start + size, hi)
    return (a, b - a) if b > a else None


def render(op: tuple, machine: str, vmcoreinfo: int) -> list[str]:
    """The command lines of one operation for a side whose etc/vmcoreinfo is ``vmcoreinfo``."""
    ram = (RAM_BASE[machine], RAM_BASE[machine] + RAM_SIZE)

    def real(key: int) -> int:
        return vmcoreinfo if key == VMCOREINFO_TOKEN else key

    kind = op[0]
    if kind == "select":
        key = real(op[1])
        return ([f"outw {PC_SEL:#x} {key:#x}"] if machine == "pc"
                else [f"writew {VIRT_SEL:#x} {bswap16(key):#x}"])
    sfx = {1: "b", 2: "w", 4: "l", 8: "q"}
    if kind == "read":
        _, size, count = op
        line = f"inb {PC_DATA:#x}" if machine == "pc" else f"read{sfx[size]} {VIRT_DATA:#x}"
        return [line] * count
    if kind == "write":
        _, size, value = op
        value &= (1 << (8 * size)) - 1
        return ([f"outb {PC_DATA:#x} {value & 0xFF:#x}"] if machine == "pc"
                else [f"write{sfx[size]} {VIRT_DATA:#x} {value:#x}"])
    _, key, control, length, address, desc, fill = op
    if control & DMA_SELECT:
        control |= real(key) << 16
    lines = []
    buf_window = clip(address, min(length, 4096) + 16, *ram)
    if buf_window:  # known contents before the transfer
        lines.append(f"memset {buf_window[0]:#x} {buf_window[1]:#x} {fill[0]:#x}")
    desc_bytes = DESC.pack(control, length, address)
    d = clip(desc, 16, *ram)
    if d:
        part = desc_bytes[d[0] - desc:d[0] - desc + d[1]]
        lines.append(f"write {d[0]:#x} {d[1]:#x} 0x{part.hex()}")
    if machine == "pc":
        lines += [f"outl {PC_DMA_HI:#x} {bswap32(desc >> 32):#x}",
                  f"outl {PC_DMA_LO:#x} {bswap32(desc & M32):#x}"]
    else:
        lines.append(f"writeq {VIRT_DMA:#x} {bswap64(desc):#x}")
    if d:
        lines.append(f"read {d[0]:#x} {d[1]:#x}")
    if buf_window:
        lines.append(f"read {buf_window[0]:#x} {buf_window[1]:#x}")
        end = clip(address + length - 16, 32, *ram) if length > 4096 else None
        if end:
            lines.append(f"read {end[0]:#x} {end[1]:#x}")
    wrapped = clip(0, (address + min(length, 4096)) - (1 << 64), *ram)
    if wrapped:  # a read past 2^64 goes on at address 0 (pc: RAM)
        lines.append(f"read {wrapped[0]:#x} {wrapped[1]:#x}")
    return lines


def normalize(answer: str) -> tuple[str, int | str] | str:
    word, _, value = answer.partition(" ")
    if word == "OK" and value.startswith("0x") and len(value) <= 18:
        return ("OK", int(value, 16))
    return answer


@pytest.mark.parametrize("fuzz_machine", ["pc", "virt"])
def test_differential_fuzz(fuzz_machine: str) -> None:
    """One random command stream to emu and QEMU: every answer and all touched memory agree."""
    qts = {kind: launch(kind, fuzz_machine, "-device", "vmcoreinfo", "-bios",
                        FUZZ_BIOS[fuzz_machine]) for kind in KINDS}
    try:
        sides = {kind: FwCfg(qt, fuzz_machine) for kind, qt in qts.items()}
        common = probe_common_keys(sides)
        assert {FW_CFG_SIGNATURE, FW_CFG_ID, FW_CFG_UUID, FW_CFG_NB_CPUS} <= set(common)
        vmci = {kind: fw.find_file("etc/vmcoreinfo")[0] for kind, fw in sides.items()}
        ops = FuzzStream(fuzz_machine, common, FUZZ_SEED).ops(FUZZ_OPS[fuzz_machine])
        rendered = {kind: [render(op, fuzz_machine, vmci[kind]) for op in ops] for kind in KINDS}
        answers: dict[str, list[str]] = {}
        for kind, qt in qts.items():
            flat = [line for lines in rendered[kind] for line in lines]
            answers[kind] = []
            for i in range(0, len(flat), 400):
                answers[kind] += qt.batch(flat[i:i + 400])
        pos = 0
        for index, op in enumerate(ops):
            n = len(rendered["emu"][index])
            assert n == len(rendered["qemu"][index])
            for j in range(n):
                e, q = answers["emu"][pos + j], answers["qemu"][pos + j]
                assert normalize(e) == normalize(q), (
                    f"op {index} {op[:6]}: {rendered['emu'][index][j][:80]!r}: "
                    f"emu {e[:120]!r} != qemu {q[:120]!r}")
            pos += n
    finally:
        for qt in qts.values():
            qt.close()


def test_qtest_stdio_and_log(tmp_path) -> None:
    import os
    import subprocess
    import sys

    log = tmp_path / "qtest.log"
    from conftest import ROOT

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "emu", "-M", "pc", "-accel", "qtest", "-display", "none",
         "-serial", "none", "-qtest", "stdio", "-qtest-log", str(log)],
        input=b"outw 0x510 0x0\ninb 0x511\nbogus\nendianness\n", capture_output=True,
        env=env, timeout=60)
    assert result.stdout.decode().splitlines() == [
        "OK", "OK 0x0051", "FAIL Unknown command 'bogus'", "OK little"]
    assert result.returncode == 0
    text = log.read_text()
    assert "] inb 0x511" in text and "] OK 0x0051" in text
