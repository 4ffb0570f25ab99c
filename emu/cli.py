"""The ``emu`` command line: QEMU's options, turned into a MachineConfig and run.

Options are spelled as in ``qemu-system-*`` (single dash; a double dash works too). Every
mistake is one line on stderr in QEMU's style, ``emu: -m foo: invalid RAM size``, and exit
status 1. Exit statuses: what the guest asked for (isa-debug-exit ``(v << 1) | 1``, 0 on
power-off), 1 for a usage error, 2 when the guest put the CPU into a state emu cannot
continue from (the reason and PC are printed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from emu import __version__, trace
from emu.config import DeviceSpec, FwCfgFileSpec, MachineConfig, parse_ram_size, parse_size
from emu.errors import ConfigError

if TYPE_CHECKING:
    from emu.machine import Machine

USAGE = """\
usage: emu [options]
       emu dump-info FILE       describe a core dump

QEMU-compatible options:
  -M, -machine NAME        machine type: pc (x86_64) or virt (aarch64); 'help' lists them
  -m SIZE                  RAM size: 128M, 4G, plain number = MiB (default 128M)
  -cpu MODEL               CPU model (QEMU names: qemu64, max, cortex-a57, ...; 'help')
  -smp N[,maxcpus=M]       CPU count reported to firmware (one CPU is emulated)
  -kernel FILE             kernel: an ELF with a PVH note on pc; an aarch64 ELF or an arm64
                           Image on virt
  -append TEXT             kernel command line
  -initrd FILE             initial RAM disk (PVH module on pc, /chosen range on virt)
  -bios FILE               firmware to run instead of emu's own (pc: ROM ending at 4 GiB,
                           a multiple of 64 KiB; virt: flash at address 0, up to 64 MiB)
  -serial SPEC             stdio, mon:stdio, file:PATH or none (repeatable, COM1 first)
  -monitor stdio|none      the human monitor on the terminal (mon:stdio: shared with the
                           serial port, Ctrl-A c switches, Ctrl-A x quits, Ctrl-A h helps)
  -device NAME[,k=v...]    add a device ('-device help' lists them)
  -nographic               no display; serial and monitor on stdio (mon:stdio)
  -display none            no display; the serial port's default console goes nowhere with
                           it (as QEMU's vc): add -serial stdio to see the guest
  -nodefaults              no default devices
  -no-reboot               exit instead of resetting when the guest resets
  -no-shutdown             when the guest powers off, stop (QMP status "shutdown") instead of
                           exiting
  -uuid UUID               system UUID
  -fw_cfg [name=]N,file=F  add fw_cfg file N with the contents of F (or string=TEXT)
  -boot [order=]DEVS,once=DEVS,menu=on|off,reboot-timeout=N,splash-time=N
                           order/once: the pc's CMOS boot devices (a c d n)
  -no-fd-bootchk           pc: the CMOS tells the BIOS not to check floppy boot signatures
  -rtc base=utc,clock=vm   the RTC: UTC, on the virtual clock (the only choice emu offers)
                           boot settings firmware reads from fw_cfg
  -global fw_cfg.P=V       fw_cfg properties: dma_enabled=on|off, x-file-slots=N
  -trace PATTERN           enable trace events matching PATTERN (e.g. 'fw_cfg_*')
  -S                       do not start the CPU until a monitor (or gdb) says 'cont'
  -gdb tcp:[HOST]:PORT | unix:PATH,server=on | none
                           wait for a gdb connection on that device
  -s                       shorthand for -gdb tcp::1234
  -qtest unix:PATH|stdio   answer qtest commands (QEMU's device-test protocol)
  -qtest-log FILE          log the qtest conversation
  -accel tcg|qtest         qtest: the CPU never runs, only qtest drives the devices
  -icount [shift=]N[,sleep=on|off]
                           deterministic time: 2^N ns of guest time per instruction;
                           sleep=off: an idle CPU jumps to the next timer at once
  -qmp unix:PATH,server=on,wait=off | tcp:HOST:PORT,server=on,wait=off
                           QMP monitor (wait=on: wait for a client before starting)

emu options:
  --direct-boot            load the -kernel and enter it directly, without firmware
  --dump-on-exit PATH      when the run ends (the guest exits or powers off, a fatal CPU
                           state, a signal, a monitor's quit), save an ELF core dump to PATH
  --dump-on-panic PATH     when the guest reports a panic (pvpanic), save a dump to PATH
  --dump-format FORMAT     the format of those dumps: elf (default), kdump-zlib, kdump-lzo,
                           kdump-snappy, kdump-zstd (makedumpfile's flattened form, as
                           QEMU writes them), kdump-raw-zlib, ... (the plain kdump file)
  -action panic=A          on a guest panic: shutdown (default), pause, exit-failure, none
  -version                 print the version and exit
  -h, -help                print this help and exit

Exit status: what the guest asked for (isa-debug-exit value V: (V << 1) | 1, so 1 for V = 0;
PSCI SYSTEM_OFF or a power-off: 0), 1 for a usage error or a failed dump (both print an
'emu: ...' line), 2 when the guest left the CPU in a state emu cannot continue from, 70 for an
internal error of emu.
"""

#: options that take an argument
_WITH_ARG = {"M", "machine", "m", "cpu", "smp", "kernel", "append", "initrd", "bios",
             "serial", "device",
             "display", "uuid", "trace", "name", "accel", "fw_cfg", "boot", "global",
             "dump-on-exit", "qmp", "dump-on-panic", "dump-format", "action", "qtest", "qtest-log",
             "monitor", "rtc", "icount", "gdb"}
_FLAGS = {"nographic", "nodefaults", "no-reboot", "no-shutdown", "S", "version", "h", "help",
          "direct-boot", "no-fd-bootchk", "s"}


def parse_args(argv: Sequence[str]) -> MachineConfig | str:
    """Parse QEMU-style ``argv``; returns a config, or a text to print and exit 0 with."""
    cfg = MachineConfig()
    machine_seen = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            raise ConfigError(f"{arg}: unexpected argument (options start with '-')")
        name = arg.lstrip("-")
        if name in _FLAGS:
            i += 1
            if name in ("h", "help"):
                return USAGE
            if name == "version":
                return f"emu version {__version__} (QEMU-compatible machine emulator)"
            if name == "nographic":
                cfg.nographic = True
            elif name == "nodefaults":
                cfg.nodefaults = True
            elif name == "no-reboot":
                cfg.no_reboot = True
            elif name == "no-shutdown":
                cfg.no_shutdown = True
            elif name == "S":
                cfg.start_paused = True
            elif name == "s":  # QEMU_OPTION_s: -gdb tcp::DEFAULT_GDBSTUB_PORT
                from emu.gdbstub.server import DEFAULT_PORT, parse_gdb_option

                cfg.gdb.append(parse_gdb_option(f"tcp::{DEFAULT_PORT}"))
            elif name == "direct-boot":
                cfg.direct_boot = True
            elif name == "no-fd-bootchk":
                cfg.fd_bootchk = False
            continue
        if name not in _WITH_ARG:
            raise ConfigError(f"-{name}: invalid option")
        if i + 1 >= len(argv):
            raise ConfigError(f"-{name}: requires an argument")
        value = argv[i + 1]
        i += 2
        opt = f"-{name}"
        if name in ("M", "machine"):
            text = _machine_option(cfg, value, machine_seen)
            if text:
                return text
            machine_seen = True
        elif name == "m":
            cfg.ram_size = _memory_option(value)
        elif name == "cpu":
            cfg.cpu = value
        elif name == "smp":
            cfg.smp, cfg.max_cpus = _parse_smp(value)
        elif name == "kernel":
            cfg.kernel = value
        elif name == "append":
            cfg.append = value
        elif name == "initrd":
            cfg.initrd = value
        elif name == "bios":
            cfg.bios = value
        elif name == "serial":
            cfg.serial.append(value)
        elif name == "monitor":
            if value not in ("stdio", "none"):
                raise ConfigError(f"{opt} {value}: unsupported monitor backend (use stdio or none)")
            cfg.monitor = value
        elif name == "device":
            text = _device_help(value)
            if text:
                return text
            dname = value.split(",", 1)[0]
            cfg.devices.append(DeviceSpec(value, dname, {}))
        elif name == "display":
            if value.split(",")[0] != "none":
                raise ConfigError(f"{opt} {value}: emu has no graphical display (use none)")
            cfg.display = "none"
        elif name == "name":  # QEMU's -name [guest=]NAME[,process=P][,debug-threads=on|off]
            opts = _keyval(value, "guest")
            unknown = sorted(set(opts) - {"guest", "process", "debug-threads"})
            if unknown:
                raise ConfigError(f"{opt} {value}: Invalid parameter '{unknown[0]}'")
            cfg.name = opts.get("guest") or None
        elif name == "uuid":
            import uuid as uuidlib

            try:
                cfg.uuid = uuidlib.UUID(value).bytes
            except ValueError:
                raise ConfigError(f"{opt} {value}: invalid UUID") from None
        elif name == "trace":
            pattern = value[7:] if value.startswith("enable=") else value
            trace.enable(pattern)
            cfg.traces.append(pattern)
            warning = trace.unmatched(pattern)
            if warning:
                print(f"emu: {opt} {value}: warning: {warning}", file=sys.stderr, flush=True)
        elif name == "fw_cfg":
            cfg.fw_cfg_files.append(_parse_fw_cfg(value))
        elif name == "boot":
            _parse_boot(cfg, value)
        elif name == "rtc":
            _parse_rtc(value)
        elif name == "gdb":
            from emu.gdbstub.server import parse_gdb_option

            cfg.gdb.append(parse_gdb_option(value))
        elif name == "qmp":
            from emu.qmp.server import parse_qmp_option

            cfg.qmp.append(parse_qmp_option(value))
        elif name == "dump-on-panic":
            cfg.dump_on_panic = value
        elif name == "action":
            _parse_action(cfg, value)
        elif name == "dump-on-exit":
            cfg.dump_on_exit = value
        elif name == "dump-format":
            cfg.dump_format = _parse_dump_format(value)
        elif name == "global":
            _parse_global(cfg, value)
        elif name == "accel":
            accel = value.split(",")[0]
            if accel not in ("tcg", "qtest"):
                raise ConfigError(f"{opt} {value}: emu provides the tcg and qtest accelerators")
            cfg.accel = accel
        elif name == "icount":
            cfg.icount_shift, cfg.icount_sleep = _parse_icount(value)
        elif name == "qtest":
            cfg.qtest = value
        elif name == "qtest-log":
            from emu.qtest.server import qtest_log_path

            cfg.qtest_log = qtest_log_path(value)
        # -name is accepted and ignored, as a label only
    if cfg.cpu in ("help", "?"):
        return cpu_help(cfg.machine if machine_seen else None)
    if cfg.display == "none" and not cfg.nographic and not cfg.serial and not cfg.nodefaults:
        # QEMU's default serial backend is vc (a console of the display): with -display none
        # the port exists and its output goes nowhere (softmmu/vl.c, default_serial).
        cfg.serial.append("null")
    if not machine_seen:
        raise ConfigError("no machine given: use -M pc (x86_64) or -M virt (aarch64)")
    if cfg.direct_boot and cfg.bios is not None:
        raise ConfigError("--direct-boot runs no firmware: it cannot be used with -bios")
    if cfg.initrd is not None and cfg.kernel is None:
        raise ConfigError("-initrd only works with -kernel")
    return cfg


#: QEMU 7.2's type name of each machine, as its property errors spell it
_MACHINE_QOM_TYPES = {"pc": "pc-i440fx-7.2-machine", "virt": "virt-7.2-machine"}
#: every property QEMU 7.2's machines have (``-M pc,help``, ``-M virt,help``)
_QEMU_MACHINE_PROPERTIES = {
    "pc": {"acpi", "append", "boot", "bus-lock-ratelimit", "confidential-guest-support",
           "default-bus-bypass-iommu", "dt-compatible", "dtb", "dump-guest-core", "dumpdtb",
           "firmware", "graphics", "hpet", "i8042", "initrd", "kernel", "max-fw-size",
           "max-ram-below-4g", "mem-merge", "memory-backend", "memory-encryption", "memory",
           "phandle-start", "pic", "pit", "sata", "sgx-epc", "smbios-entry-point-type",
           "smbus", "smm", "smp", "suppress-vmdesc", "usb", "vmport", "x-oem-id",
           "x-oem-table-id"},
    "virt": {"acpi", "append", "boot", "confidential-guest-support", "default-bus-bypass-iommu",
             "dt-compatible", "dtb-kaslr-seed", "dtb-randomness", "dtb", "dump-guest-core",
             "dumpdtb", "firmware", "gic-version", "graphics", "highmem", "initrd", "iommu",
             "its", "kernel", "mem-merge", "memory-backend", "memory-encryption", "memory",
             "mte", "phandle-start", "ras", "secure", "smp", "suppress-vmdesc", "usb",
             "virtualization", "x-oem-id", "x-oem-table-id"},
}
#: boolean machine properties emu honours: off, or either value where they only concern the
#: host (dump-guest-core, mem-merge) or migration (suppress-vmdesc). name -> what "on" would
#: need, None when "on" is honoured too
_MACHINE_BOOLS: dict[str, str | None] = {
    "dump-guest-core": None, "mem-merge": None, "suppress-vmdesc": None,
    "usb": "a USB controller", "secure": "the EL3 Security Extensions",
    "virtualization": "the EL2 Virtualization Extensions", "mte": "the Memory Tagging "
    "Extension", "ras": "the RAS Extension",
}


def _machine_option(cfg: MachineConfig, value: str, seen: bool = False) -> str | None:
    """``-machine [type=]NAME[,prop=value...]`` (QEMU's machine_opts): the type, the
    accelerator, and the machine properties emu honours. Other properties QEMU has are
    refused as unsupported; properties QEMU does not have, in QEMU's words. Without a type,
    the options add to those of the machine an earlier ``-machine`` chose (QEMU merges
    them: ``-M pc -machine hpet=off``)."""

    opts = _keyval(value, "type")
    name = opts.pop("type", "") or (cfg.machine if seen else "")
    if "accel" in opts:  # QEMU's list syntax, kvm:tcg: the first accelerator emu has
        accel = opts.pop("accel")
        usable = [a for a in accel.split(":") if a in ("tcg", "qtest")]
        if not usable:
            raise ConfigError(f"-machine {value}: emu provides the tcg and qtest accelerators")
        cfg.accel = usable[0]
    if name == "help":
        from emu.boards import machine_help
        return machine_help()
    from emu.boards import board_class
    cfg.machine = board_class(name).name
    for key, v in opts.items():
        if key in ("kernel", "initrd", "append", "firmware"):  # as -kernel, ... -bios
            setattr(cfg, "bios" if key == "firmware" else key, v)
        elif key == "gic-version" and cfg.machine == "virt":
            if v not in ("4", "3", "2", "host", "max"):  # hw/arm/virt.c virt_set_gic_version
                raise ConfigError("Invalid gic-version value\nValid values are 3, 2, host, max.")
            cfg.gic_version = v
        elif key == "hpet" and cfg.machine == "pc":  # hw/i386/pc.c pc_machine_set_hpet
            cfg.hpet = _machine_bool(key, v)
        elif key in _MACHINE_BOOLS and key in _QEMU_MACHINE_PROPERTIES[cfg.machine]:
            on = _machine_bool(key, v)
            needs = _MACHINE_BOOLS[key]
            if on and needs is not None:
                raise ConfigError(f"-machine {value}: emu's {cfg.machine} machine does not "
                                  f"model {needs} ({key}=on)")
        elif key.split(".")[0] in _QEMU_MACHINE_PROPERTIES[cfg.machine]:  # or smp.cpus=...
            raise ConfigError(f"-machine {value}: emu does not support the machine "
                              f"property '{key}'")
        else:
            raise ConfigError(f"Property '{_MACHINE_QOM_TYPES[cfg.machine]}.{key}' not found")
    return None


def _machine_bool(key: str, value: str) -> bool:
    """A boolean machine property's value, or QEMU's error."""
    from emu.plugins.devices import parse_bool

    try:
        return parse_bool(value)
    except ValueError:
        raise ConfigError(f"Parameter '{key}' expects 'on' or 'off'") from None


def _memory_option(value: str) -> int:
    """``-m [size=]SIZE[,slots=N,maxmem=SIZE]``: the RAM size, with QEMU's checks of the
    memory-hotplug options (softmmu/vl.c parse_memory_options, hw/core/machine.c
    machine_set_mem). emu has no memory hotplug: maxmem may only equal the RAM size."""
    opts = _keyval(value, "size")
    for key in opts:
        if key not in ("size", "slots", "maxmem"):
            raise ConfigError(f"-m {value}: Invalid parameter '{key}'")
    size = parse_ram_size(value) if "size" in opts else MachineConfig().ram_size
    slots = 0
    if "slots" in opts:
        try:
            slots = int(opts["slots"], 0)
        except ValueError:
            raise ConfigError(f"-m {value}: Parameter 'slots' expects a number") from None
    if "maxmem" not in opts:
        if "slots" in opts:
            raise ConfigError("slots specified but no max-size")
        return size
    try:
        maxmem = parse_size(opts["maxmem"])
    except ValueError:
        raise ConfigError(f"-m {value}: Parameter 'maxmem' expects a non-negative number "
                          "below 2^64") from None
    if maxmem < size:
        raise ConfigError(f"invalid value of maxmem: maximum memory size (0x{maxmem:x}) must "
                          f"be at least the initial memory size (0x{size:x})")
    if slots and maxmem == size:
        raise ConfigError("invalid value of maxmem: memory slots were specified but maximum "
                          f"memory size (0x{maxmem:x}) is equal to the initial memory size "
                          f"(0x{size:x})")
    if maxmem > size:
        raise ConfigError(f"-m {value}: emu has no memory hotplug: maxmem must equal the RAM "
                          "size")
    return size


def _keyval(value: str, implied: str) -> dict[str, str]:
    """QemuOpts syntax: ``[implied=]v,key=value,...`` with ``,,`` for a literal comma."""
    from emu.plugins.devices import split_device_spec

    first, rest = split_device_spec(value)
    return {implied: first, **rest} if first else rest


def _parse_fw_cfg(value: str) -> FwCfgFileSpec:
    opts = _keyval(value, "name")
    unknown = set(opts) - {"name", "file", "string"}
    if unknown:
        raise ConfigError(f"-fw_cfg {value}: Invalid parameter '{sorted(unknown)[0]}'")
    return FwCfgFileSpec(value, opts.get("name", ""), opts.get("file") or None,
                         opts.get("string") or None)


def _parse_global(cfg: MachineConfig, value: str) -> None:
    """``-global DRIVER.PROP=VALUE`` for the fw_cfg properties QEMU has."""
    from emu.plugins.devices import parse_bool, parse_uint

    target, eq, v = value.partition("=")
    driver, _, prop = target.partition(".")
    if not eq or not prop:
        raise ConfigError(f"-global {value}: expects DRIVER.PROPERTY=VALUE")
    if driver not in ("fw_cfg", "fw_cfg_io", "fw_cfg_mem"):
        raise ConfigError(f"-global {value}: emu has no global properties for '{driver}'")
    try:
        if prop == "dma_enabled":
            cfg.fw_cfg_dma = parse_bool(v)
        elif prop == "x-file-slots":
            cfg.fw_cfg_file_slots = parse_uint(v)
        else:
            raise ConfigError(f"-global {value}: Property '{driver}.{prop}' not found")
    except ValueError as e:
        raise ConfigError(f"-global {value}: Property '{driver}.{prop}' expects {e}") from None


def _parse_action(cfg: MachineConfig, value: str) -> None:
    """``-action panic=shutdown|pause|exit-failure|none`` (other actions: QEMU's defaults)."""
    for key, v in _keyval(value, "").items():
        if key == "panic":
            if v not in ("shutdown", "pause", "exit-failure", "none", "poweroff"):
                raise ConfigError(f"-action {value}: Parameter 'panic' does not accept "
                                  f"value '{v}'")
            cfg.panic_action = "shutdown" if v == "poweroff" else v
        elif key in ("reboot", "shutdown", "watchdog"):
            continue
        else:
            raise ConfigError(f"-action {value}: Invalid parameter '{key}'")


def _parse_boot(cfg: MachineConfig, value: str) -> None:
    for key, v in _keyval(value, "order").items():
        if key == "menu":
            if v not in ("on", "off"):
                raise ConfigError(f"-boot {value}: Parameter 'menu' expects 'on' or 'off'")
            cfg.boot_menu = v == "on"
        elif key in ("reboot-timeout", "splash-time"):
            try:
                number = int(v, 0)
            except ValueError:
                raise ConfigError(f"-boot {value}: Parameter '{key}' expects a number") from None
            if key == "reboot-timeout":
                if number != -1 and not 0 <= number <= 0xFFFF:
                    raise ConfigError("reboot timeout is invalid,it should be a value between "
                                      "-1 and 65535")
                cfg.reboot_timeout = number
            else:
                if not 0 <= number <= 0xFFFF:
                    raise ConfigError("splash-time is invalid,it should be a value between 0 "
                                      "and 65535")
                cfg.splash_time = number
        elif key == "order":
            cfg.boot_order = v
        elif key == "once":
            cfg.boot_once = v
        elif key not in ("strict", "splash"):
            raise ConfigError(f"-boot {value}: Invalid parameter '{key}'")


def _parse_rtc(value: str) -> None:
    """``-rtc``: emu's RTC keeps UTC on the virtual clock (QEMU's ``base=utc,clock=vm``)."""
    for key, v in _keyval(value, "base").items():
        if key not in ("base", "clock", "driftfix"):
            raise ConfigError(f"-rtc {value}: Invalid parameter '{key}'")
        if (key, v) not in (("base", "utc"), ("clock", "vm"), ("driftfix", "none")):
            raise ConfigError(f"-rtc {value}: emu's RTC offers base=utc, clock=vm and "
                              f"driftfix=none only")


def _parse_icount(value: str) -> tuple[int, bool]:
    """``-icount [shift=]N[,sleep=on|off][,align=on|off]`` (QEMU's icount_configure):
    virtual time advances 2^N ns per executed instruction. (shift=auto adapts the shift to
    host time, and rr= records or replays: emu has neither.)"""
    opts = _keyval(value, "shift")
    for key in opts:
        if key not in ("shift", "sleep", "align", "rr", "rrfile", "rrsnapshot"):
            raise ConfigError(f"-icount {value}: Invalid parameter '{key}'")
    for key in ("sleep", "align"):
        if opts.get(key, "on") not in ("on", "off"):
            raise ConfigError(f"-icount {value}: Parameter '{key}' expects 'on' or 'off'")
    if "rr" in opts:
        if "rrfile" not in opts:
            raise ConfigError(f"-icount {value}: File name not specified for replay")
        raise ConfigError(f"-icount {value}: emu has no record/replay")
    shift = opts.get("shift", "")
    if shift == "auto":
        raise ConfigError(f"-icount {value}: emu has no adaptive shift (shift=auto): "
                          "give shift=0..10")
    if not shift.isdigit() or int(shift) > 10:
        raise ConfigError(f"-icount {value}: icount: Invalid shift value")
    return int(shift), opts.get("sleep", "on") == "on"


def _parse_smp(value: str) -> tuple[int, int]:
    count: int | None = None
    maxcpus: int | None = None
    for key, v in _keyval(value, "cpus").items():
        try:
            n = int(v)
        except ValueError:
            raise ConfigError(f"-smp {value}: invalid number '{v}'") from None
        if key == "cpus":
            count = n
        elif key == "maxcpus":
            maxcpus = n
        elif key not in ("sockets", "cores", "threads", "dies", "clusters"):
            raise ConfigError(f"-smp {value}: unknown parameter '{key}'")
    count = count or 1
    maxcpus = maxcpus or count
    if count < 1 or maxcpus < count or maxcpus > 255:
        raise ConfigError(f"-smp {value}: invalid CPU count")
    return count, maxcpus


def cpu_help(machine: str | None) -> str:
    """``-cpu help``: the CPU models, in the format of qemu-system-x86_64 (``x86 NAME  DESC``,
    sorted by name with ``max`` last: target/i386/cpu.c x86_cpu_list) for pc and of
    qemu-system-aarch64 (indented names: target/arm/helper.c arm_cpu_list) for virt. Without
    -M: both lists, each under the machine it belongs to."""
    from emu.cpu.arm64 import Arm64Cpu
    from emu.cpu.x86 import X86Cpu

    def x86() -> list[str]:
        names = sorted(n for n in X86Cpu.models if n != "max")
        descs = {"max": "Icelake-Server: the newest model emu's CPU engine provides"}
        return [f"x86 {n:<20s}  {descs.get(n, '')}".rstrip() for n in [*names, "max"]]

    def arm() -> list[str]:
        return [f"  {n}" for n in sorted(Arm64Cpu.models, key=lambda n: f"{n}-arm-cpu")]

    if machine is not None:
        return "\n".join(["Available CPUs:", *(x86() if machine == "pc" else arm())])
    return "\n".join(["Available CPUs on -M pc:", *x86(), "",
                      "Available CPUs on -M virt:", *arm()])


def _device_help(value: str) -> str | None:
    from emu.plugins.devices import split_device_spec
    from emu.plugins.manager import default_manager

    name, props = split_device_spec(value)
    if name == "help" or name == "?":
        types = default_manager().device_types
        lines = ["Devices:"]
        for t in sorted(types.values(), key=lambda t: t.name):
            where = "any machine" if t.machines is None else "/".join(t.machines)
            lines.append(f'name "{t.name}", desc "{t.description}", machines {where}, '
                         f"from {t.source}")
        return "\n".join(lines)
    if "help" in props or "?" in props:
        types = default_manager().device_types
        if name not in types:
            raise ConfigError(f"-device {value}: '{name}' is not a valid device model name")
        return types[name].help_text()
    return None


def run(argv: Sequence[str], err: Callable[[str], None]) -> int:
    """Parse, build, run; returns the exit status. Errors are printed via ``err``."""
    from emu.machine import Machine

    cfg = parse_args(argv)
    if isinstance(cfg, str):
        print(cfg)
        return 0
    machine = Machine(cfg)
    _warn_useless_panic_dump(cfg, err)
    if sys.stderr.isatty():
        machine.dump_progress = _ProgressBar()
    servers = []
    machine.power_on()  # monitors see it running from their first command (or -S paused)
    try:
        for address in cfg.qmp:
            from emu.qmp.server import QmpServer

            servers.append(QmpServer(machine, address))
        if cfg.gdb:  # QEMU starts one stub: the last -gdb/-s (gdbserver_start resets it)
            from emu.gdbstub.server import GdbServer

            servers.append(GdbServer(machine, cfg.gdb[-1]))  # started with the others
        if not _start_servers(servers, err):  # a signal while waiting for a QMP client
            if cfg.dump_on_exit:
                err("--dump-on-exit: no dump: the guest never ran")
            return 0
        from emu.monitor.mux import start_terminal

        servers.append(start_terminal(machine))  # -monitor stdio, -serial [mon:]stdio input
        if cfg.qtest:
            from emu.qtest.server import QTestServer

            qtest = QTestServer(machine, cfg.qtest, cfg.qtest_log)
            servers.append(qtest)
            qtest.start_serving()
        status = _run_with_signals(machine, err)
        if machine.fatal is not None:
            err(f"fatal: {machine.fatal}")
        if cfg.dump_on_exit:  # however the run ended: the guest, a fatal CPU state, a signal
            status = _dump(machine, cfg.dump_on_exit, err, status)
        if machine.panic_dump is not None:
            status = _report_dump(machine.panic_dump, err, status)
    finally:
        for server in servers:
            server.close()
        machine.close()
    return status


def _parse_dump_format(value: str) -> str:
    """``--dump-format FORMAT``: a format emu can write here."""
    from emu.dump.guest import FORMATS, available_formats
    from emu.dump.kdump import kdump_format

    if value not in FORMATS:
        raise ConfigError(f"--dump-format {value}: unknown format (formats: "
                          f"{', '.join(FORMATS)})")
    kdump = kdump_format(value)
    if kdump is not None and not kdump[0].available():
        raise ConfigError(f"--dump-format {value}: {value} is not available now (its Python "
                          f"module '{kdump[0].module}' is missing; available: "
                          f"{', '.join(available_formats())})")
    return value


def _warn_useless_panic_dump(cfg: MachineConfig, err: Callable[[str], None]) -> None:
    """``--dump-on-panic`` fires when the guest reports a panic through pvpanic: without
    the device it never can (and the virt machine has none)."""
    from emu.plugins.devices import split_device_spec

    if cfg.dump_on_panic is None:
        return
    if cfg.machine == "virt":
        err("warning: --dump-on-panic: the virt machine has no pvpanic device, so it can "
            "never fire")
    elif not any(split_device_spec(d.spec)[0] == "pvpanic" for d in cfg.devices):
        err("warning: --dump-on-panic: there is no pvpanic device (-device pvpanic), so it "
            "can never fire")


def _dump(machine: Machine, path: str, err: Callable[[str], None], status: int) -> int:
    """Save the dump asked for on the command line; a failure is reported and exits 1.

    The dump is written on a thread of its own while this thread takes the terminating
    signals: the first is reported and the dump finished (emu then exits with 128 + the
    signal, as a process ended by it would); a second ends emu at once."""
    from emu.dump.elf import DumpError

    outcome: list[object] = []

    def write() -> None:
        try:
            outcome.append(machine.dump(path, fmt=machine.config.dump_format,
                                        progress=machine.dump_progress))
        except BaseException as e:  # DumpError is reported below; anything else re-raised
            outcome.append(e)

    writer = threading.Thread(target=write, name="emu-dump", daemon=True)
    writer.start()
    signalled: list[int] = []
    while writer.is_alive():
        info = signal.sigtimedwait(TERMINATING_SIGNALS, 0.1)
        if info is None:
            continue
        if signalled:
            os._exit(128 + info.si_signo)
        err(_signal_message(info))
        signalled.append(info.si_signo)
    result = outcome[0]
    if isinstance(result, BaseException) and not isinstance(result, DumpError):
        raise result
    status = _report_dump(result, err, status)
    return 128 + signalled[0] if signalled else status


class _ProgressBar:
    """A one-line progress bar on stderr for dumps emu takes itself (when it is a terminal)."""

    def __init__(self) -> None:
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if percent == self.shown:
            return
        self.shown = percent
        filled = percent * 30 // 100
        end = "\n" if done >= total else ""
        print(f"\remu: dump [{'#' * filled}{'.' * (30 - filled)}] {percent:3d}% "
              f"{done >> 20}/{total >> 20} MiB", end=end, file=sys.stderr, flush=True)


def _report_dump(result: object, err: Callable[[str], None], status: int) -> int:
    """Report a dump emu took itself: its warnings and one line saying what was saved (path,
    size, notes), or its failure (then exit status 1)."""
    from emu.dump import DumpResult
    from emu.dump.elf import DumpError

    if isinstance(result, DumpError):
        err(f"dump failed: {result}")
        return 1
    for warning in getattr(result, "warnings", []):
        err(f"warning: {warning}")
    if isinstance(result, DumpResult):
        size = (f"{result.size} bytes" if result.size < 1 << 20 else
                f"{result.size / (1 << 20):.1f} MiB")
        notes = ", ".join(result.notes) or "none"
        err(f"dump saved to {result.path} ({size}, notes: {notes})")
    return status


#: the signals that end emu with QEMU's message (os-posix.c os_setup_signal_handling)
TERMINATING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Block the terminating signals before emu starts any thread, so that every thread
    inherits the mask and they wait for :func:`_run_with_signals`; ignore SIGUSR1, as QEMU
    does (it keeps SIGUSR1 for itself). A signal that comes while emu is already ending (a
    second ^C during the dump) is dropped, as QEMU, already shutting down, drops it."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, TERMINATING_SIGNALS)
    usr1 = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        yield
    finally:
        while signal.sigtimedwait(TERMINATING_SIGNALS, 0) is not None:
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGUSR1, usr1)


def _signal_message(info: signal.struct_siginfo) -> str:
    """QEMU's words for a terminating signal (softmmu/runstate.c qemu_system_killed): the
    sender's pid and its name, argv[0] from /proc/PID/cmdline (util/oslib-posix.c
    qemu_get_pid_name), unless the kernel sent it (a ^C at the terminal: pid 0)."""
    if not info.si_pid:
        return f"terminating on signal {info.si_signo}"
    try:
        with open(f"/proc/{info.si_pid}/cmdline", "rb") as f:
            name = f.read().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        name = "<unknown process>"
    return f"terminating on signal {info.si_signo} from pid {info.si_pid} ({name})"


def _start_servers(servers: Sequence[Any], err: Callable[[str], None]) -> bool:
    """Start the QMP servers in order, each with ``wait=on`` waiting for its client after
    saying so; False if a terminating signal came first (reported as QEMU reports it, after
    the waiting line). This thread waits with sigtimedwait, since every thread blocks the
    signals."""
    for server in servers:
        message = server.start(block=False)
        if message is None:
            continue
        print(message, file=sys.stderr, flush=True)
        while not server.connected:
            info = signal.sigtimedwait(TERMINATING_SIGNALS, 0.1)
            if info is not None:
                err(_signal_message(info))
                return False
    return True


def _run_with_signals(machine: Machine, err: Callable[[str], None]) -> int:
    """Run the machine on its own thread while this (main) thread takes signals.

    The terminating signals are blocked in every thread (:func:`main` blocks them before any
    thread starts) and taken here with sigtimedwait, which tells who sent them: emu prints
    QEMU's message, with the sender's pid, and ends the machine, as QEMU does.
    """
    result: list[int] = []
    failure: list[BaseException] = []

    def run_machine() -> None:
        try:
            result.append(machine.run())
        except BaseException as e:  # a bug in emu: reported by main(), in one line
            failure.append(e)

    thread = threading.Thread(target=run_machine, name="emu-cpu", daemon=True)
    thread.start()
    while thread.is_alive():
        info = signal.sigtimedwait(TERMINATING_SIGNALS, 0.1)
        if info is None:
            continue
        err(_signal_message(info))
        machine.quit(0)
        thread.join(2.0)  # the CPU returns at once unless the engine is wedged
        # a dump in progress (through QMP) is finished first, unless a second signal insists
        while thread.is_alive() and machine.dumping:
            if signal.sigtimedwait(TERMINATING_SIGNALS, 0.1) is not None:
                break
        else:
            thread.join(2.0)  # the dump is over: the CPU thread ends now
        if thread.is_alive():
            if machine.config.dump_on_exit:
                err("--dump-on-exit: no dump: the CPU did not stop")
            os._exit(0)
    if failure:
        if machine.config.dump_on_exit:
            err("--dump-on-exit: no dump: emu failed while running the machine")
        raise failure[0]
    return result[0] if result else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)

    def err(msg: str) -> None:
        print(f"emu: {msg}", file=sys.stderr, flush=True)

    try:
        if args and args[0] == "dump-info":
            from emu.dump.info import main as dump_info_main

            return dump_info_main(args[1:], err)
        with _signals_held():
            return run(args, err)
    except ConfigError as e:
        err(str(e))
        return 1
    except KeyboardInterrupt:
        err("terminating on signal 2")
        return 0
    except Exception as e:  # a bug in emu itself: one line, the traceback only on request
        if os.environ.get("EMU_DEBUG"):
            raise
        err(f"internal error: {type(e).__name__}: {e} (set EMU_DEBUG=1 for a traceback)")
        return 70
