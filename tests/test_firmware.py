"""Firmware boot (firmware/, emu/firmware/*.bin): the default on both machines.

- The committed blobs are what firmware/build.py makes of the sources.
- Every guest image boots the same through the firmware as with --direct-boot.
- What the boards publish for the firmware matches what QEMU 7.2 publishes for the same
  -kernel/-append/-initrd (read through qtest on both), and the virt firmware itself boots
  the same kernel on QEMU (-bios) as on emu.
- The virt device tree passes dtc and has the nodes a kernel needs.
- -bios mistakes are one-line errors; a firmware that crashes is a guest fatal error.
- A wheel of emu carries the blobs and an installed emu finds them.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import libfdt
import pytest
from conftest import MACHINES, ROOT, boot_args, emu_cmd, image, run_emu, run_qemu
from elftools.elf.elffile import ELFFile
from test_qtest import FwCfg, launch

FW_CFG_KERNEL_ADDR, FW_CFG_KERNEL_SIZE = 0x07, 0x08
FW_CFG_INITRD_ADDR, FW_CFG_INITRD_SIZE = 0x0A, 0x0B
FW_CFG_KERNEL_ENTRY, FW_CFG_KERNEL_DATA, FW_CFG_INITRD_DATA = 0x10, 0x11, 0x12
FW_CFG_CMDLINE_SIZE, FW_CFG_CMDLINE_DATA = 0x14, 0x15
FW_CFG_SETUP_SIZE, FW_CFG_SETUP_DATA = 0x17, 0x18
DMA_READ, DMA_SELECT = 0x02, 0x08
XEN_ELFNOTE_PHYS32_ENTRY = 18
FLASH = {"pc": ROOT / "emu" / "firmware" / "pc.bin", "virt": ROOT / "emu" / "firmware" / "virt.bin"}


def test_committed_firmware_is_current() -> None:
    result = subprocess.run([sys.executable, "firmware/build.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "match a fresh build" in result.stdout


def test_pc_rom_reset_vector_works_in_real_and_protected_mode() -> None:
    """The last 16 bytes: mov %cr0,%eax; test $1,%al; jnz <32-bit path>; jmp <16-bit path>,
    which decode the same in 16-bit and 32-bit code (emu starts the CPU in protected mode,
    a real PC and QEMU in real mode)."""
    rom = FLASH["pc"].read_bytes()
    assert len(rom) == 64 * 1024
    vector = rom[-16:]
    assert vector[:5] == bytes.fromhex("0f20c0 a801")
    assert vector[5] == 0x75  # jnz rel8, taken in protected mode
    pm_target = 0xFFFFFFF7 + struct.unpack("<b", vector[6:7])[0]
    assert vector[7] == 0xE9  # jmp rel16 in real mode: IP wraps within CS (base 0xffff0000)
    rm_target = 0xFFFF0000 + ((0xFFFA + struct.unpack("<H", vector[8:10])[0]) & 0xFFFF)
    for target in (pm_target, rm_target):
        assert 0xFFFF0000 <= target < 0xFFFFFFF0
    assert pm_target != rm_target


# -- every image boots the same both ways ------------------------------------------------------

def _image_args(machine: str, name: str, tmp_path: Path) -> list[str] | None:
    blob = tmp_path / "bench.bin"
    blob.write_bytes(bytes(range(256)) * 64)
    script = tmp_path / "scenario.txt"
    script.write_text((ROOT / "scenarios" / "data-port-writes.txt").read_text()
                      .replace("\nhalt\n", "\nexit\n"))
    args = {
        "hello": ["-append", "exit=3 through the firmware"],
        "spin": ["-append", "iters=100000"],
        "pulse": ["-append", "iters=20000 poll=7"],
        "fwcfg": ["-device", "vmcoreinfo"],
        "fwcfgbench": ["-fw_cfg", f"name=opt/bench,file={blob}"],
        "scenario": ["-device", "vmcoreinfo", "-fw_cfg", f"name=opt/scenario,file={script}"],
        "panic": ["-device", "vmcoreinfo", "-device", "pvpanic"] if machine == "pc" else None,
        # (virt has no pvpanic: there the image halts, see the halting test)
        "trap": ["-no-reboot"] if machine == "pc" else [],  # (pc: a triple fault resets)
        "unmapped": [],
    }[name]
    return None if args is None else boot_args(machine, name, *args)


IMAGES = ["hello", "spin", "pulse", "fwcfg", "fwcfgbench", "scenario", "panic", "trap",
          "unmapped"]


@pytest.mark.parametrize("name", IMAGES)
def test_image_boots_identically_through_firmware_and_directly(machine: str, name: str,
                                                                tmp_path: Path) -> None:
    args = _image_args(machine, name, tmp_path)
    if args is None:
        return  # no such device on this machine
    firmware = run_emu(args, timeout=60)
    direct = run_emu([*args, "--direct-boot"], timeout=60)
    assert firmware.stdout, firmware.stderr
    assert firmware.stdout == direct.stdout
    assert firmware.returncode == direct.returncode
    assert firmware.stderr == direct.stderr


def _output_until_halted(args: list[str], last_line: bytes) -> bytes:
    """The output of an image that halts for ever after ``last_line``; checks it is still
    running (halted, as on QEMU) before stopping it."""
    proc = subprocess.Popen([*emu_cmd(), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    out = b""
    try:
        assert proc.stdout is not None
        while not out.endswith(last_line):
            line = proc.stdout.readline()
            assert line, out
            out += line
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    return out


@pytest.mark.parametrize("name, extra, last_line", [
    ("halt", [], b"halt: halting with interrupts off\n"),
    ("vmcoreinfo", ["-device", "vmcoreinfo"], b"vmcoreinfo: done\n"),
    ("panic", ["-device", "vmcoreinfo"], b"panic: no pvpanic on this machine\n"),
])
def test_halting_image_halts_the_same_both_ways(machine: str, name: str, extra: list[str],
                                                last_line: bytes) -> None:
    if name == "panic" and machine == "pc":
        return  # pc's panic image exits through pvpanic (the test above)
    args = boot_args(machine, name, *extra)
    firmware = _output_until_halted(args, last_line)
    assert firmware == _output_until_halted([*args, "--direct-boot"], last_line)


def test_default_boot_runs_the_firmware(machine: str) -> None:
    """The firmware really runs: the guest's first fw_cfg accesses are the firmware's
    signature read, then the kernel's items, then DMA."""
    result = run_emu(boot_args(machine, "hello", "-trace", "fw_cfg_*"))
    guest = [line for line in result.stderr.decode().splitlines()
             if not line.startswith("fw_cfg_add_")]
    # the device's own reset selects key 0 first (as QEMU's fw_cfg_reset), then the firmware
    assert guest[1:7] == ["fw_cfg_select key=0x0 ret=0x1 name=signature", "fw_cfg_read value=0x51",
                         "fw_cfg_read value=0x45", "fw_cfg_read value=0x4d",
                         "fw_cfg_read value=0x55", "fw_cfg_select key=0x1 ret=0x1 name=id"], guest
    assert "fw_cfg_select key=0x11 ret=0x1 name=kernel_data" in guest
    direct = run_emu([*boot_args(machine, "hello", "-trace", "fw_cfg_*"), "--direct-boot"])
    assert "fw_cfg_select key=0x11" not in direct.stderr.decode()
    assert result.stdout == direct.stdout


# -- what the boards publish, against QEMU ------------------------------------------------------

def _dma_read(fw: FwCfg, key: int, size: int) -> bytes:
    buf = fw.scratch + 0x1000
    assert fw.dma((key << 16) | DMA_SELECT | DMA_READ, size, buf) == 0
    return fw.qt.b64read(buf, size)


def _pvh_image(path: str) -> tuple[int, bytes, int]:
    """(lowest load address, memory image, PVH entry) of an ELF, computed here."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        low = min(s["p_paddr"] for s in loads)
        high = max(s["p_paddr"] + s["p_memsz"] for s in loads)
        flat = bytearray(high - low)
        for s in loads:
            flat[s["p_paddr"] - low:s["p_paddr"] - low + s["p_filesz"]] = s.data()
        entry = 0
        for s in elf.iter_segments():
            if s["p_type"] == "PT_NOTE":
                for note in s.iter_notes():
                    if note["n_name"] == "Xen" and note["n_type"] == XEN_ELFNOTE_PHYS32_ENTRY:
                        desc = note["n_descdata"]
                        entry = int.from_bytes(desc if isinstance(desc, bytes)
                                               else desc.encode("latin-1"), "little")
    return low, bytes(flat), entry


def _initrd(tmp_path: Path, size: int = 12345) -> Path:
    path = tmp_path / "initrd.img"
    path.write_bytes(hashlib.shake_256(b"initrd").digest(size))
    return path


def test_pc_kernel_items_match_qemu(tmp_path: Path) -> None:
    initrd = _initrd(tmp_path)
    kernel = image("pc", "hello")
    args = ("-kernel", kernel, "-append", "exit=0 console=ttyS0", "-initrd", str(initrd))
    answers = {}
    for kind in ("emu", "qemu"):
        with launch(kind, "pc", *args) as qt:
            fw = FwCfg(qt, "pc")
            items = {key: fw.get_u32(key) for key in (
                FW_CFG_KERNEL_ADDR, FW_CFG_KERNEL_SIZE, FW_CFG_KERNEL_ENTRY,
                FW_CFG_CMDLINE_SIZE, FW_CFG_SETUP_SIZE, FW_CFG_INITRD_ADDR, FW_CFG_INITRD_SIZE)}
            items[FW_CFG_CMDLINE_DATA] = _dma_read(fw, FW_CFG_CMDLINE_DATA,
                                                   items[FW_CFG_CMDLINE_SIZE])
            items[FW_CFG_INITRD_DATA] = _dma_read(fw, FW_CFG_INITRD_DATA,
                                                  items[FW_CFG_INITRD_SIZE])
            items[FW_CFG_SETUP_DATA] = _dma_read(fw, FW_CFG_SETUP_DATA, 8192)
            if kind == "emu":
                kernel_data = _dma_read(fw, FW_CFG_KERNEL_DATA, items[FW_CFG_KERNEL_SIZE])
            answers[kind] = items
    ours, qemu = answers["emu"], answers["qemu"]
    # QEMU 7.2 publishes its PVH FW_CFG_SETUP_DATA from a stack buffer of x86_load_linux
    # (uint8_t header[8192]) that fw_cfg_add_bytes does not copy: after the function returns
    # the item reads whatever later reuses that stack. emu publishes the file's first 8 KiB.
    assert ours[FW_CFG_SETUP_DATA] == Path(kernel).read_bytes()[:8192].ljust(8192, b"\0")
    del ours[FW_CFG_SETUP_DATA], qemu[FW_CFG_SETUP_DATA]
    assert ours == qemu
    low, flat, entry = _pvh_image(kernel)
    assert (ours[FW_CFG_KERNEL_ADDR], ours[FW_CFG_KERNEL_ENTRY]) == (low, entry)
    assert kernel_data == flat
    assert ours[FW_CFG_CMDLINE_DATA] == b"exit=0 console=ttyS0\0"
    assert ours[FW_CFG_INITRD_DATA] == initrd.read_bytes()


def test_virt_kernel_items_match_qemu_with_firmware(tmp_path: Path) -> None:
    """QEMU publishes the kernel through fw_cfg only when it runs firmware (-bios)."""
    initrd = _initrd(tmp_path, 3000)
    kernel = image("virt", "hello")
    args = ("-bios", str(FLASH["virt"]), "-kernel", kernel, "-append", "a b c",
            "-initrd", str(initrd))
    answers = {}
    for kind in ("emu", "qemu"):
        with launch(kind, "virt", *args) as qt:
            fw = FwCfg(qt, "virt")
            sizes = {key: fw.get_u32(key) for key in (
                FW_CFG_KERNEL_SIZE, FW_CFG_CMDLINE_SIZE, FW_CFG_INITRD_SIZE)}
            answers[kind] = (sizes,
                             _dma_read(fw, FW_CFG_KERNEL_DATA, sizes[FW_CFG_KERNEL_SIZE]),
                             _dma_read(fw, FW_CFG_CMDLINE_DATA, sizes[FW_CFG_CMDLINE_SIZE]),
                             _dma_read(fw, FW_CFG_INITRD_DATA, sizes[FW_CFG_INITRD_SIZE]))
    assert answers["emu"] == answers["qemu"]
    _sizes, kernel_data, cmdline, initrd_data = answers["emu"]
    assert kernel_data == Path(kernel).read_bytes()
    assert cmdline == b"a b c\0"
    assert initrd_data == initrd.read_bytes()


def test_virt_firmware_boots_the_same_on_qemu() -> None:
    """(QEMU's pc cannot boot a kernel with emu's pc.bin: for PVH kernels it copies the
    segments into RAM itself and publishes no FW_CFG_KERNEL_DATA for the firmware to read.)"""
    args = boot_args("virt", "hello", "-append", "exit=0 via the flash", "-bios",
                     str(FLASH["virt"]))
    ours, qemu = run_emu(args), run_qemu("virt", args)
    assert qemu.stdout.startswith(b"Hello from the guest!"), qemu.stdout + qemu.stderr
    assert ours.stdout == qemu.stdout
    assert ours.returncode == qemu.returncode


def test_firmware_without_a_kernel_says_so_on_emu_and_qemu(machine: str) -> None:
    """On pc this also shows the ROM starting from QEMU's real-mode reset."""
    args = [*MACHINES[machine][2], "-display", "none", "-serial", "stdio",
            "-bios", str(FLASH[machine])]
    expected = b"emu firmware: no kernel to boot (QEMU's -kernel FILE gives one)\n"
    procs = {"emu": [*emu_cmd(), *args], "qemu": [MACHINES[machine][1], *args]}
    for kind, argv in procs.items():
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == expected, kind
            assert proc.poll() is None  # halted, like real firmware with nothing to boot
        finally:
            proc.kill()
            proc.wait()


# -- the device tree ---------------------------------------------------------------------------

def _fdt(*extra: str) -> bytes:
    """``etc/fdt``: its used part (header's off_dt_strings + size_dt_strings) read through
    qtest, a byte at a time, and the free space up to its 1 MiB (QEMU's totalsize) as zeros."""
    with launch("emu", "virt", *extra) as qt:
        fw = FwCfg(qt, "virt")
        select, size = fw.find_file("etc/fdt")
        header = fw.get(select, 40)
        assert size == int.from_bytes(header[4:8], "big") == 0x100000
        used = int.from_bytes(header[12:16], "big") + int.from_bytes(header[32:36], "big")
        return (header + fw.read(used - 40)).ljust(size, b"\0")


def test_device_tree_passes_dtc_and_has_the_nodes(tmp_path: Path) -> None:
    dtb = tmp_path / "virt.dtb"
    dtb.write_bytes(_fdt("-kernel", image("virt", "hello"), "-append", "root=/dev/vda quiet",
                         "-m", "256M"))
    result = subprocess.run(["dtc", "-I", "dtb", "-O", "dts", str(dtb)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no warnings
    dts = result.stdout
    for text in ('memory@40000000 {', 'reg = <0x00 0x40000000 0x00 0x10000000>;',
                 'pl011@9000000 {', 'compatible = "arm,pl011\\0arm,primecell";',
                 'fw-cfg@9020000 {', 'compatible = "qemu,fw-cfg-mmio";', 'dma-coherent;',
                 'psci {', 'method = "hvc";', 'enable-method = "psci";',
                 'chosen {', 'bootargs = "root=/dev/vda quiet";',
                 'stdout-path = "/pl011@9000000";'):
        assert text in dts, text


def test_device_tree_names_the_initrd(tmp_path: Path) -> None:
    initrd = _initrd(tmp_path, 5000)
    dtb = tmp_path / "virt.dtb"
    dtb.write_bytes(_fdt("-kernel", image("virt", "hello"), "-initrd", str(initrd)))
    dts = subprocess.run(["dtc", "-I", "dtb", "-O", "dts", str(dtb)], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    # QEMU's place: RAM base + min(RAM / 2, 128 MiB) = 0x44000000 with 128 MiB
    assert "linux,initrd-start = <0x00 0x44000000>;" in dts
    assert f"linux,initrd-end = <0x00 {0x44000000 + 5000:#x}>;" in dts


def test_firmware_puts_the_device_tree_at_the_base_of_ram(tmp_path: Path) -> None:
    core = tmp_path / "virt.core"
    result = run_emu(boot_args("virt", "hello", "-append", "in memory", "--dump-on-exit",
                               str(core)))
    assert result.returncode == 0, result.stderr
    fdt = _fdt("-kernel", image("virt", "hello"), "-append", "in memory")
    with open(core, "rb") as f:
        elf = ELFFile(f)
        ram = next(s for s in elf.iter_segments()
                   if s["p_type"] == "PT_LOAD" and s["p_paddr"] == 0x40000000)
        f.seek(ram["p_offset"])
        # the used part: the firmware's stack is in the free space (firmware/virt/boot.h)
        used = len(fdt.rstrip(b"\0"))
        found = f.read(used) + fdt[used:]
    # The seeds in /chosen are new for every machine (as QEMU's dtb-randomness): the rest of
    # the tree is the same bytes.
    ours, theirs = libfdt.Fdt(bytearray(found)), libfdt.Fdt(bytearray(fdt))
    chosen = theirs.path_offset("/chosen")
    for name in ("kaslr-seed", "rng-seed"):
        assert len(ours.getprop(ours.path_offset("/chosen"), name)) == \
            len(theirs.getprop(chosen, name))
        ours.setprop(ours.path_offset("/chosen"), name, bytes(theirs.getprop(chosen, name)))
    assert bytes(ours.as_bytearray())[:used] == fdt[:used]


# -- options and errors --------------------------------------------------------------------------

@pytest.mark.parametrize("machine_name, content, message", [
    ("pc", None, "emu: -bios {path}: could not open: No such file or directory"),
    ("pc", b"", "emu: -bios {path}: could not load PC BIOS: the file is empty"),
    ("pc", b"\xf4" * 1000, "emu: -bios {path}: could not load PC BIOS: its size (1000 bytes) "
                           "is not a multiple of 64 KiB"),
    ("virt", None, "emu: -bios {path}: could not open: No such file or directory"),
    ("virt", b"", "emu: -bios {path}: could not load ROM image: the file is empty"),
])
def test_bad_firmware_file_is_a_one_line_error(machine_name: str, content: bytes | None,
                                               message: str, tmp_path: Path) -> None:
    path = tmp_path / "fw.bin"
    if content is not None:
        path.write_bytes(content)
    result = run_emu(["-M", machine_name, "-bios", str(path), "-kernel",
                      image(machine_name, "hello")])
    assert result.returncode == 1
    assert result.stderr.decode() == message.format(path=path) + "\n"


def test_oversized_virt_flash_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.truncate(64 * 1024 * 1024 + 1)
    result = run_emu(["-M", "virt", "-bios", str(path), "-kernel", image("virt", "hello")])
    assert result.returncode == 1
    assert result.stderr.decode() == (f"emu: -bios {path}: could not load ROM image: larger "
                                      "than the 64 MiB flash\n")


def test_bios_directory_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_emu(["-M", "pc", "-bios", str(tmp_path), "-kernel", image("pc", "hello")])
    assert result.returncode == 1
    assert result.stderr.decode() == f"emu: -bios {tmp_path}: could not open: Is a directory\n"


def test_garbage_firmware_gets_the_hardware_answer(machine: str, tmp_path: Path) -> None:
    """0xff bytes are no instruction on either architecture, and the CPU's exception vectors
    lead nowhere useful: both emulators keep running, printing nothing. (pc: QEMU starts
    in real mode and runs the zeros the #UD vector points at; emu starts its firmware in
    protected mode, docs, firmware/README.md, and there #UD without an IDT is a triple
    fault, a reset, for ever. virt: the undefined instruction's vector is in the same
    flash, taken for ever.)"""
    path = tmp_path / "garbage.bin"
    path.write_bytes(b"\xff" * 0x10000)
    args = [*boot_args(machine, "hello"), "-bios", str(path)]
    for run in (lambda: run_emu(args, timeout=3), lambda: run_qemu(machine, args, timeout=3)):
        with pytest.raises(subprocess.TimeoutExpired) as stopped:
            run()
        assert not stopped.value.stdout


@pytest.mark.parametrize("args, message", [
    (["-bios", "x.bin", "--direct-boot"],
     "emu: --direct-boot runs no firmware: it cannot be used with -bios"),
    (["-initrd", "x.img"], "emu: -initrd only works with -kernel"),
])
def test_boot_option_conflicts(args: list[str], message: str) -> None:
    result = run_emu(["-M", "pc", *args])
    assert result.returncode == 1
    assert result.stderr.decode() == message + "\n"


def _elf(e_machine: int, segments: list[tuple[int, int, bytes, int]], entry: int,
         pvh: bool = False) -> bytes:
    """An ELF64 executable: (file offset, paddr, bytes, memsz) per PT_LOAD, and with ``pvh``
    the Xen PHYS32_ENTRY note naming ``entry`` (x86_64 PVH kernels)."""
    note = struct.pack("<III4sI", 4, 4, XEN_ELFNOTE_PHYS32_ENTRY, b"Xen\0", entry) if pvh \
        else b""
    phnum = len(segments) + bool(note)
    first = 64 + 56 * phnum
    note_off = max([first, *(off + len(data) for off, _, data, _ in segments)])
    out = bytearray(note_off + len(note))
    out[:64] = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, 2, e_machine,
                           1, entry, 64, 0, 0, 64, 56, phnum, 0, 0, 0)
    for i, (off, paddr, data, memsz) in enumerate(segments):
        out[64 + 56 * i:120 + 56 * i] = struct.pack("<IIQQQQQQ", 1, 7, off, paddr, paddr,
                                                    len(data), memsz, 16)
        out[off:off + len(data)] = data
    if note:
        out[64 + 56 * len(segments):first] = struct.pack(
            "<IIQQQQQQ", 4, 4, note_off, 0, 0, len(note), len(note), 4)
        out[note_off:] = note
    return bytes(out)


def test_kernel_over_the_virt_firmware_area_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "low.elf"
    path.write_bytes(_elf(183, [(0x100, 0x40001000, b"\xf4" * 16, 16)], 0x40001000))
    result = run_emu(["-M", "virt", "-kernel", str(path)])
    assert result.returncode == 1
    assert result.stderr.decode() == (
        f"emu: -kernel {path}: segment at 0x40001000 is inside the firmware's area "
        "0x40000000-0x400fffff (the device tree, with the firmware's stack)\n")


def test_oversized_initrd_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.img"
    with open(path, "wb") as f:
        f.truncate(200 * 1024 * 1024)
    result = run_emu(["-M", "virt", "-m", "128M", "-kernel", image("virt", "hello"),
                      "-initrd", str(path)])
    assert result.returncode == 1
    assert result.stderr.decode() == (f"emu: -initrd {path}: 209715200 bytes do not fit in "
                                      "RAM at 0x44000000\n")


# -- packaging -------------------------------------------------------------------------------------

def test_wheel_carries_the_firmware_and_installed_emu_finds_it(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(wheel_dir), str(ROOT)], check=True, timeout=300, capture_output=True)
    (wheel,) = wheel_dir.glob("emu-*.whl")
    with zipfile.ZipFile(wheel) as z:
        for name in ("pc", "virt"):
            assert z.read(f"emu/firmware/{name}.bin") == FLASH[name].read_bytes()
        for arch in ("x86_64", "aarch64"):  # the run loop's native stop hook
            hook = f"emu/cpu/native/stop_hook.{arch}.so"
            assert z.read(hook) == (ROOT / hook).read_bytes()
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, timeout=300, capture_output=True)
    probe = ("import emu.firmware, hashlib; print(emu.firmware.__file__); "
             "print(hashlib.sha256(emu.firmware.default_firmware('virt')).hexdigest()); "
             "from unicorn import Uc, UC_ARCH_X86, UC_MODE_64; "
             "from emu.cpu.stop_request import StopRequest; "
             "print(StopRequest(Uc(UC_ARCH_X86, UC_MODE_64)).available)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(target)),
                         check=True).stdout.split()
    assert out[0].startswith(str(target))
    assert out[1] == hashlib.sha256(FLASH["virt"].read_bytes()).hexdigest()
    assert out[2] == "True"  # the installed emu finds its hook for this host


def test_guest_stores_to_the_rom_are_dropped(tmp_path: Path) -> None:
    """As on QEMU, where the BIOS region is read-only memory: the store is ignored and the
    guest keeps running. The kernel stores to the ROM's first dword, reads it back and exits
    with the low byte through isa-debug-exit."""
    code = (bytes.fromhex("c705 0000ffff 78563412")  # mov dword [0xffff0000], 0x12345678
            + bytes.fromhex("a1 0000ffff")           # mov eax, [0xffff0000]
            + bytes.fromhex("e6f4 f4"))              # out 0xf4, al; hlt
    kernel = tmp_path / "romwrite.elf"
    kernel.write_bytes(_elf(62, [(0x1000, 0x100000, code, len(code))], 0x100000, pvh=True))
    result = run_emu(["-M", "pc", "-display", "none", "-serial", "none", "-kernel", str(kernel),
                      "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
    rom_first_byte = FLASH["pc"].read_bytes()[0]
    assert result.returncode == ((rom_first_byte << 1) | 1) & 0xFF, result.stderr


def _arm64_image(elf_path: str) -> bytes:
    """An arm64 Linux Image (Documentation/arm64/booting.rst header) of a guest image: the
    64-byte header sits just below the ELF's first address (text_offset = that address - RAM
    base - 64, so the code lands where it was linked) and its first word branches over the
    header."""
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        low = min(s["p_paddr"] for s in loads)
        high = max(s["p_paddr"] + s["p_filesz"] for s in loads)
        end = max(s["p_paddr"] + s["p_memsz"] for s in loads)
        assert elf["e_entry"] == low
        flat = bytearray(high - low)
        for s in loads:
            flat[s["p_paddr"] - low:s["p_paddr"] - low + s["p_filesz"]] = s.data()
    branch_over_header = 0x14000000 | (64 // 4)
    header = struct.pack("<IIQQQQQQII", branch_over_header, 0, low - 0x40000000 - 64,
                         end - low + 64, 0, 0, 0, 0, 0x644D5241, 0)
    return header + bytes(flat)


def test_arm64_image_boots_as_qemu_boots_it(tmp_path: Path) -> None:
    """Through emu's firmware and with --direct-boot, as QEMU's -kernel boots an Image."""
    kernel = tmp_path / "Image"
    kernel.write_bytes(_arm64_image(image("virt", "hello")))
    args = [*MACHINES["virt"][2], "-display", "none", "-serial", "stdio", "-kernel", str(kernel),
            "-append", "exit=0 from an Image"]
    ours, qemu = run_emu(args), run_qemu("virt", args)
    direct = run_emu([*args, "--direct-boot"])
    assert qemu.stdout.startswith(b"Hello from the guest! (aarch64)\n"), qemu.stdout + qemu.stderr
    assert b"cmdline: exit=0 from an Image\n" in qemu.stdout
    assert ours.stdout == direct.stdout == qemu.stdout
    assert ours.returncode == direct.returncode == qemu.returncode == 0


def test_pc_dump_holds_the_bios_as_qemu_dumps_its_bios(tmp_path: Path) -> None:
    """QEMU's dump-guest-memory on pc includes the BIOS ROM (read-only RAM at the top of
    4 GiB); emu's dumps hold its firmware there too."""
    core = tmp_path / "pc.core"
    result = run_emu(boot_args("pc", "hello", "--dump-on-exit", str(core)))
    assert result.returncode == 1, result.stderr
    with open(core, "rb") as f:
        rom = next(s for s in ELFFile(f).iter_segments()
                   if s["p_type"] == "PT_LOAD" and s["p_paddr"] == 0xFFFF0000)
        assert rom.data() == FLASH["pc"].read_bytes()


@pytest.mark.parametrize("layout", ["as linked", "shuffled in the file"])
def test_pc_kernel_data_is_the_memory_image(layout: str, tmp_path: Path) -> None:
    """FW_CFG_KERNEL_DATA read for FW_CFG_KERNEL_SIZE bytes is the kernel's memory image,
    whether emu can publish it straight from the file (segments at one distance from their
    addresses, zeros between them) or has to assemble it."""
    text, data = b"\xf4" * 0x30 + bytes(range(256)), b"D" * 0x123
    if layout == "as linked":  # file offset - paddr is the same for both segments
        segs = [(0x1000, 0x100000, text, len(text)), (0x3000, 0x102000, data, 0x5000)]
    else:  # the data segment comes first in the file, and junk lies between them
        segs = [(0x3000, 0x100000, text, len(text)), (0x1000, 0x102000, data, 0x5000)]
    kernel = tmp_path / "k.elf"
    blob = bytearray(_elf(62, segs, 0x100000, pvh=True))
    if layout != "as linked":
        blob[0x2000:0x2010] = b"J" * 16  # not part of any segment
    kernel.write_bytes(bytes(blob))
    low, flat, _entry = _pvh_image(str(kernel))
    with launch("emu", "pc", "-kernel", str(kernel)) as qt:
        fw = FwCfg(qt, "pc")
        assert fw.get_u32(FW_CFG_KERNEL_ADDR) == low == 0x100000
        assert fw.get_u32(FW_CFG_KERNEL_SIZE) == len(flat) == 0x7000
        assert _dma_read(fw, FW_CFG_KERNEL_DATA, len(flat)) == flat


def test_kernel_can_come_from_a_pipe(machine: str) -> None:
    args = [*MACHINES[machine][2], "-display", "none", "-serial", "stdio", "-kernel",
            "/dev/stdin", "-append", "exit=0 piped"]
    result = run_emu(args, input=Path(image(machine, "hello")).read_bytes())
    assert result.stdout.startswith(b"Hello from the guest!"), result.stderr
    assert b"cmdline: exit=0 piped\n" in result.stdout


def test_firmware_reads_byte_by_byte_without_dma(machine: str, tmp_path: Path) -> None:
    """With the DMA interface switched off the firmware falls back to the data register;
    the kernel, command line and initrd arrive the same."""
    initrd = _initrd(tmp_path, 3000)
    device = "fw_cfg_io" if machine == "pc" else "fw_cfg_mem"
    args = boot_args(machine, "hello", "-append", "exit=0 no dma", "-initrd", str(initrd))
    with_dma = run_emu(args)
    without = run_emu([*args, "-global", f"{device}.dma_enabled=off"])
    assert b"cmdline: exit=0 no dma\n" in with_dma.stdout
    assert b"initrd: size=3000 " in with_dma.stdout
    assert without.stdout == with_dma.stdout
    assert without.returncode == with_dma.returncode


@pytest.mark.parametrize("kind", ["emu", "qemu"])
def test_qtest_reads_the_firmware_and_cannot_write_it(machine: str, kind: str) -> None:
    """qtest sees the ROM (pc) or flash (virt) as the CPU does, on emu as on QEMU."""
    base = 0xFFFF0000 if machine == "pc" else 0x0
    offset = 0xFFF0 if machine == "pc" else 0x0
    expected = FLASH[machine].read_bytes()[offset:offset + 16]
    with launch(kind, machine, "-bios", str(FLASH[machine])) as qt:
        assert qt.b64read(base + offset, 16) == expected
        assert qt.readl(base + offset) == int.from_bytes(expected[:4], "little")
        qt.writeb(base + offset + 15, expected[15] ^ 0xFF)
        assert qt.b64read(base + offset, 16) == expected


def test_virt_initrd_reaches_an_image_as_on_qemu(tmp_path: Path) -> None:
    """QEMU passes an initrd on virt to Linux Images (not to bare ELF files): an Image of
    hello prints the same initrd line on QEMU and on emu, both ways."""
    kernel = tmp_path / "Image"
    kernel.write_bytes(_arm64_image(image("virt", "hello")))
    initrd = _initrd(tmp_path, 7777)
    args = [*MACHINES["virt"][2], "-display", "none", "-serial", "stdio", "-kernel", str(kernel),
            "-append", "exit=0", "-initrd", str(initrd)]
    qemu = run_qemu("virt", args)
    assert b"initrd: size=7777 sum=0x" in qemu.stdout, qemu.stdout + qemu.stderr
    for extra in ([], ["--direct-boot"]):
        ours = run_emu([*args, *extra])
        assert ours.stdout == qemu.stdout, extra
        assert ours.returncode == qemu.returncode == 0


# -- a large .bss ----------------------------------------------------------------------------------

#: the x86 kernel's check, PVH entry in 32-bit protected mode: OR every dword from ``first`` up
#: to 0x1200000 and exit through isa-debug-exit with 0 (status 1) if all were zero, else 1
#: (status 3). Its one segment is 0x100000-0x11fffff: this code, then .bss.
def _pc_bss_check(first: int) -> bytes:
    return (b"\xbe" + struct.pack("<I", first)      # mov esi, first
            + b"\xb9" + struct.pack("<I", 0x1200000)  # mov ecx, 0x1200000
            + bytes.fromhex("31c0")                 # xor eax, eax
            + bytes.fromhex("0b06")                 # 1: or eax, [esi]
            + bytes.fromhex("83c604")               # add esi, 4
            + bytes.fromhex("39ce")                 # cmp esi, ecx
            + bytes.fromhex("72f7")                 # jb 1b
            + bytes.fromhex("85c0")                 # test eax, eax
            + bytes.fromhex("0f95c0")               # setnz al
            + bytes.fromhex("e6f4f4"))              # out 0xf4, al; hlt


@pytest.mark.parametrize("first, status", [(0x200000, 1), (0x100000, 3)],
                         ids=["bss", "control-reads-the-code"])
def test_pc_kernel_reads_its_large_bss_as_zeros(first: int, status: int, tmp_path: Path) -> None:
    """A 17 MiB .bss (the firmware's one DMA read of the memory image: the item's bytes, then
    the zeros past its end) reads as zeros, through the firmware, --direct-boot and on QEMU;
    the control reads from the code instead and must see non-zero bytes."""
    code = _pc_bss_check(first)
    kernel = tmp_path / "bss.elf"
    kernel.write_bytes(_elf(62, [(0x1000, 0x100000, code, 0x1100000)], 0x100000, pvh=True))
    args = [*MACHINES["pc"][2], "-display", "none", "-serial", "none", "-kernel", str(kernel)]
    for result in (run_emu(args), run_emu([*args, "--direct-boot"]), run_qemu("pc", args)):
        assert result.returncode == status, result.stderr


#: the aarch64 kernel, entered at 0x40200000: OR every doubleword of 0x40400000-0x413fffff
#: and print "0" if all were zero, else "1". On the first boot (the word at 0x47000000, outside
#: the image, is still 0) it sets that word, fills the range with ones and resets the machine
#: (PSCI SYSTEM_RESET: RAM keeps its contents); on the next it prints "\n" and powers off.
#: So the second digit says whether the boot zeroed the .bss over memory the guest had dirtied.
_VIRT_BSS_CHECK = struct.pack(
    "<33I",
    0xd2a8080a, 0xd2a8280b, 0xaa0a03ec, 0xaa1f03e2,
    0xa8c11183, 0xaa030042, 0xaa040042, 0xeb0b019f, 0x54ffff83,
    0xd2a12005, 0x52800606, 0xf100005f, 0x1a8604c6, 0xb90000a6,
    0xd2a8e007, 0xb94000e8, 0x35000168, 0x52800028, 0xb90000e8,
    0xaa0a03ec, 0x92800009, 0xa8812589, 0xeb0b019f, 0x54ffffc3,
    0xd2b08000, 0xf2800120, 0xd4000002,
    0x52800146, 0xb90000a6, 0xd2b08000, 0xf2800100, 0xd4000002, 0x14000000,
)
#   movz x10, #0x4040, lsl #16; movz x11, #0x4140, lsl #16; mov x12, x10; mov x2, xzr
#   1: ldp x3, x4, [x12], #16; orr x2, x2, x3; orr x2, x2, x4; cmp x12, x11; b.lo 1b
#   movz x5, #0x0900, lsl #16; mov w6, #'0'; cmp x2, #0; cinc w6, w6, ne; str w6, [x5]
#   movz x7, #0x4700, lsl #16; ldr w8, [x7]; cbnz w8, 3f; mov w8, #1; str w8, [x7]
#   mov x12, x10; mov x9, #-1; 2: stp x9, x9, [x12], #16; cmp x12, x11; b.lo 2b
#   movz x0, #0x8400, lsl #16; movk x0, #9; hvc #0               (PSCI SYSTEM_RESET)
#   3: mov w6, #'\n'; str w6, [x5]; movz x0, #0x8400, lsl #16; movk x0, #8; hvc #0; 4: b 4b


@pytest.mark.parametrize("memsz, output", [(0x1200000, b"00\n"), (0x200000, b"01\n")],
                         ids=["bss", "control-no-bss-there"])
def test_virt_kernel_gets_its_large_bss_zeroed_again_after_a_reset(
        memsz: int, output: bytes, tmp_path: Path) -> None:
    """A 16 MiB .bss the guest has filled with ones is zeros again after a reset: the virt
    firmware zeroes it (one DMA read of no item) on emu and on QEMU (-bios), as QEMU's and
    emu's direct boots do. The control's segment ends below the checked range, so nothing
    zeroes it and the guest sees its own ones."""
    kernel = tmp_path / "bss.elf"
    kernel.write_bytes(_elf(183, [(0x1000, 0x40200000, _VIRT_BSS_CHECK, memsz)], 0x40200000))
    args = [*MACHINES["virt"][2], "-display", "none", "-serial", "stdio", "-kernel", str(kernel)]
    for result in (run_emu(args), run_emu([*args, "--direct-boot"]), run_qemu("virt", args),
                   run_qemu("virt", [*args, "-bios", str(FLASH["virt"])])):
        assert (result.stdout, result.returncode) == (output, 0), result.stderr


def test_virt_firmware_zeroes_a_large_bss_without_dma_too(tmp_path: Path) -> None:
    """Without the DMA interface the firmware stores the zeros itself (word stores)."""
    kernel = tmp_path / "bss.elf"
    kernel.write_bytes(_elf(183, [(0x1000, 0x40200000, _VIRT_BSS_CHECK, 0x1200000)], 0x40200000))
    args = [*MACHINES["virt"][2], "-display", "none", "-serial", "stdio", "-kernel", str(kernel),
            "-global", "fw_cfg_mem.dma_enabled=off"]
    for result in (run_emu(args), run_qemu("virt", [*args, "-bios", str(FLASH["virt"])])):
        assert (result.stdout, result.returncode) == (b"00\n", 0), result.stderr
