"""Writing a dump of a :class:`~emu.machine.Machine`: CPU notes, plugin notes, memory."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from emu.dump import DumpNotes, DumpResult, note_kinds
from emu.dump.elf import (
    EM_AARCH64,
    EM_X86_64,
    DumpError,
    DumpTarget,
    Load,
    MemoryRange,
    Progress,
    clip_ranges,
    write_elf_core,
)
from emu.dump.kdump import (
    KDUMP_FORMATS,
    KdumpInfo,
    kdump_format,
    vmcoreinfo_page_size,
    vmcoreinfo_value,
    write_kdump,
)
from emu.dump.mapping import Arm64Paging, MappingList, X86Paging, arm64_mappings, x86_mappings
from emu.dump.notes import (
    aarch64_prfpreg,
    aarch64_prstatus,
    aarch64_sve,
    i386_prstatus,
    x86_64_prstatus,
    x86_64_qemu_cpu_state,
)

if TYPE_CHECKING:
    from emu.machine import Machine

#: the formats emu writes, in the order of QEMU's DumpGuestMemoryFormat (8.2's kdump-raw-*
#: names included), then emu's zstd ones
FORMATS = ("elf", "kdump-zlib", "kdump-lzo", "kdump-snappy", "kdump-raw-zlib", "kdump-raw-lzo",
           "kdump-raw-snappy", "kdump-zstd", "kdump-raw-zstd")
assert set(FORMATS) == {"elf", *KDUMP_FORMATS}
EM_386 = 3


def available_formats() -> list[str]:
    """The formats emu can write here (query-dump-guest-memory-capability): ELF, and each
    kdump format whose compression library can be imported."""
    return [fmt for fmt in FORMATS if (kd := kdump_format(fmt)) is None or kd[0].available()]


def check_format(fmt: str, paging: bool, filtered: bool) -> None:
    """QEMU's checks of a format before a dump (dump/dump.c qmp_dump_guest_memory(), in its
    order): a kdump format takes the whole memory, unpaged; a compression whose library is
    missing is not available."""
    kd = kdump_format(fmt)
    if kd is None:
        if fmt not in FORMATS:
            raise DumpError(f"unsupported dump format '{fmt}' (supported: "
                            f"{', '.join(available_formats())})")
        return
    if paging or filtered:
        raise DumpError("kdump-compressed format doesn't support paging or filter")
    if not kd[0].available():
        raise DumpError(f"{fmt} is not available now")


def dump_ranges(machine: Machine, begin: int | None, length: int | None) -> list[MemoryRange]:
    """The memory a dump of ``[begin, begin + length)`` holds; QEMU's dump_init() checks
    and messages."""
    if (begin is None) != (length is None):
        raise DumpError("begin and length must be given together")
    if begin is not None and begin < 0:
        raise DumpError("Invalid parameter 'begin'")
    if length == 0:
        raise DumpError("Invalid parameter 'length'")
    ranges = clip_ranges(((b.base, b.view()) for b in machine.dump_blocks), begin, length)
    if not ranges:
        raise DumpError("dump: no guest memory to dump")
    return ranges


#: where struct uts_namespace keeps its struct new_utsname: first (Linux 6.1), or after a
#: 4-byte struct kref (older kernels)
UTS_NAME_OFFSETS = (0, 4)
UTS_SIZE = 6 * 65


def guest_utsname(machine: Machine, notes: bytes) -> bytes | None:
    """The kernel's struct new_utsname, for a kdump header (makedumpfile writes the
    kernel's): read at VMCOREINFO's SYMBOL(init_uts_ns) through the CPU's current
    translation, and taken only when it looks like one: sysname "Linux", release equal to
    OSRELEASE, every field NUL-terminated. None otherwise."""
    symbol = vmcoreinfo_value(notes, "SYMBOL(init_uts_ns)")
    release = vmcoreinfo_value(notes, "OSRELEASE")
    if symbol is None or not release:
        return None
    try:
        base = int(symbol, 16)
    except ValueError:
        return None
    raw = b""
    want = max(UTS_NAME_OFFSETS) + UTS_SIZE
    while len(raw) < want:  # page by page: read_virt stays within one page
        vaddr = (base + len(raw)) & ((1 << 64) - 1)
        piece = machine.cpu.read_virt(vaddr, min(want - len(raw), 4096 - vaddr % 4096))
        if not piece:
            return None
        raw += piece
    for offset in UTS_NAME_OFFSETS:
        uts = raw[offset : offset + UTS_SIZE]
        fields = [uts[i * 65 : (i + 1) * 65] for i in range(6)]
        if fields[0].startswith(b"Linux\0") and all(f[-1] == 0 for f in fields) and \
                fields[2].split(b"\0")[0] == release.encode():
            return uts
    return None


def guest_mappings(machine: Machine, begin: int | None, length: int | None) -> list[Load]:
    """The PT_LOADs of a paging dump (QEMU's qemu_get_guest_memory_mapping, then
    memory_mapping_filter): the guest's virtual mappings of RAM from its page tables, or
    identity mappings of the RAM blocks when paging is off (emu.dump.mapping)."""
    blocks = [(b.base, b.base + len(b.view())) for b in machine.dump_blocks]
    starts = [lo for lo, _ in blocks]

    def is_ram(paddr: int) -> bool:
        i = bisect.bisect_right(starts, paddr) - 1
        return i >= 0 and paddr < blocks[i][1]

    def read(paddr: int, size: int) -> bytes | None:
        return machine.cpu.phys_read(paddr, size)

    out = MappingList()
    cpu = machine.cpu
    if machine.arch == "x86_64":
        state = cpu.dump_state()
        cr = state["cr"]
        regs = X86Paging(cr[0], cr[3], cr[4], bool(state["long_mode"]))  # type: ignore[index]
        paged = x86_mappings(regs, read, is_ram, out)
    else:
        from unicorn import arm64_const as A

        arm = Arm64Paging(cpu.sysreg(3, 0, 1, 0, 0), cpu.sysreg(3, 0, 2, 0, 2),  # type: ignore[attr-defined]
                          cpu.uc.reg_read(A.UC_ARM64_REG_TTBR0_EL1),
                          cpu.uc.reg_read(A.UC_ARM64_REG_TTBR1_EL1))
        paged = arm64_mappings(arm, read, is_ram, out)
    if not paged:
        for lo, hi in blocks:
            out.create(lo, lo, hi - lo)
    if begin is not None and length is not None:
        out.filter(begin, length)
    return [Load(m.phys_addr, m.virt_addr, m.length) for m in out.mappings]


def dump_machine(machine: Machine, path: str | DumpTarget, *, paging: bool = False,
                 begin: int | None = None, length: int | None = None, fmt: str = "elf",
                 progress: Progress | None = None) -> DumpResult:
    """Dump ``machine``'s memory to ``path`` as QEMU's ``dump-guest-memory`` does.

    Must run with the CPU stopped (on the machine's thread, or before/after ``run``).
    ``path`` may be a target already opened with :func:`emu.dump.target.open_target`; it is
    closed (or removed, on failure) in every case.
    """
    try:
        return _dump(machine, path, paging, begin, length, fmt, progress)
    except BaseException:
        if isinstance(path, DumpTarget):
            path.abort()
        raise


def _dump(machine: Machine, path: str | DumpTarget, paging: bool, begin: int | None,
          length: int | None, fmt: str, progress: Progress | None) -> DumpResult:
    check_format(fmt, paging, begin is not None or length is not None)
    ranges = dump_ranges(machine, begin, length)
    loads = guest_mappings(machine, begin, length) if paging else None
    state = machine.cpu.dump_state()
    if machine.arch == "x86_64":
        # As QEMU's cpu_get_dump_info: EM_386 and i386 registers unless the CPU is in long
        # mode (the pc's memory reaches 4 GiB, so the file stays ELFCLASS64 either way).
        prstatus = x86_64_prstatus if state["long_mode"] else i386_prstatus
        notes = prstatus(state, 0) + x86_64_qemu_cpu_state(state)
        elf_machine = EM_X86_64 if state["long_mode"] else EM_386
    else:
        notes = aarch64_prstatus(state, 0) + aarch64_prfpreg(state)
        if state["sve"]:
            notes += aarch64_sve(state)
        elf_machine = EM_AARCH64
    warnings: list[str] = []
    phys_base = None
    for extra in machine.plugins.hook.emu_dump_notes(machine=machine):
        if not isinstance(extra, DumpNotes):
            raise DumpError("a plugin's emu_dump_notes returned something other than DumpNotes")
        notes += extra.notes
        warnings += extra.warnings
        if extra.phys_base is not None:
            phys_base = extra.phys_base
    kd = kdump_format(fmt)
    if kd is None:
        size = write_elf_core(path, elf_machine, notes, ranges, progress, loads)
    else:
        if phys_base is None:
            # as QEMU's cpu_get_dump_info: 0 on x86, the lowest RAM address on arm
            phys_base = 0 if machine.arch == "x86_64" else min(r.paddr for r in ranges)
        info = KdumpInfo(machine.arch, vmcoreinfo_value(notes, "OSRELEASE") or "", phys_base,
                         vmcoreinfo_page_size(notes), uts=guest_utsname(machine, notes))
        size = write_kdump(path, kd[0], kd[1], info, notes, ranges, progress)
    return DumpResult(path if isinstance(path, str) else path.path, size, phys_base, warnings,
                      note_kinds(notes))
