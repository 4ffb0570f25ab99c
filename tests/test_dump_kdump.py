"""kdump-compressed dumps (formats kdump-*, kdump-raw-*), judged by the real readers and by
QEMU 7.2's kdump-zlib of the same guest.

The vmcoreinfo image registers a real VMCOREINFO note and halts; emu and QEMU each dump it.
Readers: crash (``--osrelease``, x86_64 only in Debian's build), drgn (libkdumpfile),
makedumpfile (``-R`` reassembles a flattened dump). The files are parsed here with a small
reader of the layout in makedumpfile's diskdump_mod.h, independent of emu's code.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import drgn
import pytest
from conftest import MACHINES, boot_args, image, qmp_connect, read_until, run_emu
from elftools.elf.elffile import ELFFile

from emu.config import DeviceSpec, MachineConfig
from emu.dump.elf import DumpError
from emu.machine import Machine

RELEASE = b"6.1.0-emu-test"
CODECS = ("zlib", "lzo", "snappy", "zstd")
KDUMP_FORMATS = [f"kdump-{c}" for c in CODECS] + [f"kdump-raw-{c}" for c in CODECS]
#: disk_dump_header.status / page descriptor flags (makedumpfile diskdump_mod.h)
FLAGS = {"zlib": 0x1, "lzo": 0x2, "snappy": 0x4, "zstd": 0x20}


# --- an independent reader of the plain kdump layout -----------------------------------

def parse_kdump(path: Path) -> dict:
    """Headers, notes, bitmaps and the stored pages of a plain (random-access) kdump file."""
    d = path.read_bytes()
    assert d[:8] == b"KDUMP   "
    uts = [d[12 + i * 65 : 12 + (i + 1) * 65].rstrip(b"\0") for i in range(6)]
    status, bs, sub, bmb, mapnr, _t, _d, _w, _c, nr_cpus = struct.unpack_from("<10I", d, 424)
    kh = struct.unpack_from("<QIIQQQQQQQQQQQ", d, bs)
    names = ("phys_base", "dump_level", "split", "start_pfn", "end_pfn", "offset_vmcoreinfo",
             "size_vmcoreinfo", "offset_note", "note_size", "offset_eraseinfo",
             "size_eraseinfo", "start_pfn_64", "end_pfn_64", "max_mapnr_64")
    sub_header = dict(zip(names, kh, strict=True))
    blen = bmb * bs // 2
    bm_off = (1 + sub) * bs
    bm1, bm2 = d[bm_off : bm_off + blen], d[bm_off + blen : bm_off + 2 * blen]
    pfns = [i for i in range(blen * 8) if bm1[i >> 3] >> (i & 7) & 1]
    pages = {}
    for i, pfn in enumerate(pfns):
        off, size, flags, page_flags = struct.unpack_from("<QIIQ", d, bm_off + bmb * bs + 24 * i)
        assert page_flags == 0
        pages[pfn] = (flags, d[off : off + size])
    return {"version": struct.unpack_from("<I", d, 8)[0], "uts": uts, "status": status,
            "block_size": bs, "sub_hdr_size": sub, "bitmap_blocks": bmb, "max_mapnr": mapnr,
            "nr_cpus": nr_cpus, **sub_header,
            "notes": d[sub_header["offset_note"] :
                       sub_header["offset_note"] + sub_header["note_size"]],
            "vmcoreinfo": d[sub_header["offset_vmcoreinfo"] :
                            sub_header["offset_vmcoreinfo"] + sub_header["size_vmcoreinfo"]],
            "bitmaps_equal": bm1 == bm2, "pfns": pfns, "pages": pages}


def page_contents(kd: dict, pfn: int) -> bytes:
    """A page's bytes, decompressed with the stored flag's library."""
    flags, data = kd["pages"][pfn]
    if flags == 0:
        return data
    if flags == FLAGS["zlib"]:
        return zlib.decompress(data)
    if flags == FLAGS["lzo"]:
        import lzo

        return lzo.decompress(data, False, kd["block_size"])
    if flags == FLAGS["snappy"]:
        import snappy

        return snappy.decompress(data)
    assert flags == FLAGS["zstd"], flags
    import zstandard

    return zstandard.ZstdDecompressor().decompress(data)


def memory_4k(kd: dict) -> dict[int, bytes]:
    """Guest-physical 4 KiB page address -> contents (QEMU's aarch64 blocks are 64 KiB)."""
    out = {}
    for pfn in kd["pfns"]:
        data = page_contents(kd, pfn)
        for i in range(0, len(data), 4096):
            out[pfn * kd["block_size"] + i] = data[i : i + 4096]
    return out


def notes_list(notes: bytes) -> list[tuple[str, int, bytes]]:
    out, off = [], 0
    while off + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, off)
        name = notes[off + 12 : off + 12 + namesz].rstrip(b"\0").decode()
        desc_off = off + 12 + (namesz + 3) // 4 * 4
        out.append((name, ntype, notes[desc_off : desc_off + descsz]))
        off = desc_off + (descsz + 3) // 4 * 4
    return out


def elf_pages(path: Path) -> set[int]:
    """The 4 KiB pages an ELF dump's PT_LOADs hold."""
    with open(path, "rb") as f:
        return {a for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD"
                for a in range(s["p_paddr"], s["p_paddr"] + s["p_memsz"], 4096)}


def reassemble(flat: Path, out: Path) -> None:
    with open(flat, "rb") as f:
        run = subprocess.run(["makedumpfile", "-R", str(out)], stdin=f, capture_output=True,
                             text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


# --- the dumps ---------------------------------------------------------------------------

def _emu_machine(machine: str, workdir: Path) -> Machine:
    return Machine(MachineConfig(
        machine=machine, kernel=image(machine, "vmcoreinfo"),
        serial=[f"file:{workdir / f'{machine}-console.txt'}"],
        devices=[DeviceSpec("vmcoreinfo", "vmcoreinfo", {})], append="halt",
        cpu="cortex-a57" if machine == "virt" else None))


def _emu_dumps(machine: str, workdir: Path) -> dict[str, Path]:
    """Boot the vmcoreinfo image on emu, wait for it to halt, dump it in every format."""
    m = _emu_machine(machine, workdir)
    t = threading.Thread(target=m.run)
    t.start()
    deadline = time.monotonic() + 60
    while not m.call_soon(lambda: m.halted).result(timeout=30):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    out = {}
    for fmt in ("elf", *KDUMP_FORMATS):
        path = workdir / f"emu-{machine}.{fmt}"
        result = m.call_soon(lambda p=path, f=fmt: m.dump(str(p), fmt=f)).result(timeout=120)
        assert result.warnings == [] and result.size == path.stat().st_size
        out[fmt] = path
    m.call_soon(lambda: m.quit(0)).result(timeout=10)
    t.join(10)
    m.close()
    return out


def _qemu_dumps(machine: str, workdir: Path) -> dict[str, object]:
    """The same boot on QEMU 7.2: its ELF and kdump-zlib dumps, and its answers to the
    dumps it refuses."""
    sock = str(workdir / f"qemu-{machine}.qmp")
    args = [MACHINES[machine][1], *boot_args(machine, "vmcoreinfo", "-device", "vmcoreinfo",
                                             "-qmp", f"unix:{sock},server=on,wait=off")]
    if machine == "pc":
        args += ["-append", "halt"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        read_until(proc, b"vmcoreinfo: done\n")
        qmp = qmp_connect(sock)
        dumps: dict[str, object] = {}
        for fmt in ("elf", "kdump-zlib"):
            path = workdir / f"qemu-{machine}.{fmt}"
            reply = qmp.cmd_obj({"execute": "dump-guest-memory", "arguments": {
                "paging": False, "protocol": f"file:{path}", "format": fmt}})
            assert reply == {"return": {}}, reply
            dumps[fmt] = path
        dumps["refusals"] = [qmp.cmd_obj({"execute": "dump-guest-memory", "arguments": {
            "protocol": f"file:{workdir / 'refused'}", **a}}) for a in REFUSED]
        qmp.close()
        return dumps
    finally:
        proc.kill()
        proc.wait()


#: dump-guest-memory arguments QEMU refuses for a kdump format
REFUSED = [{"paging": True, "format": "kdump-zlib"},
           {"paging": False, "format": "kdump-zlib", "begin": 0, "length": 4096},
           {"paging": False, "format": "kdump-zlib", "begin": 0},
           {"paging": False, "format": "kdump-zlib", "length": 4096}]


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    work = tmp_path_factory.mktemp("kdump")
    return {machine: _emu_dumps(machine, work) for machine in ("pc", "virt")}


@pytest.fixture(scope="module")
def qemu(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    work = tmp_path_factory.mktemp("kdump-qemu")
    return {machine: _qemu_dumps(machine, work) for machine in ("pc", "virt")}


def _plain(dumps: dict[str, Path], fmt: str, tmp_path: Path) -> Path:
    """The plain file of a format: itself, or a flattened one reassembled by makedumpfile."""
    if fmt.startswith("kdump-raw-"):
        return dumps[fmt]
    out = tmp_path / f"{fmt}.plain"
    if not out.exists():
        reassemble(dumps[fmt], out)
    return out


# --- the readers -------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", KDUMP_FORMATS)
def test_crash_reads_the_release(dumps, fmt: str) -> None:
    run = subprocess.run(["crash", "--osrelease", str(dumps["pc"][fmt])], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert set(run.stdout.split()) == {RELEASE.decode()}, run.stdout + run.stderr


@pytest.mark.parametrize("fmt", KDUMP_FORMATS)
def test_drgn_opens_it_as_a_linux_kernel(dumps, machine: str, fmt: str) -> None:
    prog = drgn.Program()
    prog.set_core_dump(str(dumps[machine][fmt]))
    assert prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL
    assert prog["UTS_RELEASE"].string_() == RELEASE


@pytest.mark.parametrize("fmt", KDUMP_FORMATS)
def test_drgn_reads_the_elf_dumps_memory(dumps, fmt: str) -> None:
    """(pc: libkdumpfile's aarch64 support wants VMCOREINFO's NUMBER(VA_BITS), which only a
    real kernel gives: tests/test_dump_kdump_linux.py reads a virt kdump of Linux.)"""
    prog = drgn.Program()
    prog.set_core_dump(str(dumps["pc"][fmt]))
    with open(dumps["pc"]["elf"], "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] != "PT_LOAD":
                continue
            for pos in range(0, seg["p_memsz"], 1 << 20):
                n = min(1 << 20, seg["p_memsz"] - pos)
                f.seek(seg["p_offset"] + pos)
                assert prog.read(seg["p_paddr"] + pos, n, True) == f.read(n), \
                    hex(seg["p_paddr"] + pos)


@pytest.mark.parametrize("codec", CODECS)
def test_makedumpfile_reassembles_the_plain_form_exactly(dumps, machine: str, codec: str,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "reassembled"
    reassemble(dumps[machine][f"kdump-{codec}"], out)
    flat, raw = out.read_bytes(), dumps[machine][f"kdump-raw-{codec}"].read_bytes()
    # (the timestamp is the second each dump was taken: tv_sec at 408)
    assert flat[:408] + flat[416:] == raw[:408] + raw[416:]


@pytest.mark.parametrize("fmt", KDUMP_FORMATS)
def test_layout(dumps, machine: str, fmt: str, tmp_path: Path) -> None:
    kd = parse_kdump(_plain(dumps[machine], fmt, tmp_path))
    codec = fmt.rsplit("-", 1)[1]
    assert kd["version"] == 6 and kd["status"] == FLAGS[codec] and kd["nr_cpus"] == 1
    assert kd["block_size"] == 4096  # the guest's PAGESIZE (QEMU: 64 KiB on aarch64)
    arch = "x86_64" if machine == "pc" else "aarch64"
    # the kernel's own, from init_uts_ns (guest_images/README.md "vmcoreinfo")
    assert kd["uts"] == [b"Linux", b"emu-guest", RELEASE, b"#1", arch.encode(), b"(none)"]
    assert kd["phys_base"] == (0 if machine == "pc" else 0x40000000)
    assert kd["bitmaps_equal"] and kd["dump_level"] == 1
    assert {p * 4096 for p in kd["pfns"]} == elf_pages(dumps[machine]["elf"])
    assert kd["max_mapnr"] == kd["max_mapnr_64"] == max(kd["pfns"]) + 1
    assert b"OSRELEASE=6.1.0-emu-test\n" in kd["vmcoreinfo"]
    with open(dumps[machine]["elf"], "rb") as f:
        note = next(s for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_NOTE")
        assert kd["notes"] == note.data()  # the ELF dump's notes, byte for byte
    stored = {}
    for pfn in kd["pfns"]:
        flags, data = kd["pages"][pfn]
        contents = page_contents(kd, pfn)
        if contents == bytes(4096):
            assert (flags, data) == (0, bytes(4096))  # the shared zero page
            continue
        assert flags in (0, FLAGS[codec])
        assert (flags == 0) == (len(data) == 4096)  # raw only when it does not shrink
        stored[pfn] = contents
    assert 5 < len(stored) < len(kd["pfns"]) // 2


# --- compared with QEMU 7.2 --------------------------------------------------------------

def test_qemus_kdump_zlib_of_the_same_guest(dumps, qemu, machine: str, tmp_path: Path) -> None:
    emu_kd = parse_kdump(_plain(dumps[machine], "kdump-zlib", tmp_path))
    qemu_plain = tmp_path / "qemu.plain"
    reassemble(qemu[machine]["kdump-zlib"], qemu_plain)
    qemu_kd = parse_kdump(qemu_plain)
    # the same headers, but emu's utsname (QEMU fills in only the machine, as "Unknown" on
    # aarch64) and, on aarch64, emu's 4 KiB blocks (QEMU: 64 KiB whatever the guest's pages)
    same = ("version", "status", "nr_cpus", "phys_base", "dump_level", "split", "start_pfn",
            "end_pfn", "size_vmcoreinfo", "note_size", "offset_eraseinfo", "size_eraseinfo",
            "start_pfn_64", "end_pfn_64", "vmcoreinfo", "bitmaps_equal")
    if machine == "pc":
        same += ("block_size", "sub_hdr_size", "offset_vmcoreinfo", "offset_note")
    assert {k: emu_kd[k] for k in same} == {k: qemu_kd[k] for k in same}
    assert qemu_kd["uts"][0] == b"" and emu_kd["uts"][0] == b"Linux"
    # the same notes: kinds and sizes (register values differ), the guest's note exactly
    emu_notes, qemu_notes = notes_list(emu_kd["notes"]), notes_list(qemu_kd["notes"])
    assert [(n, t, len(d)) for n, t, d in emu_notes] == [(n, t, len(d)) for n, t, d in qemu_notes]
    assert emu_notes[-1] == qemu_notes[-1] and emu_notes[-1][0] == "VMCOREINFO"
    # the same dumpable pages: each emulator's kdump holds the pages of its ELF dump; the
    # machines' RAM differs only in QEMU's VGA memory (pc: 16 MiB at 0xfd000000) and its
    # larger BIOS (SeaBIOS: 256 KiB below 4 GiB; emu's firmware: 64 KiB)
    emu_mem, qemu_mem = memory_4k(emu_kd), memory_4k(qemu_kd)
    assert set(emu_mem) == elf_pages(dumps[machine]["elf"])
    assert set(qemu_mem) == elf_pages(qemu[machine]["elf"])
    extra = set(qemu_mem) - set(emu_mem)
    assert set(emu_mem) <= set(qemu_mem)
    assert all(0xFD000000 <= a < 0xFE000000 or 0xFFFC0000 <= a < 0xFFFF0000 for a in extra)
    assert machine == "pc" or not extra
    # the same contents where the guest image's read-only segments are (the firmware, the
    # device tree, the guest's stack and data differ between the machines)
    with open(image(machine, "vmcoreinfo"), "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and not seg["p_flags"] & 2 and seg["p_filesz"]:
                lo = seg["p_paddr"] // 4096 * 4096
                for a in range(lo, seg["p_paddr"] + seg["p_filesz"], 4096):
                    assert emu_mem[a] == qemu_mem[a], hex(a)
    if machine == "pc":
        # another deflate than QEMU's zlib (ISA-L's, emu/dump/codecs.py): other bytes, but
        # the pages whose contents are equal are stored alike, compressed or raw, and zlib
        # reads emu's streams back (page_contents decompresses them)
        same_pages = [p for p in emu_kd["pfns"]
                      if page_contents(emu_kd, p) == page_contents(qemu_kd, p)]
        assert len(same_pages) > 30000
        assert all(emu_kd["pages"][p][0] == qemu_kd["pages"][p][0] for p in same_pages)


def test_drgn_refuses_qemus_kdump_but_not_emus(dumps, qemu) -> None:
    """Why emu's utsname says "Linux": libkdumpfile takes the architecture from it."""
    prog = drgn.Program()
    with pytest.raises(Exception, match="ARCH"):
        prog.set_core_dump(str(qemu["pc"]["kdump-zlib"]))
    drgn.Program().set_core_dump(str(dumps["pc"]["kdump-zlib"]))


def test_refusals_are_qemus(qemu, tmp_path: Path) -> None:
    from conftest import emu_cmd

    sock = str(tmp_path / "emu.qmp")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.Popen([*emu_cmd(), *boot_args("pc", "vmcoreinfo", "-device",
                                                    "vmcoreinfo", "-append", "halt", "-qmp",
                                                    f"unix:{sock},server=on,wait=off")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        read_until(proc, b"vmcoreinfo: done\n")
        qmp = qmp_connect(sock)
        answers = [qmp.cmd_obj({"execute": "dump-guest-memory", "arguments": {
            "protocol": f"file:{tmp_path / 'refused'}", **a}}) for a in REFUSED]
        assert answers == qemu["pc"]["refusals"]
        assert answers[0]["error"]["desc"] == \
            "kdump-compressed format doesn't support paging or filter"
        # the plain form needs a file it can seek in (QEMU 8.2's text)
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        reply = qmp.cmd_obj({"execute": "dump-guest-memory", "arguments": {
            "paging": False, "protocol": f"file:{fifo}", "format": "kdump-raw-zlib"}})
        assert reply["error"]["desc"] == "kdump-raw formats require a seekable file"
        # the flattened form streams into it (a writer of the test's own keeps the FIFO
        # open between the two dumps)
        keep = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        got = bytearray()

        def drain() -> None:
            os.set_blocking(reader, True)
            while not got.endswith(b"\xff" * 16):
                got.extend(os.read(reader, 1 << 16))

        t = threading.Thread(target=drain)
        t.start()
        reply = qmp.cmd_obj({"execute": "dump-guest-memory", "arguments": {
            "paging": False, "protocol": f"file:{fifo}", "format": "kdump-snappy"}})
        assert reply == {"return": {}}
        t.join(30)
        os.close(reader)
        os.close(keep)
        assert got[:12] == b"makedumpfile" and got[-16:] == b"\xff" * 16
        assert qmp.cmd_obj({"execute": "query-dump"})["return"]["status"] == "completed"
        qmp.close()
    finally:
        proc.kill()
        proc.wait()


# --- the other ways to ask for one ---------------------------------------------------------

def test_dump_on_exit_with_dump_format(tmp_path: Path) -> None:
    path = tmp_path / "exit.kdump"
    result = run_emu(boot_args("pc", "vmcoreinfo", "-device", "vmcoreinfo", "--dump-on-exit",
                               str(path), "--dump-format", "kdump-zstd"))
    assert result.returncode == 1, result.stderr
    assert re.fullmatch(rf"emu: dump saved to {path} \([\d.]+ MiB, notes: PRSTATUS, QEMU, "
                        r"VMCOREINFO\)\n", result.stderr.decode())
    assert path.read_bytes()[:12] == b"makedumpfile"
    run = subprocess.run(["crash", "--osrelease", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert set(run.stdout.split()) == {RELEASE.decode()}
    bad = run_emu(["--dump-format", "kdump-gzip", *boot_args("pc", "hello")])
    assert bad.returncode == 1
    assert bad.stderr.decode().startswith("emu: --dump-format kdump-gzip: unknown format")


def test_dump_on_panic_with_dump_format(tmp_path: Path) -> None:
    path = tmp_path / "panic.kdump"
    result = run_emu(boot_args("pc", "panic", "-device", "vmcoreinfo", "-device", "pvpanic",
                               "--dump-on-panic", str(path), "--dump-format",
                               "kdump-raw-snappy"))
    assert result.returncode == 0, result.stderr
    assert b"emu: dump saved to" in result.stderr
    kd = parse_kdump(path)
    assert kd["status"] == FLAGS["snappy"] and b"OSRELEASE=6.1.0-emu-test\n" in kd["vmcoreinfo"]
    prog = drgn.Program()
    prog.set_core_dump(str(path))
    assert prog["UTS_RELEASE"].string_() == RELEASE


def test_machine_dump_refuses_what_qemu_refuses(tmp_path: Path) -> None:
    m = _emu_machine("virt", tmp_path)
    path = str(tmp_path / "x")
    for options in ({"paging": True}, {"begin": 0x40000000, "length": 4096}):
        with pytest.raises(DumpError, match=r"^kdump-compressed format doesn't support paging "
                                            r"or filter$"):
            m.dump(path, fmt="kdump-zlib", **options)
    assert not os.path.exists(path)
    m.close()


def test_incompressible_pages_are_stored_raw_and_parallel_output_is_the_same(
        tmp_path: Path) -> None:
    from emu.dump.codecs import CODECS as EMU_CODECS
    from emu.dump.elf import MemoryRange
    from emu.dump.kdump import KdumpInfo, write_kdump

    noise = os.urandom(64 * 4096)
    text = (b"compressible " * 400)[:4096]
    ram = bytearray(3 << 20)
    ram[0x1000:0x1000 + len(noise)] = noise
    for a in range(0x100000, 0x300000, 0x2000):
        ram[a : a + 4096] = text
    ranges = [MemoryRange(0, memoryview(bytes(ram[:0xA0000]))),
              MemoryRange(0x100000, memoryview(bytes(ram[0x100000:])))]
    info = KdumpInfo("x86_64", "6.1.0", 0)
    files = []
    for workers in (1, 4):
        path = tmp_path / f"w{workers}"
        write_kdump(str(path), EMU_CODECS["zlib"], False, info, b"", ranges, workers=workers)
        files.append(path.read_bytes())
    assert files[0][:408] + files[0][416:] == files[1][:408] + files[1][416:]
    kd = parse_kdump(tmp_path / "w4")
    assert kd["pfns"] == [*range(0xA0), *range(0x100, 0x300)]
    # no kernel to take the utsname from: what libkdumpfile needs, "unknown" for the version
    assert kd["uts"] == [b"Linux", b"", b"6.1.0", b"unknown", b"x86_64", b""]
    for i in range(64):
        assert kd["pages"][1 + i] == (0, noise[i * 4096 : (i + 1) * 4096])
    assert kd["pages"][0x100][0] == FLAGS["zlib"] and page_contents(kd, 0x100) == text
    assert kd["pages"][0x101] == (0, bytes(4096))


# --- emu dump-info --------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["kdump-zlib", "kdump-raw-snappy"])
def test_dump_info_reads_both_forms(dumps, fmt: str) -> None:
    result = run_emu(["dump-info", str(dumps["pc"][fmt])])
    assert result.returncode == 0 and result.stderr == b""
    text = result.stdout.decode()
    form = "flattened" if fmt == "kdump-zlib" else "plain"
    codec = fmt.rsplit("-", 1)[1]
    assert f"kdump-compressed dump, {form}" in text and f", {codec}, block size 4096" in text
    assert "utsname: sysname 'Linux', nodename 'emu-guest', release '6.1.0-emu-test', " \
        "version '#1', machine 'x86_64', domainname '(none)'" in text
    assert "CORE NT_PRSTATUS, 336 bytes: CPU 1, pid 1" in text
    assert "OSRELEASE=6.1.0-emu-test" in text
    assert "  0x0000000000100000-0x0000000007ffffff" not in text  # one range from 0xc0000
    assert "  0x00000000000c0000-0x0000000007ffffff  32576 pages" in text
    assert "phys_base: 0x0 (from NUMBER(phys_base))" in text
    assert re.search(r"^pages: \d+ compressed, \d+ stored raw, \d+ sharing the zero page$",
                     text, re.M)


def test_dump_info_reads_qemus_kdump_and_reports_truncation(qemu, tmp_path: Path) -> None:
    result = run_emu(["dump-info", str(qemu["virt"]["kdump-zlib"])])
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert "block size 65536" in text and "utsname: machine 'Unknown'" in text
    assert "  0x0000000040000000-0x0000000047ffffff  2048 pages" in text
    cut = tmp_path / "cut"
    cut.write_bytes(qemu["pc"]["kdump-zlib"].read_bytes()[:300000])
    result = run_emu(["dump-info", str(cut)])
    assert result.returncode == 2
    assert b"runs past the end of the file: the rest is not read" in result.stderr


def test_a_big_guest_dumps_in_bounded_memory(tmp_path: Path) -> None:
    """A 6 GiB pc guest (its RAM untouched, so reading it maps the zero page) dumps as
    kdump-zlib with the peak RSS of emu's process growing by a few MiB: the pages stream
    through a bounded window of chunks."""
    script = f"""
import resource, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from conftest import image
from emu.config import MachineConfig
from emu.machine import Machine
m = Machine(MachineConfig(machine="pc", ram_size=6 << 30, kernel=image("pc", "hello")))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = m.dump({str(tmp_path / "big.kdump")!r}, fmt="kdump-raw-zlib")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, r.size)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, PYTHONPATH=str(
                             Path(__file__).resolve().parent.parent)))
    assert run.returncode == 0, run.stderr
    growth_kib, size = map(int, run.stdout.split())
    assert growth_kib < 64 << 10  # KiB
    kd = parse_kdump(tmp_path / "big.kdump")
    assert len(kd["pfns"]) * 4096 > (6 << 30) - (1 << 20) and size == (tmp_path /
                                                                       "big.kdump").stat().st_size


@pytest.mark.parametrize(("offset", "value", "status", "message"), [
    (428, 0, 1, "block size 0 is not a power of two"),  # block_size
    (428, 3, 1, "block size 3 is not a power of two"),
    (432, 0xFFFFFF, 2, "the bitmaps"),  # sub_hdr_size: the bitmaps far past the end
    (436, 0xFFFFFFF0, 2, "the bitmaps"),  # bitmap_blocks
    (4096 + 32, 1 << 50, 2, "VMCOREINFO"),  # offset_vmcoreinfo
    (4096 + 48, 1 << 60, 2, "the notes"),  # offset_note
    (4096 + 56, 1 << 40, 2, "the notes"),  # note_size
    (None, None, 2, "the page descriptors end"),  # cut in the descriptors
])
def test_dump_info_on_damaged_kdump_files(dumps, tmp_path: Path, offset, value, status,
                                          message) -> None:
    data = bytearray(dumps["pc"]["kdump-raw-zlib"].read_bytes())
    if offset is None:
        kd = parse_kdump(dumps["pc"]["kdump-raw-zlib"])
        data = data[: (1 + kd["sub_hdr_size"] + kd["bitmap_blocks"]) * 4096 + 100]
    else:
        size = 8 if offset >= 4096 else 4
        data[offset : offset + size] = value.to_bytes(size, "little")
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(data))
    result = run_emu(["dump-info", str(bad)])
    err = result.stderr.decode()
    assert result.returncode == status, err
    assert message in err and "Traceback" not in err
    assert all(line.startswith(f"emu: dump-info: {bad}: ") for line in err.splitlines())
