"""The fwcfg guest image talks to the fw_cfg device of emu and of QEMU 7.2: every line that does
not depend on the machine's own file list must be identical."""

from __future__ import annotations

import pytest
from conftest import boot_args, run_emu, run_qemu


def _lines(out: bytes) -> tuple[list[bytes], list[bytes]]:
    lines = out.splitlines()
    return [x for x in lines if not x.startswith(b"dir ")], [x for x in lines if
                                                                x.startswith(b"dir ")]


@pytest.mark.parametrize("vmcoreinfo", [False, True], ids=["plain", "vmcoreinfo"])
def test_fwcfg_guest_matches_qemu(machine: str, vmcoreinfo: bool) -> None:
    args = boot_args(machine, "fwcfg", *(["-device", "vmcoreinfo"] if vmcoreinfo else []))
    ours, qemu = run_emu(args), run_qemu(machine, args)
    assert qemu.stdout.endswith(b"fwcfg: done\n")
    ours_lines, ours_dir = _lines(ours.stdout)
    qemu_lines, _ = _lines(qemu.stdout)
    assert ours_lines == qemu_lines
    assert ours.returncode == qemu.returncode
    assert (b"dma writable file: found" in ours_lines) == vmcoreinfo
    names = [x.split(b"name=")[1] for x in ours_dir if b"name=" in x]
    assert names == sorted(names) and b"etc/boot-fail-wait" in names


def test_directory_lists_user_files_and_the_pc_memory_map(tmp_path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 5)
    args = boot_args("pc", "fwcfg", "-fw_cfg", f"name=opt/blob,file={blob}",
                     "-fw_cfg", "opt/greeting,string=hi there")
    args[args.index("128M")] = "4G"
    result = run_emu(args)
    _, listing = _lines(result.stdout)
    text = b"\n".join(listing)
    assert b"size=1280 name=opt/blob" in text
    assert b"size=8 name=opt/greeting" in text  # no NUL added, as QEMU
    # qemu64's reserved HyperTransport range, then RAM below 3 GiB and from 4 GiB
    assert b"size=60 name=etc/e820" in text
    # with QEMU's bootorder and bios-geometry, its ACPI tables, RSDP and loader script, and
    # the PIIX4 PM's sleep states
    assert listing[0] == b"dir count=10"
    for name in (b"etc/acpi/tables", b"etc/acpi/rsdp", b"etc/table-loader",
                 b"etc/system-states"):
        assert b"name=" + name in text


def test_without_dma_the_device_says_so() -> None:
    args = boot_args("pc", "fwcfg", "-global", "fw_cfg_io.dma_enabled=off")
    ours, qemu = run_emu(args), run_qemu("pc", args)
    assert b"id: 0x00000001" in ours.stdout
    assert _lines(ours.stdout)[0][:3] == _lines(qemu.stdout)[0][:3]


def test_trace_shows_the_guest_talking_to_fw_cfg() -> None:
    result = run_emu(boot_args("virt", "fwcfg", "-trace", "fw_cfg_*"))
    trace = result.stderr.decode()
    assert "fw_cfg_select key=0x19" in trace
    assert "fw_cfg_dma " in trace and "op=read" in trace and "result=error" in trace
