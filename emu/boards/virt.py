"""The aarch64 ``virt`` machine (QEMU hw/arm/virt.c), as far as emu models it.

Memory map (QEMU's base_memmap): flash at 0x0 (VIRT_FLASH: two 64 MiB banks), the GICv2m MSI
frame at 0x08020000 (VIRT_GIC_V2M, with a GICv2 only), PL011 UART at 0x09000000 (VIRT_UART),
fw_cfg at 0x09020000 (VIRT_FW_CFG: data +0, selector +8, DMA +16), RAM from 0x40000000
(VIRT_MEM). PSCI is implemented by the machine itself over the HVC and SMC conduits, as QEMU
does when it runs no EL2/EL3 firmware. The board describes itself in a device tree
(emu/boards/virt_fdt.py), published as the fw_cfg file ``etc/fdt``.

Flash: the CPU reads and executes it and its stores are dropped. QEMU's pflash takes a write
as a CFI command; emu models no commands, so a DMA write into the flash completes without
error, as QEMU's does, and leaves what the flash reads unchanged (QEMU's reads change only
after the few commands that switch it to status, ID or query mode, or program it).

Interrupts (docs/devel/interrupts.md, "aarch64 virt"): a GICv2 (``gic-version=2``, QEMU's
default under TCG) with its distributor at 0x08000000 and CPU interface at 0x08010000
(emu/devices/arm_gic.py) and QEMU's GICv2m MSI frame at 0x08020000 on SPIs 48-111
(emu/devices/arm_gicv2m.py; hw/arm/virt.c create_v2m), or a GICv3 (``gic-version=3``, and
``max``, which is 3 under TCG) with its distributor at 0x08000000, the redistributor of CPU
0 at 0x080A0000 and the CPU interface as ICC_* system registers (emu/devices/arm_gicv3.py);
the CPU's generic timer (emu/devices/arm_generic_timer.py) drives PPIs 14, 11, 10 and 13 and
the PL011 SPI 1, as hw/arm/virt.c create_gic and create_uart wire them. The GIC's IRQ, FIQ,
VIRQ and VFIQ outputs go to the CPU's four interrupt inputs (``cpu_inputs``, QEMU's
ARM_CPU_IRQ..ARM_CPU_VFIQ GPIO inputs), where the CPU model takes them.

Boot: firmware (emu's ``virt.bin``, or ``-bios FILE``) in read-only flash at 0x0, where the
CPU starts at EL1 with the MMU off. The firmware reads the ``-kernel`` file, the initrd and
the device tree through fw_cfg, puts the device tree where QEMU's ``-kernel`` boot puts it
and enters the kernel with x0 pointing to it. ``--direct-boot`` skips the firmware as QEMU's
``-kernel`` without ``-bios`` does (hw/arm/boot.c, arm_setup_direct_kernel_boot): an ELF
kernel is loaded at its physical addresses and entered at ``e_entry``, with the device tree
at the base of RAM when the kernel leaves room for it; an arm64 Image is loaded where the
firmware would put it and entered as Linux is, with x0 pointing to the device tree.

The device tree (1 MiB, QEMU's totalsize) of an arm64 Image goes where QEMU's
arm_setup_direct_kernel_boot puts it: after the initrd, 2 MiB aligned, the initrd starting at
RAM base + min(RAM / 2, 128 MiB), or above the kernel if that is higher (0x48000000 with
256 MiB of RAM); that is also where it goes without an initrd. emu publishes that initrd
address as FW_CFG_INITRD_ADDR for every kernel, so that its firmware computes the same place.
A gzip-compressed ``-kernel`` (``Image.gz``) is what it holds, on both paths, as on
QEMU (emu/boot/gunzip.py).
"""

from __future__ import annotations

from unicorn.arm64_const import UC_ARM64_REG_CP_REG, UC_ARM64_REG_PSTATE

from emu.boards import Board
from emu.boards.firmware_config import add_virt_items, add_virt_kernel_items
from emu.boards.virt_fdt import build_virt_fdt
from emu.boot.elf import read_kernel
from emu.boot.firmware import VIRT_FLASH_BASE, VIRT_FLASH_SIZE, read_initrd, virt_flash
from emu.boot.gunzip import maybe_gunzip
from emu.chardev import NullBackend, open_backend
from emu.config import GiB, MiB
from emu.cpu.arm64 import MODELS, Arm64Cpu
from emu.cpu.arm64_sysregs import KeyedSysregHandler, install_sysreg_hooks, sysreg_table
from emu.devices.arm_generic_timer import VIRT_TIMER_PPI, GenericTimer
from emu.devices.arm_gic import GIC_INTERNAL, GIC_NR_SGIS, ArmGic
from emu.devices.arm_gicv2m import ArmGicV2m
from emu.devices.arm_gicv3 import ArmGicV3
from emu.devices.arm_gicv3_cpuif import GicV3CpuInterface, IdAa64Pfr0Gic
from emu.devices.fw_cfg import FwCfg, FwCfgMem
from emu.devices.pl011 import PL011
from emu.devices.psci import Psci
from emu.errors import ConfigError
from emu.irq import Gpios, IrqLine
from emu.memory import RamBlock

VIRT_GIC_DIST = 0x08000000
VIRT_GIC_CPU = 0x08010000
VIRT_GIC_REDIST = 0x080A0000
VIRT_GIC_V2M = 0x08020000
#: hw/arm/virt.c a15irqmap[VIRT_GIC_V2M] and NUM_GICV2M_SPIS: the frame's SPIs
VIRT_GIC_V2M_IRQ = 48
NUM_GICV2M_SPIS = 64
VIRT_UART = 0x09000000
#: hw/arm/virt.c a15irqmap: the PL011's SPI
VIRT_UART_IRQ = 1
#: include/hw/arm/virt.h NUM_IRQS: the SPIs virt gives its GIC
NUM_IRQS = 256
#: the CPU's GPIO inputs (target/arm/cpu.h ARM_CPU_IRQ, _FIQ, _VIRQ, _VFIQ)
ARM_CPU_IRQ, ARM_CPU_FIQ, ARM_CPU_VIRQ, ARM_CPU_VFIQ = 0, 1, 2, 3
#: QEMU 7.2's QOM paths of virt's CPU, GIC and PL011 (``info qom-tree``)
QOM_CPU = "/machine/unattached/device[0]"
QOM_GIC = "/machine/unattached/device[1]"
QOM_V2M = "/machine/unattached/device[2]"
QOM_UART = "/machine/unattached/device[3]"
#: the QOM type of each -cpu model's CPU object
CPU_QOM_TYPES = {"cortex-a53": "cortex-a53-arm-cpu", "cortex-a57": "cortex-a57-arm-cpu",
                 "cortex-a72": "cortex-a72-arm-cpu", "max": "max-arm-cpu"}
VIRT_FW_CFG = 0x09020000
VIRT_MEM = 0x40000000
#: ID_AA64MMFR0.PARange of each -cpu model, as a physical address width (target/arm/cpu64.c;
#: max has FEAT_LPA); virt's RAM must end within it (hw/arm/virt.c virt_set_memmap)
PA_BITS = {"cortex-a53": 40, "cortex-a57": 44, "cortex-a72": 44, "max": 52}
#: emu's firmware puts an ELF kernel's device tree (1 MiB) here, with its own stack in the
#: tree's free space (firmware/virt/boot.h): the tree's used part must end below the stack
FIRMWARE_AREA_END = VIRT_MEM + 0x100000
FIRMWARE_FDT_ROOM = 0x70000
#: hw/arm/boot.c: QEMU's boot stub below the kernel, and where an Image without image_size goes
BOOTLOADER_MAX_SIZE = 0x1000
KERNEL64_LOAD_ADDR = 0x80000
#: hw/arm/boot.c: an aarch64 kernel's device tree is 2 MiB aligned
DTB_ALIGN = 2 * MiB
ARM64_IMAGE_MAGIC = b"ARM\x64"


def image_load_address(data: memoryview) -> int:
    """Where an arm64 Image goes (Documentation/arm64/booting.rst header: text_offset at 8,
    image_size at 16), as QEMU's load_aarch64_image puts it: RAM base + text_offset (0x80000
    for old Images without image_size), moved up 2 MiB if that is inside QEMU's 4 KiB boot
    stub; emu's firmware computes the same (firmware/virt/main.c)."""
    text_offset = int.from_bytes(data[8:16], "little")
    image_size = int.from_bytes(data[16:24], "little")
    offset = text_offset if image_size else KERNEL64_LOAD_ADDR
    if image_size and offset < BOOTLOADER_MAX_SIZE:
        offset += 2 * MiB
    return VIRT_MEM + offset


def fdt_used(fdt: bytes) -> int:
    """The bytes of a device tree up to the end of its strings block (the rest of its
    ``totalsize`` is free space), from the header's off_dt_strings and size_dt_strings."""
    return int.from_bytes(fdt[12:16], "big") + int.from_bytes(fdt[32:36], "big")


def finalize_gic_version(value: str | None) -> int:
    """The GIC version of ``-M virt,gic-version=VALUE`` under TCG, with QEMU's errors
    (hw/arm/virt.c finalize_gic_version; virt_set_gic_version has checked the spelling)."""
    if value is None or value == "2":
        return 2
    if value == "host":
        raise ConfigError("gic-version=host requires KVM")
    if value == "4":  # emu refuses virtualization=on
        raise ConfigError("gic-version=4 requires virtualization enabled")
    return 3  # "3", and "max": the highest version TCG emulates without virtualization=on


def check_virt_address_space(model: str, ram_size: int) -> None:
    """QEMU's refusal of RAM beyond the CPU's physical address range (virt_set_memmap: the
    RAM's end, rounded up to 1 GiB, must not pass 2^PARange), with its message."""
    bits = PA_BITS[model]
    memtop = (VIRT_MEM + ram_size + GiB - 1) // GiB * GiB
    if memtop > 1 << bits:
        raise ConfigError(f"Addressing limited to {bits} bits, but memory exceeds it by "
                          f"{memtop - (1 << bits)} bytes")


class VirtBoard(Board):
    """aarch64 virt."""

    name = "virt"
    arch = "aarch64"
    description = "QEMU 7.2 ARM Virtual Machine (alias of virt-7.2)"

    def build(self) -> None:
        m = self.machine
        self.gic_version = finalize_gic_version(m.config.gic_version)
        ram = RamBlock.allocate("mach-virt.ram", VIRT_MEM, m.config.ram_size)
        check_virt_address_space(m.cpu.model, m.config.ram_size)
        m.add_ram(ram)
        if not m.config.direct_boot:
            flash = virt_flash(m.config.bios)
            m.add_rom("virt.flash0", VIRT_FLASH_BASE, VIRT_FLASH_SIZE, flash, flash=True)
            # QEMU's second bank (pflash1, for firmware variables): empty
            m.add_rom("virt.flash1", VIRT_FLASH_BASE + VIRT_FLASH_SIZE, VIRT_FLASH_SIZE, b"",
                      flash=True)
        backends = m.config.serial_backends()
        if len(backends) > 1:
            raise ConfigError("-serial: the virt machine has one UART")
        backend = open_backend(backends[0]) if backends else NullBackend()
        self.uart = PL011(m.own(backend))
        m.map_mmio(VIRT_UART, self.uart.region)
        self._build_interrupts()
        self.fw_cfg = FwCfg(m.address_space, dma=m.config.fw_cfg_dma,
                            file_slots=m.config.fw_cfg_file_slots)
        front = FwCfgMem(self.fw_cfg)
        m.map_mmio(VIRT_FW_CFG, front.data)
        m.map_mmio(VIRT_FW_CFG + 8, front.ctl)
        if self.fw_cfg.dma_enabled:
            m.map_mmio(VIRT_FW_CFG + 16, front.dma)
        add_virt_items(self.fw_cfg, m.config)
        self.psci = Psci(m.power_off, m.request_reset, m.cpu_off)
        m.cpu.psci = self.psci.call
        self.initrd: tuple[int, memoryview] | None = None
        #: an arm64 Image -kernel: (load address, contents)
        self.image: tuple[int, memoryview] | None = None
        kernel_file = memoryview(b"")
        kernel_end = VIRT_MEM
        if m.config.kernel:
            kernel_file, kernel_end = self._open_kernel(m.config.kernel)
        #: QEMU's info->initrd_start (where an initrd goes, and the device tree after it)
        self.initrd_start = self._initrd_start(kernel_end)
        if m.config.initrd is not None:
            self.initrd = self._load_initrd(m.config.initrd)
        initrd_range = None if self.initrd is None else \
            (self.initrd[0], self.initrd[0] + len(self.initrd[1]))
        try:
            self.fdt = build_virt_fdt(
                ram_base=VIRT_MEM, ram_size=m.config.ram_size, cpu_model=m.cpu.model,
                uart_base=VIRT_UART, fw_cfg_base=VIRT_FW_CFG, bootargs=m.config.append,
                initrd=initrd_range, gic_version=self.gic_version)
        except ValueError as e:
            raise ConfigError(f"-append: {e}") from None
        #: where the device tree goes in RAM (x0 at the kernel's entry)
        self.dtb_addr = VIRT_MEM
        if self.image is not None:
            self.dtb_addr = self._dtb_address(initrd_range)
        elif m.config.kernel and not m.config.direct_boot and fdt_used(self.fdt) > \
                FIRMWARE_FDT_ROOM:
            raise ConfigError(f"-append: the device tree would be {fdt_used(self.fdt)} bytes, "
                              f"over the {FIRMWARE_FDT_ROOM} the firmware has room for")
        self.fw_cfg.add_file("etc/fdt", self.fdt)
        if m.config.kernel and not m.config.direct_boot:
            add_virt_kernel_items(self.fw_cfg, kernel_file=kernel_file,
                                  cmdline=m.config.append, initrd=self.initrd,
                                  initrd_addr=self.initrd_start)

    def _build_interrupts(self) -> None:
        """The GIC, the generic timer and their wiring (hw/arm/virt.c create_gic)."""
        m = self.machine
        uc = m.cpu.uc

        def current_el() -> int:
            return (uc.reg_read(UC_ARM64_REG_PSTATE) >> 2) & 3

        self.gic: ArmGic | ArmGicV3
        #: the GICv2m MSI frame (a GICv2's only; QEMU gives a GICv3 an ITS instead)
        self.v2m: ArmGicV2m | None = None
        #: the GICv3's CPU interface (system registers); None with a GICv2
        self.gic_cpuif: GicV3CpuInterface | None = None
        extra_sysregs: list[KeyedSysregHandler] = []
        if self.gic_version == 3:
            self.gic = ArmGicV3(num_irq=NUM_IRQS + GIC_INTERNAL, num_cpu=1, lpis=True,
                                dma=m.address_space)
            m.map_mmio(VIRT_GIC_DIST, self.gic.dist)
            m.map_mmio(VIRT_GIC_REDIST, self.gic.redist)
            self.gic_cpuif = GicV3CpuInterface(self.gic, 0, current_el=current_el)
            extra_sysregs = [self.gic_cpuif, IdAa64Pfr0Gic(
                lambda: uc.reg_read(UC_ARM64_REG_CP_REG, (0, 4, 3, 0, 0)), current_el)]
        else:
            self.gic = ArmGic(num_irq=NUM_IRQS + GIC_INTERNAL, num_cpu=1)
            m.map_mmio(VIRT_GIC_DIST, self.gic.dist)
            m.map_mmio(VIRT_GIC_CPU, self.gic.cpu)
            # create_v2m: the MSI frame, its outputs on SPIs 48-111
            self.v2m = ArmGicV2m(base_spi=VIRT_GIC_V2M_IRQ, num_spi=NUM_GICV2M_SPIS)
            m.map_mmio(VIRT_GIC_V2M, self.v2m.region)
            for i, line in enumerate(self.v2m.spi):
                line.connect_to(self.gic.inputs[VIRT_GIC_V2M_IRQ + i])
        self.generic_timer = GenericTimer(m.clock, current_el=current_el)
        #: the CPU's interrupt inputs, IRQ, FIQ, VIRQ, VFIQ: the CPU model connects their
        #: sinks (``cpu_inputs[ARM_CPU_IRQ].connect(fn)``)
        self.cpu_inputs = [IrqLine(f"cpu.{name}") for name in ("irq", "fiq", "virq", "vfiq")]
        gic = self.gic
        for line, inp in zip((gic.cpu_irq[0], gic.cpu_fiq[0], gic.cpu_virq[0],
                              gic.cpu_vfiq[0]), self.cpu_inputs, strict=True):
            line.connect_to(inp)
        ppibase = NUM_IRQS + GIC_NR_SGIS  # CPU 0's PPIs
        for idx, ppi in VIRT_TIMER_PPI.items():
            self.generic_timer.outputs[idx].connect_to(gic.inputs[ppibase + ppi])
        self.uart.irq.connect_to(gic.inputs[VIRT_UART_IRQ])
        self.uart.on_input = lambda: m.call_soon(self.uart.update_irq)
        #: the MRS/MSR dispatcher (one per engine: add further system registers to it)
        self.sysregs = install_sysreg_hooks(
            uc, sysreg_table(self.generic_timer, *extra_sysregs), MODELS[m.cpu.model])
        cpu_gpios = Gpios(CPU_QOM_TYPES.get(m.cpu.model, "arm-cpu"),
                          inputs={None: self.cpu_inputs},
                          outputs={None: self.generic_timer.outputs})
        #: for qtest's irq_intercept_in/out and set_irq_in, under QEMU's paths
        self.qom_gpios = {QOM_CPU: cpu_gpios, QOM_GIC: gic.gpios, QOM_UART: self.uart.gpios}
        if self.v2m is not None:
            self.qom_gpios[QOM_V2M] = self.v2m.gpios
        cpu = m.cpu
        if cpu.engine is not None and cpu.engine.available:
            assert isinstance(cpu, Arm64Cpu)
            self.cpu_inputs[ARM_CPU_IRQ].connect(cpu.set_irq)
            self.cpu_inputs[ARM_CPU_FIQ].connect(cpu.set_fiq)

    def _open_kernel(self, path: str) -> tuple[memoryview, int]:
        """Check ``-kernel PATH``; return the file and the end of what it loads."""
        cfg = self.machine.config
        # An Image.gz is the Image inside it, on both paths (load_image_to_fw_cfg and
        # load_aarch64_image decompress a gzip file).
        data = memoryview(maybe_gunzip(path, read_kernel(path, cfg.ram_size)))
        if data[56:60] == ARM64_IMAGE_MAGIC:
            load = image_load_address(data)
            if load + len(data) > VIRT_MEM + cfg.ram_size:
                raise ConfigError(f"-kernel {path}: the Image does not fit in RAM at "
                                  f"0x{load:x}")
            self.image = (load, data)
            # load_aarch64_image: the kernel's size is the header's image_size, else the file's
            image_size = int.from_bytes(data[16:24], "little")
            return data, load + (image_size or len(data))
        self.kernel = self.open_kernel(path, data)
        if not cfg.direct_boot:
            for seg in self.kernel.segments:
                if seg.paddr < FIRMWARE_AREA_END:
                    raise ConfigError(
                        f"-kernel {path}: segment at 0x{seg.paddr:x} is inside the firmware's "
                        f"area 0x{VIRT_MEM:x}-0x{FIRMWARE_AREA_END - 1:x} (the device tree, "
                        "with the firmware's stack)")
        return self.kernel.raw, max(seg.paddr + seg.memsz for seg in self.kernel.segments)

    def _initrd_start(self, kernel_end: int) -> int:
        """Where QEMU puts an initrd on virt (hw/arm/boot.c arm_setup_direct_kernel_boot):
        half of RAM, at most 128 MiB, into RAM, and above the kernel; page aligned."""
        ram_size = self.machine.config.ram_size
        start = max(VIRT_MEM + min(ram_size // 2, 128 * MiB), kernel_end)
        return (start + 0xFFF) & ~0xFFF

    def _dtb_address(self, initrd: tuple[int, int] | None) -> int:
        """Where QEMU puts an arm64 Image's device tree (arm_setup_direct_kernel_boot):
        after the initrd (or where it would start), 2 MiB aligned, with its error when that
        is past RAM; emu also refuses a device tree that would run past RAM's end."""
        end = initrd[1] if initrd is not None else self.initrd_start
        addr = (end + DTB_ALIGN - 1) & ~(DTB_ALIGN - 1)
        ram_end = VIRT_MEM + self.machine.config.ram_size
        if addr >= ram_end:
            raise ConfigError("Not enough space for DTB after kernel/initrd")
        if addr + len(self.fdt) > ram_end:
            raise ConfigError(f"the device tree ({len(self.fdt)} bytes) does not fit in RAM "
                              f"at 0x{addr:x}")
        return addr

    def _load_initrd(self, path: str) -> tuple[int, memoryview]:
        """The ``-initrd`` file, at QEMU's address for it."""
        ram_size = self.machine.config.ram_size
        data = read_initrd(path, ram_size)
        start = self.initrd_start
        if start + len(data) > VIRT_MEM + ram_size:
            raise ConfigError(f"-initrd {path}: {len(data)} bytes do not fit in RAM at "
                              f"0x{start:x}")
        return start, data

    def reset(self) -> None:
        self.uart.reset()
        self.fw_cfg.reset()
        self.gic.reset()
        if self.gic_cpuif is not None:
            self.gic_cpuif.reset()
        self.generic_timer.reset()

    def boot(self) -> None:
        if not self.check_bootable():
            return
        if not self.machine.config.direct_boot:
            self.machine.cpu.pc = VIRT_FLASH_BASE
            return
        space = self.machine.address_space
        cpu = self.machine.cpu
        if self.initrd is not None:
            space.write(*self.initrd)
        if self.image is not None:  # Linux's boot protocol: x0 = the device tree
            load, data = self.image
            space.write(load, data)
            space.write(self.dtb_addr, self.fdt)
            cpu.set_x(0, self.dtb_addr)
            cpu.pc = load
            return
        assert self.kernel is not None
        self.load_segments(self.kernel)
        low = min(seg.paddr for seg in self.kernel.segments)
        if low >= VIRT_MEM + len(self.fdt):
            space.write(VIRT_MEM, self.fdt)
        cpu.pc = self.kernel.entry
