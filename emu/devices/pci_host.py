"""PCI configuration mechanism #1 (PCI Local Bus Specification 3.0, 3.2.2.3.2) as QEMU 7.2's
i440FX host implements it (hw/pci/pci_host.c, hw/pci-host/i440fx.c).

Two 4-port regions: ``pci-conf-idx`` at 0xcf8 holds the CONFIG_ADDRESS register (enable bit
31, bus 23:16, devfn 15:8, register 7:0); ``pci-conf-data`` at 0xcfc is the data window.

* CONFIG_ADDRESS takes only 4-byte writes at 0xcf8 (``pci_host_config_write`` drops any other);
  a read of any width returns the register from its low byte up, whatever the port
  (``pci_host_config_read`` ignores the offset; the memory core masks to the access size).
* A data access of 1, 2 or 4 bytes at 0xcfc + n goes to register ``(CONFIG_ADDRESS | n) &
  0xff`` of the addressed function (``pci_data_read`` / ``pci_data_write``), cut at the end of
  its 256 bytes. With the enable bit clear, or no function at that bus/devfn, reads return all
  ones and writes are dropped.
"""

from __future__ import annotations

from emu.bus import Region
from emu.devices.pci import CONFIG_SPACE_SIZE, PciBus

CONFIG_ADDRESS_PORT, CONFIG_DATA_PORT = 0xCF8, 0xCFC
ENABLE = 1 << 31


class _ConfigAddress:
    def __init__(self, host: PciHost) -> None:
        self.host = host

    def read(self, offset: int, size: int) -> int:
        return self.host.config_reg

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == 0 and size == 4:
            self.host.config_reg = value & 0xFFFFFFFF


class _ConfigData:
    def __init__(self, host: PciHost) -> None:
        self.host = host

    def read(self, offset: int, size: int) -> int:
        return self.host.data_read(self.host.config_reg | offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self.host.data_write(self.host.config_reg | offset, size, value)


class PciHost:
    """The host side: CONFIG_ADDRESS and the data window on ``bus``."""

    def __init__(self, bus: PciBus) -> None:
        self.bus = bus
        self.config_reg = 0
        self.conf_region = Region("pci-conf-idx", 4, _ConfigAddress(self))
        self.data_region = Region("pci-conf-data", 4, _ConfigData(self))

    def data_read(self, addr: int, size: int) -> int:
        """pci_data_read (with pci_host_data_read's enable check)."""
        if not addr & ENABLE:
            return 0xFFFFFFFF
        fn = self.bus.find((addr >> 16) & 0xFF, (addr >> 8) & 0xFF)
        reg = addr & (CONFIG_SPACE_SIZE - 1)
        if fn is None:
            return 0xFFFFFFFF
        return fn.config_read(reg, min(size, CONFIG_SPACE_SIZE - reg))

    def data_write(self, addr: int, size: int, value: int) -> None:
        """pci_data_write."""
        if not addr & ENABLE:
            return
        fn = self.bus.find((addr >> 16) & 0xFF, (addr >> 8) & 0xFF)
        if fn is None:
            return
        reg = addr & (CONFIG_SPACE_SIZE - 1)
        fn.config_write(reg, min(size, CONFIG_SPACE_SIZE - reg), value)

    def reset(self) -> None:
        """The functions reset; CONFIG_ADDRESS keeps its value (QEMU never resets it)."""
        self.bus.reset()
