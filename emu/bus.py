"""Port-I/O and MMIO buses: the only place that installs Unicorn I/O hooks.

A device exposes one or more :class:`Region` s — an object with
``read(offset, size) -> int`` and ``write(offset, size, value)`` — and the board maps each
region on a bus at a base address. The bus decodes the address with a table lookup (no scan
of devices per access), converts the value to the region's byte order and calls the device.
Devices never see the CPU engine.

Contract with devices (QEMU's ``MemoryRegionOps`` model, docs/devel/memory.rst):

* ``offset`` is relative to the region's base; ``size`` is 1, 2, 4 or 8 bytes.
* A region marked ``big_endian`` gets values already converted from the guest's bytes in
  address order, like QEMU's ``DEVICE_BIG_ENDIAN``; others get little-endian values.
* MMIO accesses wider than 4 bytes reach the device as 4-byte pieces in ascending address
  order (Unicorn splits them before the bus sees them; see unicorn-notes "I/O"). Registers
  that QEMU defines for 8-byte access (fw_cfg's data and DMA registers) are written to
  accept that sequence; QEMU gives the same result for both forms.
* Unassigned ports read as all ones; unassigned MMIO inside a mapped window reads as zero,
  as QEMU's ``unassigned_io_ops`` / ``unassigned_mem_ops`` do. Writes there are dropped.

The same ``port_read``/``port_write``/``mmio_read``/``mmio_write`` methods serve the CPU hooks
and callers without a CPU (tests, a qtest server), so both see identical behaviour.

The hooks are ctypes callbacks handed to Unicorn's C API directly (:func:`_add_insn_hook`,
:func:`_mmio_map`). ``Uc.hook_add`` and ``Uc.mmio_map`` would wrap each callback in two more
Python calls (unicorn_py3's ``uccallback`` wrapper and a per-hook-type adapter), which took
half of the time of a guest's port access (bench/README.md, "Port I/O"). The callbacks keep
the wrapper's contract: an exception is kept for ``emu_start`` to raise and stops the CPU.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from unicorn import UC_HOOK_INSN, Uc, UcError
from unicorn.unicorn_const import UC_ERR_OK
from unicorn.x86_const import UC_X86_INS_IN, UC_X86_INS_OUT

try:  # the ctypes prototypes and entry points behind Uc.hook_add / Uc.mmio_map (unicorn 2.1)
    from unicorn.unicorn_py3.arch.intel import HOOK_INSN_IN_CFUNC, HOOK_INSN_OUT_CFUNC
    from unicorn.unicorn_py3.unicorn import MMIO_READ_CFUNC, MMIO_WRITE_CFUNC, uclib
except ImportError:  # another binding: the public API, with its per-call wrappers
    HOOK_INSN_IN_CFUNC = HOOK_INSN_OUT_CFUNC = MMIO_READ_CFUNC = MMIO_WRITE_CFUNC = None
    uclib = None

MMIO_PAGE = 0x1000
#: MMIO windows up to this many pages get a per-byte lookup table
LOOKUP_PAGES = 16


class RegionOps(Protocol):
    """What a device implements for each of its register regions."""

    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...


@dataclass(eq=False)
class Region:
    """A device's register window: ``size`` bytes handled by ``ops``. ``priority`` is the
    priority QEMU gives the region in its memory tree (``info mtree`` shows it)."""

    name: str
    size: int
    ops: RegionOps
    big_endian: bool = False
    priority: int = 0


def _swap(value: int, size: int) -> int:
    return int.from_bytes(value.to_bytes(size, "little"), "big")


#: value mask of an access of 0 to 8 bytes
_MASKS = tuple((1 << (8 * n)) - 1 for n in range(9))


def _mask(size: int) -> int:
    return _MASKS[size]


class _Mapping:
    """A region placed at ``base``: the bound methods the dispatch path calls."""

    __slots__ = ("base", "big_endian", "end", "read", "region", "write")

    def __init__(self, region: Region, base: int) -> None:
        self.region = region
        self.base = base
        self.end = base + region.size
        self.read: Callable[[int, int], int] = region.ops.read
        self.write: Callable[[int, int, int], None] = region.ops.write
        self.big_endian = region.big_endian


class _Bus:
    """What the port and MMIO buses share: mappings, overlap checks, the frozen switch."""

    unassigned_read: int = 0

    def __init__(self) -> None:
        self.mappings: list[_Mapping] = []
        #: When set (the machine is shutting down), every access is dropped.
        self.frozen = False
        #: Set by the machine when another thread waits for the CPU; the next access calls
        #: ``on_pending`` to bring the CPU back (the stop takes effect once the access is done).
        #: Written from other threads: the hooks test it (and ``frozen``) themselves at every
        #: access rather than a flag derived from both, which a race could leave stale.
        self.pending = False
        self.on_pending: Callable[[], None] = lambda: None

    def _check_overlap(self, base: int, size: int, name: str) -> None:
        for m in self.mappings:
            if base < m.end and m.base < base + size:
                raise ValueError(f"{name} at 0x{base:x} overlaps {m.region.name}")

    def _do_read(self, m: _Mapping | None, addr: int, size: int) -> int:
        if self.pending:
            self.on_pending()
        return self._dispatch_read(m, addr, size)

    def _do_write(self, m: _Mapping | None, addr: int, size: int, value: int) -> None:
        if self.pending:
            self.on_pending()
        self._dispatch_write(m, addr, size, value)

    def _dispatch_read(self, m: _Mapping | None, addr: int, size: int) -> int:
        """The access itself: unassigned, frozen, or the device in its byte order."""
        if m is None or self.frozen:
            return self.unassigned_read & _mask(size)
        value = m.read(addr - m.base, size) & _mask(size)
        return _swap(value, size) if m.big_endian else value

    def _dispatch_write(self, m: _Mapping | None, addr: int, size: int, value: int) -> None:
        """The access itself (see :meth:`_dispatch_read`)."""
        if m is None or self.frozen:
            return
        value &= _mask(size)
        m.write(addr - m.base, size, _swap(value, size) if m.big_endian else value)


class PortBus(_Bus):
    """The x86 I/O port space (64 KiB of ports) with a flat lookup table."""

    unassigned_read = 0xFFFFFFFF

    def __init__(self) -> None:
        super().__init__()
        self._table: list[_Mapping | None] = [None] * 0x10000
        #: the ports the hooks dispatch inline: little-endian mappings only
        self._fast: list[_Mapping | None] = [None] * 0x10000

    def map(self, base: int, region: Region) -> None:
        """Place ``region`` at port ``base``."""
        if base < 0 or base + region.size > 0x10000:
            raise ValueError(f"{region.name}: ports 0x{base:x}+0x{region.size:x} out of range")
        self._check_overlap(base, region.size, region.name)
        m = _Mapping(region, base)
        self.mappings.append(m)
        for port in range(base, base + region.size):
            self._table[port] = m
            self._fast[port] = None if m.big_endian else m

    def unmap(self, region: Region) -> None:
        """Take ``region`` off the bus (a PCI function moving or disabling its ports)."""
        for m in [m for m in self.mappings if m.region is region]:
            self.mappings.remove(m)
            for port in range(m.base, m.end):
                self._table[port] = None
                self._fast[port] = None

    def port_read(self, port: int, size: int) -> int:
        """An IN of ``size`` bytes from ``port``. An unaligned access is split the way QEMU's
        memory core splits it (:func:`_split`); each piece goes where its port leads."""
        if port & (size - 1):
            return sum(self._do_read(self._table[p & 0xFFFF], p, n) << (8 * (p - port))
                       for p, n in _split(port, size))
        return self._do_read(self._table[port & 0xFFFF], port, size)

    def port_write(self, port: int, size: int, value: int) -> None:
        """An OUT of ``size`` bytes of ``value`` to ``port`` (split like :meth:`port_read`)."""
        if port & (size - 1):
            for p, n in _split(port, size):
                shift = 8 * (p - port)
                self._do_write(self._table[p & 0xFFFF], p, n, (value >> shift) & _mask(n))
            return
        self._do_write(self._table[port & 0xFFFF], port, size, value)

    def attach(self, uc: Uc, route_in: Callable[[Any], None] | None = None) -> None:
        """Install the IN/OUT instruction hooks on ``uc``. ``route_in``: hand the IN
        handler (a ctypes function of Unicorn's IN hook type) to the CPU, whose own IN hook
        checks the I/O permission first and then calls it.

        This is the hot path of port I/O (a guest reading fw_cfg byte by byte): the common
        case — a mapped, little-endian, aligned port, nothing pending — is dispatched inline
        with one table lookup and one call of the device.
        """
        fast = self._fast
        masks = _MASKS
        port_read, port_write = self.port_read, self.port_write

        def on_in(_uc: Any, port: int, size: int, _ud: Any) -> int:
            try:
                m = fast[port]
                if m is None or self.pending or self.frozen or port & (size - 1):
                    return port_read(port, size)
                return m.read(port - m.base, size) & masks[size]
            except BaseException as e:  # as unicorn's own wrapper: stop, emu_start raises it
                _hook_failed(uc, e)
                return 0

        def on_out(_uc: Any, port: int, size: int, value: int, _ud: Any) -> None:
            try:
                m = fast[port]
                if m is None or self.pending or self.frozen or port & (size - 1):
                    port_write(port, size, value)
                else:
                    m.write(port - m.base, size, value & masks[size])
            except BaseException as e:
                _hook_failed(uc, e)

        if route_in is not None and HOOK_INSN_IN_CFUNC is not None:
            route_in(HOOK_INSN_IN_CFUNC(on_in))
        else:
            _add_insn_hook(uc, UC_X86_INS_IN, HOOK_INSN_IN_CFUNC, on_in)
        _add_insn_hook(uc, UC_X86_INS_OUT, HOOK_INSN_OUT_CFUNC, on_out)


def _hook_failed(uc: Uc, error: BaseException) -> None:
    """What unicorn_py3's callback wrapper does with an exception: keep the first one for
    ``emu_start`` to raise, and stop the CPU."""
    if uc._hook_exception is None:
        uc._hook_exception = error
    uc.emu_stop()


def _add_insn_hook(uc: Uc, insn: int, cfunctype: Any, callback: Callable[..., Any]) -> None:
    """``uc.hook_add(UC_HOOK_INSN, callback, None, 1, 0, insn)`` without the binding's
    per-call wrappers: ``callback`` itself becomes the C callback (its first and last
    arguments are then the engine handle and a dummy key instead of ``uc`` and the user data;
    emu's callbacks ignore both). The binding keeps the ctypes object alive."""
    add = getattr(uc, "_Uc__do_hook_add", None)
    if cfunctype is None or add is None:
        uc.hook_add(UC_HOOK_INSN, callback, None, 1, 0, insn)
        return
    add(UC_HOOK_INSN, cfunctype(callback), 1, 0, ctypes.c_int(insn))


def _mmio_map(uc: Uc, base: int, size: int, read: Callable[..., int],
              write: Callable[..., None]) -> None:
    """``uc.mmio_map(base, size, read, None, write, None)`` without the binding's per-call
    wrappers (see :func:`_add_insn_hook`); the ctypes objects are kept where ``mmio_map``
    keeps them, so ``mem_unmap`` releases them."""
    callbacks = getattr(uc, "_mmio_callbacks", None)
    if MMIO_READ_CFUNC is None or uclib is None or callbacks is None:
        uc.mmio_map(base, size, read, None, write, None)
        return
    read_fp, write_fp = MMIO_READ_CFUNC(read), MMIO_WRITE_CFUNC(write)
    status = uclib.uc_mmio_map(uc._uch, base, size, read_fp, 0, write_fp, 0)
    if status != UC_ERR_OK:
        raise UcError(status)
    callbacks[(base, base + size)] = (read_fp, write_fp)


def _split(addr: int, size: int) -> list[tuple[int, int]]:
    """QEMU's split of an unaligned access (memory_access_size in flatview_read_continue):
    each piece is as wide as the address's alignment allows, up to what is left."""
    pieces = []
    end = addr + size
    while addr < end:
        n = min(end - addr, addr & -addr or 4, 4)
        n = 1 << (n.bit_length() - 1)  # pow2floor
        pieces.append((addr, n))
        addr += n
    return pieces


class _Window:
    """A page-aligned stretch of MMIO handed to Unicorn, holding one or more regions."""

    __slots__ = ("base", "lookup", "mappings", "size")

    def __init__(self, base: int, size: int) -> None:
        self.base = base
        self.size = size
        self.mappings: list[_Mapping] = []
        #: the mapping at each byte offset (None: unassigned), for windows of up to
        #: LOOKUP_PAGES pages; larger windows are searched (:meth:`find`)
        self.lookup: list[_Mapping | None] | None = \
            [None] * size if size <= LOOKUP_PAGES * MMIO_PAGE else None

    def add(self, m: _Mapping) -> None:
        self.mappings.append(m)
        if self.lookup is not None:
            self.lookup[m.base - self.base:m.end - self.base] = [m] * (m.end - m.base)

    def find(self, addr: int) -> _Mapping | None:
        for m in self.mappings:
            if m.base <= addr < m.end:
                return m
        return None


class MmioBus(_Bus):
    """Memory-mapped I/O: regions grouped into page-aligned windows mapped with ``mmio_map``.

    Stopping the CPU from an MMIO callback makes Unicorn abandon the instruction after the
    access and execute it again on resume (unicorn-notes, "Running, stopping, halting"). The
    bus remembers the access it stopped on and answers its repetition from that record, so
    the device sees every guest access exactly once.
    """

    unassigned_read = 0

    def __init__(self) -> None:
        super().__init__()
        self._windows: dict[int, _Window] = {}  # page number -> window
        #: (addr, size, is_write, value) of the access the CPU was stopped on
        self._replay: tuple[int, int, bool, int] | None = None

    def _do_read(self, m: _Mapping | None, addr: int, size: int) -> int:
        if self._replay is not None:
            done, self._replay = self._replay, None
            if done[:3] == (addr, size, False):
                return done[3]
        if not self.pending:
            return self._dispatch_read(m, addr, size)
        self.on_pending()
        value = self._dispatch_read(m, addr, size)
        self._replay = (addr, size, False, value)
        return value

    def _do_write(self, m: _Mapping | None, addr: int, size: int, value: int) -> None:
        if self._replay is not None:
            done, self._replay = self._replay, None
            if done == (addr, size, True, value):
                return
        if self.pending:
            self.on_pending()
            self._replay = (addr, size, True, value)
        self._dispatch_write(m, addr, size, value)

    def map(self, base: int, region: Region) -> None:
        """Place ``region`` at guest-physical ``base``."""
        self._check_overlap(base, region.size, region.name)
        m = _Mapping(region, base)
        self.mappings.append(m)
        first = base // MMIO_PAGE
        last = (base + region.size - 1) // MMIO_PAGE
        window = next((self._windows[p] for p in range(first, last + 1) if p in self._windows),
                      None)
        if window is None:
            window = _Window(first * MMIO_PAGE, (last + 1 - first) * MMIO_PAGE)
        elif (last + 1) * MMIO_PAGE > window.base + window.size or first * MMIO_PAGE < window.base:
            raise ValueError(f"{region.name} at 0x{base:x} straddles an MMIO window")
        window.add(m)
        for p in range(first, last + 1):
            self._windows[p] = window

    def windows(self) -> list[_Window]:
        """The distinct windows, in address order."""
        return sorted({id(w): w for w in self._windows.values()}.values(), key=lambda w: w.base)

    def _find(self, addr: int) -> _Mapping | None:
        window = self._windows.get(addr // MMIO_PAGE)
        return window.find(addr) if window else None

    def covers(self, addr: int) -> bool:
        """Whether ``addr`` lies in a mapped MMIO window."""
        return addr // MMIO_PAGE in self._windows

    def mmio_read(self, addr: int, size: int) -> int:
        """A load of ``size`` bytes (1, 2, 4 or 8) at guest-physical ``addr``."""
        if size == 8:
            lo = self.mmio_read(addr, 4)
            return lo | self.mmio_read(addr + 4, 4) << 32
        return self._do_read(self._find(addr), addr, size)

    def mmio_write(self, addr: int, size: int, value: int) -> None:
        """A store of ``size`` bytes (1, 2, 4 or 8) at guest-physical ``addr``."""
        if size == 8:
            self.mmio_write(addr, 4, value & 0xFFFFFFFF)
            self.mmio_write(addr + 4, 4, value >> 32)
            return
        self._do_write(self._find(addr), addr, size, value)

    def attach(self, uc: Uc) -> None:
        """Map every window into ``uc`` with ``mmio_map``.

        The callbacks dispatch the common case inline (nothing pending, no access to replay):
        this is the path of every guest register access, for example a byte-by-byte fw_cfg read.
        """
        for window in self.windows():
            self._attach_window(uc, window)

    def _attach_window(self, uc: Uc, w: _Window) -> None:
        masks = _MASKS
        base = w.base
        table = w.lookup
        find = w.find

        def rd(_uc: Any, off: int, size: int, _ud: Any) -> int:
            try:
                addr = base + off
                m = table[off] if table is not None else find(addr)
                if m is None or self._replay is not None or self.pending or self.frozen:
                    return self._do_read(m, addr, size)
                value = m.read(addr - m.base, size) & masks[size]
                return _swap(value, size) if m.big_endian and size > 1 else value
            except BaseException as e:  # as unicorn's own wrapper: stop, emu_start raises it
                _hook_failed(uc, e)
                return 0

        def wr(_uc: Any, off: int, size: int, value: int, _ud: Any) -> None:
            try:
                addr = base + off
                m = table[off] if table is not None else find(addr)
                if m is None or self._replay is not None or self.pending or self.frozen:
                    self._do_write(m, addr, size, value)
                    return
                value &= masks[size]
                m.write(addr - m.base, size,
                        _swap(value, size) if m.big_endian and size > 1 else value)
            except BaseException as e:
                _hook_failed(uc, e)

        _mmio_map(uc, base, w.size, rd, wr)
