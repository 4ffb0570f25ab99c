"""The PIIX functions of QEMU 7.2's pc on PCI device 1: 01.0 the PIIX3 PCI-to-ISA bridge
(hw/isa/piix3.c), 01.1 the PIIX3 IDE controller (hw/ide/piix.c) and 01.3 the PIIX4 power
management function (hw/acpi/piix4.c, hw/acpi/core.c, hw/isa/apm.c; Intel 82371AB PIIX4
datasheet, section 3.2 and 7).

* **01.0** (8086:7000, class 0601, multi-function): the reset values of ``piix3_reset``
  (PIRQ routing 0x60-0x63 = 0x80, disabled; 0x4c, 0x4e, 0x69, 0x70, 0x76-0x78, 0xa0, 0xa8).
  The PIRQ registers route PCI INTx to ISA IRQs; no PCI device emu has raises INTx, so they
  are read and written only (the SCI is wired straight to ISA IRQ 9, as on QEMU).
* **01.1** (8086:7010, class 0101, programming interface 0x80, legacy mode): BAR4 is the
  16-port bus master DMA block. emu has no IDE drives or bus master DMA; the BAR sizes and
  reads back as QEMU's and decodes nothing.
* **01.3** (8086:7113, class 0680, revision 3, interrupt pin A): PMBA (0x40, bit 0 read as
  one, base bits 15:6) and PMIOSE (bit 0 of 0x80) place the 64-port power management block
  (``pm_io_space_update``): PM1a_EVT (status, write one to clear, and enable) at +0, PM1a_CNT
  at +4 (SCI_EN; SLP_EN with SLP_TYP 0 or 2, the S5 and S4 values of QEMU's DSDT, powers the
  machine off; S3, type 1, is not modelled and does nothing) and the ACPI PM timer at +8
  (3.579545 MHz, 24 bits, on the virtual clock; TMR_STS set at each overflow, an SCI when
  TMR_EN). The SCI goes to ISA IRQ 9. APM (``apm-io`` at 0xb2/0xb3): a write of ACPI_ENABLE
  (0xf1) / ACPI_DISABLE (0xf0) to 0xb2 sets / clears SCI_EN, as QEMU's TCG pc, which has SMM
  (``acpi_only`` off), does. GPE0 (``acpi-gpe0``, 0xafe0-0xafe3): 2 status bytes (write one
  to clear), 2 enable bytes. SMBus (0x90, 0xd2) are registers only: emu has no SMBus
  controller. ``etc/system-states`` in fw_cfg tells firmware the sleep states, as QEMU's.
"""

from __future__ import annotations

from collections.abc import Callable

from emu.bus import Region
from emu.clock import Clock, Timer
from emu.devices.pci import BAR_SPACE_IO, COMMAND, INTERRUPT_PIN, STATUS, PciFunction, _overlaps
from emu.irq import IrqLine

INTEL = 0x8086
PIIX3_ISA_DEVICE, PIIX3_IDE_DEVICE, PIIX4_PM_DEVICE = 0x7000, 0x7010, 0x7113
CLASS_BRIDGE_ISA, CLASS_STORAGE_IDE, CLASS_BRIDGE_OTHER = 0x0601, 0x0101, 0x0680
PIIX_PIRQCA = 0x60
STATUS_DEVSEL_MEDIUM, STATUS_FAST_BACK = 0x0200, 0x0080
#: piix3_reset: (register, value) of everything it sets that is not 0
PIIX3_RESET = ((0x4C, 0x4D), (0x4E, 0x03), (0x60, 0x80), (0x61, 0x80), (0x62, 0x80),
               (0x63, 0x80), (0x69, 0x02), (0x70, 0x80), (0x76, 0x0C), (0x77, 0x0C),
               (0x78, 0x02), (0xA0, 0x08), (0xA8, 0x0F))
PIIX3_RESET_ZERO = (0x4F, 0x79, 0x80, 0x82, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xAA, 0xAB,
                    0xAC, 0xAE)
PIIX_IDE_BMDMA_SIZE = 16

PM_PMBA, PM_PMREGMISC, PM_DEVACTB = 0x40, 0x80, 0x58
PM_IO_SIZE = 64
PM_SMB_BASE, PM_SMBHSTCFG = 0x90, 0xD2
SMB_IO_BASE = 0xB100
APM_PORT, GPE0_PORT, GPE0_LEN = 0xB2, 0xAFE0, 4
ACPI_ENABLE, ACPI_DISABLE = 0xF1, 0xF0
PM_TIMER_FREQUENCY = 3579545
NS_PER_S = 1_000_000_000
#: PM1 status/enable bits (hw/acpi/core.c ACPI_BITMASK_*)
TIMER_STATUS, GLOBAL_LOCK, POWER_BUTTON, RT_CLOCK = 0x0001, 0x0020, 0x0100, 0x0400
SCI_ENABLE, SLEEP_ENABLE = 0x0001, 0x2000
S4_VAL = 2
SYSTEM_STATES_FILE = "etc/system-states"


class Piix3Isa(PciFunction):
    """01.0: the PCI-to-ISA bridge."""

    name = "PIIX3"

    def __init__(self) -> None:
        super().__init__(INTEL, PIIX3_ISA_DEVICE, CLASS_BRIDGE_ISA, multifunction=True)
        self.device_reset()

    def device_reset(self) -> None:
        """piix3_reset (its Command 0x07 is then cleared by pci_do_device_reset)."""
        self._set(COMMAND, 2, 0x0007)
        self._set(STATUS, 2, STATUS_DEVSEL_MEDIUM)
        for reg in PIIX3_RESET_ZERO:
            self.config[reg] = 0
        for reg, value in PIIX3_RESET:
            self.config[reg] = value

    def pirq_route(self, pirq: int) -> int | None:
        """The ISA IRQ PIRQ ``pirq`` (0-3, A-D) is routed to, None while disabled."""
        value = self.config[PIIX_PIRQCA + pirq]
        return None if value & 0x80 else value & 0x0F


class PiixIde(PciFunction):
    """01.1: the IDE controller's configuration space."""

    name = "piix3-ide"

    def __init__(self) -> None:
        super().__init__(INTEL, PIIX3_IDE_DEVICE, CLASS_STORAGE_IDE, prog_if=0x80)
        self.register_bar(4, PIIX_IDE_BMDMA_SIZE, BAR_SPACE_IO)
        self.device_reset()

    def device_reset(self) -> None:
        """piix_ide_reset."""
        self._set(COMMAND, 2, 0)
        self._set(STATUS, 2, STATUS_DEVSEL_MEDIUM | STATUS_FAST_BACK)
        self._set(0x20, 1, 0x01)


class _Ops:
    """A Region's ops from two functions."""

    def __init__(self, read: Callable[[int, int], int],
                 write: Callable[[int, int, int], None]) -> None:
        self.read = read
        self.write = write


class Piix4Pm(PciFunction):
    """01.3: power management, with its I/O blocks and the SCI."""

    name = "PIIX4_PM"

    def __init__(self, clock: Clock, map_port: Callable[[int, Region], None],
                 unmap_port: Callable[[Region], None], power_off: Callable[[], None]) -> None:
        super().__init__(INTEL, PIIX4_PM_DEVICE, CLASS_BRIDGE_OTHER, revision=0x03)
        self.clock = clock
        self.map_port, self.unmap_port = map_port, unmap_port
        self.power_off = power_off
        self.sci = IrqLine("piix4-pm.sci")
        self._set(STATUS, 2, STATUS_DEVSEL_MEDIUM | STATUS_FAST_BACK)
        self.config[INTERRUPT_PIN] = 1
        self.config[PM_SMB_BASE] = (SMB_IO_BASE & 0xFF) | 1
        self.config[PM_SMB_BASE + 1] = SMB_IO_BASE >> 8
        self.config[PM_SMBHSTCFG] = 0x09
        self.pm1_sts = self.pm1_en = self.pm1_cnt = 0
        self.overflow_time = 0
        self.gpe_sts = bytearray(GPE0_LEN // 2)
        self.gpe_en = bytearray(GPE0_LEN // 2)
        self.apmc = self.apms = 0
        self.timer = Timer(clock, self._timer_fired)
        self.pm_regions = (Region("acpi-evt", 4, _Ops(self._evt_read, self._evt_write)),
                           Region("acpi-cnt", 2, _Ops(self._cnt_read, self._cnt_write)),
                           Region("acpi-tmr", 4, _Ops(self._tmr_read, lambda o, s, v: None)))
        self.apm_region = Region("apm-io", 2, _Ops(self._apm_read, self._apm_write))
        self.gpe_region = Region("acpi-gpe0", GPE0_LEN, _Ops(self._gpe_read, self._gpe_write))
        self.io_base: int | None = None
        self.device_reset()

    def system_states(self) -> bytes:
        """``etc/system-states`` (acpi_pm1_cnt_init): for S0-S5, bit 7 set when the state is
        available and the SLP_TYP value below it; S3 (1) and S4 (2) enabled, as QEMU's
        defaults (disable_s3 = disable_s4 = 0)."""
        return bytes([128, 0, 0, 0x80 | 1, 0x80 | S4_VAL, 128])

    # -- configuration space --------------------------------------------------------------

    def machine_ready(self, port_present: Callable[[int], bool]) -> None:
        """piix4_pm_machine_ready: 0x5f, 0x63 and 0x67 tell which legacy ports exist (the
        parallel port at 0x378, COM1 at 0x3f8, COM2 at 0x2f8)."""
        self.config[0x5F] = 0x10 | (0x80 if port_present(0x378) else 0)
        self.config[0x63] = 0x60
        self.config[0x67] = (0x08 if port_present(0x3F8) else 0) | \
            (0x90 if port_present(0x2F8) else 0)

    def device_reset(self) -> None:
        """piix4_pm_reset (SMM is on, as on QEMU's TCG pc: 0x5b stays 0)."""
        for reg in range(PM_DEVACTB, PM_DEVACTB + 4):
            self.config[reg] = 0
        self.config[PM_PMBA] = 0x01
        self.config[PM_PMREGMISC] = 0
        self.pm1_sts = self.pm1_en = 0
        self.pm1_cnt = 0
        self.overflow_time = 0
        self.timer.cancel()
        self.gpe_sts[:] = bytes(len(self.gpe_sts))
        self.gpe_en[:] = bytes(len(self.gpe_en))
        self.update_sci()
        self.pm_io_space_update()

    def config_write(self, offset: int, size: int, value: int) -> None:
        """pm_write_config."""
        super().config_write(offset, size, value)
        if _overlaps(offset, size, PM_PMREGMISC, 1) or _overlaps(offset, size, PM_PMBA, 4):
            self.pm_io_space_update()

    def pm_io_space_update(self) -> None:
        """Place the PM block at PMBA & 0xffc0 while PMIOSE is set. A base whose ports are
        taken by another device leaves the block unmapped (QEMU overlaps them by priority)."""
        base = self.get(PM_PMBA, 4) & 0xFFC0 if self.config[PM_PMREGMISC] & 1 else None
        if base == self.io_base:
            return
        if self.io_base is not None:
            for region in self.pm_regions:
                self.unmap_port(region)
        self.io_base = None
        if base is None:
            return
        placed = []
        try:
            for offset, region in zip((0, 4, 8), self.pm_regions, strict=True):
                self.map_port(base + offset, region)
                placed.append(region)
        except ValueError:
            for region in placed:
                self.unmap_port(region)
            return
        self.io_base = base

    # -- the SCI and the PM timer (hw/acpi/core.c) ----------------------------------------

    def _tmr_clock(self) -> int:
        return self.clock.now_ns() * PM_TIMER_FREQUENCY // NS_PER_S

    def _evt_sts(self) -> int:
        """acpi_pm1_evt_get_sts: TMR_STS once the virtual clock passed the overflow time."""
        if self.clock.now_ns() >= self.overflow_time * NS_PER_S // PM_TIMER_FREQUENCY:
            self.pm1_sts |= TIMER_STATUS
        return self.pm1_sts

    def update_sci(self) -> None:
        """acpi_update_sci: the SCI level, and the overflow timer armed while TMR_EN is set
        and TMR_STS is not."""
        sts = self._evt_sts()
        pm1 = self.pm1_en & sts & (RT_CLOCK | POWER_BUTTON | GLOBAL_LOCK | TIMER_STATUS)
        self.sci.set_level(int(bool(pm1) or bool(self.gpe_sts[0] & self.gpe_en[0])))
        if self.pm1_en & TIMER_STATUS and not sts & TIMER_STATUS:
            self.timer.arm(self.overflow_time * NS_PER_S // PM_TIMER_FREQUENCY)
        else:
            self.timer.cancel()

    def _timer_fired(self) -> None:
        self.update_sci()

    def _evt_read(self, offset: int, size: int) -> int:
        if offset == 0:
            return self._evt_sts()
        return self.pm1_en if offset == 2 else 0

    def _evt_write(self, offset: int, size: int, value: int) -> None:
        if offset == 0:
            if self._evt_sts() & value & TIMER_STATUS:
                self.overflow_time = (self._tmr_clock() + 0x800000) & ~0x7FFFFF
            self.pm1_sts &= ~value
        elif offset == 2:
            self.pm1_en = value & 0xFFFF
        else:
            return
        self.update_sci()

    def _cnt_read(self, offset: int, size: int) -> int:
        return self.pm1_cnt

    def _cnt_write(self, offset: int, size: int, value: int) -> None:
        """acpi_pm1_cnt_write: SLP_EN with SLP_TYP 0 (soft off) or S4 powers off."""
        self.pm1_cnt = value & ~SLEEP_ENABLE & 0xFFFF
        if value & SLEEP_ENABLE and (value >> 10) & 7 in (0, S4_VAL):
            self.power_off()

    def _tmr_read(self, offset: int, size: int) -> int:
        return self._tmr_clock() & 0xFFFFFF

    # -- APM and GPE0 ---------------------------------------------------------------------

    def _apm_read(self, offset: int, size: int) -> int:
        return sum((self.apms if (offset + i) & 1 else self.apmc) << (8 * i)
                   for i in range(size))

    def _apm_write(self, offset: int, size: int, value: int) -> None:
        """apm_ioport_writeb, then piix4's apm_ctrl_changed for 0xb2."""
        for i in range(size):
            byte = (value >> (8 * i)) & 0xFF
            if (offset + i) & 1:
                self.apms = byte
                continue
            self.apmc = byte
            if byte == ACPI_ENABLE:
                self.pm1_cnt |= SCI_ENABLE
            elif byte == ACPI_DISABLE:
                self.pm1_cnt &= ~SCI_ENABLE

    def _gpe_read(self, offset: int, size: int) -> int:
        regs = self.gpe_sts + self.gpe_en
        return int.from_bytes(regs[offset:offset + size].ljust(size, b"\0"), "little")

    def _gpe_write(self, offset: int, size: int, value: int) -> None:
        """acpi_gpe_ioport_writeb, byte by byte."""
        half = GPE0_LEN // 2
        for i in range(size):
            byte, at = (value >> (8 * i)) & 0xFF, offset + i
            if at < half:
                self.gpe_sts[at] &= ~byte
            elif at < GPE0_LEN:
                self.gpe_en[at - half] = byte
        self.update_sci()


#: SeaBIOS's PCI interrupt routing on the PIIX: PIRQA-D to these ISA IRQs (pciinit.c)
FIRMWARE_PCI_IRQS = (10, 10, 11, 11)
#: where SeaBIOS puts the PM block and the SMBus, and its first I/O BAR address
FIRMWARE_PM_BASE, FIRMWARE_IO_START = 0x600, 0xC000
#: the i440FX's PAM 0x59-0x5f and SMRAM as SeaBIOS leaves them (firmware/pc/pci.c)
FIRMWARE_PAM = (0x10, 0x11, 0x11, 0x11, 0x11, 0x11, 0x33)
FIRMWARE_SMRAM = 0x0A
