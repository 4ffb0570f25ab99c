"""The interrupt fabric, the clock and the pc's legacy chips as plain objects: no CPU, no
qtest, no process. Lines end in lists; time moves only when the test steps a qtest-mode clock.

Expected values come from the chips' datasheets (Intel 8259A, 82C54, Motorola MC146818A) and
QEMU's qtest clock rules (softmmu/qtest.c), not from the code under test.
"""

from __future__ import annotations

import pytest

from emu.boards.pc_chipset import PcChipset
from emu.bus import MmioBus, PortBus
from emu.clock import NANOSECONDS_PER_SECOND as NS
from emu.clock import Clock, Timer
from emu.devices.i8254 import PIT_FREQ, Pit
from emu.devices.i8259 import PicPair
from emu.devices.ioapic import ApicMessage, IoApic
from emu.devices.mc146818rtc import MC146818Rtc
from emu.devices.pcspk import PcSpeaker
from emu.irq import IrqLine, fan_out

# -- lines ------------------------------------------------------------------------------------


def test_line_delivers_every_level_then_taps() -> None:
    got: list[tuple[str, int]] = []
    line = IrqLine("x", lambda level: got.append(("sink", level)))
    line.tap(lambda level: got.append(("tap", level)))
    line.raise_()
    line.raise_()
    line.pulse()
    assert got == [("sink", 1), ("tap", 1), ("sink", 1), ("tap", 1),
                   ("sink", 1), ("tap", 1), ("sink", 0), ("tap", 0)]
    assert line.level == 0


def test_line_to_line_and_fan_out() -> None:
    a: list[int] = []
    b: list[int] = []
    inp = IrqLine("in", fan_out(a.append, b.append))
    out = IrqLine("out")
    out.set_level(1)  # nothing connected: nothing happens
    out.connect_to(inp)
    out.set_level(1)
    out.lower()
    assert a == b == [1, 0]


# -- the clock --------------------------------------------------------------------------------


def test_qtest_clock_fires_timers_at_their_deadlines_in_order() -> None:
    clock = Clock("qtest")
    fired: list[tuple[str, int]] = []

    def make(name: str) -> Timer:
        return Timer(clock, lambda: fired.append((name, clock.now_ns())))

    a, b, c, d = make("a"), make("b"), make("c"), make("d")
    b.arm(300)
    a.arm(100)
    c.arm(300)  # equal deadlines fire in the order they were armed
    d.arm(200)
    d.cancel()
    assert clock.next_deadline() == 100 and a.pending and not d.pending
    assert clock.step(250) == 250
    assert fired == [("a", 100)]
    assert clock.step() == 300  # no argument: to the next deadline
    assert fired == [("a", 100), ("b", 300), ("c", 300)]
    assert clock.step() == 300  # nothing armed: the clock stays
    assert clock.warp_to(100) == 300  # never backwards
    assert clock.next_deadline() is None and clock.deadline_ns() == -1


def test_qtest_clock_periodic_rearm_and_past_deadline() -> None:
    clock = Clock("qtest")
    ticks: list[int] = []

    def tick() -> None:
        ticks.append(clock.now_ns())
        timer.arm(clock.now_ns() + 10)

    timer = Timer(clock, tick)
    timer.arm(10)
    clock.step(55)
    assert ticks == [10, 20, 30, 40, 50]
    late = Timer(clock, lambda: ticks.append(-1))
    late.arm(0)  # in the past: fires at the next run, without the clock moving
    assert clock.deadline_ns() == 0
    assert clock.run_due() == 1 and ticks[-1] == -1 and clock.now_ns() == 55


def test_rearming_does_not_grow_the_clock_without_bound() -> None:
    """A guest reloading the PIT in a loop re-arms its timer each time; nothing runs the
    timers in between (realtime mode before the run loop drives the clock)."""
    clock = Clock("realtime", source=lambda: 0)
    timer = Timer(clock, lambda: None)
    for n in range(100_000):
        timer.arm(n)
    assert len(clock._heap) < 1000
    assert clock.next_deadline() == 99_999


def test_realtime_clock_follows_its_source_and_stops() -> None:
    host = [1_000]
    clock = Clock("realtime", source=lambda: host[0])
    fired: list[int] = []
    Timer(clock, lambda: fired.append(clock.now_ns())).arm(500)
    host[0] += 400
    assert clock.now_ns() == 400 and clock.run_due() == 0
    clock.stop()
    host[0] += 1000
    assert clock.now_ns() == 400
    clock.start()
    host[0] += 100
    assert clock.now_ns() == 500 and clock.run_due() == 1 and fired == [500]
    with pytest.raises(RuntimeError):
        clock.warp_to(10_000)


# -- the 8259 pair ----------------------------------------------------------------------------


def init_pics(pics: PicPair, master_base: int = 0x20, slave_base: int = 0x28) -> None:
    """Linux's init sequence (arch/x86/kernel/i8259.c init_8259A)."""
    for chip, base, icw3 in ((pics.master, master_base, 0x04), (pics.slave, slave_base, 0x02)):
        chip.ioport_write(0, 0x11)
        chip.ioport_write(1, base)
        chip.ioport_write(1, icw3)
        chip.ioport_write(1, 0x01)


def test_pic_vectors_cascade_and_eoi() -> None:
    pics = PicPair()
    intr: list[int] = []
    pics.intr.connect(intr.append)
    pics.reset()
    init_pics(pics)
    pics.irqs[12].raise_()
    assert intr[-1] == 1 and pics.output
    pics.irqs[1].raise_()
    assert pics.acknowledge() == 0x21  # IRQ 1 outranks the cascade
    assert pics.master.isr == 0b10 and pics.output is False  # IRQ 2 waits for IRQ 1's EOI
    assert pics.acknowledge() == 0x27  # so an acknowledge now finds nothing: spurious 7
    pics.master.ioport_write(0, 0x20)
    assert pics.acknowledge() == 0x2C  # the slave's IRQ 4, through IRQ 2
    assert pics.master.isr == 0b100 and pics.slave.isr == 0b10000
    assert intr[-1] == 0
    pics.slave.ioport_write(0, 0x20)  # EOI both, as a handler does
    pics.master.ioport_write(0, 0x20)
    assert pics.master.isr == pics.slave.isr == 0


def test_pic_edge_needs_a_new_edge_level_follows_the_line() -> None:
    pics = PicPair()
    pics.reset()
    init_pics(pics)
    pics.irqs[3].raise_()
    assert pics.acknowledge() == 0x23
    pics.master.ioport_write(0, 0x20)
    assert not pics.output  # the line is still high, but an edge input wants a new edge
    pics.master.elcr_region.ops.write(0, 1, 0x08)  # IRQ 3 level-triggered
    pics.irqs[3].raise_()
    assert pics.acknowledge() == 0x23
    pics.master.ioport_write(0, 0x20)
    assert pics.output  # a level input stays requested while the line is high
    pics.irqs[3].lower()
    assert not pics.output


def test_pic_spurious_interrupts() -> None:
    """A request that goes away before the acknowledge gives IRQ 7 of that chip."""
    pics = PicPair()
    pics.reset()
    init_pics(pics)
    assert pics.acknowledge() == 0x27  # nothing pending at all: master IRQ 7
    pics.slave.elcr_region.ops.write(0, 1, 0x02)  # IRQ 9 level-triggered
    pics.irqs[9].raise_()
    assert pics.output
    pics.irqs[9].lower()  # gone from the slave, but the master has latched the cascade edge
    assert pics.acknowledge() == 0x2F  # slave IRQ 7: IRQ 15
    assert pics.master.isr == 0b100  # the cascade itself was acknowledged


def test_pic_elcr_masks() -> None:
    pics = PicPair()
    pics.master.elcr_region.ops.write(0, 1, 0xFF)
    pics.slave.elcr_region.ops.write(0, 1, 0xFF)
    # IRQ 0, 1, 2 and 8, 13 cannot be level-triggered
    assert pics.master.elcr_region.ops.read(0, 1) == 0xF8
    assert pics.slave.elcr_region.ops.read(0, 1) == 0xDE


# -- the PIT and port 0x61 --------------------------------------------------------------------


def ticks_to_ns(ticks: int) -> int:
    return ticks * NS // PIT_FREQ


def test_pit_counter0_rate_generator_interrupts() -> None:
    """Mode 2 with count N: one pulse on IRQ 0 every N / 1.193182 MHz."""
    clock = Clock("qtest")
    pit = Pit(clock)
    levels: list[tuple[int, int]] = []
    pit.irq.connect(lambda level: levels.append((clock.now_ns(), level)))
    pit.reset()
    pit.ioport_write(3, 0x34)  # counter 0, LSB then MSB, mode 2
    pit.ioport_write(0, 1193 & 0xFF)
    pit.ioport_write(0, 1193 >> 8)
    levels.clear()
    clock.step(10 * ticks_to_ns(1193) + 1000)
    rises = [t for t, level in levels if level]
    assert len(rises) == 10
    for n, t in enumerate(rises, 1):
        assert abs(t - n * ticks_to_ns(1193)) < 2 * NS // PIT_FREQ


def test_pit_counter2_through_port61_as_linux_calibrates_the_tsc() -> None:
    """arch/x86/kernel/tsc.c pit_calibrate_tsc: gate on, mode 0, poll port 0x61 bit 5."""
    clock = Clock("qtest")
    pit = Pit(clock)
    spk = PcSpeaker(pit)
    pit.reset()
    latch = PIT_FREQ // (1000 // 50)
    spk.io_write(0, (spk.io_read(0) & ~0x02) | 0x01)
    pit.ioport_write(3, 0xB0)
    pit.ioport_write(2, latch & 0xFF)
    pit.ioport_write(2, latch >> 8)
    assert not spk.io_read(0) & 0x20
    clock.step(ticks_to_ns(latch) - 2000)
    assert not spk.io_read(0) & 0x20
    pit.ioport_write(3, 0x80)  # latch counter 2: a few ticks left
    left = pit.ioport_read(2) | pit.ioport_read(2) << 8
    assert 0 < left <= 3
    clock.step(3000)
    assert spk.io_read(0) & 0x20  # terminal count: OUT high
    assert spk.io_read(0) & 0x01  # the gate reads back


def test_port61_refresh_bit_toggles_on_each_read() -> None:
    pit = Pit(Clock("qtest"))
    spk = PcSpeaker(pit)
    pit.reset()
    bits = [spk.io_read(0) & 0x10 for _ in range(4)]
    assert bits == [0x10, 0, 0x10, 0]


def test_pit_readback_status() -> None:
    clock = Clock("qtest")
    pit = Pit(clock)
    pit.reset()
    pit.ioport_write(3, 0x7B)  # counter 1, LSB/MSB, mode 5, BCD
    pit.ioport_write(3, 0xE4)  # read-back status of counter 1
    # OUT (mode 5 before the count is written: d == count only at the terminal count), rw 3,
    # mode 5, BCD
    assert pit.ioport_read(1) == (3 << 4) | (5 << 1) | 1


# -- the RTC ----------------------------------------------------------------------------------


def test_rtc_periodic_interrupt_rate() -> None:
    """Rate 6 is 1024 Hz: 1024 interrupts in one second, each acknowledged by reading C."""
    clock = Clock("qtest")
    rtc = MC146818Rtc(clock)
    raised = []
    rtc.irq.connect(lambda level: raised.append(level) if level else None)
    rtc.reset()
    rtc.ioport_write(0, 0x0A)
    rtc.ioport_write(1, 0x26)
    rtc.ioport_write(0, 0x0B)
    rtc.ioport_write(1, 0x42)  # PIE, 24 h
    count = 0
    while clock.now_ns() < NS:
        clock.step()
        if raised:
            raised.clear()
            rtc.ioport_write(0, 0x0C)
            assert rtc.ioport_read(1) & 0xC0 == 0xC0  # IRQF | PF
            count += 1
    assert count in (1023, 1024)


def test_rtc_time_from_host_in_bcd_and_binary() -> None:
    host = 951_827_696  # 2000-02-29 12:34:56 UTC, a Tuesday
    rtc = MC146818Rtc(Clock("qtest"), host_time=lambda: host)

    def read(index: int) -> int:
        rtc.ioport_write(0, index)
        return rtc.ioport_read(1)

    assert [read(i) for i in (0, 2, 4, 6, 7, 8, 9, 0x32)] == \
        [0x56, 0x34, 0x12, 0x03, 0x29, 0x02, 0x00, 0x20]
    rtc.ioport_write(0, 0x0B)
    rtc.ioport_write(1, 0x06)  # binary, 24 h: takes effect at the next update
    rtc.ioport_write(0, 0x0B)
    rtc.ioport_write(1, 0x04)  # binary, 12 h
    assert [read(i) for i in (0, 2, 4)] == [56, 34, 0x80 | 12]
    assert read(0x37) == 20 and rtc.cmos_index == 0x32  # the PS/2 century alias


def test_rtc_in_realtime_mode_catches_up_on_access() -> None:
    """Nobody runs the timers (realtime mode, before the run loop does): a guest polling the
    RTC, as Linux's mc146818_get_time waits for UIP to clear, still sees updates end."""
    host = [0]
    clock = Clock("realtime", source=lambda: host[0])
    rtc = MC146818Rtc(clock, host_time=lambda: 951_827_696)
    rtc.reset()

    def read(index: int) -> int:
        rtc.ioport_write(0, index)
        return rtc.ioport_read(1)

    read(0x0C)
    for second in range(1, 4):
        host[0] = second * NS + NS // 2
        assert not read(0x0A) & 0x80  # UIP is not stuck
        assert read(0) == 0x56 + second
        assert read(0x0C) & 0x10  # the update-ended flag of the update that passed


# -- the board's wiring -----------------------------------------------------------------------


def test_chipset_wiring_pit_and_rtc_reach_the_cpu_through_the_pics() -> None:
    """With the local APIC in virtual wire mode (LINT0 ExtINT, as firmware leaves it)."""
    clock = Clock("qtest")
    bus = PortBus()
    chipset = PcChipset(clock, bus.map, MmioBus().map)
    intr: list[int] = []
    ioapic: list[tuple[int, int]] = []
    chipset.intr.connect(intr.append)
    for n, line in enumerate(chipset.ioapic_inputs):
        line.tap(lambda level, n=n: ioapic.append((n, level)))
    chipset.reset()
    chipset.firmware_apic_setup()
    for port, val in ((0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01),
                      (0xA0, 0x11), (0xA1, 0x70), (0xA1, 0x02), (0xA1, 0x01)):
        bus.port_write(port, 1, val)
    clock.step()  # the PIT's first output transition: IRQ 0
    assert (0, 1) in ioapic and intr[-1] == 1
    assert chipset.get_interrupt() == 0x08
    bus.port_write(0x20, 1, 0x20)
    bus.port_write(0x21, 1, 0xFF)  # mask the timer
    bus.port_write(0x70, 1, 0x0B)
    bus.port_write(0x71, 1, 0x42)  # RTC periodic interrupt
    while not chipset.pic.slave.irr & 1:
        clock.step()
    assert (8, 1) in ioapic
    assert not chipset.pic.output  # the cascade input 2 is masked too
    bus.port_write(0x21, 1, 0xFB)
    assert chipset.pic.output and intr[-1] == 1 and chipset.get_interrupt() == 0x70
    assert bus.port_read(0x20, 2) == bus.port_read(0x20, 1) | bus.port_read(0x21, 1) << 8


# -- the IOAPIC -------------------------------------------------------------------------------


def ioapic_write_entry(ioapic: IoApic, pin: int, entry: int) -> None:
    for half in (1, 0):  # high half first, as Linux writes an entry
        ioapic.write(0x00, 4, 0x10 + 2 * pin + half)
        ioapic.write(0x10, 4, (entry >> (32 * half)) & 0xFFFFFFFF)


def test_ioapic_messages_for_the_local_apic() -> None:
    """An unmasked entry sends (vector, delivery mode, destination, trigger) to the APIC."""
    sent: list[ApicMessage] = []
    ioapic = IoApic(Clock("qtest"), deliver=sent.append, extint=lambda: 0x2B)
    ioapic.reset()
    ioapic_write_entry(ioapic, 4, 0x03 << 56 | 1 << 11 | 0x41)  # logical dest 3, vector 0x41
    ioapic.inputs[4].pulse()
    assert sent == [ApicMessage(vector=0x41, delivery_mode=0, dest_mode=1, dest=3,
                                trigger_mode=0, address=0xFEE03004, data=0x41)]
    ioapic_write_entry(ioapic, 2, 7 << 8)  # ExtINT on pin 2: ISA IRQ 0 arrives on input 0
    ioapic.inputs[0].raise_()
    assert sent[-1].vector == 0x2B and sent[-1].delivery_mode == 7 and sent[-1].dest == 0


def test_ioapic_level_remote_irr_until_eoi_and_storm_delay() -> None:
    clock = Clock("qtest")
    sent: list[ApicMessage] = []
    ioapic = IoApic(clock, deliver=sent.append)
    ioapic.reset()
    ioapic_write_entry(ioapic, 9, 1 << 15 | 0x39)  # level, vector 0x39
    ioapic.inputs[9].raise_()
    ioapic.inputs[9].raise_()
    assert len(sent) == 1 and ioapic.ioredtbl[9] & 1 << 14  # remote IRR: no second message
    for _ in range(9999):
        ioapic.eoi_broadcast(0x39)  # still high: delivered again at each EOI
    assert len(sent) == 10000
    ioapic.eoi_broadcast(0x39)  # the 10000th successive EOI: delivery waits 10 ms
    assert len(sent) == 10000 and clock.next_deadline() == 10_000_000
    clock.step()
    assert len(sent) == 10001
    ioapic.inputs[9].lower()
    ioapic.write(0x40, 4, 0x39)  # the EOI register
    assert not ioapic.ioredtbl[9] & 1 << 14


def test_guest_time_stands_still_while_the_machine_is_paused() -> None:
    """QEMU's virtual clock does not run before the first 'cont' of a -S machine, nor while a
    monitor has it stopped."""
    import time

    from emu.config import MachineConfig
    from emu.machine import Machine
    from tests.conftest import image

    m = Machine(MachineConfig(machine="pc", kernel=image("pc", "halt"), serial=["none"],
                              start_paused=True))
    try:
        m.state = "paused"  # what run() sets for -S
        frozen = m.clock.now_ns()
        time.sleep(0.01)
        assert m.clock.now_ns() == frozen
        m.resume()
        time.sleep(0.01)
        running = m.clock.now_ns()
        assert running > frozen
        m.pause()
        paused = m.clock.now_ns()
        time.sleep(0.01)
        assert m.clock.now_ns() == paused >= running
    finally:
        m.close()
