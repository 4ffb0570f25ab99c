"""The aarch64 ``virt`` machine (QEMU hw/arm/virt.c), as far as emu models it.

Memory map (QEMU's base_memmap): PL011 UART at 0x09000000 (VIRT_UART), fw_cfg at 0x09020000
(VIRT_FW_CFG: data +0, selector +8, DMA +16), RAM from 0x40000000 (VIRT_MEM). PSCI is
implemented by the machine itself over the HVC and SMC conduits, as QEMU
does when it runs no EL2/EL3 firmware. Boot: an ELF ``-kernel`` is loaded at its physical
addresses and entered at EL1 with the MMU off at ``e_entry``.
"""

from __future__ import annotations

from emu.boards import Board
from emu.boards.firmware_config import add_virt_items
from emu.chardev import NullBackend, open_backend
from emu.devices.fw_cfg import FwCfg, FwCfgMem
from emu.devices.pl011 import PL011
from emu.devices.psci import Psci
from emu.errors import ConfigError
from emu.memory import RamBlock

VIRT_UART = 0x09000000
VIRT_FW_CFG = 0x09020000
VIRT_MEM = 0x40000000
VIRT_MEM_MAX = 255 << 30  # QEMU virt without highmem-redists: RAM up to 256 GiB


class VirtBoard(Board):
    """aarch64 virt."""

    name = "virt"
    arch = "aarch64"
    description = "QEMU 7.2 ARM Virtual Machine (alias of virt-7.2)"

    def build(self) -> None:
        m = self.machine
        if m.config.ram_size > VIRT_MEM_MAX:
            raise ConfigError("-m: the virt machine supports at most 255G of RAM")
        m.add_ram(RamBlock.allocate("mach-virt.ram", VIRT_MEM, m.config.ram_size))
        backends = m.config.serial_backends()
        if len(backends) > 1:
            raise ConfigError("-serial: the virt machine has one UART")
        backend = open_backend(backends[0]) if backends else NullBackend()
        self.uart = PL011(m.own(backend))
        m.map_mmio(VIRT_UART, self.uart.region)
        self.fw_cfg = FwCfg(m.address_space, dma=m.config.fw_cfg_dma,
                            file_slots=m.config.fw_cfg_file_slots)
        front = FwCfgMem(self.fw_cfg)
        m.map_mmio(VIRT_FW_CFG, front.data)
        m.map_mmio(VIRT_FW_CFG + 8, front.ctl)
        if self.fw_cfg.dma_enabled:
            m.map_mmio(VIRT_FW_CFG + 16, front.dma)
        add_virt_items(self.fw_cfg, m.config)
        self.psci = Psci(m.request_exit, m.request_reset, m.cpu_off)
        m.cpu.psci = self.psci.call
        if m.config.kernel:
            self.kernel = self.open_kernel(m.config.kernel)

    def reset(self) -> None:
        self.uart.reset()
        self.fw_cfg.reset()

    def boot(self) -> None:
        if self.kernel is None:
            if self.machine.config.qtest or self.machine.config.accel == "qtest":
                return  # a device test: no guest code will run before it loads some
            raise ConfigError("no -kernel given: the virt machine has no firmware yet, "
                              "use -kernel FILE")
        self.load_segments(self.kernel)
        self.machine.cpu.pc = self.kernel.entry
