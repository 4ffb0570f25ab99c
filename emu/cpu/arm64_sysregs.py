"""System registers that devices implement: MRS/MSR dispatch to Python (Arm ARM DDI 0487,
C5.2 "System instructions": MRS/MSR encode a register as (op0, op1, CRn, CRm, op2)).

The generic timer (CNT*) and the GICv3 CPU interface (ICC_*) are system registers on AArch64,
not memory-mapped: the guest reaches them with MRS and MSR. Unicorn 2.1's QEMU 5.0 has its
own copies of some of them (the timer's, not connected to anything) and none of others
(ICC_*, which QEMU registers only when a GICv3 is attached). :func:`install_sysreg_hooks`
puts a device model in front of both: a ``UC_HOOK_INSN`` hook on ``UC_ARM64_INS_MRS`` and
``UC_ARM64_INS_MSR`` that Unicorn calls before its own access checks and register lookup
(qemu/target/arm/translate-a64.c ``handle_sys``, ``gen_hook_sys``). A nonzero return skips
the instruction, so a handled register is never seen by Unicorn's copy, and an unknown one
does not raise Unicorn's UNDEFINED exception; a zero return lets the instruction run as
Unicorn would run it, with its access checks and exceptions.

A handler is any object with ``read_sysreg(op0, op1, crn, crm, op2) -> int | None`` and
``write_sysreg(op0, op1, crn, crm, op2, value) -> bool``; ``None`` / ``False`` means "not
handled here": Unicorn executes the instruction itself (for example an EL0 access that the
architecture traps: Unicorn raises the trap as QEMU does). :func:`sysreg_table` builds the
dispatch table from handlers that list their registers in ``sysreg_keys()``.

Unicorn allows one such hook per instruction kind (translate-a64.c: "Only one hook per
instruction for SYS/SYSL/MRS/MSR is allowed"): install the dispatcher once, with every
handler in its table.

Unicorn calls the hook for every MRS and MSR, most of them of registers no handler has
(TPIDR_EL1, SP_EL0, DAIF: about 150,000 in a Linux boot). Where emu's native library is
built, the hook Unicorn calls is its filter (native/sysreg_filter.c), which has a bit per
key of the table and calls the Python dispatcher only for those.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from unicorn import UC_ARCH_ARM64, UC_HOOK_INSN, UC_MODE_ARM, Uc, UcError
from unicorn.arm64_const import (
    UC_ARM64_INS_MRS,
    UC_ARM64_INS_MSR,
    UC_ARM64_REG_PC,
    UC_ARM64_REG_XZR,
    UC_CPU_ARM64_A57,
)

from emu.bus import _hook_failed
from emu.cpu.engine import LIBRARY

try:  # the ctypes prototype and entry points behind Uc.hook_add (unicorn 2.1)
    from unicorn.unicorn_py3.arch.arm64 import HOOK_INSN_SYS_CFUNC
except ImportError:  # another binding: the public API
    HOOK_INSN_SYS_CFUNC = None

#: (op0, op1, CRn, CRm, op2)
SysregKey = tuple[int, int, int, int, int]


class SysregHandler(Protocol):
    """A device that implements system registers."""

    def read_sysreg(self, op0: int, op1: int, crn: int, crm: int, op2: int) -> int | None:
        ...

    def write_sysreg(self, op0: int, op1: int, crn: int, crm: int, op2: int,
                     value: int) -> bool:
        ...


class KeyedSysregHandler(SysregHandler, Protocol):
    def sysreg_keys(self) -> Iterable[SysregKey]: ...


def sysreg_table(*handlers: KeyedSysregHandler) -> dict[SysregKey, SysregHandler]:
    """The dispatch table of ``handlers``: each of its ``sysreg_keys()`` to the handler."""
    table: dict[SysregKey, SysregHandler] = {}
    for handler in handlers:
        for key in handler.sysreg_keys():
            if key in table:
                raise ValueError(f"system register {sysreg_name(key)} has two handlers")
            table[key] = handler
    return table


def sysreg_name(key: SysregKey) -> str:
    """``S<op0>_<op1>_C<n>_C<m>_<op2>``, the assembler's generic name of a register."""
    op0, op1, crn, crm, op2 = key
    return f"S{op0}_{op1}_C{crn}_C{crm}_{op2}"


#: uc_arm64_cp_reg: crn, crm, op0, op1, op2 (uint32 each), then val (uint64, 8-aligned)
_CP_REG = struct.Struct("<5I4xQ")


def _mrs(key: SysregKey, rt: int = 0) -> int:
    """The encoding of ``MRS X<rt>, <key>``."""
    op0, op1, crn, crm, op2 = key
    return 0xD5200000 | op0 << 19 | op1 << 16 | crn << 12 | crm << 8 | op2 << 5 | rt


def unicorn_implements(keys: Iterable[SysregKey],
                       model: int = UC_CPU_ARM64_A57) -> dict[SysregKey, bool]:
    """Which of ``keys`` Unicorn's CPU ``model`` has a register for: an ``MRS`` of each runs
    on a scratch engine at EL1, and an unknown register raises UNDEFINED there."""
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM, cpu=model)
    uc.mem_map(0, 0x1000)
    known = {}
    for n, key in enumerate(dict.fromkeys(keys)):
        addr = (n * 4) % 0x1000
        uc.mem_write(addr, _mrs(key).to_bytes(4, "little"))
        try:
            uc.emu_start(addr, addr + 4, count=1)
            known[key] = True
        except UcError:
            known[key] = False
    return known


class _SysregFilter(ctypes.Structure):
    """``struct emu_sysreg_filter`` of native/sysreg_filter.c."""

    _fields_ = [("python", ctypes.c_void_p), ("keys", ctypes.c_uint8 * (65536 // 8))]


def _filter_bit(key: SysregKey) -> int:
    """The key's bit in the native filter: op0[1:0] op1[2:0] CRn[3:0] CRm[3:0] op2[2:0]."""
    op0, op1, crn, crm, op2 = key
    return (op0 & 3) << 14 | (op1 & 7) << 11 | (crn & 15) << 7 | (crm & 15) << 3 | (op2 & 7)


class SysregDispatch:
    """The installed dispatch table: :meth:`add` more handlers after installation."""

    def __init__(self, model: int) -> None:
        self.model = model
        #: key -> (handler, whether the hook must step over the instruction itself)
        self.entries: dict[SysregKey, tuple[SysregHandler, bool]] = {}
        #: the native filters in front of the MRS and MSR hooks (none without the library)
        self.filters: list[_SysregFilter] = []

    def add(self, handlers: Mapping[SysregKey, SysregHandler]) -> None:
        """Dispatch these registers too (call it outside the CPU's hooks: it probes
        Unicorn with a scratch engine)."""
        for key in handlers:
            if key in self.entries:
                raise ValueError(f"system register {sysreg_name(key)} has two handlers")
        known = unicorn_implements(handlers, self.model)
        for key, handler in handlers.items():
            self.entries[key] = (handler, not known[key])
        self._sync_filters()

    def _sync_filters(self) -> None:
        for table in self.filters:
            for key in self.entries:
                bit = _filter_bit(key)
                table.keys[bit >> 3] |= 1 << (bit & 7)


def _add_filtered(uc: Uc, table: SysregDispatch, insn: int, hook: Any) -> bool:
    """Install ``hook`` (a ctypes callback) behind the native filter for ``insn``; False
    where the native library or the binding's internals are not there."""
    callbacks = getattr(uc, "_callbacks", None)
    if not LIBRARY.exists() or callbacks is None:
        return False
    from unicorn.unicorn_py3.arch.types import uc_hook_h
    from unicorn.unicorn_py3.unicorn import uclib

    native = ctypes.CDLL(str(LIBRARY))
    table_filter = _SysregFilter()
    table_filter.python = ctypes.cast(hook, ctypes.c_void_p).value
    handle = uc_hook_h()
    status = uclib.uc_hook_add(
        uc._uch, ctypes.byref(handle), UC_HOOK_INSN,
        ctypes.cast(native.emu_sysreg_filter_hook, ctypes.c_void_p),
        ctypes.cast(ctypes.byref(table_filter), ctypes.c_void_p),
        ctypes.c_uint64(1), ctypes.c_uint64(0), ctypes.c_int(insn))
    if status:
        raise UcError(status)
    callbacks[handle.value] = (native, hook, table_filter)  # kept alive with the engine
    table.filters.append(table_filter)
    table._sync_filters()
    return True


def install_sysreg_hooks(uc: Uc, handlers: Mapping[SysregKey, SysregHandler],
                         model: int = UC_CPU_ARM64_A57) -> SysregDispatch:
    """Dispatch every MRS and MSR of a register in ``handlers`` to its handler (``uc`` is
    an engine of Unicorn's CPU ``model``). Returns the table, for :meth:`SysregDispatch.add`.

    A handled access of a register that Unicorn does not have (:func:`unicorn_implements`)
    also moves the PC past the instruction: Unicorn has already ended the block with its
    UNDEFINED exception there, and skipping that exception alone would run the same
    instruction again. The hooks are ctypes callbacks handed to Unicorn's C API directly (as
    emu/bus.py does for port I/O: the binding's wrappers would add two Python calls per
    access)."""
    table = SysregDispatch(model)
    table.add(handlers)
    dispatch = table.entries
    string_at = ctypes.string_at
    unpack = _CP_REG.unpack
    size = _CP_REG.size

    def step_over() -> None:
        uc.reg_write(UC_ARM64_REG_PC, uc.reg_read(UC_ARM64_REG_PC) + 4)

    def on_mrs(_uc: Any, reg: int, cp_reg: int, _ud: Any) -> int:
        try:
            crn, crm, op0, op1, op2, _ = unpack(string_at(cp_reg, size))
            entry = dispatch.get((op0, op1, crn, crm, op2))
            if entry is None:
                return 0
            value = entry[0].read_sysreg(op0, op1, crn, crm, op2)
            if value is None:
                return 0
            if reg != UC_ARM64_REG_XZR:
                uc.reg_write(reg, value & 0xFFFFFFFFFFFFFFFF)
            if entry[1]:
                step_over()
            return 1
        except BaseException as e:  # as unicorn's own wrapper: stop, emu_start raises it
            _hook_failed(uc, e)
            return 1

    def on_msr(_uc: Any, reg: int, cp_reg: int, _ud: Any) -> int:
        try:
            crn, crm, op0, op1, op2, value = unpack(string_at(cp_reg, size))
            entry = dispatch.get((op0, op1, crn, crm, op2))
            if entry is None or not entry[0].write_sysreg(op0, op1, crn, crm, op2, value):
                return 0
            if entry[1]:
                step_over()
            return 1
        except BaseException as e:
            _hook_failed(uc, e)
            return 1

    add = getattr(uc, "_Uc__do_hook_add", None)
    if HOOK_INSN_SYS_CFUNC is None or add is None:  # another binding: its wrapped callbacks
        def wrap(fn: Any) -> Any:
            def cb(uc_: Uc, reg: int, cp: Any, ud: Any) -> int:
                buf = ctypes.create_string_buffer(
                    _CP_REG.pack(cp.crn, cp.crm, cp.op0, cp.op1, cp.op2, cp.val), size)
                return fn(uc_, reg, ctypes.addressof(buf), ud)
            return cb
        uc.hook_add(UC_HOOK_INSN, wrap(on_mrs), None, 1, 0, UC_ARM64_INS_MRS)
        uc.hook_add(UC_HOOK_INSN, wrap(on_msr), None, 1, 0, UC_ARM64_INS_MSR)
        return table
    for insn, fn in ((UC_ARM64_INS_MRS, on_mrs), (UC_ARM64_INS_MSR, on_msr)):
        hook = HOOK_INSN_SYS_CFUNC(fn)
        if not _add_filtered(uc, table, insn, hook):
            add(UC_HOOK_INSN, hook, 1, 0, ctypes.c_int(insn))
    return table
