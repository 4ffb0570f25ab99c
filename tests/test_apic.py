"""The local APIC (emu/devices/apic.py) as a plain object and wired into the pc's chipset.

Expected values come from QEMU 7.2's source (hw/intc/apic.c, apic_common.c: the reset values
of ``apic_reset_common`` / ``apic_init_reset``, the ``version`` property 0x14, the timer
arithmetic of ``apic_next_timer`` / ``apic_get_current_count``, the priority rules of
``apic_irq_pending`` / ``apic_get_ppr``), from SeaBIOS 1.16's ``smp_scan`` (what firmware
leaves: LINT0 0x8700, LINT1 0x8400, as QEMU's ``info lapic`` shows after it), from a QEMU 7.2
qtest run (register reads without a CPU) and from the Intel SDM where QEMU follows it (the
divide configuration's encoding). Time moves only through a qtest-mode clock.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emu.boards.pc_chipset import PcChipset
from emu.bus import MmioBus, PortBus
from emu.clock import Clock
from emu.devices.apic import Apic, ApicBus
from emu.devices.ioapic import ApicMessage

BASE = 0xFEE00000
ID, VERSION, TPR, APR, PPR, EOI = 0x20, 0x30, 0x80, 0x90, 0xA0, 0xB0
LDR, DFR, SVR, ESR, ICR_LO, ICR_HI = 0xD0, 0xE0, 0xF0, 0x280, 0x300, 0x310
ISR, TMR, IRR = 0x100, 0x180, 0x200
LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR = (
    0x320, 0x330, 0x340, 0x350, 0x360, 0x370)
TICR, TCCR, TDCR = 0x380, 0x390, 0x3E0
SELF = 1 << 18


class Cpu:
    """What the CPU sees of one APIC: its interrupt requests as lists of levels."""

    def __init__(self, apic: Apic) -> None:
        self.apic = apic
        self.intr: list[int] = []
        self.nmi: list[int] = []
        self.init: list[int] = []
        self.sipi: list[int] = []
        self.eois: list[int] = []
        apic.intr.connect(self.intr.append)
        apic.nmi.connect(self.nmi.append)
        apic.init.connect(self.init.append)
        apic.sipi.connect(self.sipi.append)
        apic.eoi_broadcast = self.eois.append

    def read(self, reg: int) -> int:
        return self.apic.read(reg, 4)

    def write(self, reg: int, value: int) -> None:
        self.apic.write(reg, 4, value)

    def bit(self, table: int, vector: int) -> int:
        return (self.read(table + 0x10 * (vector // 32)) >> (vector % 32)) & 1

    def ipi(self, low: int, dest: int = 0) -> None:
        self.write(ICR_HI, dest << 24)
        self.write(ICR_LO, low)


def make(clock: Clock | None = None, pic_output: bool | None = None) -> Cpu:
    clock = clock or Clock("qtest")
    apic = Apic(clock, ApicBus(), 0,
                pic_output=None if pic_output is None else lambda: pic_output)
    apic.designate_bsp(True)
    apic.reset()
    return Cpu(apic)


def enabled(clock: Clock | None = None) -> Cpu:
    cpu = make(clock)
    cpu.write(SVR, 0x1FF)
    return cpu


# -- registers --------------------------------------------------------------------------------


def test_reset_values_are_qemus() -> None:
    """apic_reset_common + apic_init_reset, the version property 0x14, 6 LVT entries."""
    cpu = make()
    assert cpu.apic.get_base() == 0xFEE00900  # default address, BSP, enabled
    want = {ID: 0, VERSION: 0x00050014, TPR: 0, APR: 0, PPR: 0, EOI: 0, LDR: 0,
            DFR: 0xFFFFFFFF, SVR: 0xFF, ESR: 0, ICR_LO: 0, ICR_HI: 0, LVT_TIMER: 0x10000,
            LVT_THERMAL: 0x10000, LVT_PERF: 0x10000, LVT_LINT0: 0x10000, LVT_LINT1: 0x10000,
            LVT_ERROR: 0x10000, TICR: 0, TCCR: 0, TDCR: 0}
    assert {reg: cpu.read(reg) for reg in want} == want
    for i in range(8):
        assert cpu.read(ISR + 0x10 * i) == cpu.read(TMR + 0x10 * i) == cpu.read(IRR + 0x10 * i) == 0
    assert cpu.read(ESR) == 0  # none of the reads above was of an unknown register
    assert not cpu.apic.accept_pic_intr()  # LINT0 masked: the 8259s reach nothing


def test_register_write_semantics() -> None:
    cpu = make()
    cpu.write(ID, 0xFFFFFFFF)
    cpu.write(LDR, 0x12345678)
    cpu.write(DFR, 0x0ABCDEF0)
    cpu.write(SVR, 0xFFFFFFFF)
    cpu.write(TPR, 0x1234)
    cpu.write(LVT_ERROR, 0xFFFFFFFF)
    cpu.write(TDCR, 0xFFFFFFFF)
    cpu.write(VERSION, 0)
    cpu.write(PPR, 0xFF)
    assert cpu.read(ID) == 0xFF000000
    assert cpu.read(LDR) == 0x12000000
    assert cpu.read(DFR) == 0x0FFFFFFF  # dest_mode 0 (cluster), the rest reads as ones
    assert cpu.read(SVR) == 0x1FF  # focus (bit 9) and EOI suppression (bit 12) are dropped
    assert cpu.read(TPR) == 0x34
    assert cpu.read(LVT_ERROR) == 0xFFFFFFFF  # stored as written, reserved bits included
    assert cpu.read(TDCR) == 0xB
    assert cpu.read(VERSION) == 0x00050014 and cpu.read(PPR) == 0x34
    assert cpu.read(ESR) == 0


def test_unknown_registers_set_esr_which_nothing_clears() -> None:
    cpu = make()
    assert cpu.read(0x2F0) == 0  # LVT CMCI: not in QEMU's APIC
    assert cpu.read(ESR) == 0x80
    cpu.write(ESR, 0)
    assert cpu.read(ESR) == 0x80
    cpu.apic.reset()
    assert cpu.read(ESR) == 0
    cpu.write(0x3F0, 1)
    assert cpu.read(ESR) == 0x80
    cpu.apic.reset()
    cpu.write(0x010, 1)  # index 1 is a register write (index 0 is the MSI window)
    assert cpu.read(ESR) == 0x80


def test_narrow_misaligned_and_non_cpu_accesses() -> None:
    cpu = make()
    assert cpu.apic.read(VERSION, 1) == cpu.apic.read(VERSION, 2) == 0
    assert cpu.apic.read(VERSION + 2, 4) == 0  # misaligned: QEMU refuses it, reads 0
    cpu.apic.write(TPR, 1, 0x50)
    cpu.apic.write(TPR + 1, 4, 0x50)
    assert cpu.read(TPR) == 0
    assert cpu.apic.read(0x1030, 4) == 0x00050014  # above the page: bits 4-11 still decode
    cpu.apic.current = lambda: False  # a qtest or monitor access: no current CPU
    assert cpu.read(VERSION) == 0
    cpu.write(TPR, 0x50)
    cpu.apic.current = lambda: True
    assert cpu.read(TPR) == 0


def test_base_msr() -> None:
    cpu = enabled()
    cpu.apic.set_base(0xFED00900)  # relocation is recorded (the window stays in QEMU)
    assert cpu.apic.get_base() == 0xFED00900
    cpu.apic.set_base(0xFEE00000)  # clearing BSP does nothing; clearing EN disables
    assert cpu.apic.get_base() == 0xFEE00100 and cpu.read(SVR) == 0xFF
    cpu.apic.set_base(0xFEE00900)  # cannot be enabled again
    assert cpu.apic.get_base() == 0xFEE00100
    assert cpu.apic.accept_pic_intr() is False  # no 8259 on this test's APIC
    cpu.apic.reset()
    assert cpu.apic.get_base() == 0xFEE00900


def test_cr8_is_tpr_bits_4_to_7() -> None:
    cpu = make()
    cpu.apic.set_tpr(5)
    assert cpu.read(TPR) == 0x50 and cpu.apic.get_tpr() == 5
    cpu.write(TPR, 0x6F)
    assert cpu.apic.get_tpr() == 6


# -- the timer --------------------------------------------------------------------------------


@pytest.mark.parametrize(("dcr", "divide"), [(0x0, 2), (0x1, 4), (0x2, 8), (0x3, 16), (0x8, 32),
                                             (0x9, 64), (0xA, 128), (0xB, 1)])
def test_timer_one_shot_divide_and_current_count(dcr: int, divide: int) -> None:
    """SDM table "Divide Configuration Register" for the divisors; QEMU's timer counts
    nanoseconds divided by the divisor and fires after initial_count + 1 of them
    (apic_next_timer)."""
    clock = Clock("qtest")
    cpu = enabled(clock)
    cpu.write(TDCR, dcr)
    cpu.write(LVT_TIMER, 0x40)
    clock.warp_to(1000)
    cpu.write(TICR, 100)  # loaded at t=1000
    assert cpu.read(TCCR) == 100
    clock.warp_to(1000 + 10 * divide + divide - 1)
    assert cpu.read(TCCR) == 90
    deadline = 1000 + 101 * divide
    assert clock.next_deadline() == deadline
    clock.warp_to(deadline - 1)
    assert cpu.bit(IRR, 0x40) == 0 and cpu.read(TCCR) == 0  # 100 units passed: count 0
    clock.warp_to(deadline)
    assert cpu.bit(IRR, 0x40) == 1 and cpu.intr[-1] == 1
    assert clock.next_deadline() is None  # one-shot: done


def test_timer_periodic_reload_mask_and_mode_switch() -> None:
    clock = Clock("qtest")
    cpu = enabled(clock)
    fired: list[int] = []
    cpu.apic.intr.tap(lambda level: fired.append(clock.now_ns()) if level else None)
    cpu.write(TDCR, 0xB)  # divide by 1
    cpu.write(LVT_TIMER, 1 << 17 | 0x41)
    cpu.write(TICR, 99)
    clock.warp_to(250)
    assert cpu.read(TCCR) == 99 - 250 % 100  # apic_get_current_count's modulo
    assert fired == [100, 200]  # each period ends after initial count + 1 units
    assert cpu.apic.get_interrupt() == 0x41  # one IRR bit: the two are one interrupt
    cpu.write(EOI, 0)
    assert cpu.apic.get_interrupt() == -1
    clock.warp_to(300)
    assert fired == [100, 200, 300]
    cpu.write(LVT_TIMER, 1 << 16 | 1 << 17 | 0x41)  # masked: the timer stops
    assert clock.next_deadline() is None
    cpu.write(LVT_TIMER, 1 << 17 | 0x41)  # unmasked: the period goes on from the load time
    assert clock.next_deadline() == 400
    cpu.write(TICR, 0)  # periodic with count 0: no timer
    assert clock.next_deadline() is None and cpu.read(TCCR) == 0
    # a one-shot that already expired, switched to periodic: counts again from its load
    cpu.write(LVT_TIMER, 0x42)
    cpu.write(TICR, 100)  # t=300: one-shot deadline 401
    clock.warp_to(1000)
    assert cpu.read(TCCR) == 0 and clock.next_deadline() is None
    cpu.write(LVT_TIMER, 1 << 17 | 0x42)
    assert clock.next_deadline() == 300 + (700 // 101 + 1) * 101


def test_timer_lvt_mode_bits_and_nmi_delivery() -> None:
    """QEMU 7.2 has no TSC-deadline mode: mode 2 is one-shot, mode 3 periodic."""
    clock = Clock("qtest")
    cpu = enabled(clock)
    cpu.write(TDCR, 0xB)
    cpu.write(LVT_TIMER, 2 << 17 | 4 << 8)  # "TSC deadline", NMI delivery
    cpu.write(TICR, 9)
    clock.step()
    assert clock.now_ns() == 10 and cpu.nmi == [1] and clock.next_deadline() is None
    cpu.write(LVT_TIMER, 3 << 17 | 0x43)
    cpu.write(TICR, 9)
    clock.warp_to(40)
    assert cpu.bit(IRR, 0x43) == 1 and clock.next_deadline() == 50


def test_reset_stops_the_timer() -> None:
    clock = Clock("qtest")
    cpu = enabled(clock)
    cpu.write(LVT_TIMER, 0x40)
    cpu.write(TICR, 1000)
    cpu.apic.reset()
    assert clock.next_deadline() is None and cpu.read(TICR) == 0


# -- priorities and acknowledge -----------------------------------------------------------------


def test_ppr_and_tpr_masking() -> None:
    cpu = enabled()
    cpu.write(TPR, 0x50)
    cpu.ipi(SELF | 0x55)
    assert cpu.bit(IRR, 0x55) == 1 and cpu.apic.irq_pending() == -1
    assert cpu.intr[-1] == 0
    cpu.ipi(SELF | 0x61)
    assert cpu.intr[-1] == 1 and cpu.apic.get_interrupt() == 0x61
    assert cpu.read(PPR) == 0x60  # the ISR's class beats TPR's
    cpu.ipi(SELF | 0x62)  # same class as in service: waits
    assert cpu.apic.irq_pending() == -1 and cpu.intr[-1] == 0
    cpu.write(EOI, 0)
    assert cpu.read(PPR) == 0x50 and cpu.apic.get_interrupt() == 0x62
    cpu.write(EOI, 0)
    cpu.write(TPR, 0)
    assert cpu.apic.get_interrupt() == 0x55
    cpu.write(EOI, 0)
    assert cpu.apic.get_interrupt() == -1 and cpu.read(PPR) == 0


def test_highest_vector_first_and_eoi_ends_the_highest_in_service() -> None:
    cpu = enabled()
    for vector in (0x42, 0x91, 0x62):
        cpu.ipi(SELF | vector)
    assert cpu.apic.get_highest_priority_irr() == 0x91
    assert cpu.apic.get_interrupt() == 0x91
    assert cpu.intr[-1] == 0  # 0x62 and 0x42 are below the class in service
    assert cpu.apic.get_interrupt() == 0xFF  # acknowledged anyway: the spurious vector
    cpu.write(EOI, 0)
    assert cpu.intr[-1] == 1
    assert [cpu.apic.get_interrupt() for _ in range(2)] == [0x62, 0xFF]
    assert cpu.bit(ISR, 0x62) == 1 and cpu.bit(ISR, 0x91) == 0
    cpu.write(EOI, 0)
    assert cpu.apic.get_interrupt() == 0x42


def test_software_disabled_apic_collects_but_does_not_deliver() -> None:
    cpu = make()  # SVR 0xff after reset
    cpu.ipi(SELF | 0x51)
    assert cpu.bit(IRR, 0x51) == 1 and cpu.apic.irq_pending() == 0
    assert cpu.apic.get_interrupt() == -1 and cpu.intr[-1] == 0
    cpu.write(SVR, 0x1FF)
    assert cpu.intr[-1] == 1 and cpu.apic.get_interrupt() == 0x51


def test_spurious_vector_for_a_request_masked_at_acknowledge() -> None:
    cpu = enabled()
    cpu.write(SVR, 0x1EF)
    cpu.write(TPR, 0x50)
    cpu.ipi(SELF | 0x55)
    assert cpu.apic.get_interrupt() == 0xEF  # a stale request: the spurious vector
    assert cpu.bit(IRR, 0x55) == 1 and cpu.bit(ISR, 0xEF) == 0


def test_eoi_of_a_level_triggered_vector_is_broadcast() -> None:
    cpu = enabled()
    cpu.apic.set_irq(0x61, 1)
    cpu.apic.set_irq(0x41, 0)
    assert cpu.bit(TMR, 0x61) == 1 and cpu.bit(TMR, 0x41) == 0
    assert cpu.apic.get_interrupt() == 0x61
    cpu.write(EOI, 0)
    assert cpu.eois == [0x61]
    assert cpu.apic.get_interrupt() == 0x41
    cpu.write(EOI, 0)
    cpu.write(EOI, 0)  # nothing in service: nothing happens
    assert cpu.eois == [0x61]


def test_interrupts_delivered_are_counted_with_coalescing() -> None:
    cpu = enabled()
    cpu.ipi(SELF | 0x40)
    cpu.ipi(SELF | 0x40)  # already in IRR: coalesced
    cpu.ipi(SELF | 0x41)
    assert cpu.apic.bus.get_irq_delivered() == 2
    cpu.apic.bus.reset_irq_delivered()
    assert cpu.apic.bus.get_irq_delivered() == 0


# -- IPIs and messages --------------------------------------------------------------------------


def test_ipi_destinations() -> None:
    cpu = enabled()

    def taken(low: int, dest: int = 0) -> bool:
        cpu.ipi(low, dest)
        vector = cpu.apic.get_interrupt()
        if vector >= 0:
            cpu.write(EOI, 0)
        return vector == (low & 0xFF)

    assert taken(0x70) and taken(0x70, 0xFF) and not taken(0x70, 1)
    assert taken(2 << 18 | 0x70) and not taken(3 << 18 | 0x70)  # all / all but self
    cpu.write(LDR, 0x01000000)
    assert taken(1 << 11 | 0x70, 0x01) and not taken(1 << 11 | 0x70, 0x02)
    assert taken(1 << 11 | 1 << 8 | 0x70, 0x03)  # lowest priority
    cpu.write(DFR, 0x0FFFFFFF)  # cluster model: cluster 2, member bit 0
    cpu.write(LDR, 0x21000000)
    assert taken(1 << 11 | 0x70, 0x21) and not taken(1 << 11 | 0x70, 0x11)
    cpu.write(ID, 0x05000000)  # "self" now names table entry 5, which is empty
    assert not taken(SELF | 0x70) and taken(0x70, 5) and not taken(0x70, 0)
    assert cpu.read(ICR_HI) == 0 and cpu.read(ICR_LO) == 0x70


def test_nmi_init_and_startup_ipis() -> None:
    cpu = enabled()
    cpu.ipi(SELF | 4 << 8)
    assert cpu.nmi == [1] and cpu.apic.get_interrupt() == -1
    cpu.ipi(SELF | 5 << 8)  # INIT, assert
    assert cpu.init == [1]
    cpu.write(ID, 0x07000000)
    cpu.ipi(1 << 15 | 5 << 8, dest=7)  # INIT level de-assert: arbitration IDs only
    assert cpu.init == [1] and cpu.apic.arb_id == 7
    cpu.write(ID, 0)
    cpu.ipi(SELF | 6 << 8 | 0x10)
    assert cpu.sipi == [1] and cpu.apic.sipi_vector == 0x10
    assert cpu.apic.take_sipi() is None  # the BSP does not wait for one
    cpu.apic.designate_bsp(False)
    cpu.apic.init_reset()
    cpu.apic.startup(0x9A)
    assert cpu.apic.take_sipi() == 0x9A and cpu.apic.take_sipi() is None


def test_msi_window() -> None:
    """A 4-byte write at offset 0-0xf or above 0xfff is an MSI, whoever makes it."""
    cpu = enabled()
    cpu.apic.current = lambda: False
    cpu.apic.write(0x0000, 4, 0x8031)  # dest 0, level, vector 0x31
    cpu.apic.write(0x1000, 4, 0x32)  # dest 1: nobody
    cpu.apic.write(0x0000, 2, 0x33)  # narrow: nothing
    cpu.apic.write(0x0004, 4, 0x34)  # logical dest 0: nobody
    cpu.apic.current = lambda: True
    assert cpu.bit(IRR, 0x31) == 1 and cpu.bit(TMR, 0x31) == 1
    assert cpu.read(IRR + 0x10) == 1 << (0x31 - 32)
    cpu.apic.write(0xFF000, 4, 0x400)  # broadcast NMI
    assert cpu.nmi == [1]


# -- the pc wiring ----------------------------------------------------------------------------


def pc() -> tuple[PcChipset, PortBus, MmioBus, Clock, list[int]]:
    clock = Clock("qtest")
    ports, mmio = PortBus(), MmioBus()
    chipset = PcChipset(clock, ports.map, mmio.map)
    intr: list[int] = []
    chipset.intr.connect(intr.append)
    chipset.reset()
    for port, val in ((0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01),
                      (0xA0, 0x11), (0xA1, 0x28), (0xA1, 0x02), (0xA1, 0x01),
                      (0x21, 0xFF), (0xA1, 0xFF)):
        ports.port_write(port, 1, val)
    return chipset, ports, mmio, clock, intr


def test_pc_apic_mapping() -> None:
    chipset, _, mmio, _, _ = pc()
    assert mmio.mmio_read(BASE + VERSION, 4) == 0x00050014
    assert chipset.apic.region.size == 0x100000 and chipset.apic.region.priority == 4096
    assert mmio.covers(0xFEEFFFFC) and not mmio.covers(0xFEF00000)


def test_8259_reaches_the_cpu_only_through_an_unmasked_lint0() -> None:
    chipset, ports, mmio, clock, intr = pc()
    ports.port_write(0x21, 1, 0xFE)
    clock.step()  # PIT IRQ 0
    assert chipset.pic.output and intr == [] and chipset.get_interrupt() == -1
    chipset.firmware_apic_setup()  # LINT0 ExtINT: the waiting request goes through
    assert mmio.mmio_read(BASE + LVT_LINT0, 4) == 0x8700 and intr[-1] == 1
    assert chipset.get_interrupt() == 0x20
    assert intr[-1] == 0  # the 8259 has nothing more
    ports.port_write(0x20, 1, 0x20)
    for _ in range(10):
        clock.step()  # the PIT's and the RTC's timers
        if intr[-1]:
            break
    assert chipset.get_interrupt() == 0x20


def test_stale_extint_request_gives_spurious_irq7() -> None:
    """The request LINT0 raised stays while LINT0 is masked (QEMU's apic_check_pic does
    nothing then): the acknowledge cycle finds no 8259 request: IRQ 7, vector base + 7."""
    chipset, ports, mmio, clock, intr = pc()
    chipset.firmware_apic_setup()
    ports.port_write(0x21, 1, 0xFE)
    clock.step()
    assert intr[-1] == 1
    mmio.mmio_write(BASE + LVT_LINT0, 4, 0x18700)
    ports.port_write(0x21, 1, 0xFF)
    mmio.mmio_write(BASE + LVT_LINT0, 4, 0x8700)
    assert intr[-1] == 1
    assert chipset.get_interrupt() == 0x27
    ports.port_write(0x20, 1, 0x0B)
    assert ports.port_read(0x20, 1) == 0  # not in service


def test_a_waiting_8259_request_goes_before_apic_vectors() -> None:
    """apic_get_interrupt lets the 8259 go first: ExtINT ignores priorities."""
    chipset, ports, mmio, clock, intr = pc()
    chipset.firmware_apic_setup()
    mmio.mmio_write(BASE + ICR_LO, 4, SELF | 0x61)
    ports.port_write(0x21, 1, 0xFE)
    clock.step()
    assert chipset.get_interrupt() == 0x20
    assert intr[-1] == 1 and chipset.get_interrupt() == 0x61
    assert intr[-1] == 0


def test_ioapic_messages_reach_the_apic() -> None:
    chipset, _, mmio, _, intr = pc()
    chipset.firmware_apic_setup()
    ioapic = chipset.ioapic

    def route(pin: int, low: int, high: int = 0) -> None:
        ioapic.write(0x00, 4, 0x11 + 2 * pin)
        ioapic.write(0x10, 4, high)
        ioapic.write(0x00, 4, 0x10 + 2 * pin)
        ioapic.write(0x10, 4, low)

    route(4, 0x44)
    chipset.gsi[4].pulse()
    assert intr[-1] == 1 and chipset.get_interrupt() == 0x44
    mmio.mmio_write(BASE + EOI, 4, 0)
    route(9, 1 << 15 | 0x49)  # level
    chipset.gsi[9].raise_()
    assert chipset.get_interrupt() == 0x49
    assert mmio.mmio_read(BASE + TMR + 0x20, 4) >> (0x49 - 64) & 1
    ioapic.write(0x00, 4, 0x10 + 2 * 9)
    assert ioapic.read(0x10, 4) & 1 << 14  # remote IRR until the EOI
    chipset.gsi[9].lower()
    mmio.mmio_write(BASE + EOI, 4, 0)
    assert not ioapic.read(0x10, 4) & 1 << 14
    mmio.mmio_write(BASE + LDR, 4, 0x02000000)
    route(5, 1 << 11 | 0x45, 0x02000000)  # logical destination 2
    chipset.gsi[5].pulse()
    assert chipset.get_interrupt() == 0x45
    mmio.mmio_write(BASE + EOI, 4, 0)
    route(6, 4 << 8, 0)  # NMI
    chipset.gsi[6].pulse()
    assert chipset.nmi.level == 1
    assert chipset.ioapic.deliver is not None
    chipset.ioapic.deliver(ApicMessage(vector=0x46, delivery_mode=0, dest_mode=0, dest=0,
                                       trigger_mode=0, address=BASE, data=0x46))
    assert chipset.get_interrupt() == 0x46


def test_inject_nmi_follows_lint1() -> None:
    chipset, _, _, _, _ = pc()
    nmi: list[int] = []
    chipset.nmi.connect(nmi.append)
    chipset.inject_nmi()
    assert nmi == []  # LINT1 masked after reset
    chipset.firmware_apic_setup()  # LINT1: NMI
    chipset.inject_nmi()
    assert nmi == [1]


# -- against QEMU -------------------------------------------------------------------------------


@pytest.fixture
def qtest_pair() -> Iterator[tuple[object, object]]:
    from emu.qtest.client import QTest

    args = ["-M", "pc", "-m", "128M", "-display", "none", "-nodefaults"]
    emu = QTest.emu(*args)
    try:
        qemu = QTest.qemu("pc", *args)
    except BaseException:
        emu.close()
        raise
    try:
        yield emu, qemu
    finally:
        emu.close()
        qemu.close()


def test_qtest_register_accesses_have_no_cpu(qtest_pair: tuple[object, object]) -> None:
    """QEMU's qtest accesses are made by no CPU: APIC registers read 0 and ignore writes."""
    lines = ["readl 0xfee00030", "readl 0xfee00020", "writel 0xfee00080 0x50",
             "readl 0xfee00080", "readb 0xfee00030", "readq 0xfee00030",
             "writel 0xfee000f0 0x1ff", "readl 0xfee000f0", "readl 0xfee01030"]
    emu, qemu = qtest_pair
    assert emu.batch(lines) == qemu.batch(lines)  # type: ignore[attr-defined]
