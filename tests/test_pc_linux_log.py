"""The x86_64 test kernel's whole log on emu's pc is QEMU 7.2's, line for line, apart from
timestamps and the lines that name host-dependent values (the TSC's measured frequency and
what Linux derives from it), each listed below with the form both lines must have.

QEMU runs without the devices and features emu's pc does not have: no VGA, NIC or parallel
port (emu has none) and no ACPI PCI hotplug (docs/devel/acpi.md). What is left of them, and
of emu's firmware layout, is listed in ``EXPECTED``/``_comparable`` with the reason, and
nothing else may differ:
- the MP table's and the ACPI tables' addresses and the DSDT's and RSDT's lengths: emu's
  f-segment is ROM, so its firmware puts the MP table and the RSDP in the EBDA
  (firmware/README.md), and emu's DSDT lacks QEMU's debug port, CPU hotplug and floppy
  controller nodes (docs/devel/acpi.md; tests/test_acpi_tables.py compares the tables
  themselves with QEMU's);
- the lines that follow from the floppy controller and the CPU hotplug GPE handler that
  QEMU's DSDT describes and emu's does not.
"""

from __future__ import annotations

import re

from conftest import run_emu, run_qemu
from linux_boot import kernel_log, linux_args

#: lines that follow the host's clock: whether Linux's TSC calibration against the PIT
#: succeeds (QEMU's too: it depends on how busy the host is), the frequency it measures, the
#: delay-loop calibration Linux falls back to, the clocksource choices that follow, and a
#: PCI quirk that took over 10 ms of the host's time (drivers/pci/quirks.c fixup_debug_report),
#: and the local APIC timer's calibration against the PM timer when a host stall stretched
#: the 100 ms it measures (arch/x86/kernel/apic/apic.c calibrate_by_pmtimer)
HOST_DEPENDENT = re.compile(
    r"tsc: |clocksource: (tsc|refined-jiffies|Switched to clocksource|Checking|"
    r"timekeeping watchdog|'tsc')|Calibrating delay loop|smpboot: Total of \d+ processors "
    r"activated \([\d.]+ BogoMIPS\)|sched_clock: Marking stable|process: using|"
    r"pci [0-9a-f:.]+: \w+\+0x\w+/0x\w+ took \d+ usecs|"
    r"APIC calibration not consistent with PM-Timer|APIC delta adjusted to PM-Timer")
#: what QEMU's pc has and emu's does not (module docstring)
QEMU_ONLY = ("-vga", "none", "-nic", "none", "-parallel", "none",
             "-global", "PIIX4_PM.acpi-pci-hotplug-with-bridge-support=off",
             "-global", "PIIX4_PM.acpi-root-pci-hotplug=off")
#: table layout: where the firmware put each table and how long the DSDT and RSDT are
MP_TABLE = re.compile(r"found SMP MP-table at \[mem 0x[0-9a-f]+-0x[0-9a-f]+\]")
ACPI_TABLE = re.compile(r"ACPI: (RSDP|RSDT|FACP|DSDT|FACS|APIC|HPET|WAET) 0x[0-9A-F]{16} "
                        r"[0-9A-F]{6}(?P<rest> .*)?")
ACPI_RESERVE = re.compile(r"ACPI: Reserving (\w+) table memory at \[mem 0x[0-9a-f]+-0x[0-9a-f]+\]")
#: QEMU's line -> emu's, for the floppy controller (one PnP device more, before COM1) and
#: the CPU hotplug GPE handler (\_GPE._E02) of QEMU's DSDT
EXPECTED = {
    "pnp: PnP ACPI: found 5 devices": "pnp: PnP ACPI: found 4 devices",
    "00:03: ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A":
        "00:02: ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A",
}
GPE = "ACPI: Enabled 1 GPEs in block 00 to 0F"


def _comparable(log: list[str]) -> list[str]:
    out = []
    for line in log:
        if HOST_DEPENDENT.match(line):
            continue
        if MP_TABLE.fullmatch(line):
            line = "found SMP MP-table"
        elif m := ACPI_TABLE.fullmatch(line):
            line = f"ACPI: {m[1]}{m['rest'] or ''}"
        elif m := ACPI_RESERVE.fullmatch(line):
            line = f"ACPI: Reserving {m[1]} table memory"
        out.append(line)
    return out


def test_pc_boot_log_matches_qemu() -> None:
    args = [*linux_args("pc", "restart"), "-no-reboot"]
    qemu = run_qemu("pc", [*args, *QEMU_ONLY], timeout=300)
    emu = run_emu(args, timeout=600)
    assert qemu.returncode == emu.returncode == 0, emu.stderr.decode(errors="replace")[-2000:]
    ours = kernel_log(emu.stdout.decode(errors="replace"))
    theirs = kernel_log(qemu.stdout.decode(errors="replace"))
    assert theirs[-1] == "reboot: machine restart"
    assert any(line.startswith("found SMP MP-table at [mem 0x0009fc00") for line in ours)
    # Linux found the RSDP emu's firmware handed it, and the HPET
    assert any(line.startswith("ACPI: RSDP 0x000000000009F") for line in ours)
    assert "ACPI: HPET id: 0x8086a201 base: 0xfed00000" in ours
    assert GPE in theirs and GPE not in ours
    expected = [EXPECTED.get(line, line) for line in _comparable(theirs) if line != GPE]
    assert _comparable(ours) == expected
