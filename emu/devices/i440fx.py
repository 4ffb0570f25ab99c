"""The i440FX PCI host bridge, function 00.0 of QEMU 7.2's pc (hw/pci-host/i440fx.c;
Intel 82441FX PMC datasheet).

Vendor 8086, device 1237, class 0600 (host bridge), revision 2. At realize QEMU sets SMRAM
(0x72) to 0x02 and register 0x57 to the RAM size in units of 8 MiB, at most 255 (a register
real hardware does not have, read by old coreboot). The PAM registers 0x59-0x5f and SMRAM are
plain writable bytes here: emu does not switch the 0xc0000-0xfffff shadow RAM or SMRAM
(QEMU's ``i440fx_update_memory_mappings``), so the f-segment stays ROM.
"""

from __future__ import annotations

from emu.devices.pci import PciFunction

I440FX_VENDOR, I440FX_DEVICE = 0x8086, 0x1237
CLASS_BRIDGE_HOST = 0x0600
I440FX_PAM, I440FX_PAM_SIZE = 0x59, 7
I440FX_SMRAM = 0x72
I440FX_COREBOOT_RAM_SIZE = 0x57
MiB = 1 << 20


class I440fx(PciFunction):
    """00.0: the host bridge's configuration space."""

    name = "i440FX"

    def __init__(self, ram_size: int) -> None:
        super().__init__(I440FX_VENDOR, I440FX_DEVICE, CLASS_BRIDGE_HOST, revision=0x02)
        self.config[I440FX_SMRAM] = 0x02
        self.config[I440FX_COREBOOT_RAM_SIZE] = min(ram_size // 8 // MiB, 255)
