"""The HPET, as QEMU 7.2's ``hpet`` device (hw/timer/hpet.c, include/hw/timer/hpet.h; IA-PC
HPET Specification 1.0a).

One timer block at 0xfed00000 (1 KiB, 32-bit accesses only: QEMU's ``valid`` sizes are 4 to
4, so other sizes read 0 and are ignored as its memory core's invalid accesses are): a 64-bit
main counter at 100 MHz (10 ns a tick, HPET_CLK_PERIOD) and three comparators (QEMU's default
``timers``), with LegacyReplacementRoute and without FSB (MSI) delivery (QEMU's ``msi``
defaults to off).

Registers, as QEMU decodes them: 0x000 capabilities (vendor 0x8086, LegacyReplacement route
capable, 64-bit counter, timers - 1, revision 1) and 0x004 the period in femtoseconds; 0x010
configuration (ENABLE_CNF, LEG_RT_CNF); 0x020 the interrupt status (a write of 1 clears a
level-triggered timer's bit and lowers its line); 0x0f0 the main counter (writable while
halted); timer N at 0x100 + 0x20 * N: configuration and capabilities (the routes in the
upper half: ``intcap``, 0x4 on pc-i440fx, so IRQ 2 only), comparator, FSB route.

The counter runs on the machine's virtual clock: while enabled it is the clock's nanoseconds
plus an offset, divided by 10; disabling it stores the count. Each timer's expiry is a clock
timer armed for the comparator's match, periodic timers advancing their comparator by the
period, 32-bit one-shot timers also firing when the counter wraps (QEMU's ``wrap_flag``).
Interrupts: edge-triggered timers pulse their line, level-triggered ones raise it and set
their status bit. In legacy replacement mode timer 0 drives ISA IRQ 0 (GSI 0) and timer 1
IRQ 8, and the PIT's and the RTC's outputs (the device's two inputs, ``legacy``) are cut off
from those lines (the PIT is also told to stop through ``pit_enabled``); otherwise the inputs
pass through to IRQ 0 and 8.

QEMU keeps ``hpet_offset`` across migration with ``hpet-offset-saved``; emu has no migration.
Where QEMU is wrong, emu follows the specification: QEMU's register decoder refuses timers
above ``num_timers`` but lets timer ``num_timers`` itself (the fourth, at 0x160) through, into
an array slot nothing resets, so a guest can program a comparator the capabilities say does
not exist; emu reads it as 0 and ignores writes, as for every timer past the last.
"""

from __future__ import annotations

import struct

from emu.bus import Region
from emu.clock import Clock, Timer
from emu.irq import Gpios, IrqLine, input_lines

HPET_BASE = 0xFED00000
HPET_LEN = 0x400
HPET_CLK_PERIOD = 10  # ns
FS_PER_NS = 1_000_000
HPET_MIN_TIMERS = 3
HPET_NUM_IRQ_ROUTES = 32
HPET_LEGACY_PIT_INT, HPET_LEGACY_RTC_INT = 0, 1
RTC_ISA_IRQ = 8

HPET_CFG_ENABLE, HPET_CFG_LEGACY = 0x001, 0x002
HPET_ID, HPET_PERIOD, HPET_CFG, HPET_STATUS, HPET_COUNTER = 0x000, 0x004, 0x010, 0x020, 0x0F0
HPET_TN_CFG, HPET_TN_CMP, HPET_TN_ROUTE = 0x000, 0x008, 0x010
HPET_CFG_WRITE_MASK = 0x3
HPET_ID_NUM_TIM_SHIFT = 8
HPET_TN_TYPE_LEVEL, HPET_TN_ENABLE, HPET_TN_PERIODIC = 0x002, 0x004, 0x008
HPET_TN_PERIODIC_CAP, HPET_TN_SIZE_CAP, HPET_TN_SETVAL = 0x010, 0x020, 0x040
HPET_TN_32BIT = 0x100
HPET_TN_INT_ROUTE_MASK, HPET_TN_INT_ROUTE_SHIFT = 0x3E00, 9
HPET_TN_FSB_ENABLE = 0x4000
HPET_TN_CFG_WRITE_MASK = 0x7F4E
#: pc-i440fx's interrupt routing capability: IRQ 2 (hw/i386/pc_piix.c, pc_basic_device_init)
PC_INTCAP = 0x4

_U32, _U64 = (1 << 32) - 1, (1 << 64) - 1


def _s32(x: int) -> int:
    x &= _U32
    return x - (1 << 32) if x >> 31 else x


def _s64(x: int) -> int:
    x &= _U64
    return x - (1 << 64) if x >> 63 else x


def _activating(old: int, new: int, mask: int) -> bool:
    return not old & mask and bool(new & mask)


def _deactivating(old: int, new: int, mask: int) -> bool:
    return bool(old & mask) and not new & mask


class HpetTimer:
    """One comparator (QEMU's ``HPETTimer``)."""

    def __init__(self, hpet: Hpet, tn: int) -> None:
        self.hpet = hpet
        self.tn = tn
        self.timer = Timer(hpet.clock, self._expire)
        self.config = 0
        self.cmp = 0
        self.fsb = 0
        self.period = 0
        self.wrap_flag = 0

    @property
    def periodic(self) -> bool:
        return bool(self.config & HPET_TN_PERIODIC)

    @property
    def enabled(self) -> bool:
        return bool(self.config & HPET_TN_ENABLE)

    def diff(self, current: int) -> int:
        """``hpet_calculate_diff``: ticks until the comparator matches (at least 1)."""
        if self.config & HPET_TN_32BIT:
            d = ((self.cmp & _U32) - current) & _U32
            return d if _s32(d) > 0 else 1
        d = (self.cmp - current) & _U64
        return d if _s64(d) > 0 else 1

    def arm(self, ticks: int) -> None:
        """``timer_mod`` at the virtual clock's now plus ``ticks`` counter ticks, in QEMU's
        arithmetic: ``(int64_t)ticks_to_ns(diff)``, so a distance past 2^63 ns wraps into the
        past and the timer fires at once."""
        self.timer.arm(self.hpet.clock.now_ns() + _s64(ticks * HPET_CLK_PERIOD))

    def set(self) -> None:
        """``hpet_set_timer``: arm for the next match (or the 32-bit wrap before it)."""
        cur = self.hpet.ticks()
        self.wrap_flag = 0
        d = self.diff(cur)
        if self.config & HPET_TN_32BIT and not self.periodic:
            wrap_diff = _U32 - (cur & _U32)
            if wrap_diff < d & _U32:
                d = wrap_diff
                self.wrap_flag = 1
        self.arm(d)

    def delete(self) -> None:
        """``hpet_del_timer``."""
        self.timer.cancel()
        self.hpet.update_irq(self, 0)

    def _expire(self) -> None:
        """``hpet_timer``: the comparator matched (or the counter wrapped)."""
        cur = self.hpet.ticks()
        if self.periodic and self.period != 0:
            if self.config & HPET_TN_32BIT:
                while _s32(self.cmp - cur) < 0:  # hpet_time_after(cur, cmp)
                    self.cmp = (self.cmp + self.period) & _U32
            else:
                while _s64(self.cmp - cur) < 0:
                    self.cmp = (self.cmp + self.period) & _U64
            self.arm(self.diff(cur))
        elif self.config & HPET_TN_32BIT and not self.periodic and self.wrap_flag:
            self.arm(self.diff(cur))
            self.wrap_flag = 0
        self.hpet.update_irq(self, 1)


class Hpet:
    """The timer block: ``region`` (``hpet``), ``irqs`` (its 32 interrupt routes; the board
    connects them to the GSIs), ``legacy`` (the PIT's and the RTC's outputs come in here) and
    ``pit_enabled`` (to the PIT's IRQ control input)."""

    def __init__(self, clock: Clock, intcap: int = PC_INTCAP,
                 num_timers: int = HPET_MIN_TIMERS) -> None:
        self.clock = clock
        self.intcap = intcap
        self.num_timers = num_timers
        self.irqs = [IrqLine(f"hpet.irq[{n}]") for n in range(HPET_NUM_IRQ_ROUTES)]
        self.legacy = input_lines("hpet.legacy", 2, self._legacy_irq)
        self.pit_enabled = IrqLine("hpet.pit-enabled")
        self.gpios = Gpios("hpet", inputs={None: self.legacy},
                           outputs={None: [self.pit_enabled], "sysbus-irq": self.irqs})
        self.timers = [HpetTimer(self, n) for n in range(num_timers)]
        # 64-bit main counter, LegacyReplacementRoute, vendor 0x8086, revision 1 (hpet_realize)
        self.capability = (0x8086A001 | (num_timers - 1) << HPET_ID_NUM_TIM_SHIFT
                           | (HPET_CLK_PERIOD * FS_PER_NS) << 32)
        self.config = 0
        self.isr = 0
        self.counter = 0
        self.offset = 0
        self.rtc_irq_level = 0
        self.region = Region("hpet", HPET_LEN, self)
        self.reset()

    def fw_cfg_entry(self) -> bytes:
        """QEMU's ``hpet_cfg`` for FW_CFG_HPET (struct hpet_fw_config): one block, its
        Event Timer Block ID and address; seven unused entries."""
        entry = struct.pack("<IQHB", self.capability & _U32, HPET_BASE, 0, 0)
        return bytes([1]) + entry + bytes(len(entry) * 7)

    # -- state --------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return bool(self.config & HPET_CFG_ENABLE)

    @property
    def legacy_mode(self) -> bool:
        return bool(self.config & HPET_CFG_LEGACY)

    def ticks(self) -> int:
        """``hpet_get_ticks``: the running counter."""
        return ((self.clock.now_ns() + self.offset) & _U64) // HPET_CLK_PERIOD

    def update_irq(self, t: HpetTimer, set_: int) -> None:
        """``update_irq``: the timer's line, by its route (legacy: IRQ 0 / 8)."""
        if t.tn <= 1 and self.legacy_mode:
            route = 0 if t.tn == 0 else RTC_ISA_IRQ
        else:
            route = (t.config & HPET_TN_INT_ROUTE_MASK) >> HPET_TN_INT_ROUTE_SHIFT
        mask = 1 << t.tn
        if not set_ or not t.enabled or not self.enabled:
            self.isr &= ~mask
            if not t.config & HPET_TN_FSB_ENABLE:
                self.irqs[route].lower()
        elif t.config & HPET_TN_FSB_ENABLE:
            pass  # FSB delivery needs the "msi" property, off in QEMU's pc (never capable)
        elif t.config & HPET_TN_TYPE_LEVEL:
            self.isr |= mask
            self.irqs[route].raise_()
        else:
            self.isr &= ~mask
            self.irqs[route].pulse()

    def _legacy_irq(self, n: int, level: int) -> None:
        """``hpet_handle_legacy_irq``: the PIT's and the RTC's outputs pass through outside
        legacy replacement mode."""
        if n == HPET_LEGACY_PIT_INT:
            if not self.legacy_mode:
                self.irqs[0].set_level(level)
        else:
            self.rtc_irq_level = level
            if not self.legacy_mode:
                self.irqs[RTC_ISA_IRQ].set_level(level)

    def reset(self) -> None:
        """``hpet_reset``."""
        for t in self.timers:
            t.delete()
            t.cmp = _U64
            t.config = HPET_TN_PERIODIC_CAP | HPET_TN_SIZE_CAP | self.intcap << 32
            t.period = 0
            t.wrap_flag = 0
        self.pit_enabled.set_level(1)
        self.counter = 0
        self.offset = 0
        self.config = 0
        self.rtc_irq_level = 0

    # -- registers ------------------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        if size != 4:
            return 0  # an invalid access: QEMU's memory core answers 0
        return self._read(offset) & _U32

    def _read(self, addr: int) -> int:
        """``hpet_ram_read``."""
        if 0x100 <= addr <= 0x3FF:
            tid = (addr - 0x100) // 0x20
            if tid >= self.num_timers:
                return 0  # (module docstring: QEMU's check lets timer num_timers through)
            t = self.timers[tid]
            reg = (addr - 0x100) % 0x20
            return {HPET_TN_CFG: t.config, HPET_TN_CFG + 4: t.config >> 32,
                    HPET_TN_CMP: t.cmp, HPET_TN_CMP + 4: t.cmp >> 32,
                    HPET_TN_ROUTE: t.fsb, HPET_TN_ROUTE + 4: t.fsb >> 32}.get(reg, 0)
        if addr == HPET_ID:
            return self.capability
        if addr == HPET_PERIOD:
            return self.capability >> 32
        if addr == HPET_CFG:
            return self.config
        if addr in (HPET_COUNTER, HPET_COUNTER + 4):
            cur = self.ticks() if self.enabled else self.counter
            return cur if addr == HPET_COUNTER else cur >> 32
        if addr == HPET_STATUS:
            return self.isr
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        """``hpet_ram_write``."""
        if size != 4:
            return
        addr = offset
        old = self._read(addr) & _U32
        new = value & _U32
        if 0x100 <= addr <= 0x3FF:
            tid = (addr - 0x100) // 0x20
            if tid >= self.num_timers:
                return
            self._write_timer(self.timers[tid], (addr - 0x100) % 0x20, old, new)
            return
        if addr == HPET_CFG:
            val = (new & HPET_CFG_WRITE_MASK) | (old & ~HPET_CFG_WRITE_MASK)
            self.config = (self.config & ~_U32) | val
            if _activating(old, new, HPET_CFG_ENABLE):
                # the counter runs again from where it stood
                self.offset = (self.counter * HPET_CLK_PERIOD - self.clock.now_ns()) & _U64
                for t in self.timers:
                    if t.cmp != _U64:
                        t.set()
            elif _deactivating(old, new, HPET_CFG_ENABLE):
                self.counter = self.ticks()
                for t in self.timers:
                    t.delete()
            # the PIT's and the RTC's outputs are cut off in legacy replacement mode
            if _activating(old, new, HPET_CFG_LEGACY):
                self.pit_enabled.set_level(0)
                self.irqs[0].lower()
                self.irqs[RTC_ISA_IRQ].lower()
            elif _deactivating(old, new, HPET_CFG_LEGACY):
                self.irqs[0].lower()
                self.pit_enabled.set_level(1)
                self.irqs[RTC_ISA_IRQ].set_level(self.rtc_irq_level)
        elif addr == HPET_STATUS:
            val = new & self.isr
            for t in self.timers:
                if val & (1 << t.tn):
                    self.update_irq(t, 0)
        elif addr == HPET_COUNTER:
            self.counter = (self.counter & ~_U32 & _U64) | new
        elif addr == HPET_COUNTER + 4:
            self.counter = (self.counter & _U32) | new << 32

    def _write_timer(self, t: HpetTimer, reg: int, old: int, new: int) -> None:
        if reg == HPET_TN_CFG:
            if _activating(old, new, HPET_TN_FSB_ENABLE):
                self.update_irq(t, 0)
            val = (new & HPET_TN_CFG_WRITE_MASK) | (old & ~HPET_TN_CFG_WRITE_MASK)
            t.config = (t.config & ~_U32 & _U64) | (val & _U32)
            if new & HPET_TN_32BIT:
                t.cmp &= _U32
                t.period &= _U32
            if _activating(old, new, HPET_TN_ENABLE) and self.enabled:
                t.set()
            elif _deactivating(old, new, HPET_TN_ENABLE):
                t.delete()
        elif reg == HPET_TN_CMP:
            if t.config & HPET_TN_32BIT:
                new &= _U32
            if not t.periodic or t.config & HPET_TN_SETVAL:
                t.cmp = (t.cmp & ~_U32 & _U64) | new
            if t.periodic:
                new &= (_U32 if t.config & HPET_TN_32BIT else _U64) >> 1
                t.period = (t.period & ~_U32 & _U64) | new
            t.config &= ~HPET_TN_SETVAL
            if self.enabled:
                t.set()
        elif reg == HPET_TN_CMP + 4:
            if not t.periodic or t.config & HPET_TN_SETVAL:
                t.cmp = (t.cmp & _U32) | new << 32
            else:
                new &= (_U32 if t.config & HPET_TN_32BIT else _U64) >> 1
                t.period = (t.period & _U32) | (new << 32) & _U64
            t.config &= ~HPET_TN_SETVAL
            if self.enabled:
                t.set()
        elif reg == HPET_TN_ROUTE:
            t.fsb = (t.fsb & ~_U32 & _U64) | new
        elif reg == HPET_TN_ROUTE + 4:
            t.fsb = (new << 32) | (t.fsb & _U32)
