"""Machine: builds a board from a :class:`~emu.config.MachineConfig` and runs it.

Lifecycle: create -> reset -> run (running / paused / halted) -> shutdown.

The run loop lives on the thread that calls :meth:`Machine.run`, which is the only thread
that touches the CPU engine. Other threads post requests with :meth:`Machine.call_soon` (a
monitor's stop, cont, dump...); the loop serves them whenever the CPU is back in Python.

When the CPU comes back is the central design decision (docs/devel/run-loop.md). Unicorn
2.1 can only interrupt a running CPU asynchronously (``emu_start``'s timeout or ``emu_stop``
from another thread) by abandoning the current instruction *after* its memory accesses and
re-executing it on resume: an interrupted read-modify-write (``add [m], r``, a LOCK or LSE
atomic, a store-exclusive) then takes effect twice. emu therefore never interrupts the CPU
asynchronously. The CPU returns to the loop synchronously: when the guest halts (x86 HLT,
aarch64 WFI), exits, faults, touches a device while a request is pending (the stop is
taken from the device callback, where the next memory access ends the block before any
store of a later instruction), or reaches the start of a translated block while a request
is pending (emu/cpu/stop_request.py: a native block hook stops the CPU before the block's
first instruction). A guest that halts with nothing to wake it leaves the loop waiting for
requests, as an idle QEMU does.

Devices ask for a shutdown or reset with :meth:`request_exit` / :meth:`request_reset`; from
that moment every further device access of the guest is dropped, so nothing the guest does
after asking to exit is seen.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from unicorn import UC_PROT_ALL, UC_PROT_EXEC, UC_PROT_READ, UcError
from unicorn.unicorn_const import UC_ERR_FETCH_PROT, UC_ERR_FETCH_UNMAPPED

from emu.alarm import Alarm
from emu.boards import Board, board_class
from emu.boards.firmware_config import add_user_files
from emu.bus import MmioBus, PortBus, Region
from emu.chardev import CharBackend
from emu.clock import Clock
from emu.config import MachineConfig
from emu.cpu import create_cpu
from emu.dump import DumpResult
from emu.errors import ConfigError, GuestFatal
from emu.memory import AddressSpace, Buffer, BusRegion, RamBlock
from emu.plugins.devices import split_device_spec, take_device_id
from emu.plugins.manager import PluginManager, default_manager
from emu.trace import trace

if TYPE_CHECKING:
    from concurrent.futures import Future

    from emu.gdbstub.debug import Debugger

EXIT_FATAL = 2
#: the least host time the CPU runs before a timer may stop it again: a timer that falls
#: due faster than emu can take its interrupts (each costs a trip through the run loop)
#: would otherwise leave the guest one block per interrupt, and it would never get on
MIN_RUN_NS = 200_000
#: A guest-physical page outside every machine's memory map (below both CPUs' 48-bit
#: physical address limit), mapped only to swallow stores to ROM
WRITE_SINK = 0x7FFF_FFFF_F000


class Machine:
    """One emulated machine."""

    def __init__(self, config: MachineConfig, plugins: PluginManager | None = None) -> None:
        self.config = config
        self.plugins = plugins or default_manager()
        self.address_space = AddressSpace()
        #: read-only memory (firmware ROM and flash): not RAM, so not in the E820 map
        self.roms: list[RamBlock] = []
        self._dumped_roms: list[RamBlock] = []
        self.port_bus = PortBus()
        self.mmio_bus = MmioBus()
        for bus in (self.port_bus, self.mmio_bus):
            bus.on_pending = self._stop_for_requests
        self._owned: list[CharBackend] = []
        #: the virtual clock all device timers run on; a qtest drives it (emu/clock.py)
        self.clock = Clock("qtest" if config.qtest or config.accel == "qtest" else "realtime")
        if config.start_paused:  # guest time starts with the guest (-S: at the first 'cont')
            self.clock.stop()
        self.devices: list[object] = []
        #: the -device id=... names
        self.device_ids: dict[str, object] = {}
        self.state = "created"  # created, running, paused, shutdown
        self.halted = False
        self.cpu_powered = True
        #: True while the CPU executes guest code (a device access then comes from the CPU,
        #: not from a qtest or monitor request: QEMU's ``current_cpu``)
        self.in_guest = False
        self.exit_status: int | None = None
        self.exit_reason = ""
        #: event listeners (a QMP server): fn(name, data)
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.started = False
        #: paused by a guest panic (-action panic=pause): QMP status "guest-panicked"
        self.panicked = False
        #: result (DumpResult or DumpError) of a --dump-on-panic dump, once taken
        self.panic_dump: object = None
        #: progress callback for dumps emu takes itself (a progress bar on a terminal)
        self.dump_progress: Callable[[int, int], None] | None = None
        #: dumps being written right now (a signal waits for them: see emu.cli)
        self.dumping = 0
        self.fatal: GuestFatal | None = None
        self._reset_requested = False
        self._requests: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wakeup = threading.Event()
        self.reset_count = 0
        #: the guest powered off under -no-shutdown: stopped until a reset (QEMU's runstate
        #: "shutdown", in which ``cont`` is refused)
        self.needs_reset = False
        #: the thread that runs the CPU (set by run)
        self._cpu_thread: int | None = None
        #: brings the CPU back when the next timer is due (emu/alarm.py)
        self._alarm = Alarm(self._ask_for_the_cpu)
        self.clock.on_earliest = self._timer_armed
        #: -icount sleep=on: host and guest time when the CPU went idle
        self._idle_since: tuple[int, int] | None = None
        #: host time at which the current run of the CPU started
        self._run_started = 0
        #: breakpoints, watchpoints and single steps of a gdb stub (emu/gdbstub/debug.py);
        #: None without -gdb, so that nothing is hooked
        self.debugger: Debugger | None = None
        #: the guest ended emu at once, as QEMU's isa-debug-exit calls exit(): a gdb stub
        #: then has no chance to say so (QEMU's gdb_exit runs in qemu_cleanup only)
        self.exit_at_once = False

        board_cls = board_class(config.machine)
        self.cpu = create_cpu(board_cls.arch, config.cpu)
        self.cpu.set_cpu_count(config.max_cpus)
        if config.icount_shift is not None and self.clock.mode != "qtest":
            self._use_icount(config.icount_shift)
        self.cpu.phys_read = self.address_space.read
        self.cpu.phys_write = self.address_space.write
        self.board: Board = board_cls(self)
        try:
            self.board.build()
            self.fw_cfg = self.board.fw_cfg
            self.plugins.hook.emu_fw_cfg_setup(machine=self, fw_cfg=self.fw_cfg)
            self._create_devices()
            self.board.devices_created()
            add_user_files(self.fw_cfg, config)
            self.plugins.hook.emu_machine_created(machine=self)
            self._attach()
        except BaseException:
            self.close()
            raise
        self.reset()

    # -- construction ---------------------------------------------------------------------

    def add_ram(self, block: RamBlock) -> None:
        """Add guest RAM (boards call this while building)."""
        self.address_space.add(block)

    def add_rom(self, name: str, base: int, size: int, data: Buffer, *,
                dumped: bool = False, flash: bool = False) -> RamBlock:
        """Add read-only memory holding ``data`` (zero-padded to ``size``): the guest can
        read and execute it; its stores to it are dropped, as QEMU drops stores to ROM.
        ``dumped``: core dumps include it (QEMU dumps read-only RAM such as the pc BIOS, but
        not ROM devices such as the virt flash). DMA reads it; a DMA write to it fails, as
        to QEMU's ROM, unless it is ``flash``, which takes the write as a command."""
        block = RamBlock.allocate(name, base, size)
        block.view()[:len(data)] = data
        self.address_space.add_region(BusRegion(name, base, size, block.view(), flash))
        self.roms.append(block)
        if dumped:
            self._dumped_roms.append(block)
        return block

    def rom_at(self, addr: int, size: int) -> RamBlock | None:
        """The ROM holding all of ``[addr, addr + size)``, if one does."""
        for block in self.roms:
            if block.base <= addr and addr + size <= block.end:
                return block
        return None

    def read_memory(self, paddr: int, size: int) -> bytes | None:
        """Guest-physical bytes from RAM or ROM, as the CPU reads them; None where the
        range is not wholly in one of them (device registers, unassigned space)."""
        data = self.address_space.read(paddr, size)
        if data is None:
            rom = self.rom_at(paddr, size)
            if rom is not None:
                data = bytes(rom.view()[paddr - rom.base : paddr - rom.base + size])
        return data

    @property
    def dump_blocks(self) -> list[RamBlock]:
        """The memory a core dump holds, in address order: RAM and dumped ROMs."""
        return sorted([*self.address_space.blocks, *self._dumped_roms], key=lambda b: b.base)

    def map_port(self, base: int, region: Region) -> None:
        """Map a device region on the I/O port bus."""
        try:
            self.port_bus.map(base, region)
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def map_mmio(self, base: int, region: Region) -> None:
        """Map a device region on the MMIO bus."""
        try:
            self.mmio_bus.map(base, region)
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def own(self, backend: CharBackend) -> CharBackend:
        """Keep ``backend`` to close it with the machine."""
        self._owned.append(backend)
        return backend

    @property
    def arch(self) -> str:
        """"x86_64" or "aarch64"."""
        return self.cpu.arch

    def _create_devices(self) -> None:
        types = self.plugins.device_types
        for dev in self.config.devices:
            name, raw = split_device_spec(dev.spec)
            dtype = types.get(name)
            if dtype is None:
                raise ConfigError(f"-device {dev.spec}: '{name}' is not a valid device model name")
            if dtype.machines is not None and self.config.machine not in dtype.machines:
                raise ConfigError(
                    f"-device {dev.spec}: '{name}' is not available on machine "
                    f"'{self.config.machine}'")
            dev_id = take_device_id(dev.spec, raw)
            if dev_id is not None and dev_id in self.device_ids:
                raise ConfigError(f"-device {dev.spec}: Duplicate ID '{dev_id}' for device")
            props = dtype.parse(dev.spec, raw)
            device = dtype.create(self, props)
            self.devices.append(device)
            if dev_id is not None:
                self.device_ids[dev_id] = device

    def _attach(self) -> None:
        uc = self.cpu.uc
        for block in self.address_space.blocks:
            uc.mem_map_ptr(block.base, block.size, UC_PROT_ALL, block.host_address())
        self.cpu.set_ram([(block.base, block.size, block.host_address())
                          for block in self.address_space.blocks])
        for block in self.roms:
            uc.mem_map_ptr(block.base, block.size, UC_PROT_READ | UC_PROT_EXEC,
                           block.host_address())
        if self.roms:  # where the CPU sends stores to ROM (emu.cpu.Cpu._on_tlb_fill)
            self._write_sink = RamBlock.allocate("rom-write-sink", WRITE_SINK, 0x1000)
            uc.mem_map_ptr(WRITE_SINK, 0x1000, UC_PROT_ALL, self._write_sink.host_address())
            self.cpu.write_sink = WRITE_SINK
            self.cpu.is_rom = lambda paddr: self.rom_at(paddr, 1) is not None
        self.cpu.is_backed = self._is_backed
        if self.arch == "x86_64":
            self.port_bus.attach(uc, getattr(self.cpu, "route_port_in", None))
        self.mmio_bus.attach(uc)
        # No "until" address: the CPU comes back only at emu's own stop points. Unicorn looks
        # up the code page of an emu_start's until address at every start (to invalidate
        # blocks that would stop there), through the guest's page tables: a kernel's tables
        # need not map it, and that lookup's fault would end the run. An empty exit list
        # (UC_CTL_UC_USE_EXITS) makes Unicorn ignore until and look nothing up.
        uc.ctl_exits_enabled(True)
        uc.ctl_set_exits([])

    def _is_backed(self, paddr: int) -> bool:
        """Whether RAM, ROM or a device answers at ``paddr`` (the rest is unassigned)."""
        return (self.address_space.is_ram(paddr, 1) or self.rom_at(paddr, 1) is not None
                or self.mmio_bus.covers(paddr))

    # -- lifecycle --------------------------------------------------------------------------

    def reset(self) -> None:
        """Machine reset: devices, plugins, CPU and boot state, as a power cycle does
        (RAM keeps its contents, as in QEMU; the kernel image is loaded again)."""
        self.port_bus.frozen = self.mmio_bus.frozen = False
        self.board.reset()
        self.plugins.hook.emu_machine_reset(machine=self)
        self.cpu.reset()
        self.board.boot()
        self.cpu.uc.ctl_flush_tb()
        self.halted = False
        self.cpu_powered = True
        self._reset_requested = False
        self.reset_count += 1

    def emit(self, name: str, data: dict[str, Any]) -> None:
        """Tell listeners (a QMP client) about an event."""
        for listener in self.listeners:
            listener(name, data)

    def request_exit(self, status: int, reason: str = "guest",
                     shutdown: dict[str, Any] | None = None) -> None:
        """Ask emu to exit with ``status``. ``reason`` is "guest" for the guest's own exits
        (isa-debug-exit, PSCI SYSTEM_OFF), "panic" for a pvpanic action, "quit" for a monitor
        or signal, "fatal" when the CPU cannot go on (``--dump-on-exit`` dumps after any of
        them). ``shutdown`` is the data of the SHUTDOWN event, sent once with the
        first exit request (guest exits default to QEMU's "guest-shutdown")."""
        if self.exit_status is None:
            self.exit_status = status
            self.exit_reason = reason
            if shutdown is None and reason == "guest":
                shutdown = {"guest": True, "reason": "guest-shutdown"}
            if shutdown is not None:
                self.emit("SHUTDOWN", shutdown)
        self._freeze()

    def power_off(self, status: int = 0) -> None:
        """The guest turns the machine off (PSCI SYSTEM_OFF). emu exits, unless
        ``-no-shutdown`` (QMP ``set-action shutdown=pause``) is in force: then, as QEMU's
        SHUTDOWN_ACTION_PAUSE, the SHUTDOWN event is sent and the machine stops (STOP) in the
        "shutdown" state until a reset."""
        if not self.config.no_shutdown:
            self.request_exit(status, "guest")
            return
        self.emit("SHUTDOWN", {"guest": True, "reason": "guest-shutdown"})
        self.needs_reset = True
        self.pause()
        self.cpu.uc.emu_stop()  # from the CPU's own thread (a PSCI call)

    def request_reset(self, guest: bool = True) -> None:
        """A machine reset, asked for by the guest (PSCI SYSTEM_RESET) or by a monitor."""
        if self.config.no_reboot and guest:
            self.request_exit(0, "guest")
            return
        self.emit("RESET", {"guest": guest,
                            "reason": "guest-reset" if guest else "host-qmp-system-reset"})
        if self.needs_reset:  # out of -no-shutdown's "shutdown" state: QEMU's prelaunch,
            self.needs_reset = False  # from the moment the RESET event is out
            self.started = False
        self._reset_requested = True
        self._freeze()

    def guest_panicked(self) -> None:
        """pvpanic: the guest reports a panic. Act on ``-action panic=`` (QEMU's
        runstate-action.c): shutdown (the default), pause, exit-failure or none; save a dump
        first if ``--dump-on-panic`` asked for one. Called from the device's port hook; the
        action itself runs on the machine's thread once the CPU is back in the run loop, so the
        dump sees the CPU state at the panic."""
        action = self.config.panic_action
        qapi_action = {"none": "run", "pause": "pause"}.get(action, "poweroff")
        self.emit("GUEST_PANICKED", {"action": qapi_action})

        def act() -> None:
            if self.config.dump_on_panic:
                self.panic_dump = self._dump_for_panic(self.config.dump_on_panic)
            if action == "pause":
                self.pause()
                self.panicked = True
            elif action == "shutdown":
                self.request_exit(0, "panic", {"guest": True, "reason": "guest-panic"})
            elif action == "exit-failure":
                self.request_exit(1, "panic")

        self.call_soon(act)
        self._stop_for_requests()  # called from the device's port hook: a synchronous stop

    def _dump_for_panic(self, path: str) -> object:
        from emu.dump.elf import DumpError

        try:
            return self.dump(path, fmt=self.config.dump_format, progress=self.dump_progress)
        except DumpError as e:
            return e

    def cpu_off(self) -> None:
        """PSCI CPU_OFF on the only CPU: it stops for good; the machine idles."""
        self.cpu_powered = False
        self.cpu.uc.emu_stop()

    def _freeze(self) -> None:
        self.port_bus.frozen = self.mmio_bus.frozen = True
        if threading.get_ident() != self._cpu_thread and self.cpu.stop_request.available:
            self.cpu.stop_request.request()  # another thread (a signal): a clean stop
        else:  # a device callback on the CPU's thread: at once
            self.cpu.uc.emu_stop()
        self._wakeup.set()

    def call_soon(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn`` on the machine's thread between run slices (thread-safe)."""
        from concurrent.futures import Future

        fut: Future[Any] = Future()

        def job() -> None:
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as e:
                    fut.set_exception(e)

        if self.state == "shutdown":  # the CPU is gone for good: nobody else to wait for
            job()
            return fut
        self._requests.put(job)
        self._ask_for_the_cpu()
        self._wakeup.set()
        return fut

    def _ask_for_the_cpu(self) -> None:
        """Have the CPU come back to the loop: at the start of its next block, or (on a host
        without the native stop hook) at its next device access."""
        if self.cpu.stop_request.available:
            self.cpu.stop_request.request()
        else:
            self.port_bus.pending = self.mmio_bus.pending = True

    def _stop_for_requests(self) -> None:
        """A device access with requests pending: return to the loop to serve them."""
        self.port_bus.pending = self.mmio_bus.pending = False
        self.cpu.uc.emu_stop()

    def pause(self) -> None:
        """Stop running guest code (monitor ``stop``); call on the machine's thread."""
        if self.state == "running":
            self.state = "paused"
            self.clock.stop()  # guest time stands still while paused, as QEMU's virtual clock
            self.emit("STOP", {})

    def resume(self) -> None:
        """Continue a paused machine (monitor ``cont``); call on the machine's thread."""
        if self.state == "paused":
            self.state = "running"
            self.clock.start()
            self.started = True
            self.panicked = False
            self.emit("RESUME", {})

    def quit(self, status: int = 0, reason: str = "host-signal") -> None:
        """End the run loop with ``status`` (monitor ``quit``, a signal)."""
        self.request_exit(status, "quit", {"guest": False, "reason": reason})

    @property
    def runnable(self) -> bool:
        """Whether the CPU would execute guest code now."""
        return (self.state == "running" and not self.halted and self.cpu_powered
                and self.config.accel != "qtest")

    def power_on(self) -> None:
        """Leave the "created" state: running, or paused with -S. :meth:`run` does it; the
        command line does it before its monitors serve, so that, as in QEMU, no client ever
        sees a machine without -S in prelaunch."""
        if self.state == "created":
            self.state = "paused" if self.config.start_paused else "running"
            self.started = self.state == "running"

    def run(self) -> int:
        """Run until the guest or a request ends the machine; returns the exit status."""
        self._cpu_thread = threading.get_ident()
        self.power_on()
        while self.exit_status is None:
            self._serve_requests()
            if self._reset_requested:
                self.reset()
            if self.exit_status is not None:
                break
            self._run_timers()
            if self.runnable:
                self._run_slice()
            else:
                self._wakeup.wait(self._idle_timeout())
                self._wakeup.clear()
        self.state = "shutdown"
        self._alarm.close()
        self._serve_requests()
        return self.exit_status

    def _serve_requests(self) -> None:
        """Serve the requests posted so far (those they post in turn wait for the next stop)."""
        self.port_bus.pending = self.mmio_bus.pending = False
        self.cpu.stop_request.cancel()
        for _ in range(self._requests.qsize()):
            self._requests.get_nowait()()
        if not self._requests.empty():
            self._ask_for_the_cpu()

    def _use_icount(self, shift: int) -> None:
        """-icount shift=N: guest time is 2^N ns per instruction (emu/clock.py), counted by
        a native code hook that also asks the CPU to stop at the block where the next timer
        is due; the x86 time-stamp counter reads guest time too (QEMU's cpu_get_ticks
        under icount)."""
        engine = self.cpu.engine
        if engine is None or not engine.available or not self.cpu.stop_request.available:
            raise ConfigError("-icount: instruction counting needs emu's native CPU hooks, "
                              "which this host or Unicorn build does not have")
        engine.count_instructions(self.cpu.stop_request.flag_address)
        self.clock.use_instructions(lambda: engine.instructions, shift)
        self.cpu.read_time_stamp_counter(self.clock.now_ns)

    def _timer_armed(self, deadline: int) -> None:
        """A timer now due before all others: bring the CPU back for it (a guest that
        programs a timer while it runs)."""
        if self.clock.mode == "icount":
            assert self.cpu.engine is not None
            self.cpu.engine.icount_deadline = min(self.cpu.engine.icount_deadline,
                                                  self.clock.instructions_until(deadline))
            return
        at = self.clock.host_time_of(deadline)
        self._alarm.set(None if at is None else max(at, self._run_started + MIN_RUN_NS))

    def _run_timers(self) -> None:
        """Fire the timers that are due; wake a halted CPU that has an interrupt to take.
        Under -icount an idle CPU executes nothing, so time moves on to the next timer:
        at once with sleep=off, as fast as host time passes with sleep=on (QEMU's icount
        warp)."""
        clock = self.clock
        if clock.mode == "icount":
            deadline = clock.next_deadline()
            if not self.halted or self.cpu.has_work() or deadline is None:
                self._idle_since = None
            elif not self.config.icount_sleep:
                clock.skip_to(deadline)
            else:
                if self._idle_since is None:
                    self._idle_since = (time.monotonic_ns(), clock.now_ns())
                host, guest = self._idle_since
                clock.skip_to(min(deadline, guest + time.monotonic_ns() - host))
        clock.run_due()
        if self.halted and self.cpu.has_work():
            self.halted = False

    def _idle_timeout(self) -> float:
        """How long the loop may sleep while the CPU does not run: until the next timer."""
        deadline = self.clock.next_deadline()
        if self.clock.mode == "icount" and deadline is not None:
            return max(0.0, min(0.2, (deadline - self.clock.now_ns()) / 1e9))
        at = None if deadline is None else self.clock.host_time_of(deadline)
        if at is None:
            return 0.2
        return max(0.0, min(0.2, (at - time.monotonic_ns()) / 1e9))

    def _run_slice(self) -> None:
        cpu = self.cpu
        uc = cpu.uc
        deadline = self.clock.next_deadline()
        if self.clock.mode == "icount":
            assert cpu.engine is not None
            cpu.engine.icount_deadline = (1 << 64) - 1 if deadline is None else \
                self.clock.instructions_until(deadline)
        else:
            self._run_started = time.monotonic_ns()
            at = None if deadline is None else self.clock.host_time_of(deadline)
            self._alarm.set(None if at is None else max(at, self._run_started + MIN_RUN_NS))
        debugger = self.debugger
        count = 0 if debugger is None else debugger.before_run()
        cpu.stop_request.start_run()
        self.in_guest = True
        try:
            uc.emu_start(cpu.pc, 0, count=count)
        except UcError as e:
            if self.exit_status is not None or self._reset_requested:
                return
            self._die(cpu.fatal or self._describe(e))
            return
        except Exception as e:  # a bug in a device or plugin: report it, do not hide it
            self._die(f"internal error in a device callback: {type(e).__name__}: {e}")
            return
        finally:
            self.in_guest = False
            if debugger is not None:
                debugger.release_irqs()
        if (self.exit_status is not None or self._reset_requested or not self.cpu_powered
                or self.state != "running"):
            return
        if debugger is not None and not cpu.fatal and debugger.after_run():
            self.pause()  # a breakpoint, watchpoint or step: the stub reports it on STOP
            return
        stopped_at_block = cpu.stop_request.taken()
        if cpu.fatal:
            self._die(cpu.fatal)
        elif cpu.triple_faulted():
            trace("cpu_triple_fault", pc=cpu.pc)
            self.request_reset(guest=True)  # QEMU: qemu_system_reset_request(GUEST_RESET)
        elif stopped_at_block or self._stopped_for_requests():
            return  # a request (served next), or one already served at a device access
        elif cpu.is_halted():
            self.halted = True
        else:
            self._die("CPU stopped for an unknown reason (triple fault?)")

    def _stopped_for_requests(self) -> bool:
        return not self._requests.empty()

    def _describe(self, e: UcError) -> str:
        if e.errno in (UC_ERR_FETCH_UNMAPPED, UC_ERR_FETCH_PROT):
            return "instruction fetch from unmapped memory"
        return f"CPU error: {e}"

    def _die(self, reason: str) -> None:
        self.fatal = GuestFatal(reason, self.cpu.pc)
        self.request_exit(EXIT_FATAL, "fatal")

    def dump(self, path: object, **options: object) -> DumpResult:
        """Write a core dump (see :func:`emu.dump.guest.dump_machine` for the options).
        Call it with the CPU stopped: before or after :meth:`run`, or through
        :meth:`call_soon`. Raises :class:`emu.dump.elf.DumpError`; the guest is unaffected."""
        from emu.dump.guest import dump_machine

        self.dumping += 1
        try:
            return dump_machine(self, path, **options)  # type: ignore[arg-type]
        finally:
            self.dumping -= 1

    def close(self) -> None:
        """Release host resources (output files, the alarm's thread)."""
        self._alarm.close()
        for backend in self._owned:
            with contextlib.suppress(OSError):
                backend.close()
        self._owned.clear()
