"""QEMU's CPU state inside Unicorn, and QEMU's own exception entry.

Unicorn runs QEMU's TCG but never enters a guest's exception vectors and offers no way to
raise an interrupt (unicorn-notes, "Exceptions and interrupts"). The QEMU code that does
both is still in the library, exported: ``x86_cpu_do_interrupt`` / ``arm_cpu_do_interrupt``
(exception entry, exactly as QEMU does it) and the CPU's ``interrupt_request`` word, which
QEMU's CPU loop polls between translated blocks and turns into an interrupt when the CPU
can take one (``x86_cpu_exec_interrupt``: EFLAGS.IF and the STI/MOV SS shadow;
``arm_cpu_exec_interrupt``: PSTATE.I/F). This module finds the CPU's state in the library's
memory, installs the native hooks of ``native/cpu_exceptions.c`` that run the entry code,
and gives the machine the few fields it needs.

The field offsets are those of the Unicorn release emu pins; :class:`Engine` checks them
against the running library (the general registers must be where the offsets say) and
stays unavailable otherwise, in which case guest exceptions remain fatal.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path

import unicorn
from unicorn import (
    UC_HOOK_INSN,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_HOOK_TLB_FILL,
    Uc,
    UcError,
)
from unicorn.unicorn_py3 import unicorn as _binding
from unicorn.unicorn_py3.arch.types import uc_hook_h

LIBRARY = Path(__file__).with_name("native") / f"cpu_exceptions.{os.uname().machine}.so"
PINNED_VERSION = "2.1.4"

#: where ``struct uc_struct`` keeps its ``CPUState *cpu`` (include/uc_priv.h)
UC_CPU = 0x1B8
#: CPUState fields (include/hw/core/cpu.h)
CS_INTERRUPT_REQUEST = 0x1C
CS_EXCEPTION_INDEX = 0x81A0
#: CPUX86State (target/i386/cpu.h), from the CPUState
X86_ENV = 0x8A50
X86_EIP = 0x80
X86_HFLAGS = 0xB0
X86_HFLAGS2 = 0xB4
X86_ERROR_CODE = 0x1508
X86_EXCEPTION_IS_INT = 0x150C
X86_EXCEPTION_NEXT_EIP = 0x1510
X86_OLD_EXCEPTION = 0x1578
X86_V_TPR = 0x15B4
X86_VM_VMCB = 0x1580
#: CPUARMState (target/arm/cpu.h), from the CPUState: the xregs and ``exception``
ARM_ENV = 0xA350
ARM_XREGS = 0x40
ARM_EXCEPTION = 0xAF20  # uint32 syndrome, uint32 fsr, uint64 vaddress, uint32 target_el

#: CPUState's ``icount_decr_ptr``: CPUNegativeOffsetState's icount_decr, which follows its
#: CPUTLB (include/exec/cpu-defs.h): c (32 bytes), d[NB_MMU_MODES] (CPUTLBDesc, 696 bytes
#: each), f[NB_MMU_MODES] (CPUTLBDescFast: mask, table; 16-byte aligned)
CS_ICOUNT_DECR_PTR = 0x130
TLB_COMMON_SIZE = 32
TLB_DESC_SIZE = 696
TLB_FAST_SIZE = 16
#: NB_MMU_MODES (target/*/cpu-param.h) and TARGET_PAGE_SIZE
TLB_MODES = {"x86_64": 3, "aarch64": 12}
TARGET_PAGE_SIZE = {"x86_64": 4096, "aarch64": 1024}

#: cpu->interrupt_request bits (include/exec/cpu-all.h, target/*/cpu.h)
CPU_INTERRUPT_HARD = 0x0002
CPU_INTERRUPT_FIQ = 0x0010  # CPU_INTERRUPT_TGT_EXT_1 (arm)
CPU_INTERRUPT_NMI = 0x0200  # CPU_INTERRUPT_TGT_EXT_3 (x86)
CPU_INTERRUPT_VIRQ = 0x0100  # CPU_INTERRUPT_TGT_INT_0 (x86)
#: x86 hflags: an interrupt shadow (after STI or MOV SS) is in force
HF_INHIBIT_IRQ = 1 << 3
#: x86 hflags2: SVM's V_INTR_MASKING (CR8 is then env->v_tpr)
HF2_VINTR = 1 << 3

_MAGIC = (0x6D75_5F65_6E67_696E, 0x5F63_6865_636B_2121)



class _Bridge(ctypes.Structure):
    """``struct emu_cpu_bridge`` of native/cpu_exceptions.c."""

    _fields_ = [("cpu", ctypes.c_void_p), ("do_interrupt", ctypes.c_void_p),
                ("cpu_exit", ctypes.c_void_p), ("read_eflags", ctypes.c_void_p),
                ("write_eflags", ctypes.c_void_p), ("filter", ctypes.c_void_p),
                ("walk", ctypes.c_void_p), ("raise_x86", ctypes.c_void_p),
                ("raise_arm", ctypes.c_void_p), ("fault_vector", ctypes.c_int32),
                ("fault_code", ctypes.c_uint32), ("fault_address", ctypes.c_uint64),
                ("fault_target_el", ctypes.c_uint32), ("delivering", ctypes.c_int32),
                ("reassert", ctypes.c_int32),
                ("delivering_software", ctypes.c_int32), ("kick", ctypes.c_int32),
                ("insns", ctypes.c_uint64), ("icount_deadline", ctypes.c_uint64),
                ("stop_flag", ctypes.c_void_p),
                ("io_bitmap_allows", ctypes.c_void_p), ("in_handler", ctypes.c_void_p),
                ("in_user_data", ctypes.c_void_p),
                ("syscall_pc", ctypes.c_uint64),
                ("tlb_d", ctypes.c_void_p), ("tlb_f", ctypes.c_void_p),
                ("tlb_modes", ctypes.c_int32),
                ("walk_page_size", ctypes.c_uint64), ("target_page_size", ctypes.c_uint64),
                ("flush_page", ctypes.c_void_p), ("blocks", ctypes.c_uint64 * 1024),
                ("walker", ctypes.c_void_p), ("flush_all", ctypes.c_void_p)]


class TlbEntry(ctypes.Structure):
    """Unicorn's ``uc_tlb_entry``."""

    _fields_ = [("paddr", ctypes.c_uint64), ("perms", ctypes.c_int)]


_FILTER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint32)
_IO_ALLOWS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint32, ctypes.c_int)
#: the walk: (vaddr, Unicorn access type, entry) -> 1 mapped, 0 guest fault, -1 fatal
Walk = Callable[[int, int, "ctypes._Pointer[TlbEntry]"], int]
_WALK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint64, ctypes.c_int, ctypes.POINTER(TlbEntry))


def _i32(addr: int) -> ctypes.c_int32:
    return ctypes.c_int32.from_address(addr)


def _u32(addr: int) -> ctypes.c_uint32:
    return ctypes.c_uint32.from_address(addr)


def _u64(addr: int) -> ctypes.c_uint64:
    return ctypes.c_uint64.from_address(addr)


class Engine:
    """The QEMU CPU inside one Uc: its state, its interrupt request word, and QEMU's
    exception entry hooked in place of Unicorn's "exception ends the run"."""

    def __init__(self, uc: Uc, arch: str) -> None:
        self.uc = uc
        self.arch = arch
        self.available = False
        self.why_unavailable = ""
        self._bridge = _Bridge()
        self._handles: list[uc_hook_h] = []
        self._keep: list[object] = []
        self.cpu = 0
        self.env = 0
        if unicorn.__version__ != PINNED_VERSION:
            self.why_unavailable = (f"exception delivery needs Unicorn {PINNED_VERSION} "
                                    f"(this is {unicorn.__version__})")
            return
        if not LIBRARY.exists():
            self.why_unavailable = f"exception delivery is not built for {os.uname().machine}"
            return
        self._locate()

    # -- finding the CPU ---------------------------------------------------------------------

    def _locate(self) -> None:
        uc = self.uc
        lib = _binding.uclib
        if self.arch == "x86_64":
            from unicorn.x86_const import UC_X86_REG_RAX, UC_X86_REG_RCX

            regs, env_off, xregs = (UC_X86_REG_RAX, UC_X86_REG_RCX), X86_ENV, 0
        else:
            from unicorn.arm64_const import UC_ARM64_REG_X0, UC_ARM64_REG_X1

            regs, env_off, xregs = (UC_ARM64_REG_X0, UC_ARM64_REG_X1), ARM_ENV, ARM_XREGS
        saved = [uc.reg_read(r) for r in regs]
        for reg, value in zip(regs, _MAGIC, strict=True):
            uc.reg_write(reg, value)  # (this also creates Unicorn's CPU if it is not yet)
        cpu = _u64(ctypes.cast(uc._uch, ctypes.c_void_p).value + UC_CPU).value
        found = cpu != 0 and (_u64(cpu + env_off + xregs).value,
                              _u64(cpu + env_off + xregs + 8).value) == _MAGIC
        for reg, value in zip(regs, saved, strict=True):
            uc.reg_write(reg, value)
        if not found:
            self.why_unavailable = "this Unicorn library's CPU layout is not the expected one"
            return
        self.cpu, self.env = cpu, cpu + env_off
        b = self._bridge
        b.cpu = cpu
        if not self._locate_tlb():
            self.why_unavailable = "this Unicorn library's TLB layout is not the expected one"
            return
        suffix = "x86_64" if self.arch == "x86_64" else "aarch64"
        name = "x86_cpu_do_interrupt" if self.arch == "x86_64" else "arm_cpu_do_interrupt"
        b.do_interrupt = ctypes.cast(getattr(lib, f"{name}_{suffix}"), ctypes.c_void_p).value
        b.cpu_exit = ctypes.cast(lib.cpu_exit, ctypes.c_void_p).value
        if self.arch == "x86_64":
            b.read_eflags = ctypes.cast(lib.helper_read_eflags_x86_64, ctypes.c_void_p).value
            b.write_eflags = ctypes.cast(lib.helper_write_eflags_x86_64, ctypes.c_void_p).value
            b.raise_x86 = ctypes.cast(lib.raise_exception_err_ra_x86_64, ctypes.c_void_p).value
        else:
            b.raise_arm = ctypes.cast(lib.raise_exception_aarch64, ctypes.c_void_p).value
            b.flush_page = ctypes.cast(lib.tlb_flush_page_aarch64, ctypes.c_void_p).value
            b.flush_all = ctypes.cast(lib.tlb_flush_aarch64, ctypes.c_void_p).value
        self._native = ctypes.CDLL(str(LIBRARY))
        self.available = True

    def _locate_tlb(self) -> bool:
        """Find the softmmu TLB before the CPU's icount_decr and check it as a fresh CPU
        has it: every mode's fast table a power of two of 64-byte entries, no large page."""
        modes = TLB_MODES["x86_64" if self.arch == "x86_64" else "aarch64"]
        decr = _u64(self.cpu + CS_ICOUNT_DECR_PTR).value
        if decr == 0:
            return False
        fast = decr - modes * TLB_FAST_SIZE
        desc = fast - ((TLB_COMMON_SIZE + modes * TLB_DESC_SIZE + 15) // 16 * 16) \
            + TLB_COMMON_SIZE
        for mode in range(modes):
            mask = _u64(fast + mode * TLB_FAST_SIZE).value
            entries = (mask >> 6) + 1
            if mask & 0x3F or entries & (entries - 1) or \
                    _u64(fast + mode * TLB_FAST_SIZE + 8).value == 0:
                return False
            at = desc + mode * TLB_DESC_SIZE
            if (_u64(at).value, _u64(at + 8).value) != ((1 << 64) - 1, (1 << 64) - 1):
                return False
        b = self._bridge
        b.tlb_d, b.tlb_f, b.tlb_modes = desc, fast, modes
        b.target_page_size = TARGET_PAGE_SIZE["x86_64" if self.arch == "x86_64" else "aarch64"]
        return True

    def forget_data_entries(self, page: int) -> int:
        """Drop the TLB's data entries that map the 4 KiB physical page ``page`` (a
        page number), about to hold translated code (see emu_tlb_forget_data)."""
        return int(self._native.emu_tlb_forget_data(ctypes.byref(self._bridge),
                                                     ctypes.c_uint64(page)))

    def attach_walker(self, walker: int) -> None:
        """The native page walk's state (emu/cpu/native_walk.py): the TLB-fill hook tries
        it before the Python walk."""
        self._bridge.walker = walker

    def walk_state(self, out: ctypes.Array[ctypes.c_uint64]) -> None:
        """The CPU state the native walk reads, into ``out`` (emu_walk_state)."""
        self._native.emu_walk_state(ctypes.byref(self._bridge), out)

    def native_fill(self, vaddr: int, access: int, entry: object) -> bool:
        """The native walk's fill of one miss (emu_native_fill), outside the CPU loop."""
        return bool(self._native.emu_native_fill(ctypes.byref(self._bridge),
                                                 ctypes.c_uint64(vaddr), ctypes.c_int(access),
                                                 ctypes.byref(entry)))  # type: ignore[arg-type]

    @property
    def walk_page_size(self) -> int:
        return self._bridge.walk_page_size

    def set_walk_page_size(self, size: int) -> None:
        """The size of the page the walk of the current TLB miss found (a large page
        makes a later flush of any address in it flush the whole TLB, as in QEMU)."""
        self._bridge.walk_page_size = size

    # -- hooks ---------------------------------------------------------------------------------

    def install(self, filter_: Callable[[int], bool]) -> None:
        """Deliver every guest exception through QEMU's entry code. ``filter_(intno)`` runs
        first and returns True for an exception the machine takes itself."""
        if not self.available:
            raise RuntimeError(self.why_unavailable)
        native = self._native

        def call_filter(intno: int) -> int:
            try:
                return 1 if filter_(intno) else 0
            except Exception:  # never let an exception cross into native code
                import traceback

                traceback.print_exc()
                return 0

        cfilter = _FILTER(call_filter)
        self._keep.append(cfilter)
        self._bridge.filter = ctypes.cast(cfilter, ctypes.c_void_p).value
        if self.arch == "x86_64":
            from unicorn.x86_const import UC_X86_INS_OUT, UC_X86_INS_SYSCALL, UC_X86_INS_SYSENTER

            self._add(UC_HOOK_INTR, native.emu_x86_intr_hook)
            self._add(UC_HOOK_INSN_INVALID, native.emu_x86_invalid_hook)
            self._add(UC_HOOK_INSN, native.emu_x86_syscall_hook, UC_X86_INS_SYSCALL)
            self._add(UC_HOOK_INSN, native.emu_x86_sysenter_hook, UC_X86_INS_SYSENTER)
            self._add(UC_HOOK_INSN, native.emu_x86_out_hook, UC_X86_INS_OUT)
        else:
            from unicorn.arm64_const import UC_ARM64_INS_SYS

            self._add(UC_HOOK_INTR, native.emu_arm_intr_hook)
            self._add(UC_HOOK_INSN, native.emu_arm_sys_hook, UC_ARM64_INS_SYS)

    def check_port_io(self, bitmap_allows: Callable[[int, int], bool], in_handler: object
                      ) -> None:
        """x86: check the I/O permission of IN and OUT as QEMU does (Unicorn does not):
        the OUT check hook is installed with the others; this adds the IN hook, which
        checks and then calls ``in_handler`` (a ctypes function of Unicorn's IN hook type:
        the first IN hook is the only one Unicorn calls). ``bitmap_allows(port, size)`` is
        asked only when CPL > IOPL."""
        def allows(port: int, size: int) -> int:
            try:
                return 1 if bitmap_allows(port, size) else 0
            except Exception:  # never let an exception cross into native code
                return 0

        callback = _IO_ALLOWS(allows)
        self._keep += [callback, in_handler]
        b = self._bridge
        b.io_bitmap_allows = ctypes.cast(callback, ctypes.c_void_p).value
        b.in_handler = ctypes.cast(in_handler, ctypes.c_void_p).value
        from unicorn.x86_const import UC_X86_INS_IN

        self._add(UC_HOOK_INSN, self._native.emu_x86_in_hook, UC_X86_INS_IN)

    def count_instructions(self, stop_flag: int) -> None:
        """-icount: count every instruction the CPU starts (a native code hook, which costs
        a helper call per instruction), and set ``*stop_flag`` (the stop hook's request)
        when the count reaches :attr:`icount_deadline`."""
        from unicorn import UC_HOOK_CODE

        self._bridge.stop_flag = stop_flag
        self._bridge.icount_deadline = (1 << 64) - 1
        self._add(UC_HOOK_CODE, self._native.emu_icount_hook)

    @property
    def instructions(self) -> int:
        """-icount: the instructions the CPU has started."""
        return self._bridge.insns

    @property
    def icount_deadline(self) -> int:
        return self._bridge.icount_deadline

    @icount_deadline.setter
    def icount_deadline(self, value: int) -> None:
        self._bridge.icount_deadline = min(value, (1 << 64) - 1)

    def block_work(self) -> tuple[int, int]:
        """The native function and argument the CPU's block hook must call at every block
        start (x86: the end of an interrupt entry; see emu_bridge_at_block)."""
        fn = ctypes.cast(self._native.emu_bridge_at_block, ctypes.c_void_p).value
        return fn, ctypes.addressof(self._bridge)

    def install_tlb(self, walk: Walk) -> None:
        """Fill the TLB through ``walk`` (Unicorn's virtual TLB mode must be on). A walk
        that returns 0 has set the fault (:meth:`set_fault`), which the native hook raises
        in the guest as QEMU's own page walk would."""
        def call_walk(vaddr: int, kind: int, entry: ctypes._Pointer[TlbEntry]) -> int:
            try:
                return walk(vaddr, kind, entry)
            except Exception:  # never let an exception cross into native code
                import traceback

                traceback.print_exc()
                return -1

        cwalk = _WALK(call_walk)
        self._keep.append(cwalk)
        self._bridge.walk = ctypes.cast(cwalk, ctypes.c_void_p).value
        self._add(UC_HOOK_TLB_FILL, self._native.emu_tlb_fill_hook)

    def set_fault(self, vector: int, code: int, address: int, target_el: int = 1) -> None:
        """The fault the walk found: x86 (vector, error code, CR2 for a #PF); aarch64
        (EXCP_DATA_ABORT / EXCP_PREFETCH_ABORT, syndrome, FAR, target EL)."""
        b = self._bridge
        b.fault_vector, b.fault_code, b.fault_address = vector, code, address
        b.fault_target_el = target_el

    def _add(self, kind: int, fn: object, *extra: int) -> None:
        handle = uc_hook_h()
        args = [ctypes.c_int(x) for x in extra]
        status = _binding.uclib.uc_hook_add(
            self.uc._uch, ctypes.byref(handle), kind, ctypes.cast(fn, ctypes.c_void_p),
            ctypes.cast(ctypes.byref(self._bridge), ctypes.c_void_p),
            ctypes.c_uint64(1), ctypes.c_uint64(0), *args)
        if status:
            raise UcError(status)
        self._handles.append(handle)

    # -- the bridge's state ----------------------------------------------------------------------

    @property
    def delivering(self) -> int | None:
        """The exception whose entry was under way when the run ended, if any."""
        return self._bridge.delivering - 1 if self._bridge.delivering else None

    def set_delivering(self, vector: int) -> None:
        """An interrupt entry starts (the acknowledge of an external interrupt): its
        accesses are the CPU's own until the handler's first block."""
        self._bridge.delivering = vector + 1
        self._bridge.delivering_software = 0

    def reassert_at_next_block(self, mask: int) -> None:
        """Set interrupt request bits when the next block starts (see emu_block_hook)."""
        self._bridge.reassert = mask

    # -- CPUState ----------------------------------------------------------------------------------

    @property
    def exception_index(self) -> int:
        return _i32(self.cpu + CS_EXCEPTION_INDEX).value

    @exception_index.setter
    def exception_index(self, value: int) -> None:
        _i32(self.cpu + CS_EXCEPTION_INDEX).value = value

    @property
    def interrupt_request(self) -> int:
        return _u32(self.cpu + CS_INTERRUPT_REQUEST).value

    def raise_interrupt(self, mask: int) -> None:
        """QEMU's cpu_interrupt: set request bits; a running CPU leaves its chain of
        translated blocks at the start of the next block and takes them if it can (the
        block hook's work, see emu_bridge_at_block: never cpu_exit from a device callback,
        which would make Unicorn execute the accessing instruction again)."""
        cell = _u32(self.cpu + CS_INTERRUPT_REQUEST)
        cell.value |= mask
        self._bridge.kick = 1

    def lower_interrupt(self, mask: int) -> None:
        """QEMU's cpu_reset_interrupt."""
        cell = _u32(self.cpu + CS_INTERRUPT_REQUEST)
        cell.value &= ~mask

    # -- x86 -------------------------------------------------------------------------------------

    def x86_field(self, offset: int) -> ctypes.c_int32:
        return _i32(self.env + offset)

    @property
    def hflags(self) -> int:
        return _u32(self.env + X86_HFLAGS).value

    @property
    def x86_software_interrupt(self) -> tuple[int, int] | None:
        """(RIP, RIP after the instruction) of the INT n / INT3 / INTO being delivered, or
        None for any other exception."""
        if not _i32(self.env + X86_EXCEPTION_IS_INT).value:
            return None
        return _u64(self.env + X86_EIP).value, _u64(self.env + X86_EXCEPTION_NEXT_EIP).value

    def x86_set_rip(self, rip: int) -> None:
        """Write env->eip (RIP) directly, as QEMU's own code does (no TB flush)."""
        _u64(self.env + X86_EIP).value = rip

    @property
    def old_exception(self) -> int:
        """The exception QEMU is delivering, for its #DF / triple-fault promotion."""
        return _i32(self.env + X86_OLD_EXCEPTION).value

    @property
    def x86_cr8(self) -> int:
        """CR8 as the CPU holds it with HF2_VINTR set (env->v_tpr)."""
        return ctypes.c_uint8.from_address(self.env + X86_V_TPR).value

    @x86_cr8.setter
    def x86_cr8(self, value: int) -> None:
        ctypes.c_uint8.from_address(self.env + X86_V_TPR).value = value & 0xF

    def x86_keep_cr8(self) -> None:
        """Make MOV to and from CR8 use env->v_tpr (SVM's virtual-interrupt flag, which
        Unicorn's CPU_INTERRUPT_HARD path, unused by emu, is the only other reader of):
        Unicorn's CR8 is otherwise a constant 0 and its writes are dropped."""
        _u32(self.env + X86_HFLAGS2).value |= HF2_VINTR

    @property
    def vm_vmcb(self) -> int:
        return _u64(self.env + X86_VM_VMCB).value

    @vm_vmcb.setter
    def vm_vmcb(self, value: int) -> None:
        _u64(self.env + X86_VM_VMCB).value = value

    # -- aarch64 ----------------------------------------------------------------------------------

    def arm_pend_exception(self, index: int, syndrome: int, vaddress: int, target_el: int,
                           fsr: int = 0) -> None:
        """Make the next run start by taking exception ``index`` (EXCP_DATA_ABORT, ...)
        with that syndrome and fault address, as arm_deliver_fault leaves the CPU."""
        at = self.cpu + ARM_EXCEPTION
        self.exception_index = index
        _u32(at).value = syndrome
        _u32(at + 4).value = fsr
        _u64(at + 8).value = vaddress
        _u32(at + 16).value = target_el

    @property
    def arm_syndrome(self) -> int:
        """env->exception.syndrome: after a fault restored the CPU state, the template
        the translator recorded for the instruction."""
        return _u32(self.cpu + ARM_EXCEPTION).value
