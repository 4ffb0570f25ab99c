"""The CPU notes of a dump, field by field against QEMU's dump of the same guest.

Both emulators run the same image, are dumped through QMP ``dump-guest-memory`` at the same
point (the guest halted with interrupts off, or the CPU stopped at reset by ``-S``), and every
field of every CPU note is compared by name. The few fields left out are listed with the
reason next to them: none depends on timing (a halted CPU's registers are fixed), they depend
on which firmware ran or on the reset state Unicorn cannot give (firmware/README.md).
"""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import time
from pathlib import Path

import pytest
from conftest import MACHINES, ROOT, boot_args, emu_cmd, image
from elftools.elf.elffile import ELFFile
from qemu.qmp.legacy import QEMUMonitorProtocol
from qemu.qmp.protocol import ConnectError

SEGMENTS = ("cs", "ds", "es", "fs", "gs", "ss", "ldt", "tr", "gdt", "idt")
QEMU_NOTE_REGS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10",
                  "r11", "r12", "r13", "r14", "r15", "rip", "rflags")
# include/uapi/linux/elfcore.h and arch/x86/include/asm/user_{32,64}.h, written out here
# rather than taken from emu.dump.notes
X86_64_PRSTATUS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax",
                   "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
                   "fs_base", "gs_base", "ds", "es", "fs", "gs")
I386_PRSTATUS = ("ebx", "ecx", "edx", "esi", "edi", "ebp", "eax", "ds", "es", "fs", "gs",
                 "orig_eax", "eip", "cs", "eflags", "esp", "ss")
AARCH64_PRSTATUS = (*(f"x{i}" for i in range(31)), "sp", "pc", "pstate")


def qmp_dump(binary: str, machine: str, args: list[str], core: Path, wait_for: bytes = b"",
             qemu_binary: str | None = None, **dump_args: object) -> str:
    """Start emu or QEMU with ``args`` and a QMP socket, wait for ``wait_for`` on the console,
    dump through ``dump-guest-memory`` (with ``dump_args``: begin, length) and quit. Returns
    QEMU's ``info registers`` for the stopped CPU (empty on emu, which has no HMP)."""
    sock = str(core.with_suffix(".qmp"))
    cmd = emu_cmd() if binary == "emu" else [qemu_binary or MACHINES[machine][1]]
    registers = ""
    proc = subprocess.Popen([*cmd, *args, "-qmp", f"unix:{sock},server=on,wait=off"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        out = b""
        while wait_for not in out:
            chunk = proc.stdout.read1(4096)  # type: ignore[union-attr]
            assert chunk, (binary, out, proc.stderr.read())  # type: ignore[union-attr]
            out += chunk
        for _ in range(200):
            qmp = QEMUMonitorProtocol(sock)
            try:
                qmp.connect(negotiate=True)
                break
            except (OSError, EOFError, ConnectError):
                time.sleep(0.05)
        else:
            raise AssertionError(f"{binary}: no QMP socket")
        if binary == "qemu":
            registers = hmp(qmp, "info registers")
            # The console line comes a few instructions before the halt: wait for it (pc's
            # "info registers" says HLT=1), then stop the CPU so that the registers read and
            # the registers dumped are the same. (emu serves the dump at the halt itself.)
            for _ in range(200):
                if not wait_for or machine != "pc" or "HLT=1" in registers:
                    break
                time.sleep(0.05)
                registers = hmp(qmp, "info registers")
            assert qmp.cmd_obj({"execute": "stop"}) == {"return": {}}
            registers = hmp(qmp, "info registers")
        reply = qmp.cmd_obj({"execute": "dump-guest-memory",
                             "arguments": {"paging": False, "protocol": f"file:{core}",
                                           **dump_args}})
        assert reply == {"return": {}}, (binary, reply)
        qmp.cmd_obj({"execute": "quit"})
        with contextlib.suppress(EOFError):  # the emulator may close the socket first
            qmp.close()
        assert proc.wait(timeout=30) == 0
        if binary == "emu":
            assert proc.stderr.read() == b""  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()
    return registers


def hmp(qmp: QEMUMonitorProtocol, command: str) -> str:
    return qmp.cmd_obj({"execute": "human-monitor-command",
                        "arguments": {"command-line": command}})["return"]


def read_notes(path: Path) -> tuple[str, list[tuple[str, int | str, bytes]]]:
    """The ELF machine and the (name, type, descriptor) of each note."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        notes = []
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_NOTE":
                for n in seg.iter_notes():
                    desc = n["n_descdata"]
                    desc = desc.encode("latin-1") if isinstance(desc, str) else bytes(desc)
                    notes.append((n["n_name"], n["n_type"], desc))
        return elf["e_machine"], notes


def note(notes: list[tuple[str, int | str, bytes]], name: str, ntype: int | str) -> bytes:
    found = [d for n, t, d in notes if (n, t) == (name, ntype)]
    assert len(found) == 1, (name, ntype, [(n, t) for n, t, _ in notes])
    return found[0]


def prstatus_fields(desc: bytes, elf_machine: str) -> dict[str, int]:
    if elf_machine == "EM_386":
        assert len(desc) == 144
        fields = dict(zip(I386_PRSTATUS, struct.unpack_from("<17I", desc, 72), strict=True))
        fields["pr_pid"] = struct.unpack_from("<I", desc, 24)[0]
    elif elf_machine == "EM_X86_64":
        assert len(desc) == 336
        fields = dict(zip(X86_64_PRSTATUS, struct.unpack_from("<27Q", desc, 112), strict=True))
        fields["pr_pid"] = struct.unpack_from("<I", desc, 32)[0]
    else:
        assert len(desc) == 392
        fields = dict(zip(AARCH64_PRSTATUS, struct.unpack_from("<34Q", desc, 112), strict=True))
        fields["pr_pid"] = struct.unpack_from("<I", desc, 32)[0]
        fields["pr_fpvalid"] = struct.unpack_from("<I", desc, 384)[0]
    return fields


def qemu_note_fields(desc: bytes) -> dict[str, int]:
    """QEMUCPUState (target/i386/arch_dump.c; QEMU 7.2 ends it with kernel_gs_base)."""
    assert len(desc) == 440
    fields = dict(zip(("version", "size", *QEMU_NOTE_REGS), struct.unpack_from("<II18Q", desc),
                      strict=True))
    for i, seg in enumerate(SEGMENTS):
        values = struct.unpack_from("<IIIIQ", desc, 152 + 24 * i)
        for part, value in zip(("selector", "limit", "flags", "pad", "base"), values,
                               strict=True):
            fields[f"{seg}.{part}"] = value
    for i, value in enumerate(struct.unpack_from("<5Q", desc, 392)):
        fields[f"cr{i}"] = value
    fields["kernel_gs_base"] = struct.unpack_from("<Q", desc, 432)[0]
    return fields


def differences(ours: dict[str, int], qemu: dict[str, int], left_out: dict[str, str]) -> dict:
    assert ours.keys() == qemu.keys()
    return {k: (hex(ours[k]), hex(qemu[k])) for k in ours
            if k not in left_out and ours[k] != qemu[k]}


@pytest.fixture(scope="module")
def halted_pc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The vmcoreinfo image on pc, halted after registering its note, dumped by each."""
    d = tmp_path_factory.mktemp("notes")
    args = boot_args("pc", "vmcoreinfo", "-device", "vmcoreinfo", "-append", "halt")
    cores = {}
    for binary in ("emu", "qemu"):
        cores[binary] = d / f"{binary}.core"
        qmp_dump(binary, "pc", args, cores[binary], wait_for=b"vmcoreinfo: done\n")
    return cores


#: Left out of the halted-guest comparison. Each firmware (emu's, and SeaBIOS with its PVH
#: option ROM on QEMU) passes the kernel its command line at a different address, and the
#: guest halts with a pointer into it in rax; SeaBIOS loads its real-mode IDT (limit 0x3ff)
#: before starting the kernel, emu's firmware loads none, so the IDT keeps its reset value
#: (compared with QEMU's below, at reset).
FIRMWARE_DEPENDENT = {"rax": "address of the command line", "idt.limit": "SeaBIOS's IVT"}


def test_x86_64_notes_match_qemu_field_by_field(halted_pc: dict[str, Path]) -> None:
    (ours_machine, ours), (qemu_machine, qemu) = (read_notes(halted_pc[b])
                                                  for b in ("emu", "qemu"))
    assert ours_machine == qemu_machine == "EM_X86_64"
    assert [(n, t) for n, t, _ in ours] == [(n, t) for n, t, _ in qemu] == [
        ("CORE", "NT_PRSTATUS"), ("QEMU", 0), ("VMCOREINFO", 0)]
    pr_ours = prstatus_fields(note(ours, "CORE", "NT_PRSTATUS"), "EM_X86_64")
    pr_qemu = prstatus_fields(note(qemu, "CORE", "NT_PRSTATUS"), "EM_X86_64")
    assert differences(pr_ours, pr_qemu, FIRMWARE_DEPENDENT) == {}
    assert pr_ours["orig_rax"] == 0 and pr_ours["pr_pid"] == 1
    st_ours = qemu_note_fields(note(ours, "QEMU", 0))
    st_qemu = qemu_note_fields(note(qemu, "QEMU", 0))
    assert differences(st_ours, st_qemu, FIRMWARE_DEPENDENT) == {}
    # what the comparison covers: the system segments as the CPU holds them, not zeros
    assert (st_ours["ldt.limit"], st_ours["ldt.flags"]) == (0xFFFF, 0x8200)
    assert (st_ours["tr.limit"], st_ours["tr.flags"]) == (0xFFFF, 0x8B00)
    assert st_ours["gdt.limit"] > 0 and st_ours["gdt.base"] > 0
    assert st_ours["cs.flags"] & 0x00209A00 == 0x00209A00  # present 64-bit code
    assert st_qemu["idt.limit"] == 0x3FF and st_ours["idt.limit"] == 0xFFFF


#: Left out at reset: QEMU's CPU starts in real mode (CS 0xf000 with base 0xffff0000, IP
#: 0xfff0, 16-bit segments, CR0 0x60000010, EDX the CPUID signature); Unicorn cannot hold that
#: state, so emu's CPU starts at 0xfffffff0 in flat 32-bit protected mode (firmware/README.md).
REAL_MODE = {f"{s}.{p}": "real mode" for s in SEGMENTS[:6] for p in ("selector", "limit",
                                                                     "flags", "base")}
REAL_MODE |= {"rip": "real mode", "cr0": "real mode", "rdx": "CPUID signature",
              "eip": "real mode", "cs": "real mode", "edx": "CPUID signature"}


def test_reset_state_matches_qemu(tmp_path: Path) -> None:
    """A CPU stopped at reset (-S): outside long mode, so QEMU writes an EM_386 core with
    i386 registers; LDTR, TR, GDTR and IDTR hold their reset values."""
    args = [*MACHINES["pc"][2], "-display", "none", "-serial", "stdio", "-S",
            "-kernel", image("pc", "hello")]
    cores = {b: tmp_path / f"{b}.core" for b in ("emu", "qemu")}
    for binary, core in cores.items():
        qmp_dump(binary, "pc", args, core)
    (ours_machine, ours), (qemu_machine, qemu) = (read_notes(cores[b]) for b in ("emu", "qemu"))
    assert ours_machine == qemu_machine == "EM_386"
    assert [(n, t) for n, t, _ in ours] == [(n, t) for n, t, _ in qemu] == [
        ("CORE", "NT_PRSTATUS"), ("QEMU", 0)]
    pr_ours = prstatus_fields(note(ours, "CORE", "NT_PRSTATUS"), "EM_386")
    pr_qemu = prstatus_fields(note(qemu, "CORE", "NT_PRSTATUS"), "EM_386")
    assert differences(pr_ours, pr_qemu, REAL_MODE) == {}
    st_ours = qemu_note_fields(note(ours, "QEMU", 0))
    st_qemu = qemu_note_fields(note(qemu, "QEMU", 0))
    assert differences(st_ours, st_qemu, REAL_MODE) == {}
    assert (st_qemu["idt.limit"], st_qemu["ldt.flags"], st_qemu["tr.flags"]) == (
        0xFFFF, 0x8200, 0x8B00)


@pytest.mark.parametrize("cpu", ["cortex-a57", "max"])
def test_aarch64_notes_match_qemu_byte_for_byte(cpu: str, tmp_path: Path) -> None:
    args = boot_args("virt", "vmcoreinfo", "-device", "vmcoreinfo")
    args[args.index("cortex-a57")] = cpu
    cores = {b: tmp_path / f"{b}.core" for b in ("emu", "qemu")}
    for binary, core in cores.items():
        qmp_dump(binary, "virt", args, core, wait_for=b"vmcoreinfo: done\n")
    (ours_machine, ours), (qemu_machine, qemu) = (read_notes(cores[b]) for b in ("emu", "qemu"))
    assert ours_machine == qemu_machine == "EM_AARCH64"
    assert [(n, t) for n, t, _ in ours] == [(n, t) for n, t, _ in qemu]
    pr_ours = prstatus_fields(note(ours, "CORE", "NT_PRSTATUS"), "EM_AARCH64")
    pr_qemu = prstatus_fields(note(qemu, "CORE", "NT_PRSTATUS"), "EM_AARCH64")
    assert differences(pr_ours, pr_qemu, {}) == {}
    assert pr_ours["pr_fpvalid"] == 1
    for (name, ntype, desc), (_, _, qemu_desc) in zip(ours, qemu, strict=True):
        assert desc == qemu_desc, (name, ntype)
