"""An encoder for the ACPI Machine Language terms emu's tables use, byte for byte as QEMU 7.2's
hw/acpi/aml-build.c encodes them (ACPI 6.4 section 20, "ACPI Machine Language
Specification"; section 6.4, resource descriptors).

Every function returns the encoded term as ``bytes``; containers (``scope``, ``device``,
``method``, ``field``, ``buffer``, ``resource_template``) take their contents already encoded.
"""

from __future__ import annotations

EXT_OP = 0x5B
ZERO_OP, ONE_OP = 0x00, 0x01
NAME_OP, BYTE_PREFIX, WORD_PREFIX, DWORD_PREFIX, STRING_PREFIX, QWORD_PREFIX = (
    0x08, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E)
SCOPE_OP, BUFFER_OP, METHOD_OP = 0x10, 0x11, 0x14
DUAL_NAME_PREFIX, MULTI_NAME_PREFIX, ROOT_CHAR, PARENT_PREFIX = 0x2E, 0x2F, 0x5C, 0x5E
LOCAL0_OP, ARG0_OP, STORE_OP, RETURN_OP = 0x60, 0x68, 0x70, 0xA4
OP_REGION_OP, FIELD_OP, DEVICE_OP = 0x80, 0x81, 0x82  # after EXT_OP

#: OperationRegion spaces (ACPI 6.4 19.6.100)
SYSTEM_MEMORY, SYSTEM_IO = 0x00, 0x01
#: Field flags: access type, lock rule, update rule (ACPI 6.4 19.6.48)
ANY_ACC, BYTE_ACC, WORD_ACC, DWORD_ACC = 0, 1, 2, 3
NO_LOCK, LOCK = 0, 1
PRESERVE, WRITE_AS_ONES, WRITE_AS_ZEROS = 0, 1, 2

#: resource descriptors (ACPI 6.4 6.4.2)
IO_DESCRIPTOR, IRQ_NO_FLAGS_DESCRIPTOR, END_TAG = 0x47, 0x22, 0x79
DECODE10, DECODE16 = 0, 1


def pkg_length(length: int, incl_self: bool = True) -> bytes:
    """PkgLength (ACPI 6.4 20.2.4) for ``length`` bytes of contents, counting its own bytes
    when ``incl_self`` (aml-build.c build_prepend_package_length)."""
    if length + 1 < 1 << 6:
        nbytes = 1
    elif length + 2 < 1 << 12:
        nbytes = 2
    elif length + 3 < 1 << 20:
        nbytes = 3
    else:
        nbytes = 4
    if incl_self:
        length += nbytes
    if nbytes == 1:
        return bytes([length])
    lead = ((nbytes - 1) << 6) | (length & 0xF)
    rest = length >> 4
    return bytes([lead]) + rest.to_bytes(nbytes - 1, "little")


def _name_seg(seg: str) -> bytes:
    if not 1 <= len(seg) <= 4 or not seg.replace("_", "A").isalnum() or seg[0].isdigit():
        raise ValueError(f"bad AML name segment {seg!r}")
    return seg.upper().ljust(4, "_").encode()


def name_string(path: str) -> bytes:
    """A NameString (ACPI 6.4 20.2.2): ``\\`` and ``^`` prefixes, then one, two (DualNamePath)
    or more (MultiNamePath) segments; ``\\`` alone is the root."""
    prefix = b""
    while path.startswith(("\\", "^")):
        prefix += bytes([ROOT_CHAR if path[0] == "\\" else PARENT_PREFIX])
        path = path[1:]
    segs = [s for s in path.split(".") if s] if path else []
    body = b"".join(_name_seg(s) for s in segs)
    if not segs:
        return prefix + b"\x00"  # NullName
    if len(segs) == 1:
        return prefix + body
    if len(segs) == 2:
        return prefix + bytes([DUAL_NAME_PREFIX]) + body
    return prefix + bytes([MULTI_NAME_PREFIX, len(segs)]) + body


def integer(value: int) -> bytes:
    """An Integer: ZeroOp, OneOp, or the smallest prefixed form (aml-build.c build_append_int)."""
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"AML integer out of range: {value}")
    if value == 0:
        return bytes([ZERO_OP])
    if value == 1:
        return bytes([ONE_OP])
    for prefix, size in ((BYTE_PREFIX, 1), (WORD_PREFIX, 2), (DWORD_PREFIX, 4)):
        if value < 1 << (8 * size):
            return bytes([prefix]) + value.to_bytes(size, "little")
    return bytes([QWORD_PREFIX]) + value.to_bytes(8, "little")


def string(text: str) -> bytes:
    """A String: ASCII characters and their NUL."""
    return bytes([STRING_PREFIX]) + text.encode("ascii") + b"\x00"


def eisaid(pnp_id: str) -> bytes:
    """A compressed EISA ID such as ``PNP0501`` (ACPI 6.4 19.6.35 EISAID): three letters of
    five bits and four hex digits, in a DWord stored big-endian (aml-build.c aml_eisaid)."""
    if len(pnp_id) != 7 or not pnp_id[:3].isalpha() or not pnp_id[:3].isupper():
        raise ValueError(f"bad EISA ID {pnp_id!r}")
    value = ((ord(pnp_id[0]) - 0x40) << 26 | (ord(pnp_id[1]) - 0x40) << 21
             | (ord(pnp_id[2]) - 0x40) << 16 | int(pnp_id[3:], 16))
    return bytes([DWORD_PREFIX]) + value.to_bytes(4, "big")


def local(n: int) -> bytes:
    """Local0..Local7."""
    return bytes([LOCAL0_OP + n])


def arg(n: int) -> bytes:
    """Arg0..Arg6."""
    return bytes([ARG0_OP + n])


def name(path: str) -> bytes:
    """A reference to a named object."""
    return name_string(path)


def name_decl(path: str, value: bytes) -> bytes:
    """Name (path, value)."""
    return bytes([NAME_OP]) + name_string(path) + value


def _package(op: bytes, body: bytes) -> bytes:
    return op + pkg_length(len(body)) + body


def scope(path: str, *terms: bytes) -> bytes:
    """Scope (path) { terms }."""
    return _package(bytes([SCOPE_OP]), name_string(path) + b"".join(terms))


def device(path: str, *terms: bytes) -> bytes:
    """Device (path) { terms }."""
    return _package(bytes([EXT_OP, DEVICE_OP]), name_string(path) + b"".join(terms))


def method(path: str, nargs: int, *terms: bytes, serialized: bool = False) -> bytes:
    """Method (path, nargs, NotSerialized/Serialized) { terms }."""
    flags = (nargs & 7) | (int(serialized) << 3)
    return _package(bytes([METHOD_OP]), name_string(path) + bytes([flags]) + b"".join(terms))


def store(src: bytes, dst: bytes) -> bytes:
    """Store (src, dst), which ASL 2.0 writes ``dst = src``."""
    return bytes([STORE_OP]) + src + dst


def return_(value: bytes) -> bytes:
    """Return (value)."""
    return bytes([RETURN_OP]) + value


def operation_region(path: str, space: int, offset: int, length: int) -> bytes:
    """OperationRegion (path, space, offset, length)."""
    return (bytes([EXT_OP, OP_REGION_OP]) + name_string(path) + bytes([space]) + integer(offset)
            + integer(length))


def named_field(seg: str, bits: int) -> bytes:
    """A field unit of ``bits`` bits in a Field's list."""
    return _name_seg(seg) + pkg_length(bits, incl_self=False)


def field(region: str, access: int, lock: int, update: int, *units: bytes) -> bytes:
    """Field (region, access, lock, update) { units }."""
    flags = access | (lock << 4) | (update << 5)
    return _package(bytes([EXT_OP, FIELD_OP]), name_string(region) + bytes([flags])
                    + b"".join(units))


def buffer(data: bytes) -> bytes:
    """Buffer (size) { data }."""
    return _package(bytes([BUFFER_OP]), integer(len(data)) + data)


def resource_template(*descriptors: bytes) -> bytes:
    """ResourceTemplate () { descriptors }: a Buffer ending in an End Tag whose checksum is
    0, as QEMU writes it (ACPI 6.4 6.4.2.9: 0 means the sum is not checked)."""
    return buffer(b"".join(descriptors) + bytes([END_TAG, 0]))


def io(decode: int, min_base: int, max_base: int, align: int, length: int) -> bytes:
    """IO (Decode10/16, min, max, alignment, length): the I/O port descriptor (6.4.2.5)."""
    return (bytes([IO_DESCRIPTOR, decode]) + min_base.to_bytes(2, "little")
            + max_base.to_bytes(2, "little") + bytes([align, length]))


def irq_no_flags(*irqs: int) -> bytes:
    """IRQNoFlags () { irqs }: the 2-byte IRQ descriptor (6.4.2.1), edge, active high."""
    mask = 0
    for irq in irqs:
        if not 0 <= irq < 16:
            raise ValueError(f"ISA IRQ out of range: {irq}")
        mask |= 1 << irq
    return bytes([IRQ_NO_FLAGS_DESCRIPTOR]) + mask.to_bytes(2, "little")


# -- the terms of the PCI host bridge's nodes (hw/i386/acpi-build.c build_piix4_pci0_int,
#    build_dsdt's PCI0._CRS; aml-build.c encodes each as below) --------------------------------

IF_OP, ELSE_OP, WHILE_OP = 0xA0, 0xA1, 0xA2
PACKAGE_OP, INCREMENT_OP, INDEX_OP = 0x12, 0x75, 0x88
ADD_OP, SHIFT_LEFT_OP, SHIFT_RIGHT_OP, AND_OP, OR_OP = 0x72, 0x79, 0x7A, 0x7B, 0x7D
LOR_OP, LEQUAL_OP, LGREATER_OP, LLESS_OP = 0x91, 0x93, 0x94, 0x95
MEMORY32_FIXED_DESCRIPTOR = 0x86
READ_ONLY = 0
CREATE_DWORD_FIELD_OP = 0x8A
NULL_NAME = b"\x00"
#: OperationRegion space PCI_Config
PCI_CONFIG = 0x02
EXTENDED_IRQ_DESCRIPTOR = 0x89
WORD_AS_DESCRIPTOR, DWORD_AS_DESCRIPTOR, QWORD_AS_DESCRIPTOR = 0x88, 0x87, 0x8A
#: address space resource types and flags (aml-build.h)
MEMORY_RANGE, IO_RANGE, BUS_NUMBER_RANGE = 0, 1, 2
MIN_FIXED, MAX_FIXED, POS_DECODE = 1 << 2, 1 << 3, 0
ENTIRE_RANGE = 3
READ_WRITE, NON_CACHEABLE, CACHEABLE = 1, 0, 1
CONSUMER, LEVEL, ACTIVE_HIGH, SHARED = 1, 0, 0, 1


def _op2(op: int, a: bytes, b: bytes, dst: bytes | None = None) -> bytes:
    """build_opcode_2arg_dst: Op Operand Operand Target (NullName without a target)."""
    return bytes([op]) + a + b + (NULL_NAME if dst is None else dst)


def and_(a: bytes, b: bytes, dst: bytes | None = None) -> bytes:
    return _op2(AND_OP, a, b, dst)


def or_(a: bytes, b: bytes, dst: bytes | None = None) -> bytes:
    return _op2(OR_OP, a, b, dst)


def add(a: bytes, b: bytes, dst: bytes | None = None) -> bytes:
    return _op2(ADD_OP, a, b, dst)


def shiftleft(a: bytes, count: bytes) -> bytes:
    return _op2(SHIFT_LEFT_OP, a, count)


def shiftright(a: bytes, count: bytes, dst: bytes | None = None) -> bytes:
    return _op2(SHIFT_RIGHT_OP, a, count, dst)


def index(obj: bytes, idx: bytes) -> bytes:
    """Index (obj, idx), without a target."""
    return _op2(INDEX_OP, obj, idx)


def lless(a: bytes, b: bytes) -> bytes:
    return bytes([LLESS_OP]) + a + b


def equal(a: bytes, b: bytes) -> bytes:
    """LEqual (a, b)."""
    return bytes([LEQUAL_OP]) + a + b


def lor(a: bytes, b: bytes) -> bytes:
    """LOr (a, b)."""
    return bytes([LOR_OP]) + a + b


def lgreater(a: bytes, b: bytes) -> bytes:
    """LGreater (a, b)."""
    return bytes([LGREATER_OP]) + a + b


def memory32_fixed(base: int, length: int, read_write: int) -> bytes:
    """Memory32Fixed (ReadOnly/ReadWrite, base, length): the 32-bit fixed memory range
    descriptor (ACPI 6.4 6.4.3.4; aml_memory32_fixed)."""
    return (bytes([MEMORY32_FIXED_DESCRIPTOR, 9, 0, read_write]) + base.to_bytes(4, "little")
            + length.to_bytes(4, "little"))


def increment(target: bytes) -> bytes:
    return bytes([INCREMENT_OP]) + target


def if_(predicate: bytes, *terms: bytes) -> bytes:
    return _package(bytes([IF_OP]), predicate + b"".join(terms))


def else_(*terms: bytes) -> bytes:
    return _package(bytes([ELSE_OP]), b"".join(terms))


def while_(predicate: bytes, *terms: bytes) -> bytes:
    return _package(bytes([WHILE_OP]), predicate + b"".join(terms))


def package(count: int, *elements: bytes) -> bytes:
    """Package (count) { elements } (aml_package: the element count as one byte)."""
    return _package(bytes([PACKAGE_OP]), bytes([count]) + b"".join(elements))


def call(path: str, *args: bytes) -> bytes:
    """A method invocation: its name and arguments (aml_call0..aml_call5)."""
    return name_string(path) + b"".join(args)


def create_dword_field(source: bytes, idx: bytes, field_name: str) -> bytes:
    return bytes([CREATE_DWORD_FIELD_OP]) + source + idx + name_string(field_name)


def interrupt(*irqs: int, flags: int = CONSUMER | (LEVEL << 1) | (ACTIVE_HIGH << 2)
              | (SHARED << 3)) -> bytes:
    """Interrupt (ResourceConsumer, Level, ActiveHigh, Shared) { irqs }: the extended
    interrupt descriptor (ACPI 6.4 6.4.3.6; aml_interrupt)."""
    length = 2 + 4 * len(irqs)
    return (bytes([EXTENDED_IRQ_DESCRIPTOR]) + length.to_bytes(2, "little")
            + bytes([flags, len(irqs)]) + b"".join(i.to_bytes(4, "little") for i in irqs))


def _address_space(tag: int, length: int, width: int, rtype: int, flags: int,
                   type_flags: int, values: tuple[int, ...]) -> bytes:
    return (bytes([tag, length, 0, rtype, flags, type_flags])
            + b"".join(v.to_bytes(width, "little") for v in values))


def word_bus_number(flags: int, gran: int, lo: int, hi: int, trans: int, length: int) -> bytes:
    """WordBusNumber (ACPI 6.4 6.4.3.5.3; aml_word_bus_number)."""
    return _address_space(WORD_AS_DESCRIPTOR, 0x0D, 2, BUS_NUMBER_RANGE, flags, 0,
                          (gran, lo, hi, trans, length))


def word_io(flags: int, isa_ranges: int, gran: int, lo: int, hi: int, trans: int,
            length: int) -> bytes:
    """WordIO (aml_word_io)."""
    return _address_space(WORD_AS_DESCRIPTOR, 0x0D, 2, IO_RANGE, flags, isa_ranges,
                          (gran, lo, hi, trans, length))


def dword_memory(flags: int, cacheable: int, rw: int, gran: int, lo: int, hi: int,
                 trans: int, length: int) -> bytes:
    """DWordMemory (ACPI 6.4 6.4.3.5.2; aml_dword_memory)."""
    return _address_space(DWORD_AS_DESCRIPTOR, 23, 4, MEMORY_RANGE, flags,
                          rw | (cacheable << 1), (gran, lo, hi, trans, length))


def qword_memory(flags: int, cacheable: int, rw: int, gran: int, lo: int, hi: int,
                 trans: int, length: int) -> bytes:
    """QWordMemory (ACPI 6.4 6.4.3.5.1; aml_qword_memory)."""
    return _address_space(QWORD_AS_DESCRIPTOR, 0x2B, 8, MEMORY_RANGE, flags,
                          rw | (cacheable << 1), (gran, lo, hi, trans, length))
