"""kdump-compressed dumps of Linux 6.1 (the test kernels of tools/linux/build.py), after its
/init crashes it through /proc/sysrq-trigger: emu dumps the same moment as ELF and as
kdump, and the readers give the same answers for both:

* drgn (both machines): the kernel's utsname, the crashed thread's stack, the task list, and
  the physical memory, page for page (libkdumpfile needs the VMCOREINFO of a real kernel on
  aarch64: ``NUMBER(VA_BITS)``);
* crash with the vmlinux (x86_64): ``sys``, ``log``, ``bt``, ``ps`` on emu's kdump-zlib as
  on emu's ELF dump and on QEMU 7.2's kdump-zlib of the same boot;
* paging dumps: gdb with the vmlinux reads the kernel's variables by virtual address (both
  machines), and the x86_64 mappings of the kernel (direct map, kernel image, fixmap) are
  QEMU's, QEMU's addresses made canonical (docs/devel/dumps.md);
* ``makedumpfile --dump-dmesg``: the kernel log from the kdump, x86_64 (Debian's
  makedumpfile 1.7.2 reads no arm64 dump on an x86_64 host and has neither snappy nor zstd:
  the flattened kdump-zlib reassembled with ``makedumpfile -R``, and kdump-raw-lzo).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import drgn
import pytest
from drgn.helpers.linux.pid import for_each_task
from elftools.elf.elffile import ELFFile
from linux_boot import BOOTS, boot_to_panic, vmlinux
from test_linux_dump import _crash, _crash_answers

FORMATS = ("elf", "kdump-zlib", "kdump-raw-lzo", "kdump-raw-zstd")


def _boot_and_dump(emulator: str, machine: str, workdir: Path,
                   formats: tuple[str, ...]) -> dict[str, Path]:
    """Boot to the sysrq panic, stop the CPU and dump in each format through QMP."""
    return boot_to_panic(emulator, machine, workdir, formats=formats).dumps


@pytest.fixture(scope="module")
def linux_dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict]:
    work = tmp_path_factory.mktemp("linux-kdump")
    out = {("emu", m): _boot_and_dump("emu", m, work, (*FORMATS, "paging")) for m in BOOTS}
    out["qemu", "pc"] = _boot_and_dump("qemu", "pc", work, ("kdump-zlib", "paging"))
    return out


def _arch(machine: str) -> str:
    return BOOTS[machine][0]


def _drgn(path: Path, machine: str) -> dict[str, object]:
    prog = drgn.Program()
    prog.set_core_dump(str(path))
    prog.load_debug_info([vmlinux(_arch(machine))])
    frames = [frame.name for frame in prog.crashed_thread().stack_trace()]
    return {
        "release": prog["init_uts_ns"].name.release.string_().decode(),
        # the kernel's frames: below them, drgn goes on into user space through
        # libkdumpfile's page-table walks of a kdump file, not through an ELF core's PT_LOADs
        "stack": [f for f in frames[frames.index("sysrq_handle_crash"):]
                  if not f.startswith("0x")],
        "tasks": sorted(t.comm.string_().decode() for t in for_each_task(prog)),
    }


@pytest.mark.parametrize("machine", sorted(BOOTS))
@pytest.mark.parametrize("fmt", FORMATS[1:])
def test_drgn_reads_the_kdump_as_the_elf_dump(linux_dumps, machine: str, fmt: str) -> None:
    dumps = linux_dumps["emu", machine]
    elf = _drgn(dumps["elf"], machine)
    assert elf["release"].startswith("6.1.") and elf["stack"][0] == "sysrq_handle_crash"
    assert _drgn(dumps[fmt], machine) == elf
    # the physical memory, every 16th page of it (all of it would take minutes in Python)
    prog = drgn.Program()
    prog.set_core_dump(str(dumps[fmt]))
    with open(dumps["elf"], "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] != "PT_LOAD":
                continue
            for pos in range(0, seg["p_memsz"], 16 * 4096):
                f.seek(seg["p_offset"] + pos)
                assert prog.read(seg["p_paddr"] + pos, 4096, True) == f.read(4096), \
                    hex(seg["p_paddr"] + pos)


@pytest.mark.parametrize("machine", sorted(BOOTS))
def test_the_kdump_header_has_the_kernels_utsname(linux_dumps, machine: str) -> None:
    """As makedumpfile's: the kernel's init_uts_ns (read here by drgn from the ELF dump)."""
    prog = drgn.Program()
    prog.set_core_dump(str(linux_dumps["emu", machine]["elf"]))
    prog.load_debug_info([vmlinux(_arch(machine))])
    name = prog["init_uts_ns"].name
    kernel = [getattr(name, f).string_() for f in ("sysname", "nodename", "release", "version",
                                                   "machine", "domainname")]
    assert kernel[0] == b"Linux" and kernel[3].startswith(b"#")
    head = linux_dumps["emu", machine]["kdump-raw-lzo"].read_bytes()[:464]
    assert [head[12 + i * 65 : 12 + (i + 1) * 65].rstrip(b"\0") for i in range(6)] == kernel


def test_crash_reads_emus_kdump_as_its_elf_dump_and_as_qemus_kdump(linux_dumps) -> None:
    commands = ["sys", "log", "bt", "ps"]
    emu = linux_dumps["emu", "pc"]
    elf = _crash_answers(_crash(vmlinux("x86_64"), emu["elf"], commands))
    kdump = _crash_answers(_crash(vmlinux("x86_64"), emu["kdump-zlib"], commands))
    qemu = _crash_answers(_crash(vmlinux("x86_64"), linux_dumps["qemu", "pc"]["kdump-zlib"],
                                 commands))
    assert elf["panic"] == '"Kernel panic - not syncing: sysrq triggered crash"'
    assert elf["log"] and "init" in elf["ps"]
    assert kdump == elf
    assert qemu == kdump


def test_makedumpfile_prints_the_kernel_log(linux_dumps, tmp_path: Path) -> None:
    plain = tmp_path / "kdump-zlib.plain"
    with open(linux_dumps["emu", "pc"]["kdump-zlib"], "rb") as f:
        assert subprocess.run(["makedumpfile", "-R", str(plain)], stdin=f, capture_output=True,
                              timeout=120).returncode == 0
    for dump in (plain, linux_dumps["emu", "pc"]["kdump-raw-lzo"]):
        out = tmp_path / f"dmesg-{dump.name}"
        run = subprocess.run(["makedumpfile", "--dump-dmesg", str(dump), str(out)],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        log = out.read_text(errors="replace")
        assert "sysrq: Trigger a crash" in log and "Linux version 6.1." in log


GDB = {"pc": "gdb", "virt": "gdb-multiarch"}


@pytest.mark.parametrize("machine", sorted(BOOTS))
def test_gdb_reads_kernel_variables_from_the_paging_dump(linux_dumps, machine: str) -> None:
    dumps = linux_dumps["emu", machine]
    prog = drgn.Program()
    prog.set_core_dump(str(dumps["elf"]))
    prog.load_debug_info([vmlinux(_arch(machine))])
    release = prog["init_uts_ns"].name.release.string_().decode()
    jiffies = prog["jiffies_64"].value_()
    run = subprocess.run([GDB[machine], "-batch", vmlinux(_arch(machine)), "-c",
                          str(dumps["paging"]), "-ex", "p init_uts_ns.name.release",
                          "-ex", "p jiffies_64"], capture_output=True, text=True, timeout=120)
    assert f'$1 = "{release}"' in run.stdout, run.stdout + run.stderr
    assert f"$2 = {jiffies}\n" in run.stdout, run.stdout + run.stderr


def _kernel_loads(path: Path, qemu: bool) -> list[tuple[int, int, int, int]]:
    """(vaddr, paddr, filesz, memsz) of the PT_LOADs of the kernel's own mappings: not user
    space, not vmalloc space (their pages are allocated at run time), not QEMU's VGA RAM."""
    out = []
    with open(path, "rb") as f:
        for s in ELFFile(f).iter_segments():
            if s["p_type"] != "PT_LOAD" or 0xFD000000 <= s["p_paddr"] < 0xFE000000:
                continue
            vaddr = s["p_vaddr"]
            if qemu:  # QEMU ORs 0xffff << 48 into every address: canonical
                vaddr &= (1 << 48) - 1
                vaddr |= 0xFFFF << 48 if vaddr >> 47 else 0
            if vaddr >> 47 == 0 or 0xFFFFC90000000000 <= vaddr < 0xFFFFE90000000000:
                continue
            out.append((vaddr, s["p_paddr"], s["p_filesz"], s["p_memsz"]))
    return out


def test_the_kernels_mappings_are_qemus(linux_dumps) -> None:
    emu = _kernel_loads(linux_dumps["emu", "pc"]["paging"], False)
    qemu = _kernel_loads(linux_dumps["qemu", "pc"]["paging"], True)
    assert (0xFFFF888000000000, 0, 0xA0000, 0xA0000) in emu  # the direct map
    assert any(v == 0xFFFFFFFF81000000 for v, *_ in emu)  # the kernel image
    assert emu == qemu
