"""The ``emu`` command line: QEMU's options, turned into a MachineConfig and run.

Options are spelled as in ``qemu-system-*`` (single dash; a double dash works too). Every
mistake is one line on stderr in QEMU's style, ``emu: -m foo: invalid RAM size``, and exit
status 1. Exit statuses: what the guest asked for (isa-debug-exit ``(v << 1) | 1``, 0 on
power-off), 1 for a usage error, 2 when the guest put the CPU into a state emu cannot
continue from (the reason and PC are printed).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from emu import __version__, trace
from emu.config import DeviceSpec, FwCfgFileSpec, MachineConfig, parse_ram_size
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
  -serial SPEC             stdio, file:PATH or none (repeatable, COM1 first)
  -device NAME[,k=v...]    add a device ('-device help' lists them)
  -nographic               no display; serial on stdio
  -display none            no display
  -nodefaults              no default devices
  -no-reboot               exit instead of resetting when the guest resets
  -uuid UUID               system UUID
  -fw_cfg [name=]N,file=F  add fw_cfg file N with the contents of F (or string=TEXT)
  -boot menu=on|off,reboot-timeout=N,splash-time=N
                           boot settings firmware reads from fw_cfg
  -global fw_cfg.P=V       fw_cfg properties: dma_enabled=on|off, x-file-slots=N
  -trace PATTERN           enable trace events matching PATTERN (e.g. 'fw_cfg_*')
  -S                       do not start the CPU until a monitor says 'cont'
  -qtest unix:PATH|stdio   answer qtest commands (QEMU's device-test protocol)
  -qtest-log FILE          log the qtest conversation
  -accel tcg|qtest         qtest: the CPU never runs, only qtest drives the devices
  -qmp unix:PATH,server=on,wait=off | tcp:HOST:PORT,server=on,wait=off
                           QMP monitor (wait=on: wait for a client before starting)

emu options:
  --direct-boot            load the -kernel and enter it directly, without firmware
  --dump-on-exit PATH      when the guest exits or powers off, save an ELF core dump to PATH
  --dump-on-panic PATH     when the guest reports a panic (pvpanic), save a dump to PATH
  -action panic=A          on a guest panic: shutdown (default), pause, exit-failure, none
  -version                 print the version and exit
  -h, -help                print this help and exit
"""

#: options that take an argument
_WITH_ARG = {"M", "machine", "m", "cpu", "smp", "kernel", "append", "initrd", "bios",
             "serial", "device",
             "display", "uuid", "trace", "name", "accel", "fw_cfg", "boot", "global",
             "dump-on-exit", "qmp", "dump-on-panic", "action", "qtest", "qtest-log"}
_FLAGS = {"nographic", "nodefaults", "no-reboot", "no-shutdown", "S", "version", "h", "help",
          "direct-boot"}


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
            elif name == "direct-boot":
                cfg.direct_boot = True
            continue
        if name not in _WITH_ARG:
            raise ConfigError(f"-{name}: invalid option")
        if i + 1 >= len(argv):
            raise ConfigError(f"-{name}: requires an argument")
        value = argv[i + 1]
        i += 2
        opt = f"-{name}"
        if name in ("M", "machine"):
            text = _machine_option(cfg, value)
            if text:
                return text
            machine_seen = True
        elif name == "m":
            cfg.ram_size = parse_ram_size(value)
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
        elif name == "fw_cfg":
            cfg.fw_cfg_files.append(_parse_fw_cfg(value))
        elif name == "boot":
            _parse_boot(cfg, value)
        elif name == "qmp":
            from emu.qmp.server import parse_qmp_option

            cfg.qmp.append(parse_qmp_option(value))
        elif name == "dump-on-panic":
            cfg.dump_on_panic = value
        elif name == "action":
            _parse_action(cfg, value)
        elif name == "dump-on-exit":
            cfg.dump_on_exit = value
        elif name == "global":
            _parse_global(cfg, value)
        elif name == "accel":
            accel = value.split(",")[0]
            if accel not in ("tcg", "qtest"):
                raise ConfigError(f"{opt} {value}: emu provides the tcg and qtest accelerators")
            cfg.accel = accel
        elif name == "qtest":
            cfg.qtest = value
        elif name == "qtest-log":
            from emu.qtest.server import qtest_log_path

            cfg.qtest_log = qtest_log_path(value)
        # -name is accepted and ignored, as a label only
    if not machine_seen:
        raise ConfigError("no machine given: use -M pc (x86_64) or -M virt (aarch64)")
    if cfg.direct_boot and cfg.bios is not None:
        raise ConfigError("--direct-boot runs no firmware: it cannot be used with -bios")
    if cfg.initrd is not None and cfg.kernel is None:
        raise ConfigError("-initrd only works with -kernel")
    return cfg


def _machine_option(cfg: MachineConfig, value: str) -> str | None:
    opts = _keyval(value, "type")
    name = opts.get("type", "")
    if "accel" in opts:
        if opts["accel"] not in ("tcg", "qtest"):
            raise ConfigError(f"-machine {value}: emu provides the tcg and qtest accelerators")
        cfg.accel = opts["accel"]
    if name == "help":
        from emu.boards import machine_help
        return machine_help()
    from emu.boards import board_class
    cfg.machine = board_class(name).name
    return None


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
        elif key not in ("order", "once", "strict", "splash"):
            raise ConfigError(f"-boot {value}: Invalid parameter '{key}'")


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
        t = types[name]
        lines = [f"{name} options:"]
        for key, prop in sorted(t.properties.items()):
            default = f"0x{prop.default:x}" if isinstance(prop.default, int) and not \
                isinstance(prop.default, bool) else prop.default
            lines.append(f"  {key}=<{prop.parse.__name__.removeprefix('parse_')}>"
                         f"  - {prop.help} (default: {default})")
        return "\n".join(lines)
    return None


def run(argv: Sequence[str], err: Callable[[str], None]) -> int:
    """Parse, build, run; returns the exit status. Errors are printed via ``err``."""
    from emu.machine import Machine

    cfg = parse_args(argv)
    if isinstance(cfg, str):
        print(cfg)
        return 0
    machine = Machine(cfg)
    if sys.stderr.isatty():
        machine.dump_progress = _ProgressBar()
    servers = []
    try:
        for address in cfg.qmp:
            from emu.qmp.server import QmpServer

            servers.append(QmpServer(machine, address))
        for server in servers:
            server.start()
        if cfg.qtest:
            from emu.qtest.server import QTestServer

            qtest = QTestServer(machine, cfg.qtest, cfg.qtest_log)
            servers.append(qtest)
            qtest.start_serving()
        status = _run_with_signals(machine, err)
        if cfg.dump_on_exit and machine.exit_reason == "guest":
            status = _dump(machine, cfg.dump_on_exit, err, status)
        if machine.panic_dump is not None:
            status = _report_dump(machine.panic_dump, err, status)
    finally:
        for server in servers:
            server.close()
        machine.close()
    if machine.fatal is not None:
        err(f"fatal: {machine.fatal}")
    return status


def _dump(machine: Machine, path: str, err: Callable[[str], None], status: int) -> int:
    """Save the dump asked for on the command line; a failure is reported and exits 1."""
    from emu.dump.elf import DumpError

    try:
        result: object = machine.dump(path, progress=machine.dump_progress)
    except DumpError as e:
        result = e
    return _report_dump(result, err, status)


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
    """Report a dump emu took itself: its warnings, or its failure (then exit status 1)."""
    from emu.dump.elf import DumpError

    if isinstance(result, DumpError):
        err(f"dump failed: {result}")
        return 1
    for warning in getattr(result, "warnings", []):
        err(f"warning: {warning}")
    return status


def _run_with_signals(machine: Machine, err: Callable[[str], None]) -> int:
    """Run the machine on its own thread so that this (main) thread can take signals.

    Python runs signal handlers on the main thread only, and only between bytecodes; the
    CPU thread spends its time inside the CPU engine. On SIGINT/SIGTERM/SIGHUP emu prints
    QEMU's message and ends the machine, as QEMU does.
    """
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(machine.run()), name="emu-cpu",
                              daemon=True)
    signalled: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        if not signalled:
            err(f"terminating on signal {signum}")
        signalled.append(signum)
        machine.quit(0)

    previous = {sig: signal.signal(sig, on_signal)
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        thread.start()
        while thread.is_alive():
            thread.join(0.1)
            if signalled and thread.is_alive():
                thread.join(2.0)  # the CPU returns at once unless the engine is wedged
                if thread.is_alive():
                    os._exit(0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
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
