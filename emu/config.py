"""MachineConfig: what the command line, QMP and the Python API all build.

Everything here is plain data, checked where it is parsed; :class:`emu.machine.Machine`
turns it into a running machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from emu.errors import ConfigError

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

DEFAULT_RAM = 128 * MiB

_SIZE = re.compile(r"^(0[xX][0-9a-fA-F]+|\d+)(\.\d*)?([bBkKmMgGtTpPeE]?)$")
_UNITS = {"": MiB, "b": 1, "k": 1 << 10, "m": MiB, "g": GiB, "t": 1 << 40, "p": 1 << 50,
          "e": 1 << 60}
UINT64_MAX = (1 << 64) - 1


def parse_ram_size(text: str) -> int:
    """QEMU's ``-m`` syntax (qemu_strtosz_MiB): ``128M``, ``4G``, ``512`` (MiB), ``0x10``,
    ``size=1G``; one unit letter of B, K, M, G, T, P, E.

    As QEMU, a plain number is MiB, a size that does not fit in 64 bits is "out of range for
    parameter 'size'" (util/cutils.c do_strtosz: the integer part and the fraction are
    scaled separately, so a number of any length is judged exactly) and the size is rounded
    up to a multiple of 8 KiB. emu refuses sizes under 1 MiB, where no boot protocol fits.
    How much RAM a machine can address is the board's check (QEMU's pc_memory_init and
    virt's memory map), made when it is built.
    """
    spec = text.split(",")[0]
    if spec.startswith("size="):
        spec = spec[5:]
    m = _SIZE.match(spec.strip())
    if not m:
        raise ConfigError(f"-m {text}: invalid RAM size")
    number, fraction, unit = m.groups()
    mul = _UNITS[unit.lower()]
    if number[:2] in ("0x", "0X"):
        if fraction:
            raise ConfigError(f"-m {text}: invalid RAM size")
        whole = int(number, 16)
    else:
        whole = int(number)
    partial = int(float("0" + fraction) * mul) if fraction else 0
    size = whole * mul + partial
    if size > UINT64_MAX:
        raise ConfigError(f"-m {text}: Value '{spec}' is out of range for parameter 'size'")
    if size < MiB:
        raise ConfigError(f"-m {text}: RAM size too small (at least 1M)")
    return (size + 8191) & ~8191


def parse_size(text: str) -> int:
    """QEMU's size syntax for properties (qemu_strtosz): a number of bytes, with an
    optional unit letter (B, K, M, G, T, P, E). Raises ValueError."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(text)
    number, fraction, unit = m.groups()
    mul = _UNITS[unit.lower()] if unit else 1
    if number[:2] in ("0x", "0X"):
        if fraction:
            raise ValueError(text)
        size = int(number, 16) * mul
    else:  # the integer part and the fraction scaled separately, as parse_ram_size does
        size = int(number) * mul + (int(float("0" + fraction) * mul) if fraction else 0)
    if size >= 1 << 64:
        raise ValueError(text)
    return size


@dataclass
class DeviceSpec:
    """One ``-device`` option: the type name and its raw ``key=value`` properties."""

    spec: str
    name: str
    props: dict[str, str]


@dataclass
class FwCfgFileSpec:
    """One ``-fw_cfg name=NAME,file=PATH|string=TEXT`` option."""

    spec: str
    name: str
    file: str | None = None
    string: str | None = None


@dataclass
class MachineConfig:
    """A complete machine description."""

    machine: str = "pc"
    ram_size: int = DEFAULT_RAM
    cpu: str | None = None  # None: the board's default model
    smp: int = 1
    max_cpus: int = 1
    kernel: str | None = None
    append: str = ""
    initrd: str | None = None
    bios: str | None = None  # -bios FILE: firmware instead of emu's own
    direct_boot: bool = False  # --direct-boot: emu loads the kernel, no firmware runs
    serial: list[str] = field(default_factory=list)  # backend specs, COM1 first
    monitor: str | None = None  # -monitor stdio|none (emu.monitor.mux)
    devices: list[DeviceSpec] = field(default_factory=list)
    nographic: bool = False
    nodefaults: bool = False
    #: -machine pc,hpet=on|off: the pc's HPET (QEMU's default: on)
    hpet: bool = True
    display: str | None = None
    uuid: bytes | None = None
    #: -name: the guest's name (QMP query-name)
    name: str | None = None
    traces: list[str] = field(default_factory=list)
    fw_cfg_files: list[FwCfgFileSpec] = field(default_factory=list)
    fw_cfg_dma: bool = True
    fw_cfg_file_slots: int = 0x20
    boot_menu: bool = False
    boot_order: str = "cad"  # -boot order=: the pc CMOS boot devices
    boot_once: str | None = None  # -boot once=: the boot devices of the first boot only
    fd_bootchk: bool = True  # -no-fd-bootchk clears it
    reboot_timeout: int | None = None  # -boot reboot-timeout=: etc/boot-fail-wait
    splash_time: int | None = None  # -boot splash-time=: etc/boot-menu-wait
    dump_on_exit: str | None = None
    dump_on_panic: str | None = None
    dump_format: str = "elf"  # --dump-format: the format of those two dumps
    panic_action: str = "shutdown"  # -action panic=: shutdown, pause, exit-failure, none
    qmp: list[Any] = field(default_factory=list)  # emu.qmp.server.QmpAddress
    #: -gdb DEV / -s: where gdb stubs listen (emu.gdbstub.server.GdbAddress)
    gdb: list[Any] = field(default_factory=list)
    qtest: str | None = None  # -qtest unix:PATH | stdio
    qtest_log: str | None = None
    accel: str = "tcg"  # or "qtest": the CPU never runs
    no_reboot: bool = False
    no_shutdown: bool = False
    start_paused: bool = False
    #: -icount shift=N: guest time is 2^N ns per executed instruction (None: host time)
    icount_shift: int | None = None
    #: -icount sleep=on: an idle CPU waits for the next timer in host time
    icount_sleep: bool = True
    #: -M virt,gic-version=: "2", "3", "4", "host" or "max" as given (QEMU's
    #: virt_set_gic_version accepts these); the board decides (VirtBoard.gic_version)
    gic_version: str | None = None

    def serial_backends(self) -> list[str]:
        """The serial backends in effect, as QEMU resolves them (vl.c).

        With no ``-serial``: ``-nographic`` puts the first port on ``mon:stdio`` (on stdio
        when a ``-monitor`` is given or ``-nodefaults`` took the monitor away); otherwise
        QEMU would use a graphical console (``vc``), which emu does not have, so the port goes
        to stdio too unless ``-nodefaults`` removed it, or to nowhere when the monitor has
        stdio (as QEMU's vc is not on the terminal).
        """
        if self.serial:
            return list(self.serial)
        if self.nographic:
            return ["mon:stdio"] if self.monitor is None and not self.nodefaults else ["stdio"]
        if self.nodefaults:
            return []
        return ["null" if self.monitor == "stdio" else "stdio"]

    def monitor_backend(self) -> str | None:
        """Where the human monitor is: ``-monitor``, or stdio when ``-nographic`` comes with
        a ``-serial`` (vl.c); None for none (``-nographic`` alone muxes it with the serial
        port, see :meth:`serial_backends`)."""
        if self.monitor is not None:
            return None if self.monitor == "none" else self.monitor
        return "stdio" if self.nographic and self.serial else None
