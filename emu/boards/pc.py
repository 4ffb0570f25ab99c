"""The x86_64 ``pc`` machine (QEMU's i440FX PC, hw/i386/pc_piix.c), as far as emu models it.

Memory map: RAM from 0; when RAM reaches 0xe0000000 (3.5 GiB) the low part is cut at
0xc0000000 (3 GiB, QEMU's gigabyte alignment) and the rest continues at 4 GiB, exactly as
QEMU's ``pc_init1`` splits ``below_4g_mem_size`` / ``above_4g_mem_size``.

Devices: the 8259 PICs, 8254 PIT, port 0x61, MC146818 RTC and IOAPIC with QEMU's wiring
(emu/boards/pc_chipset.py), COM1 16550 at 0x3f8 (only when a serial backend exists, as
QEMU), fw_cfg at I/O ports 0x510 (selector/data) and 0x514 (DMA), and whatever ``-device``
adds (isa-debug-exit...).

Boot: firmware (emu's ``pc.bin``, or ``-bios FILE``) in a read-only ROM that ends at 4 GiB.
The CPU starts at the reset vector 0xfffffff0, in 32-bit protected mode with flat segments
and paging off: Unicorn's x86_64 CPU cannot be put into the real-mode reset state (its
register API sets only a segment's selector, never the hidden base 0xffff0000 that real
mode at 0xfffffff0 needs; firmware/README.md; emu's ROM starts either way). The firmware
reads the ELF ``-kernel``'s memory image, command line, initrd and ``etc/e820`` through
fw_cfg, as QEMU publishes them for PVH kernels, builds the PVH start_info and enters the
kernel. ``--direct-boot`` skips the firmware: emu loads the kernel and builds the same
structures itself (emu/boot/pvh.py).
"""

from __future__ import annotations

from emu.boards import Board
from emu.boards.firmware_config import add_pc_items, add_pc_kernel_items
from emu.boards.pc_chipset import PcChipset
from emu.boot.elf import memory_image
from emu.boot.firmware import pc_bios, read_initrd
from emu.boot.pvh import (
    BOOT_AREA_END,
    BOOT_CS,
    BOOT_DS,
    E820_RAM,
    FIRMWARE_AREA,
    GDT,
    GDT_ADDR,
    build_pvh,
    check_cmdline,
    pvh_entry,
)
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
RESET_VECTOR = 0xFFFFFFF0
#: QEMU's pc-i440fx-7.2 acpi_data_size (hw/i386/pc_piix.c): kept free below the initrd
ACPI_DATA_SIZE = 0x20000 + 0x8000
SETUP_HEADER_SIZE = 8192


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
        self.chipset = PcChipset(m.clock, m.map_port, m.map_mmio)
        self.qom_gpios = self.chipset.qom_gpios  # for qtest's irq_intercept_* / set_irq_in
        self.chipset.init_cmos(m.config, below, above)
        self.fw_cfg = FwCfg(m.address_space, dma=m.config.fw_cfg_dma,
                            file_slots=m.config.fw_cfg_file_slots)
        front = FwCfgIo(self.fw_cfg)
        m.map_port(FW_CFG_IO_BASE, front.comb)
        if self.fw_cfg.dma_enabled:
            m.map_port(FW_CFG_DMA_IO_BASE, front.dma)
        add_pc_items(self.fw_cfg, m.config, self.memory_map())
        if not m.config.direct_boot:
            bios = pc_bios(m.config.bios)
            m.add_rom("pc.bios", FOUR_GIB - len(bios), len(bios), bios, dumped=True)
        self.initrd: tuple[int, memoryview] | None = None
        if m.config.kernel:
            self.kernel = self.open_kernel(m.config.kernel)
            self._publish_kernel(below)

    def _publish_kernel(self, below_4g: int) -> None:
        """Check the kernel (and initrd) and put them into fw_cfg as QEMU does."""
        cfg = self.machine.config
        image = self.kernel
        assert image is not None and cfg.kernel is not None
        entry = pvh_entry(image)
        low, size, contents = memory_image(image)
        if not cfg.direct_boot and low < BOOT_AREA_END and low + size > FIRMWARE_AREA:
            raise ConfigError(
                f"-kernel {cfg.kernel}: it loads at 0x{low:x}-0x{low + size - 1:x}, over the "
                f"firmware's boot area 0x{FIRMWARE_AREA:x}-0x{BOOT_AREA_END - 1:x}")
        if cfg.bios is None:  # emu's firmware has the same room for it as --direct-boot
            check_cmdline(cfg.append)
        header = bytes(image.raw[:SETUP_HEADER_SIZE]).ljust(SETUP_HEADER_SIZE, b"\0")
        if cfg.initrd is not None:
            data = read_initrd(cfg.initrd, cfg.ram_size)
            initrd_max = below_4g - ACPI_DATA_SIZE - 1
            if len(data) >= initrd_max:
                raise ConfigError(f"-initrd {cfg.initrd}: too large (max: {initrd_max}, "
                                  f"need {len(data)})")
            self.initrd = ((initrd_max - len(data)) & ~4095, data)
        add_pc_kernel_items(self.fw_cfg, load_addr=low, size=size, image=contents, entry=entry,
                            header=header, cmdline=cfg.append, initrd=self.initrd)

    def memory_map(self) -> list[tuple[int, int, int]]:
        """The E820 map QEMU publishes in ``etc/e820``: one RAM entry per RAM block."""
        return [(base, size, E820_RAM) for base, size in self.machine.address_space.ranges()]

    def reset(self) -> None:
        self.chipset.reset()
        for uart in self.uarts:
            uart.reset()
        self.fw_cfg.reset()

    def boot(self) -> None:
        cpu = self.machine.cpu
        if not self.check_bootable():
            return
        if not self.machine.config.direct_boot:
            # The reset vector, with flat 32-bit segments whose selectors name no GDT entry
            # yet (GDTR as at reset: base 0, limit 0xffff): the firmware loads its own.
            cpu.enter_protected_mode(0, 0xFFFF, 0, 0)
            cpu.set_regs(rip=RESET_VECTOR)
            return
        assert self.kernel is not None
        initrd = None if self.initrd is None else (self.initrd[0], len(self.initrd[1]))
        pvh = build_pvh(self.kernel, self.machine.config.append, self.memory_map(), initrd)
        self.load_segments(self.kernel)
        for addr, data in pvh.blobs:
            self.machine.address_space.write(addr, data)
        if self.initrd is not None:
            self.machine.address_space.write(*self.initrd)
        cpu.enter_protected_mode(GDT_ADDR, len(GDT) - 1, BOOT_CS, BOOT_DS)
        cpu.set_regs(rbx=pvh.start_info, rsp=0, rip=pvh.entry)
