"""ELF core dumps, checked with pyelftools and the real readers (readelf, gdb, makedumpfile)."""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess

import pytest
from conftest import ROOT, boot_args, image, run_emu
from elftools.elf.elffile import ELFFile

from emu.config import DeviceSpec, MachineConfig
from emu.dump.elf import DumpError
from emu.machine import Machine

GDB = {"pc": "gdb", "virt": "gdb-multiarch"}


def hello_string_address(machine: str) -> tuple[int, bytes]:
    """Guest-physical address of the hello image's greeting, from the ELF file itself."""
    with open(image(machine, "hello"), "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and (i := seg.data().find(b"Hello from")) >= 0:
                return seg["p_paddr"] + i, seg.data()[i : i + 21]
    raise AssertionError("no greeting in the image")


@pytest.fixture(scope="module")
def cores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("cores")
    out = {}
    for machine in ("pc", "virt"):
        path = str(d / f"{machine}.core")
        result = run_emu(boot_args(machine, "hello", "--dump-on-exit", path))
        assert result.returncode == (1 if machine == "pc" else 0), result.stderr
        notes = "PRSTATUS, QEMU" if machine == "pc" else "PRSTATUS, FPREGSET"
        size = "127.9 MiB" if machine == "pc" else "128.0 MiB"  # pc: no VGA window, + BIOS
        assert result.stderr.decode() == f"emu: dump saved to {path} ({size}, notes: {notes})\n"
        out[machine] = path
    return out


def test_layout_follows_the_spec(machine: str, cores: dict[str, str]) -> None:
    with open(cores[machine], "rb") as f:
        elf = ELFFile(f)
        assert elf["e_type"] == "ET_CORE" and elf["e_ehsize"] == 64
        assert elf["e_machine"] == ("EM_X86_64" if machine == "pc" else "EM_AARCH64")
        segs = list(elf.iter_segments())
        assert segs[0]["p_type"] == "PT_NOTE" and segs[0]["p_align"] == 0
        loads = segs[1:]
        # as QEMU, pc dumps its BIOS, the option-ROM space and the BIOS's alias below 1 MiB
        # (read-only RAM), but not the VGA window; virt does not dump its flash
        # (tests/test_pc_legacy_hole.py compares pc's list with QEMU's)
        assert [(s["p_paddr"], s["p_memsz"]) for s in loads] == (
            [(0, 0xA0000), (0xC0000, 0x20000), (0xE0000, 0x10000), (0xF0000, 0x10000),
             (0x100000, (128 << 20) - 0x100000), (0xFFFF0000, 0x10000)] if machine == "pc"
            else [(0x40000000, 128 << 20)])
        for s in loads:
            assert s["p_type"] == "PT_LOAD" and s["p_vaddr"] == s["p_paddr"]
            assert s["p_align"] == 0 and s["p_flags"] == 0
        assert segs[0]["p_offset"] + segs[0]["p_filesz"] <= min(s["p_offset"] for s in loads)
        notes = [(n["n_name"], n["n_type"], len(n["n_descdata"])) for n in segs[0].iter_notes()]
        if machine == "pc":
            assert notes == [("CORE", "NT_PRSTATUS", 336), ("QEMU", 0, 440)]
        else:
            assert notes == [("CORE", "NT_PRSTATUS", 392), ("CORE", "NT_FPREGSET", 528)]
        addr, greeting = hello_string_address(machine)
        load = next(s for s in loads if s["p_paddr"] <= addr < s["p_paddr"] + s["p_memsz"])
        f.seek(load["p_offset"] + addr - load["p_paddr"])
        assert f.read(len(greeting)) == greeting


def test_readelf_lists_the_notes_without_complaint(machine: str, cores: dict[str, str]) -> None:
    result = subprocess.run(["readelf", "-n", "-l", cores[machine]], capture_output=True,
                            text=True)
    assert result.returncode == 0 and result.stderr == ""
    assert "NT_PRSTATUS" in result.stdout


def test_gdb_reads_memory_and_the_pc(machine: str, cores: dict[str, str]) -> None:
    addr, greeting = hello_string_address(machine)
    pc = "rip" if machine == "pc" else "pc"
    result = subprocess.run([GDB[machine], "-batch", "-nx", "-ex", f"x/s 0x{addr:x}", "-ex",
                             f"info registers {pc}", "-c", cores[machine]],
                            capture_output=True, text=True, timeout=60)
    assert f'0x{addr:x}:\t"{greeting.decode()}' in result.stdout
    info = run_emu(["dump-info", cores[machine]]).stdout.decode()
    pc_value = next(w for w in info.split() if w.startswith(f"{pc}="))[len(pc) + 1 :]
    assert re.search(rf"^{pc}\s+{pc_value}\s", result.stdout, re.MULTILINE), result.stdout


def test_makedumpfile_converts_the_x86_dump(cores: dict[str, str], tmp_path) -> None:
    out = tmp_path / "out.kdump"
    result = subprocess.run(["makedumpfile", "-c", "-d", "1", cores["pc"], str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.read_bytes()[:8] == b"KDUMP   "


def test_big_guest_dumps_small_on_disk(tmp_path) -> None:
    path = tmp_path / "big.core"
    args = boot_args("pc", "hello", "--dump-on-exit", str(path))
    args[args.index("128M")] = "6G"
    assert run_emu(args).returncode == 1
    st = path.stat()
    assert st.st_size > (6 << 30) - 0x20000  # all RAM but what the VGA window hides
    assert st.st_blocks * 512 < 64 << 20  # zero pages are holes


def test_dump_failure_leaves_nothing_and_reports_one_line(tmp_path) -> None:
    target = tmp_path / "missing-dir" / "x.core"
    result = run_emu(boot_args("virt", "hello", "--dump-on-exit", str(target)))
    assert result.returncode == 1
    assert result.stderr.decode() == (f"emu: dump failed: Could not open '{target}': "
                                      "No such file or directory\n")
    assert not target.parent.exists()


def test_disk_full_keeps_the_old_file_and_removes_the_temporary(tmp_path) -> None:
    target = tmp_path / "x.core"
    target.write_bytes(b"the previous dump")

    def limit() -> None:  # the file-size limit makes writes fail as a full disk would
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([os.sys.executable, "-m", "emu",
                             *boot_args("pc", "hello", "--dump-on-exit", str(target))],
                            capture_output=True, env=env, preexec_fn=limit, timeout=60)
    assert result.returncode == 1
    assert result.stderr.decode().startswith(f"emu: dump failed: could not write '{target}': ")
    assert target.read_bytes() == b"the previous dump"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.core"]


def _machine(tmp_path, name: str = "hello", vmcoreinfo: bool = False) -> Machine:
    devices = [DeviceSpec("vmcoreinfo", "vmcoreinfo", {})] if vmcoreinfo else []
    return Machine(MachineConfig(machine="virt", kernel=image("virt", name),
                                 serial=[f"file:{tmp_path / 'console.txt'}"], devices=devices))


def test_begin_and_length_select_a_range(tmp_path) -> None:
    m = _machine(tmp_path)
    path = str(tmp_path / "part.core")
    m.dump(path, begin=0x40080000, length=0x10000)
    with open(path, "rb") as f:
        loads = [(s["p_paddr"], s["p_memsz"]) for s in ELFFile(f).iter_segments()
                 if s["p_type"] == "PT_LOAD"]
    assert loads == [(0x40080000, 0x10000)]
    with pytest.raises(DumpError, match="no guest memory"):
        m.dump(path, begin=0x1000, length=0x1000)
    with pytest.raises(DumpError, match="together"):
        m.dump(path, begin=0x40000000)
    m.dump(path, paging=True, begin=0x40080000, length=0x10000)  # the MMU is off: identity
    with open(path, "rb") as f:
        loads = [(s["p_vaddr"], s["p_paddr"], s["p_memsz"]) for s in ELFFile(f).iter_segments()
                 if s["p_type"] == "PT_LOAD"]
    assert loads == [(0x40080000, 0x40080000, 0x10000)]
    with pytest.raises(DumpError, match="unsupported dump format 'win-dmp'"):
        m.dump(path, fmt="win-dmp")
    m.close()


def test_a_failed_dump_leaves_the_guest_running(tmp_path) -> None:
    m = _machine(tmp_path)
    with pytest.raises(DumpError):
        m.dump("/nonexistent/dir/core")
    assert m.run() == 0
    m.close()
    assert (tmp_path / "console.txt").read_bytes().startswith(b"Hello from the guest!")


def test_no_registered_note_is_a_warning_and_still_a_core(tmp_path) -> None:
    path = tmp_path / "nonote.core"
    result = run_emu(boot_args("pc", "hello", "-device", "vmcoreinfo", "--dump-on-exit",
                               str(path)))
    assert result.returncode == 1
    assert result.stderr.decode() == ("emu: warning: vmcoreinfo: the guest has not registered "
                                      "a note; the dump has no VMCOREINFO\n"
                                      f"emu: dump saved to {path} (127.9 MiB, notes: PRSTATUS, "
                                      "QEMU)\n")
    assert subprocess.run(["readelf", "-n", str(path)], capture_output=True).returncode == 0


def test_dump_info_describes_and_refuses(cores: dict[str, str], tmp_path) -> None:
    text = run_emu(["dump-info", cores["pc"]]).stdout.decode()
    assert "ELF64 core dump, x86_64" in text and "CORE NT_PRSTATUS, 336 bytes" in text
    assert "QEMU CPU state, version 1, size 440" in text
    assert "0x0000000000100000-0x0000000007ffffff" in text
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"\x7fELF garbage")
    result = run_emu(["dump-info", str(bogus)])
    assert result.returncode == 1 and result.stderr.count(b"\n") == 1
    assert result.stderr.startswith(b"emu: dump-info: ")


def test_more_than_65534_ranges_use_pn_xnum(tmp_path) -> None:
    from emu.dump.elf import EM_X86_64, MemoryRange, write_elf_core

    buf = memoryview(bytes(range(256)) * 16)
    ranges = [MemoryRange(i * 0x1000, buf[i % 16 * 16 : i % 16 * 16 + 16]) for i in range(70000)]
    path = tmp_path / "many.core"
    write_elf_core(str(path), EM_X86_64, b"", ranges)
    with open(path, "rb") as f:
        elf = ELFFile(f)
        assert elf.header["e_phnum"] == 0xFFFF
        assert elf.get_section(0)["sh_info"] == 70001
        assert elf.num_segments() == 70001
        last = elf.get_segment(70000)
        assert last["p_paddr"] == 69999 * 0x1000 and last.data() == bytes(buf[15 * 16 : 16 * 16])


def test_progress_bar_on_a_terminal(tmp_path) -> None:
    import pty

    leader, follower = pty.openpty()
    core = tmp_path / "tty.core"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([os.sys.executable, "-m", "emu",
                             *boot_args("pc", "hello", "--dump-on-exit", str(core))],
                            stdout=subprocess.PIPE, stderr=follower, env=env, cwd=ROOT)
    os.close(follower)
    assert proc.wait(timeout=60) == 1
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert b"emu: dump [" in seen and b"100% 127/127 MiB" in seen  # 128 MiB, less the VGA window
    assert core.exists()
