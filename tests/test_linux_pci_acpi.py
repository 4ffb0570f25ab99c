"""Linux 6.1 (the x86_64 test kernel, with PCI, ACPI and pvpanic) on emu's and QEMU's pc.

- With ``-nodefaults`` every kernel log line that names PCI, ACPI or PnP is QEMU's, but for
  what emu leaves out (docs/devel/linux.md): the tables' addresses and sizes, QEMU's two GPE
  handlers (PCI and CPU hotplug) and its floppy controller's PnP device. The fw_cfg driver
  finds the device through ACPI (QEMU0002) on both: the init reads etc/vmcoreinfo without
  ``qemu_fw_cfg.ioport=`` on the command line.
- pvpanic: Linux's driver binds QEMU0001 from the DSDT and reports the init's sysrq crash;
  both emulators end the run (``-action panic=shutdown``, the default) and emu's
  ``--dump-on-panic`` writes a dump taken at the panic, which drgn and crash read as the
  kernel's.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import drgn
from conftest import ROOT
from elftools.elf.elffile import ELFFile
from linux_boot import PANIC, command, kernel_log, linux_args, vmlinux

#: a line about PCI, ACPI or PnP
TOPIC = re.compile(r"pci|acpi|pnp", re.IGNORECASE)
#: "ACPI: SIG 0xADDRESS LENGTH (...)" and "ACPI: Reserving SIG table memory at [mem ...]"
TABLE = re.compile(r"^ACPI: (RSDP|[A-Z]{4}) 0x[0-9A-F]+ [0-9A-F]+ (.*)$")
RESERVING = re.compile(r"^ACPI: Reserving (\w{4}) table memory at \[mem 0x[0-9a-f]+-0x[0-9a-f]+\]$")
PNP_FOUND = re.compile(r"^pnp: PnP ACPI: found (\d+) devices$")
#: a PCI quirk that took over 10 ms of the host's time (drivers/pci/quirks.c
#: fixup_debug_report): whether it appears depends on how busy the host is
SLOW_QUIRK = re.compile(r"^pci [0-9a-f:.]+: \w+\+0x\w+/0x\w+ took \d+ usecs$")


def boot(emulator: str, *extra: str, append: tuple[str, ...] = ("restart",)) -> str:
    run = subprocess.run([*command(emulator, "pc"), *linux_args("pc", *append), "-nodefaults",
                          "-no-reboot", "-device", "pvpanic", *extra],
                         capture_output=True, text=True, timeout=600,
                         stdin=subprocess.DEVNULL, cwd=ROOT)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    return run.stdout


def topic_lines(console: str) -> list[str]:
    """The PCI/ACPI/PnP lines, the tables' addresses and sizes masked."""
    out = []
    for line in kernel_log(console):
        # which clocksource Linux ends on depends on its watchdog's view of the TSC against
        # the host's timing, not on PCI or ACPI (emu's may switch to acpi_pm)
        if (not TOPIC.search(line) or line.startswith("clocksource: Switched to")
                or SLOW_QUIRK.match(line)):
            continue
        line = TABLE.sub(r"ACPI: \1 (\2)", line)
        out.append(RESERVING.sub(r"ACPI: Reserving \1 table memory", line))
    return out


def test_pci_and_acpi_lines_match_qemu() -> None:
    theirs, ours = boot("qemu"), boot("emu")
    for console in (theirs, ours):
        assert "emu-linux init: fw_cfg etc/vmcoreinfo size: 16" in kernel_log(console), console
        assert "ACPI: Interpreter enabled" in kernel_log(console)
    want = topic_lines(theirs)
    # what emu leaves out: the GPE handlers _E01 and _E02, the floppy controller's PnP device
    assert "ACPI: Enabled 2 GPEs in block 00 to 0F" in want
    want = [line for line in want if line != "ACPI: Enabled 2 GPEs in block 00 to 0F"]
    found = [i for i, line in enumerate(want) if PNP_FOUND.match(line)]
    assert len(found) == 1
    count = int(PNP_FOUND.match(want[found[0]]).group(1))
    want[found[0]] = f"pnp: PnP ACPI: found {count - 1} devices"
    assert any(line.startswith("pci 0000:00:01.3: [8086:7113]") for line in want)
    assert "ACPI: PCI: Interrupt link LNKS configured for IRQ 9" in want
    got = topic_lines(ours)
    assert got == want, "\n".join(f"{g!r} | {w!r}" for g, w in zip(got, want, strict=False)
                                  if g != w)


def test_pvpanic_dump_on_panic(tmp_path: Path) -> None:
    """The init crashes the kernel (no "restart"); Linux's pvpanic driver reports it."""
    dump = tmp_path / "panic.core"
    ours = boot("emu", "--dump-on-panic", str(dump), append=())
    theirs = boot("qemu", append=())
    for console in (ours, theirs):
        assert PANIC.decode() in console
    with dump.open("rb") as f:
        elf = ELFFile(f)
        assert elf["e_type"] == "ET_CORE" and elf["e_machine"] == "EM_X86_64"
        notes = [n["n_name"] for seg in elf.iter_segments() if seg["p_type"] == "PT_NOTE"
                 for n in seg.iter_notes()]
        assert "VMCOREINFO" in notes  # Linux's own note, registered through fw_cfg
    # the dump was taken at the pvpanic driver's report, inside panic(): drgn finds the
    # crashed thread's stack through the sysrq crash, and crash sees the panic
    prog = drgn.Program()
    prog.set_core_dump(str(dump))
    prog.load_debug_info([vmlinux("x86_64")])
    frames = [frame.name for frame in prog.crashed_thread().stack_trace()]
    assert "pvpanic_panic_notify" in frames
    assert frames[frames.index("panic"):][:3] == ["panic", "sysrq_handle_crash", "__handle_sysrq"]
    run = subprocess.run(["crash", "-s", vmlinux("x86_64"), str(dump)], capture_output=True,
                         text=True, timeout=300, input="sys\nlog\nquit\n")
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'PANIC: "Kernel panic - not syncing: sysrq triggered crash"' in run.stdout
    assert "sysrq: Trigger a crash" in run.stdout
