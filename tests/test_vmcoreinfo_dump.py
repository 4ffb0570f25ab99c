"""The main job: boot the vmcoreinfo image, dump it, and read the dump as a Linux kernel core
with drgn, crash and readelf; the note must be byte-identical to the one QEMU 7.2 dumps."""

from __future__ import annotations

import re
import subprocess
import threading
import time

import drgn
import pytest
from conftest import MACHINES, boot_args, image, qmp_connect, read_until, run_emu
from elftools.elf.elffile import ELFFile

from emu.config import DeviceSpec, MachineConfig
from emu.machine import Machine

RELEASE = b"6.1.0-emu-test"
MARKER = b"emu-vmcoreinfo-marker: guest memory is readable\0"


def _addresses(console: bytes) -> dict[str, int]:
    found = dict(re.findall(rb"vmcoreinfo: (\w+)[^\n]*? at 0x([0-9a-f]+)", console))
    return {k.decode(): int(v, 16) for k, v in found.items()}


def _emu_dump_live(machine: str, path: str, tmp_path) -> bytes:
    """Boot on emu, wait for the guest to halt after registering, dump through the API."""
    console = tmp_path / f"{machine}-console.txt"
    devices = [DeviceSpec("vmcoreinfo", "vmcoreinfo", {})]
    m = Machine(MachineConfig(machine=machine, kernel=image(machine, "vmcoreinfo"),
                              serial=[f"file:{console}"], devices=devices, append="halt",
                              cpu="cortex-a57" if machine == "virt" else None))
    t = threading.Thread(target=m.run)
    t.start()
    deadline = time.monotonic() + 30
    while not m.call_soon(lambda: m.halted).result(timeout=30):
        assert time.monotonic() < deadline, console.read_bytes()
        time.sleep(0.05)
    result = m.call_soon(lambda: m.dump(path)).result(timeout=60)
    assert result.warnings == []
    m.call_soon(lambda: m.quit(0)).result(timeout=10)
    t.join(10)
    m.close()
    return console.read_bytes()


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, bytes]]:
    d = tmp_path_factory.mktemp("vmcore")
    out = {}
    pc = str(d / "pc.core")
    result = run_emu(boot_args("pc", "vmcoreinfo", "-device", "vmcoreinfo",
                               "--dump-on-exit", pc))
    assert result.returncode == 1, result.stderr
    assert result.stderr.decode() == (f"emu: dump saved to {pc} (127.9 MiB, notes: PRSTATUS, "
                                      "QEMU, VMCOREINFO)\n")
    out["pc"] = (pc, result.stdout)
    virt = str(d / "virt.core")
    out["virt"] = (virt, _emu_dump_live("virt", virt, d))
    return out


def _note(path: str, name: str) -> bytes:
    with open(path, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_NOTE":
                for note in seg.iter_notes():
                    if note["n_name"] == name:
                        desc = note["n_descdata"]
                        return desc.encode("latin-1") if isinstance(desc, str) else desc
    raise AssertionError(f"no {name} note in {path}")


def test_drgn_opens_it_as_a_linux_kernel(machine: str, dumps) -> None:
    path, console = dumps[machine]
    prog = drgn.Program()
    prog.set_core_dump(path)
    assert prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL
    assert prog["UTS_RELEASE"].string_() == RELEASE
    marker = _addresses(console)["marker"]
    assert prog.read(marker, len(MARKER), True) == MARKER


def test_crash_reads_the_release(dumps) -> None:
    result = subprocess.run(["crash", "--osrelease", dumps["pc"][0]], capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == RELEASE.decode(), result.stdout + result.stderr


def test_readelf_shows_the_vmcoreinfo_note_last(machine: str, dumps) -> None:
    result = subprocess.run(["readelf", "-n", dumps[machine][0]], capture_output=True,
                            text=True)
    assert result.stderr == ""
    owners = re.findall(r"^\s+(CORE|QEMU|VMCOREINFO)\s", result.stdout, re.MULTILINE)
    assert owners[-1] == "VMCOREINFO" and len(owners) == 3


def test_dump_info_shows_text_and_phys_base(machine: str, dumps) -> None:
    text = run_emu(["dump-info", dumps[machine][0]]).stdout.decode()
    assert "OSRELEASE=6.1.0-emu-test" in text
    expected = "0x0 (from NUMBER(phys_base))" if machine == "pc" else \
        "0x40000000 (from NUMBER(PHYS_OFFSET))"
    assert f"phys_base: {expected}" in text


def _qemu_dump(machine: str, path: str, tmp_path) -> bytes:
    sock = str(tmp_path / f"{machine}.qmp")
    args = [MACHINES[machine][1], *boot_args(machine, "vmcoreinfo", "-device", "vmcoreinfo",
                                             "-append", "halt", "-qmp",
                                             f"unix:{sock},server=on,wait=off")]
    if machine == "virt":
        args.remove("-append"), args.remove("halt")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = read_until(proc, b"vmcoreinfo: done\n")
        qmp = qmp_connect(sock)
        reply = qmp.cmd_obj({"execute": "dump-guest-memory",
                             "arguments": {"paging": False, "protocol": f"file:{path}"}})
        assert reply == {"return": {}}, reply
        qmp.close()
        return out
    finally:
        proc.kill()
        proc.wait()


def test_note_is_byte_identical_to_qemus(machine: str, dumps, tmp_path) -> None:
    qemu_core = str(tmp_path / "qemu.core")
    console = _qemu_dump(machine, qemu_core, tmp_path)
    assert _addresses(console)["registered"] == _addresses(dumps[machine][1])["registered"]
    assert _note(dumps[machine][0], "VMCOREINFO") == _note(qemu_core, "VMCOREINFO")
