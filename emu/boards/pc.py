"""The x86_64 ``pc`` machine (QEMU's i440FX PC, hw/i386/pc_piix.c), as far as emu models it.

Memory map: RAM from 0; when RAM reaches 0xe0000000 (3.5 GiB) the low part is cut at
0xc0000000 (3 GiB, QEMU's gigabyte alignment) and the rest continues at 4 GiB, exactly as
QEMU's ``pc_init1`` splits ``below_4g_mem_size`` / ``above_4g_mem_size``. As in QEMU 7.2,
an AMD CPU model moves RAM above 4 GiB to 1 TiB when it would reach the HyperTransport range,
RAM the CPU cannot address is refused with QEMU's message, and ``etc/e820`` reserves the
HyperTransport range for AMD models with 40 address bits (qemu64, the default, among them).

Devices: the 8259 PICs, 8254 PIT, port 0x61, MC146818 RTC and IOAPIC with QEMU's wiring
(emu/boards/pc_chipset.py), the i8042 keyboard controller with its PS/2 keyboard and mouse
at ports 0x60 / 0x64 on ISA IRQs 1 and 12 (part of the board, kept by ``-nodefaults``, as
QEMU's ``pc_superio_init`` creates it), COM1 16550 at 0x3f8 (only when a serial backend
exists, as QEMU), fw_cfg at I/O ports 0x510 (selector/data) and 0x514 (DMA), and whatever
``-device`` adds (isa-debug-exit...).

Boot: firmware (emu's ``pc.bin``, or ``-bios FILE``) in a read-only ROM that ends at 4 GiB.
The CPU starts at the reset vector 0xfffffff0, in 32-bit protected mode with flat segments
and paging off: Unicorn's x86_64 CPU cannot be put into the real-mode reset state (its
register API sets only a segment's selector, never the hidden base 0xffff0000 that real
mode at 0xfffffff0 needs; firmware/README.md; emu's ROM starts either way). The firmware
reads the ELF ``-kernel``'s memory image, command line, initrd and ``etc/e820`` through
fw_cfg, as QEMU publishes them for PVH kernels, builds the PVH start_info and enters the
kernel. A bzImage ``-kernel`` (the Linux/x86 boot protocol) is published as QEMU publishes it
(emu/boot/bzimage.py) and the firmware enters it through the 32-bit boot protocol.
``--direct-boot`` skips the firmware: emu loads the kernel and builds the same structures
itself (emu/boot/pvh.py, emu/boot/bzimage.py). The firmware's ROM is mapped either way, as
QEMU's pc always has its BIOS: a guest that jumps back to the reset vector (Linux's restart)
runs it, and it asks for a hard reset rather than booting again (firmware/pc/main.c).
"""

from __future__ import annotations

from emu.acpi import linker as acpi_linker
from emu.acpi.tables import LOADER_FILE, RSDP_FILE, TABLES_FILE, PcAcpiConfig, build_pc
from emu.boards import Board
from emu.boards.firmware_config import add_pc_items, add_pc_kernel_items, add_pc_linux_items
from emu.boards.pc_chipset import PcChipset
from emu.boot.bzimage import LinuxSetup, is_bzimage, linux_setup, rom_setup, zero_page
from emu.boot.elf import memory_image, read_kernel
from emu.boot.firmware import pc_bios, read_initrd
from emu.boot.pvh import (
    BOOT_AREA_END,
    BOOT_CS,
    BOOT_DS,
    E820_RAM,
    E820_RESERVED,
    FIRMWARE_AREA,
    GDT,
    GDT_ADDR,
    build_pvh,
    check_cmdline,
    pvh_entry,
)
from emu.bus import Region
from emu.chardev import open_backend
from emu.config import GiB
from emu.cpu.x86 import X86Cpu
from emu.devices.fw_cfg import FwCfg, FwCfgIo
from emu.devices.i440fx import I440fx
from emu.devices.pci import BAR_SPACE_IO, COMMAND, INTERRUPT_LINE, INTERRUPT_PIN, PciBus
from emu.devices.pci_host import CONFIG_ADDRESS_PORT, CONFIG_DATA_PORT, PciHost
from emu.devices.pckbd import (
    I8042,
    I8042_CMD_PORT,
    I8042_DATA_PORT,
    I8042_KBD_ISA_IRQ,
    I8042_MOUSE_ISA_IRQ,
)
from emu.devices.piix import (
    APM_PORT,
    FIRMWARE_IO_START,
    FIRMWARE_PAM,
    FIRMWARE_PCI_IRQS,
    FIRMWARE_PM_BASE,
    FIRMWARE_SMRAM,
    GPE0_PORT,
    SYSTEM_STATES_FILE,
    Piix3Isa,
    Piix4Pm,
    PiixIde,
)
from emu.devices.pvpanic import PvPanic
from emu.devices.uart16550 import Uart16550
from emu.errors import ConfigError
from emu.memory import Buffer, BusRegion, RamBlock

COM_PORTS = (0x3F8, 0x2F8, 0x3E8, 0x2E8)
#: their ISA interrupts (QEMU's isa-serial: 4, 3, 4, 3)
COM_IRQS = (4, 3, 4, 3)
VGA_WINDOW, VGA_WINDOW_SIZE = 0xA0000, 0x20000
PC_ROM, PC_ROM_SIZE = 0xC0000, 0x20000
ISA_BIOS_MAX = 0x20000
ONE_MIB = 0x100000
#: the 32-bit PCI hole ends below the IOAPIC (hw/pci-host/i440fx.c)
IOAPIC_ADDRESS = 0xFEC00000
#: the PIIX4's SCI (pc_piix.c connects its IRQ output to GSI 9)
SCI_ISA_IRQ = 9
FW_CFG_IO_BASE = 0x510
FW_CFG_DMA_IO_BASE = 0x514
FOUR_GIB = 4 * GiB
RESET_VECTOR = 0xFFFFFFF0
#: QEMU's pc-i440fx-7.2 acpi_data_size (hw/i386/pc_piix.c): kept free below the initrd
ACPI_DATA_SIZE = 0x20000 + 0x8000
SETUP_HEADER_SIZE = 8192
#: QEMU 7.2's QOM path of the i8042 on ``-M pc`` (``info qom-tree``), and its PS/2 devices'
QOM_I8042 = "/machine/unattached/device[13]"
#: --direct-boot puts the ACPI tables where emu's firmware puts them (firmware/pc/acpi.c):
#: the RSDP in the last KiB of base memory, the tables in the top 128 KiB of RAM below
#: 4 GiB, both reserved in the memory map
ACPI_LOW_AREA, ACPI_LOW_AREA_END = 0x9FC00, 0x9FFFC  # (up to REBOOT_MARK)
ACPI_HIGH_AREA_SIZE = 0x20000
#: the dword where emu's firmware notes that it has booted (firmware/pc/pc.h)
REBOOT_MARK = 0x9FFFC
REBOOT_MAGIC = 0x746F6F62


#: hw/i386/pc.c: the AMD HyperTransport range below 1 TiB, reserved in the E820 map of AMD CPUs
AMD_HT_START = 0xFD00000000
AMD_HT_SIZE = 0x300000000
AMD_ABOVE_1TB_START = AMD_HT_START + AMD_HT_SIZE
#: i440FX's default pci-hole64-size (hw/pci-host/i440fx.c)
PCI_HOLE64_SIZE = 2 * GiB
#: The x86 -cpu models whose vendor is AuthenticAMD (QEMU's IS_AMD_CPU; Hygon's Dhyana is not)
AMD_MODELS = frozenset({"qemu64", "phenom", "athlon", "Opteron_G1", "Opteron_G2", "Opteron_G3",
                        "Opteron_G4", "Opteron_G5", "EPYC", "EPYC-Rome", "max"})
#: Models without long mode and their physical address width (target/i386/cpu.c
#: x86_cpu_realizefn: 36 bits with PSE36, else 32); all others have TCG's 40 bits
PHYS_BITS_32BIT = {"486": 32, "pentium": 32, "coreduo": 32, "n270": 32, "qemu32": 32,
                   "athlon": 36, "kvm32": 36, "pentium2": 36, "pentium3": 36}
TCG_PHYS_ADDR_BITS = 40


def pc_phys_bits(model: str) -> int:
    """The CPU's physical address width as QEMU 7.2's TCG gives it."""
    return PHYS_BITS_32BIT.get(model, TCG_PHYS_ADDR_BITS)


def pc_above_4g_start(model: str, above_4g: int) -> int:
    """Where RAM above 4 GiB starts (hw/i386/pc.c pc_memory_init): at 4 GiB, or at 1 TiB on an
    AMD CPU when the highest address used (RAM, then the 64-bit PCI hole) would reach the
    HyperTransport range."""
    if model in AMD_MODELS and _max_used_gpa(model, FOUR_GIB, above_4g) >= AMD_HT_START:
        return AMD_ABOVE_1TB_START
    return FOUR_GIB


def _max_used_gpa(model: str, start: int, above_4g: int) -> int:
    """pc_max_used_gpa: the end of the 64-bit PCI hole, which follows RAM (1 GiB aligned); the
    CPU's whole range for CPUs of 32 address bits."""
    bits = pc_phys_bits(model)
    if bits <= 32:
        return (1 << bits) - 1
    hole64 = (start + above_4g + GiB - 1) // GiB * GiB
    return hole64 + PCI_HOLE64_SIZE - 1


def check_pc_address_space(model: str, above_4g: int) -> None:
    """QEMU's refusal of RAM the CPU cannot address (pc_memory_init), with its message."""
    max_phys = (1 << pc_phys_bits(model)) - 1
    max_used = _max_used_gpa(model, pc_above_4g_start(model, above_4g), above_4g)
    if max_phys < max_used:
        raise ConfigError(f"Address space limit 0x{max_phys:x} < 0x{max_used:x} phys-bits too "
                          f"low ({pc_phys_bits(model)})")


def pc_ram_split(ram_size: int) -> tuple[int, int]:
    """(below_4g, above_4g) as QEMU's pc_init1 computes them (gigabyte_align on)."""
    lowmem = 0xC0000000 if ram_size >= 0xE0000000 else 0xE0000000
    if ram_size >= lowmem:
        return lowmem, ram_size - lowmem
    return ram_size, 0


def reserve(memmap: list[tuple[int, int, int]], start: int,
            size: int) -> list[tuple[int, int, int]]:
    """``memmap`` with [start, start + size) cut out of the RAM it falls in and listed as
    reserved after it, as the firmware's e820_add does for its tables."""
    end = start + size
    out = []
    for addr, length, kind in memmap:
        if kind != E820_RAM or addr + length <= start or addr >= end:
            out.append((addr, length, kind))
            continue
        if addr < start:
            out.append((addr, start - addr, kind))
        out.append((start, size, E820_RESERVED))
        if addr + length > end:
            out.append((end, addr + length - end, kind))
    return out


class _VgaWindow:
    """The legacy VGA memory window (vga-lowmem) of a VGA emu does not draw: as QEMU's VGA
    right after reset (no plane enabled for writing, read plane 0 empty), reads return 0 and
    writes change nothing."""

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        pass


class PcBoard(Board):
    """x86_64 PC."""

    name = "pc"
    arch = "x86_64"
    description = "Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)"

    def build(self) -> None:
        m = self.machine
        below, above = pc_ram_split(m.config.ram_size)
        model = m.cpu.model
        ram = RamBlock.allocate("pc.ram", 0, below + above)  # QEMU allocates before checking
        check_pc_address_space(model, above)
        self.above_4g_start = pc_above_4g_start(model, above)
        # --direct-boot maps emu's firmware too (QEMU's pc always has its BIOS): the CPU
        # does not start there, but a guest that jumps to the reset vector (Linux's
        # machine_real_restart) finds it, and it asks for a hard reset.
        bios = pc_bios(m.config.bios)
        self._map_low_memory(ram, below, bios)
        if above:
            m.add_ram(ram.slice("pc.ram.above-4g", self.above_4g_start, below, above))
        self.uarts: list[tuple[int, Uart16550]] = []
        backends = m.config.serial_backends()
        if len(backends) > len(COM_PORTS):
            raise ConfigError(f"-serial: at most {len(COM_PORTS)} serial ports on pc")
        for i, spec in enumerate(backends):
            if spec in ("none",):
                continue
            uart = Uart16550(m.own(open_backend(spec)), f"serial{i}")
            m.map_port(COM_PORTS[i], uart.region)
            self.uarts.append((i, uart))
        self.chipset = PcChipset(m.clock, m.map_port, m.map_mmio,
                                 cpu_access=lambda: m.in_guest, hpet=m.config.hpet)
        for i, uart in self.uarts:
            uart.irq.connect_to(self.chipset.gsi[COM_IRQS[i]])
            uart.on_input = (lambda u: lambda: m.call_soon(u.update_irq))(uart)
        self.i8042 = I8042(reset_request=lambda: m.request_reset(guest=True))
        m.map_port(I8042_DATA_PORT, self.i8042.data_region)
        m.map_port(I8042_CMD_PORT, self.i8042.cmd_region)
        self.i8042.irq_kbd.connect_to(self.chipset.gsi[I8042_KBD_ISA_IRQ])
        self.i8042.irq_mouse.connect_to(self.chipset.gsi[I8042_MOUSE_ISA_IRQ])
        # for qtest's irq_intercept_* / set_irq_in
        self.qom_gpios = {**self.chipset.qom_gpios, QOM_I8042: self.i8042.gpios,
                          f"{QOM_I8042}/ps2kbd": self.i8042.kbd.gpios,
                          f"{QOM_I8042}/ps2mouse": self.i8042.mouse.gpios}
        self.chipset.init_cmos(m.config, below, above)
        self._init_pci()
        self._connect_cpu()
        self.fw_cfg = FwCfg(m.address_space, dma=m.config.fw_cfg_dma,
                            file_slots=m.config.fw_cfg_file_slots)
        front = FwCfgIo(self.fw_cfg)
        m.map_port(FW_CFG_IO_BASE, front.comb)
        if self.fw_cfg.dma_enabled:
            m.map_port(FW_CFG_DMA_IO_BASE, front.dma)
        hpet = self.chipset.hpet
        add_pc_items(self.fw_cfg, m.config, self.memory_map(),
                     None if hpet is None else hpet.fw_cfg_entry())
        self.fw_cfg.add_file(SYSTEM_STATES_FILE, self.piix4_pm.system_states())
        if bios is not None:
            m.add_rom("pc.bios", FOUR_GIB - len(bios), len(bios), bios, dumped=True)
        self.initrd: tuple[int, memoryview] | None = None
        self.linux: LinuxSetup | None = None
        if m.config.kernel:
            raw = read_kernel(m.config.kernel, m.config.ram_size)
            if is_bzimage(raw):
                self._publish_bzimage(raw, below)
            else:
                self.kernel = self.open_kernel(m.config.kernel, raw)
                self._publish_kernel(below)

    def _init_pci(self) -> None:
        """PCI bus 0 with the functions of QEMU's pc (hw/i386/pc_piix.c pc_init1): the
        i440FX at 00.0, the PIIX3 ISA bridge at 01.0, its IDE at 01.1 and the PIIX4 power
        management at 01.3, its SCI on ISA IRQ 9. QEMU's default VGA (02.0) and NIC (03.0),
        which ``-nodefaults`` removes, emu does not have."""
        m = self.machine
        self.pci_bus = PciBus()
        self.pci_host = PciHost(self.pci_bus)
        m.map_port(CONFIG_ADDRESS_PORT, self.pci_host.conf_region)
        m.map_port(CONFIG_DATA_PORT, self.pci_host.data_region)
        self.piix4_pm = Piix4Pm(m.clock, m.port_bus.map, m.port_bus.unmap,
                                m.power_off)
        self.piix4_pm.sci.connect_to(self.chipset.gsi[SCI_ISA_IRQ])
        m.map_port(APM_PORT, self.piix4_pm.apm_region)
        m.map_port(GPE0_PORT, self.piix4_pm.gpe_region)
        self.pci_bus.add(0, 0, I440fx(m.config.ram_size))
        self.pci_bus.add(1, 0, Piix3Isa())
        self.pci_bus.add(1, 1, PiixIde())
        self.pci_bus.add(1, 3, self.piix4_pm)

    def _firmware_pci_setup(self) -> None:
        """--direct-boot: the PCI setup emu's firmware does (firmware/pc/pci.c, SeaBIOS's
        pciinit.c), through the same configuration cycles and ELCR writes."""
        host, ports = self.pci_host, self.machine.port_bus

        def write(devfn: int, reg: int, size: int, value: int) -> None:
            host.data_write(0x80000000 | devfn << 8 | reg, size, value)

        def read(devfn: int, reg: int, size: int) -> int:
            return host.data_read(0x80000000 | devfn << 8 | reg, size)

        io = FIRMWARE_IO_START
        bars = []
        for devfn, fn in sorted(self.pci_bus.functions.items()):
            bars += [(size, devfn, index) for index, (size, type_bits) in fn.bars.items()
                     if type_bits & BAR_SPACE_IO]
        for size, devfn, index in sorted(bars, key=lambda b: -b[0]):
            io = (io + size - 1) & ~(size - 1)
            write(devfn, 0x10 + 4 * index, 4, io | BAR_SPACE_IO)
            io += size
        elcr = [0, 0]
        for devfn, fn in sorted(self.pci_bus.functions.items()):
            pin = read(devfn, INTERRUPT_PIN, 1)
            if pin:
                write(devfn, INTERRUPT_LINE, 1,
                      FIRMWARE_PCI_IRQS[(pin - 1 + (devfn >> 3) - 1) & 3])
            if isinstance(fn, I440fx):
                for i, value in enumerate(FIRMWARE_PAM):
                    write(devfn, 0x59 + i, 1, value)
                write(devfn, 0x72, 1, FIRMWARE_SMRAM)
            elif isinstance(fn, Piix3Isa):
                for i, irq in enumerate(FIRMWARE_PCI_IRQS):
                    elcr[irq >> 3] |= 1 << (irq & 7)
                    write(devfn, 0x60 + i, 1, irq)
                ports.port_write(0x4D0, 1, elcr[0])
                ports.port_write(0x4D1, 1, elcr[1])
            elif isinstance(fn, PiixIde):
                write(devfn, 0x40, 2, 0x8000)
                write(devfn, 0x42, 2, 0x8000)
            elif isinstance(fn, Piix4Pm):
                write(devfn, INTERRUPT_LINE, 1, SCI_ISA_IRQ)
                write(devfn, 0x40, 4, FIRMWARE_PM_BASE | 1)
                write(devfn, 0x80, 1, 0x01)
                write(devfn, 0x90, 4, (FIRMWARE_PM_BASE + 0x100) | 1)
                write(devfn, 0xD2, 1, 0x09)
                write(devfn, 0x58, 4, read(devfn, 0x58, 4) | 1 << 25)
            write(devfn, COMMAND, 2, read(devfn, COMMAND, 2) | 0x0103)

    def devices_created(self) -> None:
        """The ACPI tables, now that ``-device`` has added what they describe; QEMU builds
        them when the machine is done (hw/i386/acpi-build.c acpi_setup)."""
        m = self.machine
        below, above = pc_ram_split(m.config.ram_size)
        # i440fx_pcihost_get_pci_hole64_start/end: from the first GiB boundary after RAM
        hole64 = (self.above_4g_start + above + GiB - 1) // GiB * GiB
        self.piix4_pm.machine_ready(
            lambda port: any(mp.base <= port < mp.end for mp in m.port_bus.mappings))
        pvpanic = next((d for d in m.devices if isinstance(d, PvPanic)), None)
        cfg = PcAcpiConfig(
            cpus=m.config.smp, max_cpus=m.config.max_cpus,
            serial=[(i, COM_PORTS[i], COM_IRQS[i]) for i, _ in self.uarts],
            fw_cfg_dma=self.fw_cfg.dma_enabled,
            pvpanic_port=None if pvpanic is None else pvpanic.port,
            hpet=self.chipset.hpet is not None,
            pci_hole=(below, IOAPIC_ADDRESS - 1),
            pci_hole64=(hole64, hole64 + PCI_HOLE64_SIZE - 1))
        self.acpi = build_pc(cfg)
        self.fw_cfg.add_file(TABLES_FILE, self.acpi.tables)
        self.fw_cfg.add_file(RSDP_FILE, self.acpi.rsdp)
        self.fw_cfg.add_file(LOADER_FILE, self.acpi.loader)

    def _load_acpi(self) -> tuple[int, list[tuple[int, int]]]:
        """--direct-boot: run the loader script as the firmware does; returns the RSDP's
        address (0 without room for the tables) and the ranges to reserve."""
        below, _ = pc_ram_split(self.machine.config.ram_size)
        high_end = below
        high_start = below - ACPI_HIGH_AREA_SIZE
        if high_start < ONE_MIB:
            return 0, []
        zones = {acpi_linker.ZONE_FSEG: [ACPI_LOW_AREA, ACPI_LOW_AREA_END, True],
                 acpi_linker.ZONE_HIGH: [high_start, high_end, False]}

        def allocate(size: int, align: int, zone: int) -> int:
            lo, hi, upward = zones[zone]
            if upward:  # the f-segment zone fills from the bottom, the high one from the top
                addr = (lo + align - 1) & ~(align - 1)
                if addr + size > hi:
                    raise acpi_linker.LoaderError("no room")
                zones[zone][0] = addr + size
            else:
                addr = (hi - size) & ~(align - 1)
                if addr < lo:
                    raise acpi_linker.LoaderError("no room")
                zones[zone][1] = addr
            return addr

        files = {TABLES_FILE: self.acpi.tables, RSDP_FILE: self.acpi.rsdp}
        try:
            placed = acpi_linker.run(self.acpi.loader, files, allocate)
        except acpi_linker.LoaderError:
            return 0, []
        for addr, data in placed.values():
            self.machine.address_space.write(addr, bytes(data))
        return placed[RSDP_FILE][0], [(ACPI_LOW_AREA, ACPI_LOW_AREA_END - ACPI_LOW_AREA),
                                      (high_start, ACPI_HIGH_AREA_SIZE)]

    def _map_low_memory(self, ram: RamBlock, below: int, bios: Buffer | None) -> None:
        """RAM below 4 GiB with the legacy hole of QEMU's pc (pc_memory_init, pc_system_firmware
        init): the VGA window at 0xa0000 when there is a VGA (QEMU's default display device;
        ``-nodefaults`` removes it and the RAM behind shows), the option-ROM space pc.rom at
        0xc0000, read-only, and the last 128 KiB of the BIOS (all of a smaller one) mapped
        read-only below 1 MiB (isa-bios). What these cover is not RAM, though the E820 map
        still lists RAM from 0 (the firmware hides the hole, as SeaBIOS does)."""
        m = self.machine
        holes: list[tuple[int, int]] = []  # (start, end) of what is not RAM below 1 MiB
        if not m.config.nodefaults:
            vga = Region("vga-lowmem", VGA_WINDOW_SIZE, _VgaWindow())
            m.map_mmio(VGA_WINDOW, vga)
            m.address_space.add_region(BusRegion("vga-lowmem", VGA_WINDOW, VGA_WINDOW_SIZE,
                                                 accepts_writes=True))
            holes.append((VGA_WINDOW, VGA_WINDOW + VGA_WINDOW_SIZE))
        m.add_rom("pc.rom", PC_ROM, PC_ROM_SIZE, b"", dumped=True)
        holes.append((PC_ROM, PC_ROM + PC_ROM_SIZE))
        if bios is not None:
            isa_size = min(len(bios), ISA_BIOS_MAX)
            m.add_rom("isa-bios", ONE_MIB - isa_size, isa_size, bios[len(bios) - isa_size:],
                      dumped=True)
            holes.append((ONE_MIB - isa_size, ONE_MIB))
        start = 0
        for lo, hi in sorted(holes):
            if min(lo, below) > start:
                m.add_ram(ram.slice("pc.ram", start, start, min(lo, below) - start))
            start = max(start, hi)
        if below > start:
            m.add_ram(ram.slice("pc.ram", start, start, below - start))

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

    def _publish_bzimage(self, raw: memoryview, below_4g: int) -> None:
        """A Linux/x86 boot protocol kernel (emu/boot/bzimage.py) into fw_cfg as QEMU puts
        it; the initrd goes where QEMU puts it."""
        cfg = self.machine.config
        assert cfg.kernel is not None
        data = None if cfg.initrd is None else read_initrd(cfg.initrd, cfg.ram_size)
        initrd = None if data is None or cfg.initrd is None else (cfg.initrd, len(data))
        linux = linux_setup(cfg.kernel, raw, cfg.append, below_4g, ACPI_DATA_SIZE, initrd)
        if cfg.direct_boot and (linux.protocol < 0x202 or linux.prot_addr != ONE_MIB):
            # QEMU's option ROM runs such a kernel's real-mode setup; --direct-boot (and emu's
            # firmware, which says so at boot) enter the 32-bit protocol, which needs 2.02's
            # cmd_line_ptr and a kernel loaded at 1 MiB.
            raise ConfigError(f"-kernel {cfg.kernel}: Linux boot protocol "
                              f"{linux.protocol >> 8}.{linux.protocol & 0xFF:02d} without a "
                              "high-loaded kernel: emu boots protocol 2.02 and later")
        end = linux.prot_addr + len(linux.kernel)
        if end > below_4g:
            raise ConfigError(f"-kernel {cfg.kernel}: does not fit in RAM at "
                              f"0x{linux.prot_addr:x}")
        self.linux = linux
        if data is not None:
            self.initrd = (linux.initrd_addr, data)
        add_pc_linux_items(self.fw_cfg, linux=linux, cmdline=cfg.append, initrd=data)

    def memory_map(self) -> list[tuple[int, int, int]]:
        """The E820 map QEMU publishes in ``etc/e820`` (hw/i386/pc.c pc_memory_init), in its
        order: the HyperTransport range reserved first on AMD CPUs with 40 address bits, then
        RAM below 4 GiB and RAM above it."""
        model = self.machine.cpu.model
        below, above = pc_ram_split(self.machine.config.ram_size)
        entries = []
        if model in AMD_MODELS and pc_phys_bits(model) >= 40:
            entries.append((AMD_HT_START, AMD_HT_SIZE, E820_RESERVED))
        entries.append((0, below, E820_RAM))
        if above:
            entries.append((self.above_4g_start, above, E820_RAM))
        return entries

    def _connect_cpu(self) -> None:
        """The chipset's INTR and NMI outputs to the CPU (QEMU's pic_irq_request and the
        NMI line of x86_cpu), when the CPU can take interrupts."""
        cpu = self.machine.cpu
        if cpu.engine is None or not cpu.engine.available:
            return
        chipset = self.chipset
        assert isinstance(cpu, X86Cpu)
        cpu.attach_interrupts(self._acknowledge, lambda: chipset.intr.level)
        chipset.apic.cr8 = cpu.cr8
        chipset.intr.connect(cpu.set_irq)
        chipset.nmi.connect(self._nmi)

    def _acknowledge(self) -> int:
        """The CPU takes the external interrupt: its vector. With nothing left to take
        (QEMU would enter vector -1) the local APIC answers as hardware does, with its
        spurious vector (SDM vol. 3A 10.9)."""
        vector = self.chipset.get_interrupt()
        return vector if vector >= 0 else self.chipset.apic.spurious_vec & 0xFF

    def _nmi(self, level: int) -> None:
        """The APIC's NMI request: the CPU latches it (CPU_INTERRUPT_NMI), so the line is
        taken down again at once, ready for the next."""
        if level:
            cpu = self.machine.cpu
            assert isinstance(cpu, X86Cpu)
            cpu.nmi()
            self.chipset.nmi.level = 0

    def inject_nmi(self) -> None:
        """An NMI from outside (QMP inject-nmi): QEMU's x86_nmi, through LINT1."""
        self.chipset.inject_nmi()

    def reset(self) -> None:
        self.chipset.reset()
        self.pci_host.reset()
        self.i8042.reset()
        for _i, uart in self.uarts:
            uart.reset()
        self.fw_cfg.reset()

    def boot(self) -> None:
        cpu = self.machine.cpu
        if not self.check_bootable():
            return
        if not self.machine.config.direct_boot:
            # A machine reset, not a jump to the reset vector: emu's firmware boots again
            # (QEMU's reset puts back the f-segment where SeaBIOS notes that it has run).
            self.machine.address_space.write(REBOOT_MARK, bytes(4))
            # The reset vector, with flat 32-bit segments whose selectors name no GDT entry
            # yet (GDTR as at reset: base 0, limit 0xffff): the firmware loads its own.
            cpu.enter_protected_mode(0, 0xFFFF, 0, 0)
            cpu.set_regs(rip=RESET_VECTOR)
            return
        # emu plays the firmware's part: a jump to the reset vector must not boot again
        self.machine.address_space.write(REBOOT_MARK, REBOOT_MAGIC.to_bytes(4, "little"))
        if self.linux is not None:
            self._direct_linux(self.linux)
            return
        assert self.kernel is not None
        initrd = None if self.initrd is None else (self.initrd[0], len(self.initrd[1]))
        rsdp, reserved = self._load_acpi()
        memmap = self.memory_map()
        for start, size in reserved:
            memmap = reserve(memmap, start, size)
        pvh = build_pvh(self.kernel, self.machine.config.append, memmap, initrd, rsdp=rsdp)
        self.load_segments(self.kernel)
        for addr, data in pvh.blobs:
            self.machine.address_space.write(addr, data)
        if self.initrd is not None:
            self.machine.address_space.write(*self.initrd)
        self.chipset.firmware_apic_setup()
        self._firmware_pci_setup()
        self.i8042.firmware_setup()
        cpu.enter_protected_mode(GDT_ADDR, len(GDT) - 1, BOOT_CS, BOOT_DS)
        cpu.set_regs(rbx=pvh.start_info, rsp=0, rip=pvh.entry)

    def _direct_linux(self, linux: LinuxSetup) -> None:
        """--direct-boot of a bzImage: what emu's firmware does (firmware/pc/linux.c), from
        Python: the setup sectors, initrd, protected-mode part and command line where QEMU's
        option ROM puts them (emu/boot/bzimage.py rom_setup, with the board's memory map in
        place of SeaBIOS's), the zero page over the setup sectors, and the 32-bit entry."""
        space = self.machine.address_space
        cpu = self.machine.cpu
        rsdp, reserved = self._load_acpi()
        e820 = self.memory_map()
        for start, length in reserved:
            e820 = reserve(e820, start, length)
        size = 0 if self.initrd is None else len(self.initrd[1])
        setup, initrd_addr = rom_setup(linux, size, e820)
        space.write(linux.real_addr, setup)
        if self.initrd is not None:
            space.write(initrd_addr, self.initrd[1])
        space.write(linux.prot_addr, linux.kernel)
        space.write(linux.cmdline_addr, self.machine.config.append.encode() + b"\0")
        space.write(linux.real_addr, zero_page(setup, e820, rsdp))
        space.write(GDT_ADDR, GDT)
        self.chipset.firmware_apic_setup()
        self._firmware_pci_setup()
        self.i8042.firmware_setup()
        cpu.enter_protected_mode(GDT_ADDR, len(GDT) - 1, BOOT_CS, BOOT_DS)
        cpu.set_regs(rsi=linux.real_addr, rbx=0, rbp=0, rdi=0, rsp=0, rip=linux.entry32)
