"""Machine queries (QEMU 7.2 qapi/machine.json, qapi/misc.json, qapi/char.json).

``query-name``, ``query-target``, ``query-kvm``, ``query-current-machine``,
``query-machines``, ``query-cpus-fast``, ``query-memory-size-summary`` and
``query-chardev``: the same members as QEMU's, with emu's values. Where emu is not QEMU
the answer says what emu is: no KVM (``present`` false), no ACPI to wake a suspended
guest, one emulated CPU, the boards of the running architecture only, no parallel port.
"""

from __future__ import annotations

import socket
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

from emu.qmp.commands import CPU_WAIT_S, QmpError
from emu.qmp.qapi import Array, CommandDef, Enum, Member, Struct, command

if TYPE_CHECKING:
    from emu.machine import Machine
    from emu.qmp.server import QmpServer

#: QEMU 7.2's SysEmuTarget (qapi/machine.json)
SYS_EMU_TARGET = Enum("SysEmuTarget", (
    "aarch64", "alpha", "arm", "avr", "cris", "hppa", "i386", "loongarch64", "m68k",
    "microblaze", "microblazeel", "mips", "mips64", "mips64el", "mipsel", "nios2", "or1k",
    "ppc", "ppc64", "riscv32", "riscv64", "rx", "s390x", "sh4", "sh4eb", "sparc", "sparc64",
    "tricore", "x86_64", "xtensa", "xtensaeb"))

#: machine type name and alias per board (hw/i386/pc_piix.c, hw/arm/virt.c for 7.2)
MACHINE_TYPES = {"pc": ("pc-i440fx-7.2", "pc.ram"), "virt": ("virt-7.2", "mach-virt.ram")}


def machine_type(machine: Machine) -> str:
    """QEMU's versioned machine type name (``pc-i440fx-7.2``, ``virt-7.2``)."""
    return MACHINE_TYPES[machine.board.name][0]


def cpu_type(arch: str, model: str) -> str:
    """QEMU's QOM type of a CPU model: ``qemu64-x86_64-cpu``, ``cortex-a57-arm-cpu``."""
    return f"{model}-x86_64-cpu" if arch == "x86_64" else f"{model}-arm-cpu"


CPU_QOM_PATH = "/machine/unattached/device[0]"


@command("query-name", returns=Struct("NameInfo", (Member("name", "str", True),)))
def query_name(server: QmpServer, args: dict[str, Any]) -> Any:
    """The ``-name`` given on the command line (QEMU answers ``{}`` without one)."""
    name = server.machine.config.name
    return {"name": name} if name else {}


@command("query-target", returns=Struct("TargetInfo", (Member("arch", SYS_EMU_TARGET),)))
def query_target(server: QmpServer, args: dict[str, Any]) -> Any:
    return {"arch": server.machine.arch}


@command("query-kvm", returns=Struct("KvmInfo", (Member("enabled", "bool"),
                                                 Member("present", "bool"))))
def query_kvm(server: QmpServer, args: dict[str, Any]) -> Any:
    """emu runs guests on Unicorn's TCG only: KVM is neither enabled nor present."""
    return {"enabled": False, "present": False}


@command("query-current-machine",
         returns=Struct("CurrentMachineParams", (Member("wakeup-suspend-support", "bool"),)))
def query_current_machine(server: QmpServer, args: dict[str, Any]) -> Any:
    """QEMU's pc says true because its ACPI PM device can wake the guest from S3; emu has
    no ACPI, so no machine of emu's can be woken from suspend."""
    return {"wakeup-suspend-support": False}


MACHINE_INFO = Struct("MachineInfo", (
    Member("name", "str"), Member("alias", "str", True), Member("is-default", "bool", True),
    Member("cpu-max", "int"), Member("hotpluggable-cpus", "bool"),
    Member("numa-mem-supported", "bool"), Member("deprecated", "bool"),
    Member("default-cpu-type", "str", True), Member("default-ram-id", "str", True)))


@command("query-machines", returns=Array(MACHINE_INFO))
def query_machines(server: QmpServer, args: dict[str, Any]) -> Any:
    """The boards of the running architecture, as ``qemu-system-<arch>`` lists its own.
    ``cpu-max`` is what ``-smp`` accepts; emu has no default machine (``-M`` is required),
    so no entry is ``is-default``."""
    from emu.boards import board_class

    m = server.machine
    result = []
    for alias, (name, ram_id) in MACHINE_TYPES.items():
        board = board_class(alias)
        if board.arch != m.arch:
            continue
        result.append({"name": name, "alias": alias, "cpu-max": 255,
                       "hotpluggable-cpus": False, "numa-mem-supported": False,
                       "deprecated": False,
                       "default-cpu-type": cpu_type(board.arch, _default_model(board.arch)),
                       "default-ram-id": ram_id})
    return result


def _default_model(arch: str) -> str:
    if arch == "x86_64":
        from emu.cpu.x86 import X86Cpu

        return X86Cpu.default_model
    from emu.cpu.arm64 import Arm64Cpu

    return Arm64Cpu.default_model


CPU_INSTANCE_PROPERTIES = Struct("CpuInstanceProperties", tuple(
    Member(n, "int", True) for n in ("node-id", "socket-id", "die-id", "cluster-id", "core-id",
                                     "thread-id")))
CPU_INFO_FAST = Struct(
    "CpuInfoFast",
    (Member("cpu-index", "int"), Member("qom-path", "str"), Member("thread-id", "int"),
     Member("props", CPU_INSTANCE_PROPERTIES, True), Member("target", SYS_EMU_TARGET)),
    tag="target",
    # as QEMU's: only s390x CPUs carry more (emu never reports one)
    variants=tuple((t, Struct("CpuInfoS390", (Member("cpu-state", Enum("CpuS390State", (
        "uninitialized", "stopped", "check-stop", "operating", "load"))),)))
                   if t == "s390x" else (t, Struct("empty")) for t in SYS_EMU_TARGET.values))

_thread_ids: weakref.WeakKeyDictionary[Machine, int] = weakref.WeakKeyDictionary()


def _running_thread(m: Machine) -> int | None:
    """The native id of the thread inside ``m.run()``, found from the threads' Python
    stacks (that thread may be in the CPU engine for a long time, and need not answer)."""
    from emu.machine import Machine

    native = {t.ident: t.native_id for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        f: Any = frame
        while f is not None:
            if f.f_code is Machine.run.__code__ and f.f_locals.get("self") is m:
                return native.get(ident)
            f = f.f_back
    return None


def machine_thread_id(server: QmpServer) -> int:
    """The host thread id of the thread running the CPU (QEMU: the vCPU thread)."""
    m = server.machine
    tid = _thread_ids.get(m)
    if tid is None:
        tid = _running_thread(m)
    if tid is None:  # not running yet: ask the machine's thread when it starts serving
        fut = m.call_soon(threading.get_native_id)
        try:
            tid = fut.result(timeout=CPU_WAIT_S)
        except TimeoutError:
            fut.cancel()
            raise QmpError("the machine's thread has not started") from None
    _thread_ids[m] = tid
    return tid


@command("query-cpus-fast", returns=Array(CPU_INFO_FAST))
def query_cpus_fast(server: QmpServer, args: dict[str, Any]) -> Any:
    """One CPU, as QEMU shows the first CPU of pc (socket/core/thread) and virt (with the
    cluster) when ``-smp`` gives one."""
    m = server.machine
    props = {"socket-id": 0, "core-id": 0, "thread-id": 0}
    if m.arch == "aarch64":
        props["cluster-id"] = 0
    return [{"cpu-index": 0, "qom-path": CPU_QOM_PATH, "thread-id": machine_thread_id(server),
             "props": props, "target": m.arch}]


@command("query-memory-size-summary", returns=Struct("MemoryInfo", (
    Member("base-memory", "int"), Member("plugged-memory", "int", True))))
def query_memory_size_summary(server: QmpServer, args: dict[str, Any]) -> Any:
    """Boot memory; nothing can be hot-plugged in emu, so ``plugged-memory`` is 0 (QEMU
    gives the member on both machines, which have a device-memory region)."""
    return {"base-memory": server.machine.address_space.ram_size, "plugged-memory": 0}


CHARDEV_INFO = Struct("ChardevInfo", (Member("label", "str"), Member("filename", "str"),
                                      Member("frontend-open", "bool")))


def _socket_filename(server: Any) -> str:
    """QEMU's chardev filename of a monitor socket (chardev/char-socket.c
    qemu_chr_compute_filename / SocketAddress_to_str)."""
    a = server.address
    client: socket.socket | None = server._client
    if a.kind == "unix":
        name = f"unix:{a.path},server=on"
        return name if client is not None else f"disconnected:{name}"
    if client is None:
        return f"disconnected:tcp:{a.host}:{a.port},server=on"
    try:
        local, peer = client.getsockname(), client.getpeername()
    except OSError:
        return f"disconnected:tcp:{a.host}:{a.port},server=on"

    def host(h: str) -> str:
        return f"[{h}]" if ":" in h else h

    return f"tcp:{host(local[0])}:{local[1]},server=on <-> {host(peer[0])}:{peer[1]}"


def monitor_servers(machine: Machine) -> list[Any]:
    """The QMP servers of ``machine``, in ``-qmp`` order (each registered its event
    listener on the machine when it was created)."""
    from emu.qmp.server import QmpServer

    return [fn.__self__ for fn in machine.listeners
            if isinstance(getattr(fn, "__self__", None), QmpServer)]


def chardevs(machine: Machine) -> list[dict[str, Any]]:
    """The chardevs emu has: one per ``-serial`` backend (``none`` makes none, as in QEMU)
    and one per ``-qmp`` monitor, with QEMU's labels and filenames."""
    result = []
    for i, spec in enumerate(machine.config.serial_backends()):
        if spec == "none":
            continue
        filename = "file" if spec.startswith("file:") else spec
        result.append({"label": f"serial{i}", "filename": filename, "frontend-open": True})
    for i, server in enumerate(monitor_servers(machine)):
        result.append({"label": f"compat_monitor{i}", "filename": _socket_filename(server),
                       "frontend-open": True})
    return result


@command("query-chardev", returns=Array(CHARDEV_INFO))
def query_chardev(server: QmpServer, args: dict[str, Any]) -> Any:
    """QEMU also lists a ``parallel0`` chardev (``vc``) under ``-display none``: emu has
    no parallel port and no virtual console."""
    return chardevs(server.machine)


COMMANDS: list[CommandDef] = [query_name, query_target, query_kvm, query_current_machine,
                              query_machines, query_cpus_fast, query_memory_size_summary,
                              query_chardev]
