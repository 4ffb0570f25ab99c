"""``info mtree``: emu's address spaces in the layout of QEMU's mtree_info (softmmu/memory.c).

Each address space is a root container (``system`` for memory, ``io`` for x86 I/O ports)
with its regions below it, sorted by address, one line each::

    0000000009000000-0000000009000fff (prio 0, i/o): pl011

The priority is the region's (``Region.priority``: 4096 for the pc's local APIC window, as
QEMU maps it over everything; 0 for the others). The kind is ``ram`` for RAM blocks, ``rom``
for read-only memory that dumps include (QEMU's ROM-backed RAM such as the pc BIOS), ``romd``
for ROM devices (the virt flash) and ``i/o`` for device registers. emu maps each RAM block
directly, so there are no alias regions and no ``memory-region:`` sections; QEMU's containers
for buses emu does not model (pci) are absent too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emu.machine import Machine

_ROOT_MEMORY = (0, (1 << 64) - 1)


def _line(depth: int, start: int, end: int, kind: str, name: str, prio: int = 0) -> str:
    return f"{'':{depth * 2 + 2}s}{start:016x}-{end:016x} (prio {prio}, {kind}): {name}\n"


def memory_tree(machine: Machine) -> str:
    """The text of ``info mtree`` for ``machine``."""
    regions: list[tuple[int, int, str, str, int]] = []
    for block in machine.address_space.blocks:
        regions.append((block.base, block.end - 1, "ram", block.name, 0))
    dumped = {id(b) for b in machine.dump_blocks}
    for block in machine.roms:
        kind = "rom" if id(block) in dumped else "romd"
        regions.append((block.base, block.end - 1, kind, block.name, 0))
    for m in machine.mmio_bus.mappings:
        regions.append((m.base, m.end - 1, "i/o", m.region.name, m.region.priority))
    regions.sort(key=lambda r: (r[0], r[1]))
    out = ["address-space: cpu-memory-0\n", "address-space: memory\n",
           _line(0, *_ROOT_MEMORY, "i/o", "system")]
    out += [_line(1, *r) for r in regions]
    out.append("\n")
    ports = sorted((m.base, m.end - 1, "i/o", m.region.name) for m in machine.port_bus.mappings)
    out += ["address-space: I/O\n", _line(0, 0, 0xFFFF, "i/o", "io")]
    out += [_line(1, *r) for r in ports]
    out.append("\n")
    return "".join(out)
