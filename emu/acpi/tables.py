"""The ACPI tables of emu's ``pc``, laid out as QEMU 7.2's pc-i440fx-7.2 lays them out
(hw/i386/acpi-build.c acpi_build, hw/acpi/aml-build.c build_rsdp/build_rsdt/build_fadt/
build_facs, hw/i386/acpi-common.c acpi_build_madt) and published in fw_cfg as
``etc/acpi/tables``, ``etc/acpi/rsdp`` and ``etc/table-loader``.

The tables blob holds FACS, DSDT, FADT, MADT, HPET (unless ``hpet=off``), WAET and RSDT, in
QEMU's order. The RSDP (revision 0, ACPI 1.0, as QEMU's pc) points to the RSDT.
Checksums and pointers are left for the firmware's loader to fill in, as in QEMU's blobs.
docs/devel/acpi.md lists every difference from QEMU's tables and why.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from emu.acpi import aml
from emu.acpi.linker import BiosLinker

TABLES_FILE, RSDP_FILE, LOADER_FILE = "etc/acpi/tables", "etc/acpi/rsdp", "etc/table-loader"
#: the tables blob is padded to this size (ACPI_BUILD_TABLE_SIZE, pc-i440fx >= 2.3)
TABLE_SIZE = 0x20000
OEM_ID, OEM_TABLE_ID, OEM_REVISION = b"BOCHS ", b"BXPC    ", 1
CREATOR_ID, CREATOR_REVISION = b"BXPC", 1
HEADER = struct.Struct("<4sIBB6s8sI4sI")
CHECKSUM_OFFSET = 9

#: the PIIX4 power management registers as SeaBIOS leaves them (PMBASE 0x600), and the
#: rest of QEMU's PIIX4 FADT (hw/i386/acpi-build.c acpi_get_pm_info, piix4_pm_init)
PM_IO_BASE = 0x600
GPE0_BLK, GPE0_BLK_LEN = 0xAFE0, 4
SCI_INT = 9
SMI_CMD, ACPI_ENABLE, ACPI_DISABLE = 0xB2, 0xF1, 0xF0
#: the PIIX4's S4 SLP_TYP (its s4_val property)
S4_VAL = 2
RTC_CENTURY = 0x32
#: FADT flags: WBINVD, PROC_C1, SLP_BUTTON, RTC_S4, USE_PLATFORM_CLOCK
FADT_FLAGS = (1 << 0) | (1 << 2) | (1 << 5) | (1 << 7) | (1 << 15)
PLVL_LAT_NONE = 0xFFF

APIC_DEFAULT_ADDRESS, IOAPIC_ADDRESS, IOAPIC_ID = 0xFEE00000, 0xFEC00000, 0
#: the HPET's Event Timer Block ID (its capabilities register's low half) and base
HPET_BLOCK_ID, HPET_BASE, HPET_LEN = 0x8086A201, 0xFED00000, 0x400
#: WAET's flag "ACPI PM timer good"
WAET_PM_TIMER_GOOD = 1 << 1
#: ISA IRQs that are PCI interrupts on QEMU's pc (x86ms->pci_irq_mask = 0x0e20): their
#: MADT overrides make them level-triggered, active high
PCI_IRQ_MASK = (1 << 5) | (1 << 9) | (1 << 10) | (1 << 11)
MADT_FLAG_PCAT_COMPAT = 1


@dataclass
class PcAcpiConfig:
    """What emu's pc has that the tables describe."""

    cpus: int = 1                       # present CPUs (-smp)
    max_cpus: int = 1                   # possible CPUs
    irq0_override: bool = True
    serial: list[tuple[int, int, int]] = field(default_factory=list)  # (index, port, irq)
    fw_cfg_dma: bool = True
    pvpanic_port: int | None = None
    hpet: bool = True                   # the HPET (-M pc,hpet=off: none)
    rtc_irq: int = 8
    #: the 32-bit and 64-bit PCI holes (first and last address; hw/pci-host/i440fx.c)
    pci_hole: tuple[int, int] = (0x08000000, 0xFEBFFFFF)
    pci_hole64: tuple[int, int] = (0x100000000, 0x17FFFFFFF)


@dataclass
class AcpiBlobs:
    """The three fw_cfg files."""

    tables: bytes
    rsdp: bytes
    loader: bytes


def header(sig: bytes, length: int, rev: int) -> bytes:
    """The common table header (ACPI 6.4 5.2.6), checksum 0 (the loader computes it)."""
    return HEADER.pack(sig, length, rev, 0, OEM_ID, OEM_TABLE_ID, OEM_REVISION, CREATOR_ID,
                       CREATOR_REVISION)


def table(sig: bytes, rev: int, body: bytes) -> bytes:
    return header(sig, HEADER.size + len(body), rev) + body


def build_facs() -> bytes:
    """FACS (build_facs): signature, length 64, everything else 0."""
    return struct.pack("<4sI", b"FACS", 64).ljust(64, b"\0")


def _isa_devices(cfg: PcAcpiConfig) -> list[bytes]:
    """The ISA bus's nodes, each encoded as the QEMU device model encodes its own (its
    build_aml), in QEMU's order of the ISA bus children:

    - pvpanic PEVT, QEMU0001 (hw/misc/pvpanic-isa.c build_pvpanic_isa_aml)
    - i8042 KBD PNP0303 and MOU PNP0F13 (hw/input/pckbd.c i8042_build_aml)
    - COMn PNP0501 (hw/char/serial-isa.c serial_isa_build_aml), the last one first
    - RTC PNP0B00 (hw/rtc/mc146818rtc.c rtc_build_aml)
    """
    isa: list[bytes] = []
    if cfg.pvpanic_port is not None:
        port = cfg.pvpanic_port
        isa.append(aml.device(
            "PEVT",
            aml.name_decl("_HID", aml.string("QEMU0001")),
            aml.name_decl("_CRS", aml.resource_template(aml.io(aml.DECODE16, port, port, 1, 1))),
            aml.operation_region("PEOR", aml.SYSTEM_IO, port, 1),
            aml.field("PEOR", aml.BYTE_ACC, aml.NO_LOCK, aml.PRESERVE, aml.named_field("PEPT", 8)),
            aml.name_decl("_STA", aml.integer(0xF)),
            aml.method("RDPT", 0, aml.store(aml.name("PEPT"), aml.local(0)),
                       aml.return_(aml.local(0))),
            aml.method("WRPT", 1, aml.store(aml.arg(0), aml.name("PEPT")))))
    isa.append(aml.device(
        "KBD",
        aml.name_decl("_HID", aml.eisaid("PNP0303")),
        aml.name_decl("_STA", aml.integer(0xF)),
        aml.name_decl("_CRS", aml.resource_template(
            aml.io(aml.DECODE16, 0x60, 0x60, 1, 1), aml.io(aml.DECODE16, 0x64, 0x64, 1, 1),
            aml.irq_no_flags(1)))))
    isa.append(aml.device(
        "MOU",
        aml.name_decl("_HID", aml.eisaid("PNP0F13")),
        aml.name_decl("_STA", aml.integer(0xF)),
        aml.name_decl("_CRS", aml.resource_template(aml.irq_no_flags(12)))))
    for index, port, irq in sorted(cfg.serial, reverse=True):  # QEMU: the last one first
        isa.append(aml.device(
            f"COM{index + 1}",
            aml.name_decl("_HID", aml.eisaid("PNP0501")),
            aml.name_decl("_UID", aml.integer(index + 1)),
            aml.name_decl("_STA", aml.integer(0xF)),
            aml.name_decl("_CRS", aml.resource_template(
                aml.io(aml.DECODE16, port, port, 0, 8), aml.irq_no_flags(irq)))))
    isa.append(aml.device(
        "RTC",
        aml.name_decl("_HID", aml.eisaid("PNP0B00")),
        aml.name_decl("_CRS", aml.resource_template(
            aml.io(aml.DECODE16, 0x70, 0x70, 1, 8), aml.irq_no_flags(cfg.rtc_irq)))))
    return isa


def _prt_entry(link: str) -> bytes:
    """build_prt_entry: Package (4) { 0, 0, LINK, 0 }."""
    return aml.package(4, aml.integer(0), aml.integer(0), aml.name(link), aml.integer(0))


def _prt() -> bytes:
    """build_prt(true): _PRT computes the 128 routes of the 32 slots: (slot + pin) & 3
    picks LNKD, LNKA, LNKB or LNKC, except slot 1 pin A (the PIIX4's SCI), LNKS."""
    res, pin, slot, lnk, route = (aml.local(n) for n in range(5))

    def init_route(link: str, idx: int) -> bytes:
        return aml.if_(aml.equal(lnk, aml.integer(idx)), aml.store(_prt_entry(link), route))

    loop = aml.while_(
        aml.lless(pin, aml.integer(128)),
        aml.store(aml.shiftright(pin, aml.integer(2)), slot),
        aml.store(aml.and_(aml.add(pin, slot), aml.integer(3)), lnk),
        init_route("LNKD", 0),
        aml.if_(aml.equal(lnk, aml.integer(1)),
                aml.if_(aml.equal(pin, aml.integer(4)), aml.store(_prt_entry("LNKS"), route)),
                aml.else_(aml.store(_prt_entry("LNKA"), route))),
        init_route("LNKB", 2),
        init_route("LNKC", 3),
        aml.store(aml.or_(aml.shiftleft(slot, aml.integer(16)), aml.integer(0xFFFF)),
                  aml.index(route, aml.integer(0))),
        aml.store(aml.and_(pin, aml.integer(3)), aml.index(route, aml.integer(1))),
        aml.store(route, aml.index(res, pin)),
        aml.increment(pin))
    return aml.method("_PRT", 0, aml.store(aml.package(128), res),
                      aml.store(aml.integer(0), pin), loop, aml.return_(res))


def _link(name: str, uid: int, reg: str) -> bytes:
    """build_link_dev: a PCI interrupt link (PNP0C0F) on PIIX3 PIRQ register ``reg``."""
    return aml.device(
        name,
        aml.name_decl("_HID", aml.eisaid("PNP0C0F")),
        aml.name_decl("_UID", aml.integer(uid)),
        aml.name_decl("_PRS", aml.resource_template(aml.interrupt(5, 10, 11))),
        aml.method("_STA", 0, aml.return_(aml.call("IQST", aml.name(reg)))),
        aml.method("_DIS", 0, aml.or_(aml.name(reg), aml.integer(0x80), aml.name(reg))),
        aml.method("_CRS", 0, aml.return_(aml.call("IQCR", aml.name(reg)))),
        aml.method("_SRS", 1, aml.create_dword_field(aml.arg(0), aml.integer(5), "PRRI"),
                   aml.store(aml.name("PRRI"), aml.name(reg))))


def _pci0_int() -> bytes:
    """build_piix4_pci0_int: _PRT, IQST, IQCR, the links LNKA-LNKD and the SCI's LNKS."""
    iqst = aml.method("IQST", 1,
                      aml.if_(aml.and_(aml.integer(0x80), aml.arg(0)),
                              aml.return_(aml.integer(0x09))),
                      aml.return_(aml.integer(0x0B)))
    iqcr = aml.method(
        "IQCR", 1,
        aml.name_decl("PRR0", aml.resource_template(aml.interrupt(0))),
        aml.create_dword_field(aml.name("PRR0"), aml.integer(5), "PRRI"),
        aml.if_(aml.lless(aml.arg(0), aml.integer(0x80)), aml.store(aml.arg(0), aml.name("PRRI"))),
        aml.return_(aml.name("PRR0")), serialized=True)
    lnks = aml.device(
        "LNKS",
        aml.name_decl("_HID", aml.eisaid("PNP0C0F")),
        aml.name_decl("_UID", aml.integer(4)),
        aml.name_decl("_PRS", aml.resource_template(aml.interrupt(SCI_INT))),
        aml.method("_STA", 0, aml.return_(aml.integer(0x0B))),
        aml.method("_DIS", 0),
        aml.method("_CRS", 0, aml.return_(aml.name("_PRS"))),
        aml.method("_SRS", 1))
    return aml.scope("_SB", aml.scope("PCI0", _prt()), iqst, iqcr,
                     *(_link(f"LNK{c}", i, f"PRQ{i}") for i, c in enumerate("ABCD")), lnks)


def _pci0_crs(cfg: PcAcpiConfig) -> bytes:
    """PCI0._CRS (build_dsdt): bus numbers 0-255, the configuration ports, the I/O space but
    them, the VGA window, the 32-bit PCI hole (from the end of RAM below 4 GiB to the IOAPIC)
    and the 64-bit one (2 GiB from the first GiB boundary at or after the end of RAM)."""
    fixed = aml.MIN_FIXED | aml.MAX_FIXED | aml.POS_DECODE
    hole_lo, hole_hi = cfg.pci_hole
    hole64_lo, hole64_hi = cfg.pci_hole64
    return aml.resource_template(
        aml.word_bus_number(fixed, 0, 0, 0xFF, 0, 0x100),
        aml.io(aml.DECODE16, 0x0CF8, 0x0CF8, 1, 8),
        aml.word_io(fixed, aml.ENTIRE_RANGE, 0, 0, 0x0CF7, 0, 0x0CF8),
        aml.word_io(fixed, aml.ENTIRE_RANGE, 0, 0x0D00, 0xFFFF, 0, 0xF300),
        aml.dword_memory(fixed, aml.CACHEABLE, aml.READ_WRITE, 0, 0xA0000, 0xBFFFF, 0,
                         0x20000),
        aml.dword_memory(fixed, aml.NON_CACHEABLE, aml.READ_WRITE, 0, hole_lo, hole_hi, 0,
                         hole_hi - hole_lo + 1),
        aml.qword_memory(fixed, aml.CACHEABLE, aml.READ_WRITE, 0, hole64_lo, hole64_hi, 0,
                         hole64_hi - hole64_lo + 1))


def _sleep_states() -> bytes:
    """\\_S3, \\_S4 and \\_S5: the SLP_TYP values PM1a_CNT takes (1, 2, 0)."""
    def pkg(typ: int) -> bytes:
        return aml.package(4, aml.integer(typ), aml.integer(typ), aml.integer(0),
                           aml.integer(0))
    return aml.scope("\\", aml.name_decl("_S3", pkg(1)), aml.name_decl("_S4", pkg(S4_VAL)),
                     aml.name_decl("_S5", pkg(0)))


def pc_dsdt_body(cfg: PcAcpiConfig) -> bytes:
    """The DSDT's AML in build_dsdt's order, without what emu does not have:

    - ``\\_SB.PCI0``, the i440FX host bridge (PNP0A03, _ADR 0, _UID 0);
    - the PCI interrupt routing (build_piix4_pci0_int): _PRT, the links LNKA-LNKD on the
      PIIX3's PIRQ registers, LNKS for the SCI;
    - ``\\_GPE`` with its _HID ACPI0006;
    - PCI0._CRS and the GPE0 block's resources (PNP0A06);
    - the sleep states \\_S3, \\_S4, \\_S5;
    - ``\\_SB.PCI0.FWCF`` (QEMU0002; hw/i386/fw_cfg.c fw_cfg_add_acpi_dsdt);
    - the PCI functions with AML (build_append_pci_bus_devices, without hotplug):
      S00 (00.0) and S08 (01.0), the PIIX3, whose build_pci_isa_aml declares its PIRQ
      registers P40C and the PRQx fields and holds the ISA devices.

    Left out (docs/devel/acpi.md): the debug port DBUG (isa-debugcon 0x402), HPET, the CPU
    hotplug container \\_SB.CPUS and \\_GPE._E02 (the registers at 0xaf00), ACPI PCI
    hotplug (the registers at 0xae00, BSEL, _DSM, PCNT; QEMU with
    ``-global PIIX4_PM.acpi-root-pci-hotplug=off
    -global PIIX4_PM.acpi-pci-hotplug-with-bridge-support=off`` leaves them out too) and
    the floppy controller FDC0.
    """
    hpet = _hpet() if cfg.hpet else b""
    pci0 = aml.scope("_SB", aml.device(
        "PCI0", aml.name_decl("_HID", aml.eisaid("PNP0A03")),
        aml.name_decl("_ADR", aml.integer(0)), aml.name_decl("_UID", aml.integer(0))))
    gpe = aml.scope("_GPE", aml.name_decl("_HID", aml.string("ACPI0006")))
    gpe0 = aml.device(
        "GPE0",
        aml.name_decl("_HID", aml.string("PNP0A06")),
        aml.name_decl("_UID", aml.string("GPE0 resources")),
        aml.name_decl("_STA", aml.integer(0xB)),
        aml.name_decl("_CRS", aml.resource_template(
            aml.io(aml.DECODE16, GPE0_BLK, GPE0_BLK, 1, GPE0_BLK_LEN))))
    crs = aml.scope("\\_SB.PCI0", aml.name_decl("_CRS", _pci0_crs(cfg)), gpe0)
    fw_cfg_len = 0x0C if cfg.fw_cfg_dma else 0x02
    fwcf = aml.scope("\\_SB.PCI0", aml.device(
        "FWCF",
        aml.name_decl("_HID", aml.string("QEMU0002")),
        aml.name_decl("_STA", aml.integer(0xB)),
        aml.name_decl("_CRS", aml.resource_template(
            aml.io(aml.DECODE16, 0x510, 0x510, 1, fw_cfg_len)))))
    prq = aml.field("PCI0.S08.P40C", aml.BYTE_ACC, aml.NO_LOCK, aml.PRESERVE,
                    *(aml.named_field(f"PRQ{i}", 8) for i in range(4)))
    s08 = aml.device(
        "S08", aml.name_decl("_ADR", aml.integer(0x00010000)),
        aml.operation_region("P40C", aml.PCI_CONFIG, 0x60, 4),
        aml.scope("\\_SB", prq), *_isa_devices(cfg))
    devices = aml.scope("\\_SB", aml.scope(
        "PCI0", aml.device("S00", aml.name_decl("_ADR", aml.integer(0))), s08))
    return pci0 + _pci0_int() + hpet + gpe + crs + _sleep_states() + fwcf + devices


def _hpet() -> bytes:
    """``\\_SB.HPET`` (build_hpet_aml): PNP0103 with the timer block's first 8 bytes as
    fields, present when the vendor ID and the period are sane, and its MMIO range."""
    zero, id_, period = aml.integer(0), aml.local(0), aml.local(1)
    sta = aml.method(
        "_STA", 0,
        aml.store(aml.name("VEND"), id_),
        aml.store(aml.name("PRD"), period),
        aml.shiftright(id_, aml.integer(16), id_),
        aml.if_(aml.lor(aml.equal(id_, zero), aml.equal(id_, aml.integer(0xFFFF))),
                aml.return_(zero)),
        aml.if_(aml.lor(aml.equal(period, zero), aml.lgreater(period, aml.integer(100000000))),
                aml.return_(zero)),
        aml.return_(aml.integer(0x0F)))
    return aml.scope("_SB", aml.device(
        "HPET",
        aml.name_decl("_HID", aml.eisaid("PNP0103")),
        aml.name_decl("_UID", zero),
        aml.operation_region("HPTM", aml.SYSTEM_MEMORY, HPET_BASE, HPET_LEN),
        aml.field("HPTM", aml.DWORD_ACC, aml.LOCK, aml.PRESERVE,
                  aml.named_field("VEND", 32), aml.named_field("PRD", 32)),
        sta,
        aml.name_decl("_CRS", aml.resource_template(
            aml.memory32_fixed(HPET_BASE, HPET_LEN, aml.READ_ONLY)))))


def build_fadt(facs: int, dsdt: int, offset: int, linker: BiosLinker) -> bytes:
    """FADT revision 1 (ACPI 1.0, 116 bytes), as QEMU's pc builds it (build_fadt with
    PIIX4's AcpiFadtData): FIRMWARE_CTRL and DSDT hold the tables' offsets in the blob, which
    the loader turns into addresses."""
    body = struct.pack(
        "<IIBBHIBBBBIIIIIIIIBBBBBBBBHHHHBBBBBHBI",
        facs, dsdt, 1, 0, SCI_INT, SMI_CMD, ACPI_ENABLE, ACPI_DISABLE, 0, 0,
        PM_IO_BASE, 0, PM_IO_BASE + 4, 0, 0, PM_IO_BASE + 8, GPE0_BLK, 0,
        4, 2, 0, 4, GPE0_BLK_LEN, 0, 0, 0,
        PLVL_LAT_NONE, PLVL_LAT_NONE, 0, 0, 0, 0, 0, 0, RTC_CENTURY, 0, 0, FADT_FLAGS)
    linker.add_pointer(TABLES_FILE, offset + 36, 4, TABLES_FILE)
    linker.add_pointer(TABLES_FILE, offset + 40, 4, TABLES_FILE)
    return table(b"FACP", 1, body)


def build_madt(cfg: PcAcpiConfig) -> bytes:
    """MADT revision 1 (acpi_build_madt): a local APIC per possible CPU (enabled when
    present), the IOAPIC, the interrupt source overrides (IRQ0 to GSI 2; the PCI IRQs level,
    active high) and the local APIC NMI on LINT1 of every CPU."""
    body = struct.pack("<II", APIC_DEFAULT_ADDRESS, MADT_FLAG_PCAT_COMPAT)
    for i in range(cfg.max_cpus):
        body += struct.pack("<BBBBI", 0, 8, i, i, int(i < cfg.cpus))
    body += struct.pack("<BBBBII", 1, 12, IOAPIC_ID, 0, IOAPIC_ADDRESS, 0)
    if cfg.irq0_override:
        body += struct.pack("<BBBBIH", 2, 10, 0, 0, 2, 0)
    for irq in range(1, 16):
        if PCI_IRQ_MASK & (1 << irq):
            body += struct.pack("<BBBBIH", 2, 10, 0, irq, irq, 0xD)
    body += struct.pack("<BBBHB", 4, 6, 0xFF, 0, 1)
    return table(b"APIC", 1, body)


def build_hpet() -> bytes:
    """HPET (build_hpet; IA-PC HPET 1.0a 3.2.4): the Event Timer Block ID QEMU's HPET
    advertises, its base address as a system-memory GAS, HPET number 0, no minimum tick, no
    page protection."""
    gas = struct.pack("<BBBBQ", aml.SYSTEM_MEMORY, 0, 0, 0, HPET_BASE)
    return table(b"HPET", 1, struct.pack("<I", HPET_BLOCK_ID) + gas + struct.pack("<BHB", 0, 0, 0))


def build_waet() -> bytes:
    """WAET (build_waet): "ACPI PM timer good", which the PIIX4's PM timer is."""
    return table(b"WAET", 1, struct.pack("<I", WAET_PM_TIMER_GOOD))


def build_rsdt(entries: list[int], offset: int, linker: BiosLinker) -> bytes:
    """RSDT (build_rsdt): the blob offsets of the tables, made addresses by the loader."""
    for i in range(len(entries)):
        linker.add_pointer(TABLES_FILE, offset + HEADER.size + 4 * i, 4, TABLES_FILE)
    return table(b"RSDT", 1, b"".join(struct.pack("<I", e) for e in entries))


def build_rsdp(rsdt: int, linker: BiosLinker) -> bytes:
    """RSDP revision 0 (build_rsdp): 20 bytes, in the f-segment zone."""
    linker.alloc(RSDP_FILE, 16, fseg=True)
    linker.add_pointer(RSDP_FILE, 16, 4, TABLES_FILE)
    linker.add_checksum(RSDP_FILE, 0, 20, 8)
    return struct.pack("<8sB6sBI", b"RSD PTR ", 0, OEM_ID, 0, rsdt)


def build_pc(cfg: PcAcpiConfig) -> AcpiBlobs:
    """All three blobs, in acpi_build's order of tables and loader commands."""
    linker = BiosLinker()
    linker.alloc(TABLES_FILE, 64, fseg=False)
    blob = bytearray()

    def add(data: bytes, checksum: bool = True) -> int:
        offset = len(blob)
        blob.extend(data)
        if checksum:
            linker.add_checksum(TABLES_FILE, offset, len(data), offset + CHECKSUM_OFFSET)
        return offset

    facs = add(build_facs(), checksum=False)
    dsdt = add(table(b"DSDT", 1, pc_dsdt_body(cfg)))
    fadt_offset = len(blob)
    fadt = add(build_fadt(facs, dsdt, fadt_offset, linker))
    entries = [fadt, add(build_madt(cfg))]
    if cfg.hpet:
        entries.append(add(build_hpet()))
    entries.append(add(build_waet()))
    rsdt_offset = len(blob)
    add(build_rsdt(entries, rsdt_offset, linker))
    rsdp = build_rsdp(rsdt_offset, linker)
    if len(blob) > TABLE_SIZE:
        raise ValueError("ACPI tables larger than their fw_cfg file")
    return AcpiBlobs(bytes(blob.ljust(TABLE_SIZE, b"\0")), rsdp, linker.blob())
