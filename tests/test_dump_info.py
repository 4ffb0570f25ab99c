"""``emu dump-info`` on the cores emu and QEMU write, and on damaged ones.

The seed cores are real dumps, kept small with dump-guest-memory's begin/length: emu's pc and
virt, QEMU's pc stopped at reset (an EM_386 core: its CPU is in real mode), QEMU's virt with
``-cpu max`` (an SVE note) and qemu-system-arm's virt (ELFCLASS32, EM_ARM). Registers that
dump-info decodes are checked against QEMU's own ``info registers`` for the same stopped CPU.
A hypothesis test damages the seeds (header fields, truncation, random bytes) and checks that
dump-info answers as documented: a description (status 0), a description and one line per
problem (status 2), or one line saying why the file is unreadable (status 1); never an
internal error.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import MACHINES, ROOT, boot_args, emu_cmd, image, run_emu
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_dump_notes import qmp_dump

from emu import cli

SMALL = {"pc": {"begin": 0x100000, "length": 0x10000},
         "virt": {"begin": 0x40200000, "length": 0x10000}}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """name -> (core, QEMU's 'info registers' when QEMU wrote it)."""
    d = tmp_path_factory.mktemp("seeds")
    out: dict[str, tuple[Path, str]] = {}
    halt = boot_args("pc", "vmcoreinfo", "-device", "vmcoreinfo", "-append", "halt")
    for binary in ("emu", "qemu"):
        core = d / f"{binary}-pc.core"
        regs = qmp_dump(binary, "pc", halt, core, b"vmcoreinfo: done\n", **SMALL["pc"])
        out[f"{binary}-pc"] = (core, regs)
    virt = boot_args("virt", "vmcoreinfo", "-device", "vmcoreinfo")
    core = d / "emu-virt.core"
    out["emu-virt"] = (core, qmp_dump("emu", "virt", virt, core, b"vmcoreinfo: done\n",
                                      **SMALL["virt"]))
    virt_max = [("max" if a == "cortex-a57" else a) for a in virt]
    core = d / "qemu-virt-max.core"
    out["qemu-virt-max"] = (core, qmp_dump("qemu", "virt", virt_max, core,
                                           b"vmcoreinfo: done\n", **SMALL["virt"]))
    reset = [*MACHINES["pc"][2], "-display", "none", "-S", "-kernel", image("pc", "hello")]
    for binary in ("emu", "qemu"):
        core = d / f"{binary}-pc-reset.core"
        out[f"{binary}-pc-reset"] = (core, qmp_dump(binary, "pc", reset, core, begin=0,
                                                    length=0x10000))
    arm = ["-M", "virt", "-cpu", "cortex-a15", "-m", "64M", "-display", "none", "-S"]
    core = d / "qemu-arm.core"
    out["qemu-arm"] = (core, qmp_dump("qemu", "virt", arm, core, qemu_binary="qemu-system-arm",
                                      begin=0x40000000, length=0x10000))
    return out


def dump_info(path: Path) -> tuple[int, str, str]:
    result = run_emu(["dump-info", str(path)])
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def values(text: str) -> dict[str, int]:
    """name=0x... pairs of dump-info's register lines (the first occurrence of each)."""
    found: dict[str, int] = {}
    for name, value in re.findall(r"\b([a-z0-9_]+)=0x([0-9a-f]+)", text):
        found.setdefault(name, int(value, 16))
    return found


def qemu_registers(text: str) -> dict[str, int]:
    """QEMU's 'info registers' (x86: EAX=00000000 ..., arm: R00=... PSR=...)."""
    return {k.lower(): int(v, 16) for k, v in re.findall(r"\b([A-Z][A-Z0-9]*) *=([0-9a-f]+)\b",
                                                         text)}


def test_an_em_386_core_from_qemu_is_read(seeds: dict[str, tuple[Path, str]]) -> None:
    """QEMU writes EM_386 (in an ELFCLASS64 file, the pc's memory reaching 4 GiB) for a CPU
    outside long mode; here one stopped at reset."""
    core, registers = seeds["qemu-pc-reset"]
    status, out, err = dump_info(core)
    assert (status, err) == (0, "")
    assert out.startswith(f"{core}: ELF64 core dump, i386, ")
    assert "CORE NT_PRSTATUS, 144 bytes: CPU 1, pid 1" in out
    ours, qemu = values(out), qemu_registers(registers)
    for reg in ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eip"):
        assert ours[reg] == qemu[reg], reg
    assert ours["eflags"] == qemu["efl"]
    # QEMU prints segments as "CS =f000 ffff0000 0000ffff 00009b00" (selector base limit flags)
    for name, seg in (("cs", "CS"), ("ss", "SS"), ("ldt", "LDT"), ("tr", "TR")):
        m = re.search(rf"^{seg}\s*=([0-9a-f]+) ([0-9a-f]+) ([0-9a-f]+) ([0-9a-f]+)", registers,
                      re.MULTILINE)
        assert m, seg
        line = re.search(rf"^    {name}:\s+(.*)$", out, re.MULTILINE)
        assert line, name
        assert values(line.group(1)) == {"selector": int(m[1], 16), "base": int(m[2], 16),
                                         "limit": int(m[3], 16), "flags": int(m[4], 16)}
    for seg in ("GDT", "IDT"):
        m = re.search(rf"^{seg}=\s+([0-9a-f]+) ([0-9a-f]+)", registers, re.MULTILINE)
        line = re.search(rf"^    {seg.lower()}:\s+(.*)$", out, re.MULTILINE)
        assert m and line, seg
        shown = values(line.group(1))
        assert (shown["base"], shown["limit"]) == (int(m[1], 16), int(m[2], 16))
    assert ours["cr0"] == qemu["cr0"]


def test_emu_and_qemu_cores_of_a_cpu_at_reset_read_alike(seeds) -> None:
    """Both EM_386: the same header line, notes and memory ranges (the registers differ where
    emu's reset state does: tests/test_dump_notes.py)."""
    ours, qemu = (dump_info(seeds[f"{b}-pc-reset"][0]) for b in ("emu", "qemu"))
    assert ours[0] == qemu[0] == 0
    for out in (ours[1], qemu[1]):
        assert ", i386, " in out.splitlines()[0]
        assert re.findall(r"^  \S.*", out, re.MULTILINE)[:2] == [
            "  CORE NT_PRSTATUS, 144 bytes: CPU 1, pid 1", "  QEMU CPU state, version 1, size 440"]
        assert "  0x0000000000000000-0x000000000000ffff      64 KiB  vaddr 0x0" in out
    assert values(ours[1])["eip"] == 0xFFFFFFF0 and values(qemu[1])["eip"] == 0xFFF0


def test_an_elf32_arm_core_from_qemu_is_read(seeds: dict[str, tuple[Path, str]]) -> None:
    core, registers = seeds["qemu-arm"]
    status, out, err = dump_info(core)
    assert (status, err) == (0, "")
    assert out.startswith(f"{core}: ELF32 core dump, arm, 2 program headers")
    assert "CORE NT_PRSTATUS, 148 bytes: CPU 1, pid 1" in out and "LINUX NT_ARM_VFP" in out
    ours, qemu = values(out), qemu_registers(registers)
    for i in range(13):
        assert ours[f"r{i}"] == qemu[f"r{i:02d}"]
    assert (ours["sp"], ours["lr"], ours["pc"]) == (qemu["r13"], qemu["r14"], qemu["r15"])
    assert ours["cpsr"] == qemu["psr"]
    assert "  0x0000000040000000-0x000000004000ffff      64 KiB" in out


def test_the_sve_note_and_x86_64_registers_match_qemu(
        seeds: dict[str, tuple[Path, str]]) -> None:
    status, out, err = dump_info(seeds["qemu-virt-max"][0])
    assert (status, err) == (0, "")
    # QEMU 7.2's -cpu max: SVE at EL1 with ZCR_EL1 at reset (16-byte vectors), 2048-bit max
    assert "LINUX NT_ARM_SVE, 592 bytes: vector length 16 bytes (max 256), flags 0x1" in out
    core, registers = seeds["qemu-pc"]
    status, out, err = dump_info(core)
    assert (status, err) == (0, "")
    ours, qemu = values(out), qemu_registers(registers)
    for reg in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "rip", "r8", "r15"):
        assert ours[reg] == qemu[reg], reg
    assert ours["rflags"] == qemu["rfl"]
    assert "OSRELEASE=6.1.0-emu-test" in out and "phys_base: 0x0" in out


def test_help_is_usage_on_stdout_and_status_0() -> None:
    for flag in ("--help", "-h"):
        result = run_emu(["dump-info", flag])
        assert result.returncode == 0 and result.stderr == b""
        assert result.stdout.decode().startswith("usage: emu dump-info FILE\n")
        assert "Exit status: 0" in result.stdout.decode()
    for bad in ([], ["-x"], ["a", "b"]):
        result = run_emu(["dump-info", *bad])
        assert result.returncode == 1 and result.stdout == b""
        assert result.stderr.decode() == ("emu: usage: emu dump-info FILE "
                                          "(emu dump-info --help for more)\n")


def test_files_that_are_not_dumps_are_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no writer: dump-info must not wait for one
    empty = _write(tmp_path, b"", "empty")
    elf = _write(tmp_path, b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x02\x00", "exec")
    cases = {
        tmp_path / "missing": "No such file or directory",
        tmp_path: "Is a directory",
        fifo: "not a regular file (dump-info reads a core dump from a file)",
        empty: "not an ELF file",
        elf: "truncated ELF header (18 bytes)",
    }
    for path, reason in cases.items():
        status, out, err = dump_info(path)
        assert (status, out, err) == (1, "", f"emu: dump-info: {path}: {reason}\n")
    exe = _write(tmp_path, Path(__file__).parent.parent.joinpath(
        "guest_images/x86_64/hello.elf").read_bytes(), "hello.elf")
    assert dump_info(exe) == (1, "", f"emu: dump-info: {exe}: not a core dump (ELF type "
                                     "ET_EXEC)\n")


def _write(tmp_path: Path, data: bytes | bytearray, name: str = "damaged.core") -> Path:
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def test_phoff_past_the_file_is_one_line(seeds, tmp_path: Path) -> None:
    data = bytearray(seeds["emu-pc"][0].read_bytes())
    struct.pack_into("<Q", data, 32, 0xFFFFFFFFFFFF)  # e_phoff
    status, out, err = dump_info(_write(tmp_path, data))
    assert status == 1 and out == ""
    assert err == (f"emu: dump-info: {tmp_path / 'damaged.core'}: the program header table "
                   f"(2 entries at e_phoff 0xffffffffffff) runs past the end of the file "
                   f"({len(data)} bytes)\n")


def test_pn_xnum_with_a_bad_section_header_offset_is_one_line(seeds, tmp_path: Path) -> None:
    data = bytearray(seeds["qemu-pc"][0].read_bytes())  # QEMU writes section headers
    struct.pack_into("<H", data, 56, 0xFFFF)  # e_phnum = PN_XNUM
    struct.pack_into("<Q", data, 40, 0x7FFFFFFF0)  # e_shoff
    status, out, err = dump_info(_write(tmp_path, data))
    assert status == 1 and out == "" and err.count("\n") == 1
    assert "e_phnum is PN_XNUM (0xffff)" in err and "e_shoff 0x7fffffff0 is past the end" in err


def test_truncated_dump_is_described_with_a_warning(seeds, tmp_path: Path) -> None:
    data = seeds["emu-virt"][0].read_bytes()
    path = _write(tmp_path, data[: len(data) - 0x8000])
    status, out, err = dump_info(path)
    assert status == 2
    assert "VMCOREINFO" in out and "(truncated: 32 KiB of 64 KiB in the file)" in out
    assert err == (f"emu: dump-info: {path}: truncated: the file has {len(data) - 0x8000} "
                   f"bytes, its memory ranges need {len(data)}; 1 of 1 ranges are incomplete "
                   "(the missing bytes are not in the dump)\n")


def test_a_note_running_past_its_segment_is_reported(seeds, tmp_path: Path) -> None:
    data = bytearray(seeds["emu-pc"][0].read_bytes())
    note_offset = struct.unpack_from("<Q", data, 64 + 8)[0]  # PT_NOTE's p_offset
    qemu_note = data.index(b"QEMU\0", note_offset) - 12
    struct.pack_into("<I", data, qemu_note + 4, 0x10000000)  # its descsz
    status, out, err = dump_info(_write(tmp_path, data))
    assert status == 2
    assert "CORE NT_PRSTATUS, 336 bytes" in out and "QEMU CPU state" not in out
    assert err.count("\n") == 1
    assert "note 2 (QEMU type 0): its descriptor (descsz 268435456) runs past the end of " \
           "the PT_NOTE segment" in err


def test_control_characters_from_the_file_stay_on_one_line(seeds, tmp_path: Path) -> None:
    data = bytearray(seeds["emu-pc"][0].read_bytes())
    qemu_note = data.index(b"QEMU\0") - 12
    data[qemu_note + 12 : qemu_note + 16] = b"Q\nE\x1b"
    struct.pack_into("<I", data, qemu_note + 4, 0x10000000)
    status, out, err = dump_info(_write(tmp_path, data))
    assert status == 2 and "\x1b" not in out + err
    assert err.count("\n") == 1 and "note 2 (Q\\nE\\x1b type 0): its descriptor" in err


def test_a_reader_that_goes_away_is_not_an_error(tmp_path: Path) -> None:
    from emu.dump.elf import EM_X86_64, MemoryRange, write_elf_core

    path = tmp_path / "many.core"
    write_elf_core(str(path), EM_X86_64, b"", [MemoryRange(i * 0x1000, memoryview(bytes(16)))
                                               for i in range(70000)])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([*emu_cmd(), "dump-info", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout.readline().startswith(str(path).encode())  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""  # type: ignore[union-attr]


def test_a_cut_prstatus_is_reported_not_decoded(seeds, tmp_path: Path) -> None:
    data = bytearray(seeds["emu-pc"][0].read_bytes())
    note_offset = struct.unpack_from("<Q", data, 64 + 8)[0]
    struct.pack_into("<I", data, note_offset + 4, 100)  # NT_PRSTATUS descsz 336 -> 100
    status, out, err = dump_info(_write(tmp_path, data))
    assert status == 2 and "  CORE NT_PRSTATUS, 100 bytes: CPU 1\n" in out
    assert "CPU 1's NT_PRSTATUS has 100 bytes, not the 336 of x86_64's struct elf_prstatus" \
        in err


def test_pn_xnum_core_is_read(tmp_path: Path) -> None:
    from emu.dump.elf import EM_X86_64, MemoryRange, write_elf_core

    buf = memoryview(bytes(4096))
    path = tmp_path / "many.core"
    write_elf_core(str(path), EM_X86_64, b"", [MemoryRange(i * 0x1000, buf[:16])
                                               for i in range(70000)])
    status, out, err = dump_info(path)
    assert (status, err) == (0, "")
    assert "70001 program headers" in out and "in 70000 ranges" in out


SEED_NAMES = ["emu-pc", "emu-virt", "emu-pc-reset", "qemu-pc", "qemu-pc-reset",
              "qemu-virt-max", "qemu-arm"]
# e_phoff, e_shoff, e_phentsize, e_phnum, e_shentsize, e_shnum (ELF64 offsets; ELF32's differ)
HEADER_FIELDS_64 = [(32, "<Q"), (40, "<Q"), (54, "<H"), (56, "<H"), (58, "<H"), (60, "<H"),
                    (16, "<H"), (18, "<H"), (4, "<B"), (5, "<B")]
HEADER_FIELDS_32 = [(28, "<I"), (32, "<I"), (42, "<H"), (44, "<H"), (46, "<H"), (48, "<H"),
                    (16, "<H"), (18, "<H"), (4, "<B"), (5, "<B")]
INTERESTING = [0, 1, 2, 3, 0x7F, 0xFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFF, 2**63, 2**64 - 1]


@st.composite
def damage(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    fields = HEADER_FIELDS_32 if out[4] == 1 else HEADER_FIELDS_64
    for _ in range(draw(st.integers(0, 3))):
        offset, fmt = draw(st.sampled_from(fields))
        bits = struct.calcsize(fmt) * 8
        value = draw(st.sampled_from(INTERESTING) | st.integers(0, 2**bits - 1))
        struct.pack_into(fmt, out, offset, value & (2**bits - 1))
    header_end = min(len(out), 0x1000)  # the headers and notes: where damage is interesting
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(0, header_end - 1))
        out[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del out[draw(st.integers(0, len(out))):]
    return bytes(out)


@pytest.mark.parametrize("seed", SEED_NAMES)
def test_damaged_dumps_get_an_answer_never_an_internal_error(
        seed: str, seeds, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through emu's command-line entry point, as a user runs it (in-process for speed)."""
    original = seeds[seed][0].read_bytes()
    path = tmp_path / "fuzz.core"

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(damage(original))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        capsys.readouterr()
        status = cli.main(["dump-info", str(path)])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err and "internal error" not in err
        assert status in (0, 1, 2), (status, err)
        lines = err.splitlines()
        assert all(line.startswith(f"emu: dump-info: {path}: ") for line in lines), err
        if status == 0:
            assert err == "" and out.startswith(f"{path}: ELF")
        elif status == 1:
            assert out == "" and len(lines) == 1
        else:
            assert out.startswith(f"{path}: ELF") and lines

    check()


def test_the_seeds_are_read_whole(seeds) -> None:
    for name in SEED_NAMES:
        status, out, err = dump_info(seeds[name][0])
        assert (status, err) == (0, ""), name
        assert "notes:" in out and "memory:" in out


def test_dump_info_of_a_full_emu_dump_lists_the_bios(tmp_path: Path) -> None:
    core = tmp_path / "full.core"
    assert run_emu(boot_args("pc", "hello", "--dump-on-exit", str(core))).returncode == 1
    status, out, err = dump_info(core)
    assert (status, err) == (0, "")
    assert "0x00000000ffff0000-0x00000000ffffffff      64 KiB  vaddr 0xffff0000" in out
