"""The human monitor (HMP): the same commands and keys given to emu and to QEMU, compared.

Over QMP (``human-monitor-command``) both run the same guest image; on a terminal (a pty)
both get the same keystrokes. Where an answer differs legitimately, the test says why and
compares everything else.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import MACHINES, ROOT, emu_cmd, image
from elftools.elf.elffile import ELFFile
from qemu.qmp.legacy import QEMUMonitorProtocol
from qemu.qmp.protocol import ConnectError

BINARIES = ("emu", "qemu")
HALT_LINE = b"halt: halting with interrupts off"


def command(binary: str, machine: str) -> list[str]:
    if binary == "emu":
        return emu_cmd()
    path = shutil.which(MACHINES[machine][1])
    assert path, f"{MACHINES[machine][1]} is not installed (tests/run.sh installs it)"
    return [path]


def halt_args(machine: str, *extra: str) -> list[str]:
    """The halt image: it prints one line and halts for good, so its state stands still."""
    args = [*MACHINES[machine][2], "-kernel", image(machine, "halt"), *extra]
    return [*args, "-append", "halt"] if machine == "pc" else args


class Vm:
    """emu or QEMU with a QMP socket, serial output on a pipe."""

    def __init__(self, binary: str, machine: str, tmp: Path, *args: str,
                 wait_for: bytes = b"") -> None:
        self.sock = str(tmp / f"{binary}-{machine}.qmp")
        self.proc = subprocess.Popen(
            [*command(binary, machine), *args, "-display", "none", "-qmp",
             f"unix:{self.sock},server=on,wait=off"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        self.out = b""
        if wait_for:
            deadline = time.monotonic() + 30
            while wait_for not in self.out:
                assert time.monotonic() < deadline, self.out
                chunk = self.proc.stdout.read1(4096)
                assert chunk, (self.out, self.proc.stderr.read())
                self.out += chunk
        for _ in range(400):
            self.qmp = QEMUMonitorProtocol(self.sock)
            try:
                self.qmp.connect(negotiate=True)
                break
            except (OSError, ConnectError):
                time.sleep(0.05)
        else:
            raise AssertionError(f"no QMP socket: {self.proc.stderr.read()!r}")

    def qmp_cmd(self, name: str, **args: object) -> dict:
        return self.qmp.cmd_obj({"execute": name, **({"arguments": args} if args else {})})

    def hmp(self, line: str) -> str:
        reply = self.qmp_cmd("human-monitor-command", **{"command-line": line})
        assert "return" in reply, reply
        return reply["return"]

    def settled_registers(self) -> str:
        """``info registers`` once the guest has reached its final halt (two equal reads)."""
        last = self.hmp("info registers")
        for _ in range(100):
            time.sleep(0.1)
            now = self.hmp("info registers")
            if now == last and ("HLT=1" in now or "PSTATE" in now):
                return now
            last = now
        raise AssertionError(f"the guest did not settle: {last}")

    def close(self) -> int:
        with contextlib.suppress(Exception):
            self.qmp_cmd("quit")
        with contextlib.suppress(Exception):
            self.qmp.close()
        try:
            return self.proc.wait(timeout=10)
        finally:
            self.proc.kill()


@pytest.fixture
def vms(tmp_path: Path, request: pytest.FixtureRequest):
    """A started Vm per binary; the test's parameters choose the machine and options."""
    started: list[Vm] = []

    def start(machine: str, *args: str, wait_for: bytes = b"") -> tuple[Vm, Vm]:
        for binary in BINARIES:
            started.append(Vm(binary, machine, tmp_path, *args, wait_for=wait_for))
        return started[-2], started[-1]

    yield start
    for vm in started:
        vm.close()


# -- commands over QMP ----------------------------------------------------------------------------

#: Answers that must be byte-identical: the halted pc guest's kernel image sits at the same
#: physical addresses in both (0x100000), so memory dumps of it match; errors are QEMU's
#: texts. The order matters: x remembers its last format and size, as in QEMU.
SAME_ANSWERS = [
    "x/10xb 0x100000", "x/24xb 0x100000", "x/5xh 0x100000", "x/3xw 0x100000",
    "x/3xg 0x100000", "x/3ow 0x100000", "x/3uw 0x100000", "x/3dh 0x100000",
    "x/3dg 0x100000", "x/4cb 0x100000", "x/3xb $eip", "x/2xg $pc-1", "x/1xg $sp+8",
    "x/2xb 0x100000+(1+2)*4", "x/2xb 0x100000+ -1+1", "x/2c 0x100000", "x 0x100000",
    "x/4xw 0x100004", "xp/2xg 0x100000", "xp /3uh 0x100000", "xp 0x100000",
    "xp/20x 0x7fffff0", "x/40xb 0x7ffffe0", "xp/1xb 0xffffffffffffffff", "x/0x 0x100000",
    "x/4z 0", "x/-1x 0", "x/4xb zz", "x/4xb 0 5", "x", "x/4xb", "x/1xb 1/0", "x/1xb (1",
    "x/1xb 'a", "x/1xb 0x1ffffffffffffffff", "x/3xg $rsp", "x/1xw $nosuch",
    "stop extra", "info foo", "foo", "help foo", "  foo bar", "  x/4z 0", "   info   foo",
    "info  registers  zz", " help   x", "help info foo", "help x", "help xp", "help stop",
    "help cont", "help quit", "help system_reset", "help dump-guest-memory",
    "help info registers", "help info status", "help info mtree", "help info dump",
    "info registers 1", "info registers extra junk", "info status",
    "dump-guest-memory", "dump-guest-memory -z -l DUMP", "dump-guest-memory DUMP 0x1000",
    "dump-guest-memory -d -p DUMP", "dump-guest-memory -q DUMP", "info dump",
    "dump-guest-memory -z DUMP-z", "dump-guest-memory -z -p DUMP", "info dump",
    "stop", "info status", "cont", "info status",
    # disassembly (capstone, as Debian's QEMU); /i then stays the default format
    "x/3i $pc-1", "x/5i 0x100000", "xp/3i 0x7fffffa", "x/2ih 0x100000", "x/3ib 0x100000",
    "x/6i 0x1001f0", "x 0x100000", "x/2xb 0x100000", "x 0x100000",
]


def test_hmp_answers_match_qemu(vms, tmp_path: Path) -> None:
    emu, qemu = vms("pc", *halt_args("pc", "-serial", "stdio"), wait_for=HALT_LINE)
    emu.settled_registers(), qemu.settled_registers()
    for line in SAME_ANSWERS:
        line = line.replace("DUMP", str(tmp_path / "dump"))
        assert emu.hmp(line) == qemu.hmp(line), line


def test_help_lists_emu_commands_as_qemu_does(vms) -> None:
    """emu's help lists the commands it serves, each line exactly as QEMU's help has it."""
    emu, qemu = vms("pc", *halt_args("pc", "-serial", "none"))
    for line in ("help", "info", "help info", "?"):
        ours = emu.hmp(line)
        theirs = qemu.hmp(line)
        entries = re.split(r"\r\n(?=\S)", ours.rstrip("\r\n"))
        assert len(entries) >= 4, ours
        for entry in entries:
            assert entry + "\r\n" in theirs, entry
    assert "cont|c  -- resume emulation\r\n" in emu.hmp("help")


def test_human_monitor_command_arguments_match_qemu(vms) -> None:
    emu, qemu = vms("pc", *halt_args("pc", "-serial", "none"))
    for args in ({}, {"command-line": 5}, {"command-line": "info status", "cpu-index": 3},
                 {"command-line": "info status", "cpu-index": 0}):
        req = {"execute": "human-monitor-command", "arguments": args}
        assert emu.qmp.cmd_obj(req) == qemu.qmp.cmd_obj(req), args


def _normalise_x86(dump: str) -> str:
    """Fields whose values legitimately differ between emu and QEMU on the same halted
    guest, each replaced by its shape:

    * RBX and RSI: RBX holds the PVH start_info address, which each firmware puts where it
      likes (QEMU's linuxboot option ROM, emu's pc.bin), and RSI is left over from the
      firmware;
    * the IDT limit: SeaBIOS leaves the real-mode 0x3ff, emu's firmware starts protected
      with an empty IDT.
    """
    dump = re.sub(r"RBX=[0-9a-f]{16}", "RBX=<pvh start_info>", dump)
    dump = re.sub(r"RSI=[0-9a-f]{16}", "RSI=<firmware>", dump)
    dump = re.sub(r"IDT=     ([0-9a-f]{16}) [0-9a-f]{8}", r"IDT=     \1 <limit>", dump)
    return dump


def test_info_registers_x86_matches_qemu(vms) -> None:
    emu, qemu = vms("pc", *halt_args("pc", "-serial", "stdio"), wait_for=HALT_LINE)
    ours, theirs = emu.settled_registers(), qemu.settled_registers()
    assert ours.startswith("\r\nCPU#0\r\nRAX=")
    assert "RIP=00000000001001e2 RFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=1" in ours
    assert len(ours.splitlines()) == len(theirs.splitlines())
    assert _normalise_x86(ours) == _normalise_x86(theirs)
    assert emu.hmp("info registers -a") == ours
    assert emu.hmp("info registers 0") == ours


def test_info_registers_x86_32bit_layout_matches_qemu(vms) -> None:
    """Outside long mode both print the 32-bit layout (EAX..., 8 XMM registers). At -S the
    values differ by design: QEMU stands at the real-mode reset vector under SeaBIOS, emu's
    firmware starts in 32-bit protected mode (firmware/README.md), so only the shape is
    compared (hex runs folded, the engine's reset tag word as in _normalise_x86)."""
    emu, qemu = vms("pc", *halt_args("pc", "-serial", "none", "-S"))

    def shape(dump: str) -> str:
        dump = re.sub(r"FTW=[0-9a-f]{2}", "FTW=<reset>", dump)
        # QEMU names a descriptor's type only in protected mode (x86_cpu_dump_seg_cache)
        dump = re.sub(r"^((?:LDT|TR )=[^\r\n]*?) DPL=\d \S+(?=\r?$)", r"\1", dump,
                      flags=re.M)
        return re.sub(r"[0-9a-f]{4,}", "h", dump)

    ours = emu.hmp("info registers")
    assert ours.startswith("\r\nCPU#0\r\nEAX=")
    assert "EIP=fffffff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0\r\n" in ours
    assert "XMM07=" in ours and "XMM08=" not in ours
    assert shape(ours) == shape(qemu.hmp("info registers"))


def test_info_registers_aarch64_matches_qemu(tmp_path: Path) -> None:
    """QEMU boots an ELF -kernel on virt without firmware: emu does too with --direct-boot,
    so both stand at the kernel's entry with the same registers at -S, and after it halted."""
    qemu_vm = Vm("qemu", "virt", tmp_path, *halt_args("virt", "-serial", "none", "-S"))
    emu_vm = Vm("emu", "virt", tmp_path, *halt_args("virt", "-serial", "none", "-S",
                                                    "--direct-boot"))
    try:
        at_entry = emu_vm.hmp("info registers")
        assert at_entry == qemu_vm.hmp("info registers")
        assert " PC=0000000040200000 X00=" in at_entry
        assert "PSTATE=400003c5 -Z-- EL1h    FPU disabled\r\n" in at_entry
        assert emu_vm.hmp("info status") == qemu_vm.hmp("info status") == \
            "VM status: paused (prelaunch)\r\n"
        for vm in (emu_vm, qemu_vm):
            assert vm.hmp("cont") == ""
        halted = emu_vm.settled_registers()
        assert halted == qemu_vm.settled_registers()
        assert "FPCR=00000000 FPSR=00000000\r\nQ00=" in halted
        assert emu_vm.hmp("x/1xw $pc") == qemu_vm.hmp("x/1xw $pc") == \
            'unknown register\r\nTry "help x" for more information\r\n'
        for line in ("xp/4xw 0x40200000", "x/3xg 0x40200000", "x/5dh 0x40200010",
                     "x/8i 0x40200000", "xp/3i 0x47fffff8", "x/2i 0x40200001"):
            assert emu_vm.hmp(line) == qemu_vm.hmp(line), line
    finally:
        emu_vm.close()
        qemu_vm.close()


def test_info_mtree_gicv3_regions_match_qemu(vms) -> None:
    """With ``gic-version=3`` the GIC's regions are QEMU's ``gicv3_dist`` (64 KiB) and
    ``gicv3_redist_region[0]`` (the two 64 KiB frames of CPU 0); QEMU also has its ITS
    (``gicv3_its``), which emu does not model."""
    args = halt_args("virt", "-serial", "null")
    args[args.index("-M") + 1] = "virt,gic-version=3"
    emu, qemu = vms("virt", *args)
    ours, theirs = emu.hmp("info mtree"), qemu.hmp("info mtree")
    gic = [line for line in ours.split("\r\n") if ": gic" in line]
    assert gic == ["    0000000008000000-000000000800ffff (prio 0, i/o): gicv3_dist",
                   "    00000000080a0000-00000000080bffff (prio 0, i/o): gicv3_redist_region[0]"]
    for line in gic:
        assert line + "\r\n" in theirs


@pytest.mark.parametrize("machine", ["pc", "virt"])
def test_info_mtree_regions_match_qemu(vms, machine: str) -> None:
    """Every region emu has appears in QEMU's tree with the same line (address range, kind
    and name), except where emu's machine legitimately differs: its RAM is one block per
    range rather than QEMU's aliases into "pc.ram", its pc firmware ROM is its own
    pc.bin (64 KiB) rather than SeaBIOS (256 KiB), and its tree is flat: the legacy hole's
    regions (vga-lowmem, pc.rom, the isa-bios alias of the ROM's top) stand beside the RAM
    blocks, where QEMU nests them with priority 1 inside its RAM alias, and the PIIX4's power
    management registers, which QEMU nests in a ``piix4-pm`` container."""
    if machine == "pc":  # after the firmware: the PIIX4's PM block is at 0x600 then
        emu, qemu = vms(machine, *halt_args(machine, "-serial", "stdio"), wait_for=b"halt:")
    else:
        emu, qemu = vms(machine, *halt_args(machine, "-serial", "null"))
    ours, theirs = emu.hmp("info mtree"), qemu.hmp("info mtree")
    assert ours.startswith("address-space: cpu-memory-0\r\naddress-space: memory\r\n"
                           "  0000000000000000-ffffffffffffffff (prio 0, i/o): system\r\n")
    assert "address-space: I/O\r\n  0000000000000000-000000000000ffff (prio 0, i/o): io\r\n" \
        in ours
    regions = [line for line in ours.split("\r\n") if line.startswith("    ")]
    expected = {"pc": {"pc.ram", "pc.bios", "serial", "fwcfg", "fwcfg.dma", "isa-debug-exit",
                       "elcr", "ioapic", "apic-msi", "pic", "pit", "pcspk", "rtc", "vga-lowmem",
                       "pc.rom", "isa-bios", "i8042-data", "i8042-cmd", "pci-conf-idx",
                       "pci-conf-data", "apm-io", "acpi-gpe0", "acpi-evt", "acpi-cnt",
                       "acpi-tmr", "hpet"},
                "virt": {"mach-virt.ram", "virt.flash0", "virt.flash1", "pl011", "fwcfg.data",
                         "gic_dist", "gic_cpu", "gicv2m",
                         "fwcfg.ctl", "fwcfg.dma"}}[machine]
    assert {line.rsplit(": ", 1)[1] for line in regions} == expected
    nested = (": vga-lowmem", ": pc.rom")
    # the PIIX4's PM registers: QEMU nests them in its piix4-pm container (at PMBA, 0x600
    # once the firmware set it), one level deeper, with the same priority
    pm_block = (": acpi-evt", ": acpi-cnt", ": acpi-tmr")
    for line in regions:
        if line.endswith(pm_block):
            assert "  " + line + "\r\n" in theirs, line
            continue
        if line.endswith((": pc.ram", ": pc.bios", ": isa-bios")):
            continue
        if line.endswith(nested):  # QEMU: the same range, one level deeper, priority 1
            assert "  " + line.replace("(prio 0,", "(prio 1,") + "\r\n" in theirs, line
            continue
        assert line + "\r\n" in theirs, line
    if machine == "pc":
        assert ("    0000000000000000-000000000009ffff (prio 0, ram): pc.ram\r\n"
                "    00000000000a0000-00000000000bffff (prio 0, i/o): vga-lowmem\r\n") in ours
        assert "    0000000000100000-0000000007ffffff (prio 0, ram): pc.ram\r\n" in ours
        assert re.search(r"    00000000ffff0000-00000000ffffffff \(prio 0, rom\): pc.bios", ours)


# -- dump-guest-memory, stop, cont, system_reset, quit --------------------------------------------


def _loads(path: Path) -> list[tuple[int, int]]:
    with path.open("rb") as f:
        elf = ELFFile(f)
        assert elf["e_type"] == "ET_CORE"
        return [(s["p_paddr"], s["p_memsz"]) for s in elf.iter_segments()
                if s["p_type"] == "PT_LOAD"]


def _segment_bytes(path: Path, paddr: int) -> bytes:
    with path.open("rb") as f:
        elf = ELFFile(f)
        return next(s.data() for s in elf.iter_segments()
                    if s["p_type"] == "PT_LOAD" and s["p_paddr"] == paddr)


def test_dump_guest_memory_over_hmp(vms, tmp_path: Path) -> None:
    """The HMP command takes QEMU's arguments and writes the same range as QEMU."""
    emu, qemu = vms("pc", *halt_args("pc", "-serial", "stdio"), wait_for=HALT_LINE)
    for vm, name in ((emu, "emu"), (qemu, "qemu")):
        assert vm.hmp(f"dump-guest-memory {tmp_path / name}-part 0x100000 0x2000") == ""
        assert vm.hmp(f"dump-guest-memory {tmp_path / name}-all") == ""
        assert vm.hmp("info dump") == "Status: completed\r\n"
    assert _loads(tmp_path / "emu-part") == _loads(tmp_path / "qemu-part") == \
        [(0x100000, 0x2000)]
    assert _segment_bytes(tmp_path / "emu-part", 0x100000) == \
        _segment_bytes(tmp_path / "qemu-part", 0x100000)
    # RAM around the legacy hole (no VGA window in the dump), as QEMU's pc has it
    low_ram = [(0, 0xA0000), (0x100000, (128 << 20) - 0x100000)]
    assert all(r in _loads(tmp_path / "emu-all") for r in low_ram)
    # detached: the reply comes at once, the file is complete once query-dump says so
    assert emu.hmp(f"dump-guest-memory -d {tmp_path / 'emu-detached'}") == ""
    for _ in range(100):
        if emu.qmp_cmd("query-dump")["return"]["status"] == "completed":
            break
        time.sleep(0.05)
    assert all(r in _loads(tmp_path / "emu-detached") for r in low_ram)


@pytest.mark.parametrize("binary", BINARIES)
def test_stop_cont_reset_quit(vms, tmp_path: Path, binary: str) -> None:
    emu, qemu = vms("pc", *halt_args("pc", "-serial", "stdio"), wait_for=HALT_LINE)
    vm = emu if binary == "emu" else qemu
    assert vm.hmp("stop") == ""
    assert vm.qmp_cmd("query-status")["return"]["status"] == "paused"
    assert [e["event"] for e in vm.qmp.get_events(wait=True)] == ["STOP"]
    assert vm.hmp("c") == ""
    assert vm.hmp("info status") == "VM status: running\r\n"
    assert vm.hmp("system_reset") == ""
    deadline = time.monotonic() + 20
    events: list[dict] = []
    while not any(e["event"] == "RESET" for e in events):
        assert time.monotonic() < deadline, events
        events += vm.qmp.get_events(wait=False)
        time.sleep(0.05)
    reset = next(e for e in events if e["event"] == "RESET")
    assert reset["data"] == {"guest": False, "reason": "host-qmp-system-reset"}
    assert vm.hmp("q") == ""
    assert vm.proc.wait(timeout=10) == 0


# -- the terminal: -serial mon:stdio, -monitor stdio, -nographic ----------------------------------


class Term:
    """emu or QEMU on a pseudo-terminal, as a person at a terminal runs it."""

    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the emulator
            os.chdir(ROOT)
            os.environ["PYTHONPATH"] = str(ROOT)
            os.execvp(argv[0], argv)
        self.out = b""
        self.seen = 0  # how much of the output an expect() has consumed

    def expect(self, text: bytes, timeout: float = 30) -> None:
        """Wait until ``text`` comes out (after what earlier calls waited for)."""
        deadline = time.monotonic() + timeout
        while text not in self.out[self.seen:]:
            assert time.monotonic() < deadline, (text, self.out)
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                assert chunk, (text, self.out)
                self.out += chunk
        self.seen = self.out.index(text, self.seen) + len(text)

    def send(self, keys: bytes, then: bytes) -> None:
        os.write(self.fd, keys)
        self.expect(then)

    def wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.wait()


def term_argv(binary: str, machine: str, *extra: str) -> list[str]:
    return [*command(binary, machine), *halt_args(machine, *extra)]


def same_version(transcript: bytes) -> bytes:
    """The banner's version: Debian's QEMU is 7.2 with its stable updates (7.2.22 here), emu
    reports 7.2.0, as its QMP query-version does."""
    return re.sub(rb"QEMU 7\.2\.\d+ monitor", b"QEMU 7.2.x monitor", transcript)


def mux_session(binary: str, machine: str, *options: str) -> bytes:
    """Switch to the monitor, run a command, switch back, ask for help, quit with Ctrl-A x."""
    t = Term(term_argv(binary, machine, "-display", "none", *options))
    try:
        t.expect(HALT_LINE + b"\r\n")
        t.send(b"\x01c", b"(qemu) ")
        t.send(b"info status\r", b"VM status: running\r\r\n(qemu) ")
        t.send(b"\x01c", b"\r\r\n")
        t.send(b"\x01h", b"C-a C-a  sends C-a\r\n\r")
        t.send(b"\x01c", b"(qemu) ")
        t.send(b"\x01x", b"QEMU: Terminated\r\n\r")
    except BaseException:
        t.kill()
        raise
    assert t.wait() == 0
    return same_version(t.out)


@pytest.mark.parametrize("machine", ["pc", "virt"])
def test_serial_mon_stdio_matches_qemu(machine: str) -> None:
    ours = mux_session("emu", machine, "-serial", "mon:stdio")
    assert ours == mux_session("qemu", machine, "-serial", "mon:stdio")
    assert b"QEMU 7.2.x monitor - type 'help' for more information\r\r\n(qemu) i\x1b[K" in ours


def timestamp_session(binary: str) -> bytes:
    """Ctrl-A t: every line on the terminal (serial and monitor alike) gets the time since
    the first stamped line; the times themselves differ from run to run."""
    t = Term(term_argv(binary, "pc", "-display", "none", "-serial", "mon:stdio"))
    try:
        t.expect(HALT_LINE + b"\r\n")
        t.send(b"\x01t\x01c", b"(qemu) ")
        t.send(b"info status\r", b"(qemu) ")
        t.send(b"system_reset\r", b"(qemu) ")
        t.expect(HALT_LINE + b"\r\n")  # the guest starts again and prints its line
        t.send(b"\x01c", b"\r\r\n")
        t.send(b"\x01t\x01c", b"(qemu) ")
        t.send(b"\x01x", b"QEMU: Terminated\r\n\r")
    except BaseException:
        t.kill()
        raise
    assert t.wait() == 0
    return re.sub(rb"\[\d\d:\d\d:\d\d\.\d\d\d\] ", b"[hh:mm:ss.mmm] ",
                  same_version(t.out))


def test_console_timestamps_match_qemu() -> None:
    ours = timestamp_session("emu")
    assert ours == timestamp_session("qemu")
    assert b"\r\n[hh:mm:ss.mmm] VM status: running\r" in ours
    assert b"[hh:mm:ss.mmm] (qemu) " + HALT_LINE + b"\r\n[hh:mm:ss.mmm] \r\r\n" in ours


def test_nographic_muxes_the_monitor_as_qemu_does() -> None:
    """-nographic alone means -serial mon:stdio in QEMU: Ctrl-A c reaches the monitor. (QEMU's
    SeaBIOS prints its banner on the serial port first, so only the monitor part is
    compared.)"""
    transcripts = []
    for binary in BINARIES:
        t = Term(term_argv(binary, "pc", "-nographic"))
        try:
            t.expect(HALT_LINE + b"\r\n")
            start = len(t.out)
            t.send(b"\x01c", b"(qemu) ")
            t.send(b"info status\r", b"(qemu) ")
            t.send(b"\x01x", b"QEMU: Terminated\r\n\r")
        except BaseException:
            t.kill()
            raise
        assert t.wait() == 0
        transcripts.append(same_version(t.out[start:]))
    assert transcripts[0] == transcripts[1]


def monitor_session(binary: str) -> bytes:
    """-monitor stdio: QEMU's line editor, key by key (Ctrl-A is beginning-of-line here)."""
    # QEMU's -kernel puts the PVH kernel in RAM before the CPU starts; emu's firmware loads
    # it once running, so emu boots directly here: the x commands read the kernel at once
    direct = ["--direct-boot"] if binary == "emu" else []
    t = Term(term_argv(binary, "pc", "-display", "none", "-serial", "none", "-monitor",
                       "stdio", *direct))
    try:
        t.expect(b"(qemu) ")
        t.send(b"info statsu\x7f\x7fus\r", b"VM status: running\r\r\n(qemu) ")
        t.send(b"\x1b[A", b"info status\x1b[K")
        t.send(b"\r", b"(qemu) ")
        t.send(b"x/2xb 0x100000" + b"\x1b[D" * 8 + b"\x1b[C\x01\x05\x1bOH\x1bOF\x1b[3~\r",
               b"(qemu) ")
        t.send(b"x/1xb 0x10000\x08\x08\x17\r", b"(qemu) ")
        t.send(b"xx\x01\x04\x1b[1~\x1b[4~\x1b[B\x1b[A\x1b[A\x1b[B\r", b"(qemu) ")
        t.send(b"help sto\r", b"(qemu) ")
        t.send(b"he\tx\r", b"(qemu) ")  # Tab completes a unique command name
        t.send(b"q\r", b"q\x1b[K\r\r\n")
    except BaseException:
        t.kill()
        raise
    assert t.wait() == 0
    return same_version(t.out)


def test_monitor_stdio_line_editing_matches_qemu() -> None:
    ours = monitor_session("emu")
    assert ours == monitor_session("qemu")
    assert b"\r\r\nVM status: running\r\r\n(qemu) " in ours
    assert b"0000000000100000: 0xfa 0xfc\r\r\n" in ours
    assert b"help \x1b[K" in ours and b"x /fmt addr -- virtual memory dump" in ours


def scripted_monitor(binary: str, tmp: Path) -> bytes:
    """-monitor stdio fed by a pipe, as a script drives a dump: commands once the guest is
    up, then quit."""
    console = tmp / f"{binary}.console"
    proc = subprocess.Popen(
        term_argv(binary, "pc", "-display", "none", "-serial", f"file:{console}", "-monitor",
                  "stdio"),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.monotonic() + 30
    while not (console.exists() and HALT_LINE in console.read_bytes()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    core = tmp / "core"  # one name for both: the line editor echoes it
    script = (f"info status\nx/2xb 0x100000\nxp/3i 0x100000\n"
              f"dump-guest-memory {core} 0x100000 0x1000\ninfo dump\nq\n")
    out, err = proc.communicate(script.encode(), timeout=60)
    assert proc.returncode == 0, err
    core.rename(tmp / f"{binary}.core")
    return same_version(out)


def test_monitor_stdio_script_matches_qemu(tmp_path: Path) -> None:
    ours = scripted_monitor("emu", tmp_path)
    assert ours == scripted_monitor("qemu", tmp_path)
    assert b"\r\nStatus: completed\r\n(qemu) q\x1b[K\r\n" in ours
    emu_core, qemu_core = tmp_path / "emu.core", tmp_path / "qemu.core"
    assert _loads(emu_core) == _loads(qemu_core) == [(0x100000, 0x1000)]
    assert _segment_bytes(emu_core, 0x100000) == _segment_bytes(qemu_core, 0x100000)


@pytest.mark.parametrize("options, message", [
    (("-nographic", "-serial", "stdio"), "-serial stdio: cannot use stdio by multiple "
                                         "character devices"),
    (("-display", "none", "-serial", "stdio", "-monitor", "stdio"),
     "-serial stdio: cannot use stdio by multiple character devices"),
    (("-nographic", "-monitor", "stdio"), "cannot use stdio by multiple character devices"),
    (("-display", "none", "-serial", "mon:stdio", "-serial", "stdio"),
     "-serial stdio: cannot use stdio by multiple character devices"),
    (("-display", "none", "-serial", "mon:stdio", "-monitor", "stdio"),
     "-serial mon:stdio: cannot use stdio by multiple character devices"),
])
def test_stdio_used_twice(options: tuple[str, ...], message: str) -> None:
    """QEMU refuses a second non-multiplexed user of stdio; emu says the same in one line
    (QEMU adds a second line, and prints the monitor's banner before the error)."""
    qemu = subprocess.run(term_argv("qemu", "pc", *options), capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=30, cwd=ROOT)
    emu = subprocess.run(term_argv("emu", "pc", *options), capture_output=True,
                         stdin=subprocess.DEVNULL, timeout=30, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert qemu.returncode == emu.returncode == 1
    assert f"qemu-system-x86_64: {message}\n".encode() in qemu.stderr
    assert emu.stderr == f"emu: {message}\n".encode()
    assert emu.stdout == b""


def test_monitor_option_errors() -> None:
    for value in ("tcp::4444,server=on", "vc"):
        result = subprocess.run([*term_argv("emu", "pc", "-monitor", value)],
                                capture_output=True, stdin=subprocess.DEVNULL, timeout=30,
                                cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert result.returncode == 1
        assert result.stderr == (f"emu: -monitor {value}: unsupported monitor backend (use "
                                 "stdio or none)\n").encode()


# -- host input into the UARTs --------------------------------------------------------------------


def uart_input_session(binary: str, machine: str, tmp: Path) -> tuple[list[str], list[int]]:
    """Keys typed on the terminal reach the serial port: the UART's status and data registers
    read through qtest before and after, as a polling guest reads them."""
    sock_path = str(tmp / f"{binary}-{machine}.qtest")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    listener.settimeout(30)
    # -S: QEMU's CPU (its firmware programs the UART) never runs, as emu's under -accel qtest
    argv = [*command(binary, machine), *MACHINES[machine][2], "-display", "none",
            "-serial", "mon:stdio", "-qtest", f"unix:{sock_path}", "-S"]
    if binary == "emu":
        argv += ["-accel", "qtest"]
    t = Term(argv)
    answers: list[str] = []
    received: list[int] = []
    try:
        conn, _ = listener.accept()
        conn.settimeout(30)
        replies = conn.makefile("rb")

        def qtest(line: str) -> str:
            conn.sendall(line.encode() + b"\n")
            while True:
                reply = replies.readline().decode().strip()
                if not reply.startswith("IRQ"):
                    return reply

        status, data = (("inb 0x3fd", "inb 0x3f8") if machine == "pc" else
                        ("readl 0x9000018", "readl 0x9000000"))
        if machine == "pc":  # received-data interrupts on: IIR names them
            answers.append(qtest("outb 0x3f9 0x01"))
        empty = qtest(status)
        answers.append(empty)
        # typed keys, and how many of them reach the UART (Ctrl-A Ctrl-A sends one Ctrl-A,
        # Ctrl-A t is the multiplexer's own)
        for keys, delivered in ((b"ab", 2), (b"\x01\x01", 1), (b"\x01t\r", 1)):
            os.write(t.fd, keys)
            deadline = time.monotonic() + 10
            while qtest(status) == empty:  # until the first key arrived
                assert time.monotonic() < deadline
                time.sleep(0.02)
            time.sleep(0.2)  # the rest of the keys
            for _ in range(delivered):
                if machine == "pc":
                    answers.append(qtest("inb 0x3fa"))
                answers += [qtest(status), qtest(data)]
                received.append(int(answers[-1].split()[1], 16))
            answers.append(qtest(status))
        if machine == "pc":  # with the FIFO on at trigger level 4, IIR waits for 4 bytes
            answers.append(qtest("outb 0x3fa 0x41"))
            os.write(t.fd, b"xyz")
            time.sleep(0.5)
            answers += [qtest("inb 0x3fa"), qtest(status)]
            os.write(t.fd, b"w")
            time.sleep(0.5)
            answers += [qtest("inb 0x3fa"), qtest(data), qtest("inb 0x3fa")]
        if machine == "virt":  # with the FIFO on, RXFF waits for 16 bytes
            answers.append(qtest("writel 0x900002c 0x70"))
            os.write(t.fd, b"0123456789abcdefg")
            time.sleep(0.5)
            answers += [qtest(status), qtest(data), qtest(status)]
        conn.close()
    finally:
        listener.close()
        t.kill()
    return answers, received


@pytest.mark.parametrize("machine", ["pc", "virt"])
def test_uart_receives_typed_keys_as_qemu_does(tmp_path: Path, machine: str) -> None:
    ours, received = uart_input_session("emu", machine, tmp_path)
    theirs = uart_input_session("qemu", machine, tmp_path)[0]
    assert ours == theirs
    assert received == [ord("a"), ord("b"), 0x01, ord("\r")]


@pytest.mark.parametrize("binary", BINARIES)
def test_quit_replies_then_exits(tmp_path: Path, binary: str) -> None:
    """``quit`` over human-monitor-command: the reply arrives, then the emulator exits 0."""
    vm = Vm(binary, "pc", tmp_path, *halt_args("pc", "-serial", "none"))
    try:
        reply = vm.qmp.cmd_obj({"execute": "human-monitor-command",
                                "arguments": {"command-line": "quit"}})
        assert reply == {"return": ""}
        assert vm.proc.wait(timeout=10) == 0
    finally:
        vm.close()
