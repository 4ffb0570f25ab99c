"""A conventional PCI function's configuration space and the bus that holds the functions, as
QEMU 7.2 models them (hw/pci/pci.c; PCI Local Bus Specification 3.0, chapter 6).

Each function has 256 bytes of configuration space with QEMU's per-byte write mask
(``wmask``) and write-1-to-clear mask (``w1cmask``), set up as ``pci_init_wmask`` /
``pci_init_w1cmask`` do: Command (I/O, memory, bus master, SERR, INTx disable), Cache
Line Size and Interrupt Line are writable, the Status error bits are
write-1-to-clear, and everything from 0x40 up (the device-specific area) is writable unless the
device says otherwise. Writes go through ``pci_default_write_config``'s byte loop; a BAR
registered with :meth:`PciFunction.register_bar` has the write mask ``~(size - 1)`` that
``pci_register_bar`` gives it, so writing all ones and reading back sizes it, with its type
bits read-only. Reads return the bytes as they are (``pci_default_read_config``).

A device reacts to writes by overriding :meth:`PciFunction.config_write` (calling the default
first, as QEMU's ``config_write`` hooks call ``pci_default_write_config``). On reset the
device's own reset runs first, then ``pci_do_device_reset`` clears the writable Command bits,
the Status error bits, the Interrupt Line and the BARs' address bits.
"""

from __future__ import annotations

CONFIG_SPACE_SIZE = 0x100
HEADER_SIZE = 0x40
VENDOR_ID, DEVICE_ID, COMMAND, STATUS = 0x00, 0x02, 0x04, 0x06
REVISION_ID, CLASS_PROG, CLASS_DEVICE = 0x08, 0x09, 0x0A
CACHE_LINE_SIZE, LATENCY_TIMER, HEADER_TYPE = 0x0C, 0x0D, 0x0E
BASE_ADDRESS_0 = 0x10
SUBSYSTEM_VENDOR_ID, SUBSYSTEM_ID = 0x2C, 0x2E
INTERRUPT_LINE, INTERRUPT_PIN = 0x3C, 0x3D
HEADER_TYPE_MULTI_FUNCTION = 0x80
#: Command bits (include/standard-headers/linux/pci_regs.h)
COMMAND_IO, COMMAND_MEMORY, COMMAND_MASTER = 0x1, 0x2, 0x4
COMMAND_PARITY, COMMAND_SERR, COMMAND_INTX_DISABLE = 0x40, 0x100, 0x400
#: Status bits QEMU makes write-1-to-clear
STATUS_W1C = 0x0100 | 0x0800 | 0x1000 | 0x2000 | 0x4000 | 0x8000
BAR_SPACE_IO = 0x1
#: what QEMU's pc gives every device as its subsystem (PCI_SUBVENDOR_ID_REDHAT_QUMRANET,
#: PCI_SUBDEVICE_ID_QEMU; pci.c pci_config_set_... in do_pci_register_device)
SUBSYSTEM_VENDOR_QEMU, SUBSYSTEM_QEMU = 0x1AF4, 0x1100


class PciFunction:
    """One function's configuration space (QEMU's PCIDevice)."""

    #: the name QEMU's ``info pci`` shows for the function's class
    name = "pci-device"

    def __init__(self, vendor: int, device: int, class_code: int, revision: int = 0,
                 prog_if: int = 0, multifunction: bool = False) -> None:
        self.config = bytearray(CONFIG_SPACE_SIZE)
        self.wmask = bytearray(CONFIG_SPACE_SIZE)
        self.w1cmask = bytearray(CONFIG_SPACE_SIZE)
        self.bars: dict[int, tuple[int, int]] = {}  # index -> (size, type bits)
        self._set(VENDOR_ID, 2, vendor)
        self._set(DEVICE_ID, 2, device)
        self.config[REVISION_ID] = revision
        self.config[CLASS_PROG] = prog_if
        self._set(CLASS_DEVICE, 2, class_code)
        self._set(SUBSYSTEM_VENDOR_ID, 2, SUBSYSTEM_VENDOR_QEMU)
        self._set(SUBSYSTEM_ID, 2, SUBSYSTEM_QEMU)
        if multifunction:
            self.config[HEADER_TYPE] |= HEADER_TYPE_MULTI_FUNCTION
        # pci_init_wmask
        self.wmask[CACHE_LINE_SIZE] = 0xFF
        wcmd = COMMAND_IO | COMMAND_MEMORY | COMMAND_MASTER | COMMAND_INTX_DISABLE \
            | COMMAND_SERR
        self.wmask[COMMAND:COMMAND + 2] = wcmd.to_bytes(2, "little")
        self.wmask[INTERRUPT_LINE] = 0xFF
        self.wmask[HEADER_SIZE:] = b"\xff" * (CONFIG_SPACE_SIZE - HEADER_SIZE)
        # pci_init_w1cmask
        self.w1cmask[STATUS:STATUS + 2] = STATUS_W1C.to_bytes(2, "little")

    def _set(self, offset: int, size: int, value: int) -> None:
        self.config[offset:offset + size] = value.to_bytes(size, "little")

    def get(self, offset: int, size: int) -> int:
        return int.from_bytes(self.config[offset:offset + size], "little")

    def register_bar(self, index: int, size: int, type_bits: int) -> None:
        """pci_register_bar: BAR ``index`` decodes ``size`` bytes (a power of two); its
        address bits are writable, its type bits (``BAR_SPACE_IO`` for I/O) read-only."""
        offset = BASE_ADDRESS_0 + 4 * index
        self.bars[index] = (size, type_bits)
        self._set(offset, 4, type_bits)
        self.wmask[offset:offset + 4] = (~(size - 1) & 0xFFFFFFFF).to_bytes(4, "little")
        self.w1cmask[offset:offset + 4] = bytes(4)

    def bar_address(self, index: int) -> int | None:
        """Where the BAR points while its space is enabled in Command (pci_bar_address for
        I/O BARs), else None."""
        size, type_bits = self.bars[index]
        if type_bits & BAR_SPACE_IO and not self.get(COMMAND, 2) & COMMAND_IO:
            return None
        if not type_bits & BAR_SPACE_IO and not self.get(COMMAND, 2) & COMMAND_MEMORY:
            return None
        addr = self.get(BASE_ADDRESS_0 + 4 * index, 4) & ~(size - 1)
        return addr if addr else None

    def read_only(self, offset: int, size: int = 1) -> None:
        """Make ``size`` bytes at ``offset`` read-only (the device's own wmask changes)."""
        self.wmask[offset:offset + size] = bytes(size)

    # -- the configuration cycle ----------------------------------------------------------

    def config_read(self, offset: int, size: int) -> int:
        """pci_default_read_config."""
        return self.get(offset, size)

    def config_write(self, offset: int, size: int, value: int) -> None:
        """pci_default_write_config: the byte loop with wmask and w1cmask."""
        for i in range(size):
            byte = (value >> (8 * i)) & 0xFF
            at = offset + i
            wm, w1c = self.wmask[at], self.w1cmask[at]
            self.config[at] = ((self.config[at] & ~wm) | (byte & wm)) & ~(byte & w1c) & 0xFF
        if _overlaps(offset, size, BASE_ADDRESS_0, 24) or _overlaps(offset, size, COMMAND, 1):
            self.update_mappings()

    def device_reset(self) -> None:
        """The device's own reset (its DeviceClass reset); nothing by default."""

    def reset(self) -> None:
        """pci_device_reset: the device's own reset, then pci_do_device_reset, which clears
        the writable Command and Status bits, the Cache Line Size, the Interrupt Line and the
        BARs' address bits."""
        self.device_reset()
        for reg, width in ((COMMAND, 2), (STATUS, 2)):
            mask = self.get_mask(self.wmask, reg, width) | self.get_mask(self.w1cmask, reg, width)
            self._set(reg, width, self.get(reg, width) & ~mask)
        self.config[CACHE_LINE_SIZE] = 0
        self.config[INTERRUPT_LINE] = 0
        for index, (_size, type_bits) in self.bars.items():
            self._set(BASE_ADDRESS_0 + 4 * index, 4, type_bits)
        self.update_mappings()

    def update_mappings(self) -> None:
        """pci_update_mappings: a device with BARs places them here."""

    @staticmethod
    def get_mask(mask: bytearray, offset: int, size: int) -> int:
        return int.from_bytes(mask[offset:offset + size], "little")


class PciBus:
    """The root bus (bus number 0): functions by devfn (device << 3 | function)."""

    def __init__(self) -> None:
        self.functions: dict[int, PciFunction] = {}

    def add(self, device: int, function: int, fn: PciFunction) -> None:
        self.functions[(device << 3) | function] = fn

    def find(self, bus: int, devfn: int) -> PciFunction | None:
        """pci_find_device: only bus 0 exists. Functions other than 0 answer only while
        function 0 of their device is there."""
        if bus != 0 or (devfn & 7 and (devfn & ~7) not in self.functions):
            return None
        return self.functions.get(devfn)

    def reset(self) -> None:
        for fn in self.functions.values():
            fn.reset()


def _overlaps(offset: int, size: int, start: int, length: int) -> bool:
    """QEMU's ranges_overlap."""
    return offset < start + length and start < offset + size
