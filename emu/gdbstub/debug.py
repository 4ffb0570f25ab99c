"""The CPU side of debugging: breakpoints, watchpoints and single steps, at no cost elsewhere.

QEMU inserts a debug exception into the translated code of a breakpoint's address and
marks a watchpoint's pages so that only accesses to them take the slow path
(accel/tcg/tcg-accel-ops.c tcg_insert_breakpoint, softmmu/watchpoint.c). emu does the same
with Unicorn's bounded hooks, so code and data outside them run as before:

* A breakpoint is a ``UC_HOOK_CODE`` hook with ``begin == end == addr``: Unicorn emits the
  call only into the translation of that one instruction, and checks its exit request
  right after the hook, so ``emu_stop`` from the hook ends the run before the instruction
  executes (measured; docs/devel/gdbstub.md).
* A watchpoint is a ``UC_HOOK_MEM_WRITE`` / ``UC_HOOK_MEM_READ`` hook bounded to the
  watched range (starting 15 bytes early, so that a wide access that overlaps its start is
  seen; the overlap is checked in the hook). Unicorn calls it *before* the access and
  checks its exit request *after* it, then restarts the instruction: a stop there would
  let a read-modify-write take effect twice (docs/devel/run-loop.md). So the hook saves
  the bytes the store is about to change, and once the CPU is back the stub writes them
  back: the instruction has then not happened at all, and its PC is the instruction's.
  aarch64 reports the hit there, as QEMU does for Arm (``gdb_stop_before_watchpoint``:
  BP_STOP_BEFORE_ACCESS); x86 executes that one instruction (``emu_start`` with
  ``count=1``, the hooks ignored) and reports the hit after it, as QEMU's
  ``check_watchpoint`` does by re-running the instruction alone.
* A single step is ``emu_start(pc, 0, count=1)``. Unicorn counts with a code hook on
  every instruction, which it installs for a counted run and removes (flushing the
  translations) at the next uncounted one; translations made without it do not count,
  so the first step after a normal run flushes them.

Hooks are added and removed only between runs, when the set gdb asks for changed (gdb
removes every breakpoint at each stop and inserts them again at each resume), followed by
a flush of the translated code (the hooks are compiled into it, as QEMU's breakpoints are).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UC_MEM_WRITE

if TYPE_CHECKING:
    from emu.machine import Machine

#: QEMU's single-step flags (include/exec/gdbstub.h SSTEP_*) and the interrupt_request bits
#: SSTEP_NOIRQ holds back (CPU_INTERRUPT_SSTEP_MASK: HARD and TGT_EXT_0-4)
SSTEP_ENABLE, SSTEP_NOIRQ, SSTEP_NOTIMER = 0x1, 0x2, 0x4
SSTEP_IRQ_MASK = 0x0002 | 0x0008 | 0x0010 | 0x0080 | 0x0200 | 0x1000
#: emu's x86 raises the interrupt controller's output as CPU_INTERRUPT_VIRQ (emu/cpu/x86.py
#: set_irq), where QEMU raises CPU_INTERRUPT_HARD: held back too
CPU_INTERRUPT_VIRQ = 0x0100
#: gdb's Z packet types (gdbstub/internals.h GDB_BREAKPOINT_SW ... GDB_WATCHPOINT_ACCESS)
BREAKPOINT_SW, BREAKPOINT_HW, WATCHPOINT_WRITE, WATCHPOINT_READ, WATCHPOINT_ACCESS = range(5)
_WATCH_LEAD = 15


@dataclass(frozen=True)
class Watchpoint:
    addr: int
    length: int
    kind: int  # WATCHPOINT_WRITE, _READ or _ACCESS

    def covers(self, addr: int, size: int) -> bool:
        return addr < self.addr + self.length and self.addr < addr + size


@dataclass(frozen=True)
class Hit:
    """Why the debugger stopped the CPU: "break", "step" or "watch" (with the watchpoint)."""

    kind: str
    watchpoint: Watchpoint | None = None


class Debugger:
    """Breakpoints, watchpoints and stepping for the machine's CPU. Everything here runs on
    the machine's thread (the stub calls in through :meth:`Machine.call_soon`)."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.cpu = machine.cpu
        self.uc = machine.cpu.uc
        self.breakpoints: set[int] = set()
        self.watchpoints: set[Watchpoint] = set()
        self._bp_hooks: dict[int, int] = {}
        self._wp_hooks: dict[Watchpoint, int] = {}
        #: the next run executes one instruction and stops
        self.stepping = False
        #: what stopped the CPU, until the stub reports it
        self.hit: Hit | None = None
        #: x86 reports a watchpoint after the access, Arm before it (QEMU's
        #: gdb_stop_before_watchpoint)
        self.stop_after_watch = machine.cpu.arch == "x86_64"
        self._ignore_hooks = False
        #: (watchpoint, guest-physical address, bytes before the store) of a hit
        self._undo: tuple[Watchpoint, int | None, bytes | None] | None = None
        self._counting = False
        #: ``qqemu.sstep``: TCG's default steps without interrupts or timers
        self.sstep_flags = SSTEP_ENABLE | SSTEP_NOIRQ | SSTEP_NOTIMER
        #: interrupt requests held back during a step (SSTEP_NOIRQ)
        self._held_irqs = 0

    # -- what gdb asks for (machine thread) ------------------------------------------------

    def insert(self, kind: int, addr: int, length: int) -> int:
        """tcg_insert_breakpoint: 0, or -1 for a type QEMU does not offer (-ENOSYS),
        -2 for a bad watchpoint (-EINVAL)."""
        if kind in (BREAKPOINT_SW, BREAKPOINT_HW):
            self.breakpoints.add(addr)
            return 0
        if kind in (WATCHPOINT_WRITE, WATCHPOINT_READ, WATCHPOINT_ACCESS):
            # cpu_watchpoint_insert: empty ranges and ranges that wrap are refused
            if length == 0 or addr + length - 1 >= 1 << 64:
                print(f"emu: tried to set invalid watchpoint at {addr:x}, len={length}",
                      file=sys.stderr, flush=True)
                return -2
            self.watchpoints.add(Watchpoint(addr, length, kind))
            return 0
        return -1

    def remove(self, kind: int, addr: int, length: int) -> int:
        """tcg_remove_breakpoint: 0, -1 (type not offered), -2 (no such one: -ENOENT)."""
        if kind in (BREAKPOINT_SW, BREAKPOINT_HW):
            if addr not in self.breakpoints:
                return -2
            self.breakpoints.discard(addr)
            return 0
        if kind in (WATCHPOINT_WRITE, WATCHPOINT_READ, WATCHPOINT_ACCESS):
            wp = Watchpoint(addr, length, kind)
            if wp not in self.watchpoints:
                return -2
            self.watchpoints.discard(wp)
            return 0
        return -1

    def remove_all(self) -> None:
        self.breakpoints.clear()
        self.watchpoints.clear()

    # -- the run loop's side ----------------------------------------------------------------

    def before_run(self) -> int:
        """Install the hooks gdb asked for; the ``count`` for ``emu_start``."""
        changed = False
        for addr in set(self._bp_hooks) - self.breakpoints:
            self.uc.hook_del(self._bp_hooks.pop(addr))
            changed = True
        for addr in self.breakpoints - set(self._bp_hooks):
            self._bp_hooks[addr] = self.uc.hook_add(UC_HOOK_CODE, self._on_break,
                                                    begin=addr, end=addr)
            changed = True
        for wp in set(self._wp_hooks) - self.watchpoints:
            self.uc.hook_del(self._wp_hooks.pop(wp))
            changed = True
        for wp in self.watchpoints - set(self._wp_hooks):
            types = {WATCHPOINT_WRITE: UC_HOOK_MEM_WRITE, WATCHPOINT_READ: UC_HOOK_MEM_READ,
                     WATCHPOINT_ACCESS: UC_HOOK_MEM_WRITE | UC_HOOK_MEM_READ}[wp.kind]
            self._wp_hooks[wp] = self.uc.hook_add(
                types, self._on_access, begin=max(0, wp.addr - _WATCH_LEAD),
                end=wp.addr + wp.length - 1)
            changed = True
        if changed or (self.stepping and not self._counting):
            self.uc.ctl_flush_tb()
        self._counting = self.stepping
        engine = self.cpu.engine
        if self.stepping and self.sstep_flags & SSTEP_NOIRQ and engine is not None \
                and engine.available:
            # cpu_handle_interrupt under SSTEP_NOIRQ: the step takes no interrupt
            self._held_irqs = engine.interrupt_request & (SSTEP_IRQ_MASK | CPU_INTERRUPT_VIRQ)
            engine.lower_interrupt(self._held_irqs)
        return 1 if self.stepping else 0

    def release_irqs(self) -> None:
        """Give back the interrupt requests a step held back (the run loop calls it after
        every run, however it ended)."""
        if self._held_irqs:
            engine = self.cpu.engine
            assert engine is not None
            engine.raise_interrupt(self._held_irqs)
            self._held_irqs = 0

    def after_run(self) -> bool:
        """After ``emu_start`` returned: whether the debugger stopped the CPU (then the
        machine pauses and the stub reports :attr:`hit`)."""
        self.release_irqs()
        if self._undo is not None:
            _wp, paddr, old = self._undo
            self._undo = None
            if paddr is not None and old is not None:
                self.machine.address_space.write(paddr, old)  # the store never happened
            if self.stop_after_watch:
                self._step_silently()
            self.stepping = False
            return True
        if self.stepping:
            self.stepping = False
            if self.hit is None:
                self.hit = Hit("step")
            return True
        return self.hit is not None

    def _step_silently(self) -> None:
        """Execute the instruction at the PC alone, with the debug hooks ignored."""
        self.uc.ctl_flush_tb()
        self._counting = True
        self._ignore_hooks = True
        machine = self.machine
        machine.in_guest = True
        try:
            self.cpu.stop_request.start_run()
            self.uc.emu_start(self.cpu.pc, 0, count=1)
        except Exception:  # the instruction faulted into a state emu cannot go on from:
            pass  # the next run reports it, as it would have without the watchpoint
        finally:
            machine.in_guest = False
            self._ignore_hooks = False

    # -- hooks (CPU thread, inside emu_start) ----------------------------------------------

    def _on_break(self, uc: Any, _addr: int, _size: int, _ud: Any) -> None:
        if self._ignore_hooks or self.stepping:
            return  # a step stops by its count (its own hit is "step")
        self.hit = Hit("break")
        uc.emu_stop()

    def _on_access(self, uc: Any, access: int, addr: int, size: int, _value: int,
                   _ud: Any) -> None:
        if self._ignore_hooks or self._undo is not None:
            return
        write = access == UC_MEM_WRITE
        for wp in self.watchpoints:
            if not wp.covers(addr, size):
                continue
            if wp.kind == WATCHPOINT_WRITE and not write:
                continue
            if wp.kind == WATCHPOINT_READ and write:
                continue
            paddr, old = None, None
            if write:
                paddr = self.cpu.translate(addr)
                old = None if paddr is None else self.machine.address_space.read(paddr, size)
            self._undo = (wp, paddr, old)
            self.hit = Hit("watch", wp)
            uc.emu_stop()
            return
