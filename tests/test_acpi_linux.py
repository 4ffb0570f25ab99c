"""Linux 6.1 (the x86_64 test kernel, with ACPI) on emu's pc and QEMU 7.2's: without the
``qemu_fw_cfg.ioport=`` option the fw_cfg driver finds the device through the DSDT's
QEMU0002 node, on emu through its firmware's loader and through ``--direct-boot``'s; the
ACPI lines emu's boot prints are QEMU's, less those of what emu leaves out on purpose
(docs/devel/acpi.md); with ``-device pvpanic`` the pvpanic driver binds QEMU0001 and a
kernel panic reaches ``--dump-on-panic``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_linux_boot import ROOT, kernel

COMMON = ["-M", "pc", "-m", "256M", "-display", "none", "-serial", "stdio", "-no-reboot",
          "-device", "vmcoreinfo", "-device", "pvpanic"]
CMDLINE = "console=ttyS0"
#: ACPI lines of QEMU's boot about what emu does not have: the HPET and WAET tables, the
#: HPET found through them, the PCI host bridge and its interrupt links (no PCI bus), the
#: sleep states (no PIIX4 power management), the floppy controller
QEMU_ONLY = re.compile(r"ACPI: (HPET|WAET|Reserving (HPET|WAET))|HPET|PCI|LNK|PNP0A03|"
                       r"\(S[0-5]|ACPI: PM-Timer|ACPI: \\_SB_.PCI0|PNP0700|"
                       r"ACPI: Added _OSI|Interrupt link|_PRT|pci")
#: addresses, which differ with where each firmware puts the tables
ADDRESS = re.compile(r"0x[0-9A-F]{16}|0x[0-9a-f]{16}|0x[0-9A-F]{8}\b")


def boot(command: list[str], timeout: float = 300) -> list[str]:
    run = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL, cwd=ROOT)
    return [re.sub(r"^\[ *[0-9.]+\] ", "", line)
            for line in (run.stdout + run.stderr).splitlines()]


def acpi_lines(lines: list[str]) -> list[str]:
    return [ADDRESS.sub("ADDR", line) for line in lines
            if ("ACPI" in line or "acpi" in line or "pnp" in line) and not QEMU_ONLY.search(line)]


def problems(lines: list[str]) -> list[str]:
    return [line for line in lines if re.search(r"ACPI (BIOS )?(Error|Warning)|ACPI.*error|"
                                                r"ACPI.*[Ww]arning|Firmware Bug", line)]


@pytest.fixture(scope="module")
def image() -> str:
    return kernel("x86_64")


@pytest.fixture(scope="module")
def qemu_log(image: str) -> list[str]:
    return boot(["qemu-system-x86_64", *COMMON, "-kernel", image, "-append", CMDLINE],
                timeout=120)


@pytest.mark.parametrize("direct", [False, True], ids=["firmware", "direct-boot"])
def test_linux_finds_fw_cfg_and_pvpanic_through_acpi(image: str, qemu_log: list[str],
                                                     direct: bool) -> None:
    extra = ["--direct-boot"] if direct else []
    ours = boot([sys.executable, "-m", "emu", *COMMON, *extra, "-kernel", image, "-append",
                 CMDLINE])
    for log in (qemu_log, ours):
        assert "emu-linux init: fw_cfg etc/vmcoreinfo present" in log, "\n".join(log[-40:])
        assert any(line.startswith("ACPI: RSDP") for line in log)
    assert problems(ours) == problems(qemu_log)
    assert acpi_lines(ours) == acpi_lines(qemu_log), "\n".join(ours)


def test_pvpanic_reports_the_panic(image: str, tmp_path: Path) -> None:
    """init=/bogus: the kernel panics; the pvpanic driver (bound through ACPI) tells emu,
    which saves the dump."""
    dump = tmp_path / "panic.dump"
    lines = boot([sys.executable, "-m", "emu", *COMMON, "-kernel", image, "-append",
                  f"{CMDLINE} init=/bogus", "--dump-on-panic", str(dump)])
    assert any("Kernel panic" in line for line in lines), "\n".join(lines[-30:])
    assert dump.exists() and dump.stat().st_size > 256 << 20, "\n".join(lines[-30:])
