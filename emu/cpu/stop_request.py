"""The run loop's stop request: stop the CPU at the start of its next translated block.

Unicorn can only be interrupted from outside (``emu_stop`` from another thread,
``emu_start``'s timeout) at its exit-request checks, and it makes one after every guest
memory access: an instruction interrupted between its load and its store is re-executed
on resume, so a read-modify-write takes effect twice (docs/devel/run-loop.md). A stop
requested *before* a block starts is clean: Unicorn calls block hooks ahead of the
block's own exit-request check (``translator_loop``, qemu/accel/tcg/translator.c), so a
``uc_emu_stop`` made by a block hook ends the run before any instruction of that block.

A block hook written in Python would cost a callback per block. The hook is therefore the
few instructions of ``native/stop_hook.c``, built for each host architecture into
``emu/cpu/native/``: it checks a flag that any thread may set, and only then stops the CPU.
The first block of every run is exempt, so a guest stopped as often as requests come still
makes progress: at most one block (a bounded number of instructions) runs after a request.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from unicorn import UC_HOOK_BLOCK, Uc, UcError
from unicorn.unicorn_py3 import unicorn as _binding
from unicorn.unicorn_py3.arch.types import uc_hook_h

LIBRARY = Path(__file__).with_name("native") / f"stop_hook.{os.uname().machine}.so"


class _Request(ctypes.Structure):
    """``struct emu_stop_request`` of native/stop_hook.c."""

    _fields_ = [("requested", ctypes.c_int32), ("taken", ctypes.c_int32),
                ("first", ctypes.c_int32), ("reserved", ctypes.c_int32),
                ("uc_emu_stop", ctypes.c_void_p), ("at_block", ctypes.c_void_p),
                ("at_block_arg", ctypes.c_void_p)]


class StopRequest:
    """Stops one CPU at its next block boundary on request, from any thread.

    ``available`` is False on a host emu has no native hook for; :meth:`request` then
    does nothing and the machine relies on its other stop points (device accesses, halts).
    """

    def __init__(self, uc: Uc) -> None:
        self._request = _Request()
        self._handle = uc_hook_h()
        self.available = False
        if not LIBRARY.exists():
            return
        library = ctypes.CDLL(str(LIBRARY))
        self._request.uc_emu_stop = ctypes.cast(_binding.uclib.uc_emu_stop,
                                                ctypes.c_void_p).value
        status = _binding.uclib.uc_hook_add(
            uc._uch, ctypes.byref(self._handle), UC_HOOK_BLOCK,
            ctypes.cast(library.emu_stop_hook, ctypes.c_void_p),
            ctypes.cast(ctypes.byref(self._request), ctypes.c_void_p),
            ctypes.c_uint64(1), ctypes.c_uint64(0))  # begin > end: every address
        if status:
            raise UcError(status)
        self._library = library  # the hook's code must outlive the Uc's use of it
        self.available = True

    def run_at_block(self, fn: int, arg: int) -> None:
        """Have the hook also call the native ``fn(arg)`` at every block start (one block
        hook instead of two: Unicorn's dispatch costs per hook and block)."""
        self._request.at_block_arg = arg
        self._request.at_block = fn

    @property
    def flag_address(self) -> int:
        """The address of the request flag, for native code that asks for stops itself."""
        return ctypes.addressof(self._request) + _Request.requested.offset

    def request(self) -> None:
        """Stop the CPU at the start of its next block (thread-safe; a no-op if the CPU is
        not running: the request then stops the next run at its first block)."""
        self._request.requested = 1

    def cancel(self) -> None:
        """Withdraw a request that has not been taken yet."""
        self._request.requested = 0

    def start_run(self) -> None:
        """Call before each ``emu_start``: forget how the last run ended, and let the run's
        first block execute whatever is requested."""
        self._request.taken = 0
        self._request.first = 1

    def taken(self) -> bool:
        """Whether the last run ended because of a request."""
        return bool(self._request.taken)
