/*
 * arch.c - aarch64 (`virt` machine) side of the guest API:
 * PL011 UART console, PSCI power-off, command line and initrd from the
 * device tree.
 */
#include "guest.h"

/* ---- entry ---- */

/* x0 at entry: the device tree's address, or 0 (see start.S). */
static uint64_t boot_x0;

/* Called by start.S with the x0 the kernel was entered with. */
NORETURN void arch_entry(uint64_t boot_info);
NORETURN void arch_entry(uint64_t boot_info)
{
    boot_x0 = boot_info;
    machine_exit(main());
}

/* ---- boot information: the flattened device tree ----
 *
 * Devicetree specification, "Flattened Devicetree (DTB) Format": a
 * header of big-endian 32-bit words, then a structure block of tokens
 * (each 4-byte aligned) and a strings block holding property names.
 * The MMU is off, so all memory is Device memory, where an unaligned
 * access faults: the blob is read with aligned, volatile 32-bit loads
 * (volatile, so that clang does not merge two into one 64-bit load)
 * and byte loads, and never past its totalsize. */

#define FDT_MAGIC       0xd00dfeedu
#define FDT_HEADER_SIZE 40u             /* version 17: ten 32-bit words */
#define FDT_BEGIN_NODE  1u
#define FDT_END_NODE    2u
#define FDT_PROP        3u
#define FDT_NOP         4u
#define FDT_END         9u

/* RAM starts here on virt.  QEMU's -kernel of a bare ELF puts its
 * device tree at this address when it fits below the image (and leaves
 * x0 = 0). */
#define VIRT_RAM_BASE   0x40000000UL

static uint32_t fdt_be32(uintptr_t address)
{
    return __builtin_bswap32(*(const volatile uint32_t *)address);
}

static uint8_t fdt_byte(uintptr_t address)
{
    return *(const volatile uint8_t *)address;
}

/* The address of a device tree with a plausible header, or 0: x0 if it
 * points to one, else the base of RAM if one is there.  Addresses
 * below RAM (flash, devices) are not looked at. */
static uintptr_t fdt_base(void)
{
    const uintptr_t candidates[2] = { (uintptr_t)boot_x0, VIRT_RAM_BASE };

    for (int i = 0; i < 2; i++) {
        uintptr_t base = candidates[i];

        if (base < VIRT_RAM_BASE || (base & 7) != 0 || fdt_be32(base) != FDT_MAGIC)
            continue;
        if (fdt_be32(base + 4) < FDT_HEADER_SIZE)      /* totalsize */
            continue;
        return base;
    }
    return 0;
}

/* Is the NUL-terminated string at blob offset `offset` equal to `want`?
 * Bytes at or past `limit` count as a mismatch. */
static int fdt_string_is(uintptr_t base, uint64_t offset, uint64_t limit, const char *want)
{
    for (;; offset++, want++) {
        if (offset >= limit)
            return 0;
        uint8_t c = fdt_byte(base + offset);
        if (c != (uint8_t)*want)
            return 0;
        if (c == 0)
            return 1;
    }
}

/* Property `name` of the node /chosen (a direct child of the root
 * named "chosen"): returns the address of its value (4-byte aligned)
 * and sets *length, or returns 0 if there is no device tree, no such
 * property, or the blob is malformed before it is found. */
static uintptr_t fdt_chosen_property(const char *name, uint32_t *length)
{
    uintptr_t base = fdt_base();

    if (!base)
        return 0;

    uint64_t total = fdt_be32(base + 4);
    uint64_t off_struct = fdt_be32(base + 8);
    uint64_t off_strings = fdt_be32(base + 12);
    uint64_t pos = off_struct;
    int depth = 0;              /* 1 inside the root, 2 in its children */
    int chosen = 0;             /* the depth-2 node we are in is "chosen" */

    if ((off_struct & 3) != 0 || off_struct >= total || off_strings >= total)
        return 0;
    while (pos + 4 <= total) {
        uint32_t token = fdt_be32(base + pos);

        pos += 4;
        switch (token) {
        case FDT_BEGIN_NODE: {
            uint64_t name_start = pos;

            if (depth == 1)
                chosen = fdt_string_is(base, name_start, total, "chosen");
            while (pos < total && fdt_byte(base + pos) != 0)
                pos++;
            if (pos >= total)
                return 0;                   /* unterminated name */
            pos = (pos + 1 + 3) & ~(uint64_t)3;
            depth++;
            break;
        }
        case FDT_END_NODE:
            if (depth == 0)
                return 0;
            depth--;
            break;
        case FDT_PROP: {
            if (pos + 8 > total)
                return 0;
            uint64_t len = fdt_be32(base + pos);
            uint64_t name_offset = off_strings + fdt_be32(base + pos + 4);

            pos += 8;
            if (pos + len > total)
                return 0;                   /* value past the end */
            if (depth == 2 && chosen && fdt_string_is(base, name_offset, total, name)) {
                *length = (uint32_t)len;
                return base + (uintptr_t)pos;
            }
            pos = (pos + len + 3) & ~(uint64_t)3;
            break;
        }
        case FDT_NOP:
            break;
        default:                            /* FDT_END, or garbage */
            return 0;
        }
    }
    return 0;
}

/* A 1- or 2-cell big-endian number (as Linux's of_read_number). */
static int fdt_read_number(uintptr_t value, uint32_t length, uint64_t *out)
{
    if (length == 4)
        *out = fdt_be32(value);
    else if (length == 8)
        *out = ((uint64_t)fdt_be32(value) << 32) | fdt_be32(value + 4);
    else
        return 0;
    return 1;
}

const char *cmdline(void)
{
    /* /chosen/bootargs: the -append string.  It must end in its NUL
     * inside the property, so that readers of the string stay there. */
    uint32_t length;
    uintptr_t value = fdt_chosen_property("bootargs", &length);

    if (value && length > 0 && fdt_byte(value + length - 1) == 0)
        return (const char *)value;
    return "";
}

int boot_initrd(uint64_t *address, uint64_t *size)
{
    /* /chosen/linux,initrd-start and linux,initrd-end (end exclusive). */
    uint32_t start_length, end_length;
    uintptr_t start_value = fdt_chosen_property("linux,initrd-start", &start_length);
    uintptr_t end_value = fdt_chosen_property("linux,initrd-end", &end_length);
    uint64_t start, end;

    if (!start_value || !end_value ||
        !fdt_read_number(start_value, start_length, &start) ||
        !fdt_read_number(end_value, end_length, &end) || end < start)
        return 0;
    *address = start;
    *size = end - start;
    return 1;
}

/* ---- console: PL011 UART ---- */

#define PL011_BASE  0x09000000UL
#define PL011_DR    0x00        /* data register */
#define PL011_FR    0x18        /* flag register */
#define FR_TXFF     (1u << 5)   /* transmit FIFO full */

static inline uint32_t mmio_read32(uintptr_t address)
{
    return *(volatile uint32_t *)address;
}

static inline void mmio_write32(uintptr_t address, uint32_t value)
{
    *(volatile uint32_t *)address = value;
}

/* QEMU's PL011 transmits without any set-up, so none is done. */
void console_putc(char c)
{
    while (mmio_read32(PL011_BASE + PL011_FR) & FR_TXFF)
        ;
    mmio_write32(PL011_BASE + PL011_DR, (uint8_t)c);
}

/* ---- leaving ---- */

#define PSCI_SYSTEM_OFF 0x84000008

NORETURN void cpu_halt_forever(void)
{
    __asm__ volatile("msr daifset, #0xf");      /* mask D, A, I, F */
    for (;;)
        __asm__ volatile("wfi");
}

NORETURN void machine_exit(int value)
{
    /* No exit status on this machine: just power off.  QEMU's virt
     * machine takes PSCI calls through hvc when EL2/EL3 are absent. */
    register uint64_t x0 __asm__("x0") = PSCI_SYSTEM_OFF;

    (void)value;
    __asm__ volatile("hvc #0" : "+r"(x0) : : "x1", "x2", "x3", "memory");
    /* Still here: PSCI is missing or refused. */
    cpu_halt_forever();
}

NORETURN void cpu_jump(uintptr_t address)
{
    __asm__ volatile("br %0" : : "r"(address));
    __builtin_unreachable();
}

NORETURN void cpu_trap_without_vectors(void)
{
    /* Exception vectors at an address with no memory: the udf exception
     * jumps to VBAR_EL1 + 0x200, whose fetch faults, which jumps there
     * again, for ever. */
    __asm__ volatile("msr vbar_el1, %0\n\t"
                     "isb\n\t"
                     "udf #0"
                     : : "r"(ARCH_UNMAPPED_ADDR));
    __builtin_unreachable();
}
