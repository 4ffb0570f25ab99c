"""The x86_64 ``pc`` machine (QEMU's i440FX PC, hw/i386/pc_piix.c), as far as emu models it.

Memory map: RAM from 0; when RAM reaches 0xe0000000 (3.5 GiB) the low part is cut at
0xc0000000 (3 GiB, QEMU's gigabyte alignment) and the rest continues at 4 GiB, exactly as
QEMU's ``pc_init1`` splits ``below_4g_mem_size`` / ``above_4g_mem_size``.

Devices: COM1 16550 at 0x3f8 (only when a serial backend exists, as QEMU), fw_cfg at I/O
ports 0x510 (selector/data) and 0x514 (DMA), and whatever ``-device`` adds (isa-debug-exit...).
Boot: PVH direct boot of an ELF ``-kernel``.
"""

from __future__ import annotations

from emu.boards import Board
from emu.boards.firmware_config import add_pc_items
from emu.boot.pvh import BOOT_CS, BOOT_DS, E820_RAM, GDT, GDT_ADDR, build_pvh
from emu.chardev import open_backend
from emu.config import GiB
from emu.devices.fw_cfg import FwCfg, FwCfgIo
from emu.devices.uart16550 import Uart16550
from emu.errors import ConfigError
from emu.memory import RamBlock

COM_PORTS = (0x3F8, 0x2F8, 0x3E8, 0x2E8)
FW_CFG_IO_BASE = 0x510
FW_CFG_DMA_IO_BASE = 0x514
FOUR_GIB = 4 * GiB


def pc_ram_split(ram_size: int) -> tuple[int, int]:
    """(below_4g, above_4g) as QEMU's pc_init1 computes them (gigabyte_align on)."""
    lowmem = 0xC0000000 if ram_size >= 0xE0000000 else 0xE0000000
    if ram_size >= lowmem:
        return lowmem, ram_size - lowmem
    return ram_size, 0


class PcBoard(Board):
    """x86_64 PC."""

    name = "pc"
    arch = "x86_64"
    description = "Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)"

    def build(self) -> None:
        m = self.machine
        below, above = pc_ram_split(m.config.ram_size)
        m.add_ram(RamBlock.allocate("pc.ram", 0, below))
        if above:
            m.add_ram(RamBlock.allocate("pc.ram.above-4g", FOUR_GIB, above))
        self.uarts: list[Uart16550] = []
        backends = m.config.serial_backends()
        if len(backends) > len(COM_PORTS):
            raise ConfigError(f"-serial: at most {len(COM_PORTS)} serial ports on pc")
        for i, spec in enumerate(backends):
            if spec in ("none",):
                continue
            uart = Uart16550(m.own(open_backend(spec)), f"serial{i}")
            m.map_port(COM_PORTS[i], uart.region)
            self.uarts.append(uart)
        self.fw_cfg = FwCfg(m.address_space, dma=m.config.fw_cfg_dma,
                            file_slots=m.config.fw_cfg_file_slots)
        front = FwCfgIo(self.fw_cfg)
        m.map_port(FW_CFG_IO_BASE, front.comb)
        if self.fw_cfg.dma_enabled:
            m.map_port(FW_CFG_DMA_IO_BASE, front.dma)
        add_pc_items(self.fw_cfg, m.config, self.memory_map())
        if m.config.kernel:
            self.kernel = self.open_kernel(m.config.kernel)

    def memory_map(self) -> list[tuple[int, int, int]]:
        """The E820 map QEMU publishes in ``etc/e820``: one RAM entry per RAM block."""
        return [(base, size, E820_RAM) for base, size in self.machine.address_space.ranges()]

    def reset(self) -> None:
        for uart in self.uarts:
            uart.reset()
        self.fw_cfg.reset()

    def boot(self) -> None:
        cpu = self.machine.cpu
        if self.kernel is None:
            if self.machine.config.qtest or self.machine.config.accel == "qtest":
                return  # a device test: no guest code will run before it loads some
            raise ConfigError("no -kernel given: the pc machine has no firmware yet, "
                              "use -kernel FILE")
        pvh = build_pvh(self.kernel, self.machine.config.append, self.memory_map())
        self.load_segments(self.kernel)
        for addr, data in pvh.blobs:
            self.machine.address_space.write(addr, data)
        cpu.enter_protected_mode(GDT_ADDR, len(GDT) - 1, BOOT_CS, BOOT_DS)
        cpu.set_regs(rbx=pvh.start_info, rsp=0, rip=pvh.entry)
