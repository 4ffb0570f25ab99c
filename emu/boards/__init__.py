"""Boards: the memory map of each machine type and which device sits where."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emu.boot.elf import KernelImage, load_elf, read_kernel
from emu.devices.fw_cfg import FwCfg
from emu.errors import ConfigError

if TYPE_CHECKING:
    from emu.machine import Machine


class Board:
    """A machine type (``-M NAME``)."""

    name = ""
    arch = ""
    description = ""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.kernel: KernelImage | None = None
        #: the board's fw_cfg device core (both boards have one)
        self.fw_cfg: FwCfg

    def build(self) -> None:
        """Create RAM and the board's built-in devices."""
        raise NotImplementedError

    def devices_created(self) -> None:
        """The ``-device`` devices exist: publish what describes them (pc: its ACPI tables)."""

    def reset(self) -> None:
        """Reset the board's built-in devices."""

    def boot(self) -> None:
        """Load the kernel (if any) and set the CPU's entry state; runs at every reset."""
        raise NotImplementedError

    def check_bootable(self) -> bool:
        """Whether boot should set up the CPU: there is something to run. A device test
        (qtest) needs nothing; emu's own firmware needs a -kernel, another firmware (-bios)
        decides for itself."""
        cfg = self.machine.config
        if cfg.kernel is not None or (cfg.bios is not None and not cfg.direct_boot):
            return True
        if cfg.qtest or cfg.accel == "qtest":
            return False  # a device test: no guest code will run before it loads some
        raise ConfigError("no -kernel given: emu's firmware boots a -kernel FILE "
                          "(there are no disks to boot from)")

    def open_kernel(self, path: str, raw: memoryview | None = None) -> KernelImage:
        """Read (unless ``raw`` has the contents already) and check ``-kernel PATH`` against
        this board's architecture and RAM."""
        if raw is None:
            raw = read_kernel(path, self.machine.config.ram_size)
        image = load_elf(path, raw=raw)
        if image.arch != self.arch:
            raise ConfigError(
                f"-kernel {path}: {image.arch} ELF file, but machine '{self.name}' "
                f"needs {self.arch}")
        space = self.machine.address_space
        for seg in image.segments:
            end = seg.paddr + seg.memsz
            if not space.is_ram(seg.paddr, seg.memsz):
                where = "over a device" if self.machine.mmio_bus.covers(seg.paddr) else \
                    "outside RAM"
                raise ConfigError(
                    f"-kernel {path}: segment 0x{seg.paddr:x}-0x{end - 1:x} is {where}")
        return image

    def load_segments(self, image: KernelImage) -> None:
        """Copy the segments into RAM, zero-filling each up to its memory size."""
        space = self.machine.address_space
        for seg in image.segments:
            space.write(seg.paddr, seg.data)
            if seg.memsz > len(seg.data):
                space.fill(seg.paddr + len(seg.data), seg.memsz - len(seg.data))


def board_class(name: str) -> type[Board]:
    """The board for ``-M NAME``."""
    from emu.boards.pc import PcBoard
    from emu.boards.virt import VirtBoard

    boards: dict[str, type[Board]] = {"pc": PcBoard, "virt": VirtBoard}
    aliases = {"pc-i440fx-7.2": "pc", "virt-7.2": "virt"}
    name = aliases.get(name, name)
    if name not in boards:
        raise ConfigError(f"-machine {name}: unsupported machine type "
                          "(use -machine help to list supported machines)")
    return boards[name]


def machine_help() -> str:
    """The text of ``-machine help``."""
    from emu.boards.pc import PcBoard
    from emu.boards.virt import VirtBoard

    lines = ["Supported machines are:"]
    lines += [f"{b.name:<20s} {b.description}" for b in (PcBoard, VirtBoard)]
    return "\n".join(lines)
