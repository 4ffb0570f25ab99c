"""The GICv2m MSI frame (QEMU 7.2 hw/intc/arm_gicv2m.c; ARM DEN 0029 v2.2, "Server Base
System Architecture", appendix "GICv2m": one non-secure MSI frame, no optional
implementation-defined identification registers).

A guest raises an interrupt by writing its ID to MSI_SETSPI_NS: the frame pulses output
``ID - 32 - base_spi`` (``qemu_irq_pulse``: high, then low), which virt wires to the GIC's
SPI inputs ``base_spi`` onwards (hw/arm/virt.c create_v2m: ``base-spi`` 48, ``num-spi`` 64,
so Linux reads SPIs 80-143 from MSI_TYPER). IDs outside the frame's range are ignored.

Registers (4 KiB, little-endian), as QEMU decodes them:

- 0x008 MSI_TYPER: ``(base_spi + 32) << 16 | num_spi``;
- 0x040 MSI_SETSPI_NS (write, 16 or 32 bits): bits 9:0 are the interrupt ID;
- 0xfcc MSI_IIDR: product ID 0x51 ('Q') in bits 31:20, implementer and revision 0;
- 0xfd0-0xffc: the ID registers, all zero (MSI_PIDR2 included).

Reads other than 32 bits, and reads of other offsets, give 0; writes other than 16 or 32
bits, and writes to other offsets, are ignored (QEMU logs them as guest errors).
"""

from __future__ import annotations

from emu.bus import Region
from emu.irq import Gpios, IrqLine

#: QEMU's GICV2M_NUM_SPI_MAX
GICV2M_NUM_SPI_MAX = 128
V2M_MSI_TYPER = 0x008
V2M_MSI_SETSPI_NS = 0x040
V2M_MSI_IIDR = 0xFCC
V2M_IIDR0 = 0xFD0
V2M_IIDR11 = 0xFFC
#: ASCII 'Q'
PRODUCT_ID_QEMU = 0x51
FRAME_SIZE = 0x1000


class ArmGicV2m:
    """The frame: ``region`` (``gicv2m``, 4 KiB) and ``spi`` (its outputs, QEMU's sysbus
    IRQs 0..num_spi-1)."""

    def __init__(self, base_spi: int = 0, num_spi: int = 64) -> None:
        if num_spi > GICV2M_NUM_SPI_MAX:  # gicv2m_realize's checks
            raise ValueError(f"requested {num_spi} SPIs exceeds GICv2m frame maximum "
                             f"{GICV2M_NUM_SPI_MAX}")
        if base_spi + 32 > 1020 - num_spi:
            raise ValueError(f"requested base SPI {base_spi + 32}+{num_spi} exceeds max. "
                             "number 1020")
        self.base_spi = base_spi
        self.num_spi = num_spi
        self.spi = [IrqLine(f"gicv2m.spi[{n}]") for n in range(num_spi)]
        self.gpios = Gpios("arm-gicv2m", outputs={"sysbus-irq": self.spi})
        self.region = Region("gicv2m", FRAME_SIZE, self)

    def read(self, offset: int, size: int) -> int:
        """``gicv2m_read``."""
        if size != 4:
            return 0
        if offset == V2M_MSI_TYPER:
            return (self.base_spi + 32) << 16 | self.num_spi
        if offset == V2M_MSI_IIDR:
            return PRODUCT_ID_QEMU << 20
        return 0  # V2M_IIDR0..V2M_IIDR11, and every offset QEMU does not decode

    def write(self, offset: int, size: int, value: int) -> None:
        """``gicv2m_write``: MSI_SETSPI_NS pulses the SPI the written ID names."""
        if size not in (2, 4) or offset != V2M_MSI_SETSPI_NS:
            return
        spi = (value & 0x3FF) - (self.base_spi + 32)
        if 0 <= spi < self.num_spi:
            self.spi[spi].pulse()
