"""``qom-list`` and ``qom-get`` (QEMU 7.2 qapi/qom.json; qom/qom-qmp-cmds.c, qom/object.c
object_resolve_path_type) over the part of QEMU's object tree that emu has.

emu has no object model of its own: the tree is built from the machine at each call, with
QEMU's paths, type names and property types for what emu emulates:

- ``/`` (``container``): ``machine``, ``chardevs``, ``objects``, ``backend``;
- ``/machine`` (``pc-i440fx-7.2-machine``, ``virt-7.2-machine``): ``kernel``, ``append``,
  ``initrd``, ``firmware``, ``memory``, ``smp``, ``graphics``; children ``unattached``
  (the CPU at ``device[0]``), ``peripheral`` (empty: emu's ``-device`` takes no ``id=``),
  ``peripheral-anon`` (each ``-device`` as ``device[N]`` in command-line order, with its
  properties) and ``fw_cfg`` (``fw_cfg_io`` / ``fw_cfg_mem`` with ``dma_enabled`` and
  ``x-file-slots``);
- ``/chardevs``: the serial and monitor chardevs (query-chardev's labels).

Not shown, because emu does not model them: the many other properties of the machine and
CPU objects, QEMU's other built-in devices under ``/machine/unattached`` (interrupt
controllers, buses, memory regions...), bus links (``parent_bus``), ``/objects/pc.ram``
and the consoles under ``/backend``.

Paths: absolute (``/machine/fw_cfg``; empty components are skipped) or partial
(``fw_cfg``: the one object whose path ends so; ``Path 'X' is ambiguous`` if several).
``qom-get`` of a ``child<>`` property gives the child's path, as QEMU's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emu.qmp.commands import QmpError
from emu.qmp.qapi import Array, Member, Struct, args, command
from emu.qmp.query import chardevs, cpu_type, machine_type

if TYPE_CHECKING:
    from emu.machine import Machine
    from emu.qmp.server import QmpServer

#: QEMU's property types of the built-in devices' -device properties; a plugin device's
#: properties are typed from their default value
DEVICE_PROPERTY_TYPES = {("isa-debug-exit", "iobase"): "uint32",
                         ("isa-debug-exit", "iosize"): "uint32",
                         ("pvpanic", "ioport"): "uint16"}


@dataclass
class Prop:
    type: str
    get: Callable[[], Any]


@dataclass
class Obj:
    """One object: its QOM type, properties and children (in QEMU's property order)."""

    type: str
    props: dict[str, Prop] = field(default_factory=dict)
    children: dict[str, Obj] = field(default_factory=dict)

    def walk(self, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Obj]]:
        yield path, self
        for name, child in self.children.items():
            yield from child.walk((*path, name))


def _container(**children: Obj) -> Obj:
    return Obj("container", children=dict(children))


def _const(value: Any) -> Callable[[], Any]:
    return lambda: value


def _qom_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "uint64" if value >= 0 else "int64"
    return "str"


def _devices(m: Machine) -> Obj:
    anon = _container()
    types = m.plugins.device_types
    from emu.plugins.devices import split_device_spec

    for i, (spec, _device) in enumerate(zip(m.config.devices, m.devices, strict=False)):
        name, raw = split_device_spec(spec.spec)
        dtype = types[name]
        values = dtype.parse(spec.spec, raw)
        obj = Obj(name, {"realized": Prop("bool", _const(True)),
                         "hotplugged": Prop("bool", _const(False))})
        for key, value in values.items():
            obj.props[key] = Prop(DEVICE_PROPERTY_TYPES.get((name, key), _qom_type(value)),
                                  _const(value))
        anon.children[f"device[{i}]"] = obj
    return anon


def _machine(m: Machine) -> Obj:
    cfg = m.config
    cpu = Obj(cpu_type(m.arch, m.cpu.model), {
        "realized": Prop("bool", _const(True)), "hotplugged": Prop("bool", _const(False)),
        "start-powered-off": Prop("bool", _const(False))})
    fw_cfg = Obj("fw_cfg_io" if m.arch == "x86_64" else "fw_cfg_mem", {
        "realized": Prop("bool", _const(True)), "hotplugged": Prop("bool", _const(False)),
        "x-file-slots": Prop("uint16", _const(cfg.fw_cfg_file_slots)),
        "dma_enabled": Prop("bool", _const(cfg.fw_cfg_dma))})
    sockets = cfg.max_cpus
    return Obj(f"{machine_type(m)}-machine", {
        "kernel": Prop("string", _const(cfg.kernel or "")),
        "memory": Prop("MemorySizeConfiguration", _const({"size": m.address_space.ram_size})),
        "initrd": Prop("string", _const(cfg.initrd or "")),
        "graphics": Prop("bool", _const(not cfg.nographic)),
        "firmware": Prop("string", _const(cfg.bios or "")),
        "smp": Prop("SMPConfiguration", _const({
            "cpus": cfg.smp, "maxcpus": cfg.max_cpus, "threads": 1, "cores": 1, "dies": 1,
            "sockets": sockets, "clusters": 1})),
        "append": Prop("string", _const(cfg.append)),
    }, {"unattached": _container(**{"device[0]": cpu}), "fw_cfg": fw_cfg,
        "peripheral-anon": _devices(m), "peripheral": _container()})


CHARDEV_TYPES = {"stdio": "chardev-stdio", "file": "chardev-file", "null": "chardev-null"}


def _chardevs(m: Machine) -> Obj:
    result = _container()
    for info in chardevs(m):
        name = info["filename"]
        if info["label"].startswith("compat_monitor"):
            connected = not name.startswith("disconnected:")
            obj = Obj("chardev-socket", {"connected": Prop("bool", _const(connected))})
        else:
            obj = Obj(CHARDEV_TYPES[name])
        result.children[info["label"]] = obj
    return result


def tree(m: Machine) -> Obj:
    """The object tree of ``m``, as far as emu has one."""
    return _container(machine=_machine(m), chardevs=_chardevs(m), objects=_container(),
                      backend=_container())


def resolve(m: Machine, path: str) -> tuple[str, Obj]:
    """The object at ``path`` and its canonical path, with QEMU's errors."""
    root = tree(m)
    parts = tuple(p for p in path.split("/") if p)
    if path.startswith("/"):
        obj: Obj | None = root
        for p in parts:
            obj = obj.children.get(p) if obj is not None else None
        if obj is None:
            raise QmpError(f"Device '{path}' not found", "DeviceNotFound")
        return "/" + "/".join(parts), obj
    found = [(p, o) for p, o in root.walk() if p[len(p) - len(parts):] == parts
             and len(p) >= len(parts)]
    if len(found) > 1:
        raise QmpError(f"Path '{path}' is ambiguous")
    if not found:
        raise QmpError(f"Device '{path}' not found", "DeviceNotFound")
    return "/" + "/".join(found[0][0]), found[0][1]


OBJECT_PROPERTY_INFO = Struct("ObjectPropertyInfo", (
    Member("name", "str"), Member("type", "str"), Member("description", "str", True),
    Member("default-value", "any", True)))


@command("qom-list", args("qom-list", Member("path", "str")),
         returns=Array(OBJECT_PROPERTY_INFO))
def qom_list(server: QmpServer, a: dict[str, Any]) -> Any:
    _, obj = resolve(server.machine, a["path"])
    result = [{"name": "type", "type": "string"}]
    result += [{"name": k, "type": p.type} for k, p in obj.props.items()]
    result += [{"name": k, "type": f"child<{c.type}>"} for k, c in obj.children.items()]
    return result


@command("qom-get", args("qom-get", Member("path", "str"), Member("property", "str")),
         returns="any")
def qom_get(server: QmpServer, a: dict[str, Any]) -> Any:
    where, obj = resolve(server.machine, a["path"])
    name = a["property"]
    if name == "type":
        return obj.type
    if name in obj.props:
        return obj.props[name].get()
    if name in obj.children:
        return f"{where.rstrip('/')}/{name}"
    raise QmpError(f"Property '{obj.type}.{name}' not found")


COMMANDS = [qom_list, qom_get]
