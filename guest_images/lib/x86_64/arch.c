/*
 * arch.c - x86_64 (`pc` machine) side of the guest API:
 * 16550 UART console, isa-debug-exit, PVH start_info command line and
 * initrd (the first module).
 */
#include "guest.h"

/* Port I/O helpers (inb, outb, outl, ...) are in arch.h. */

/* ---- PVH boot information (see Xen's public/arch-x86/hvm/start_info.h) ---- */

#define HVM_START_MAGIC 0x336ec578

struct hvm_start_info {
    uint32_t magic;             /* HVM_START_MAGIC */
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;     /* NUL-terminated string, or 0 */
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

/* One entry of the module list at modlist_paddr (QEMU and emu pass
 * -initrd as the only module). */
struct hvm_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};

/* The start code maps the first 4 GiB 1:1, and nothing above. */
#define IDENTITY_MAP_END (1ULL << 32)

static const struct hvm_start_info *start_info;

/* Called by start.S in 64-bit mode with ebx from the PVH entry. */
NORETURN void arch_entry(const struct hvm_start_info *info);
NORETURN void arch_entry(const struct hvm_start_info *info)
{
    start_info = info;
    machine_exit(main());
}

const char *cmdline(void)
{
    /* Memory is mapped 1:1, so a physical address is a pointer. */
    if (start_info && start_info->magic == HVM_START_MAGIC &&
        start_info->cmdline_paddr)
        return (const char *)(uintptr_t)start_info->cmdline_paddr;
    return "";
}

int boot_initrd(uint64_t *address, uint64_t *size)
{
    if (!start_info || start_info->magic != HVM_START_MAGIC ||
        start_info->nr_modules == 0 || start_info->modlist_paddr == 0 ||
        start_info->modlist_paddr > IDENTITY_MAP_END - sizeof(struct hvm_modlist_entry))
        return 0;

    const struct hvm_modlist_entry *module =
        (const struct hvm_modlist_entry *)(uintptr_t)start_info->modlist_paddr;

    /* Only a module the identity map covers can be read. */
    if (module->paddr > IDENTITY_MAP_END || module->size > IDENTITY_MAP_END - module->paddr)
        return 0;
    *address = module->paddr;
    *size = module->size;
    return 1;
}

/* ---- console: 16550 UART (COM1) ---- */

#define COM1        0x3f8
#define UART_THR    0           /* transmit holding register (write) */
#define UART_LSR    5           /* line status register */
#define LSR_THRE    0x20        /* transmit holding register empty */

/* The firmware leaves the UART usable, and QEMU's model does not care
 * about the baud rate, so no initialisation is done. */
void console_putc(char c)
{
    while (!(inb(COM1 + UART_LSR) & LSR_THRE))
        ;
    outb(COM1 + UART_THR, (uint8_t)c);
}

/* ---- leaving ---- */

#define DEBUG_EXIT_PORT 0xf4    /* -device isa-debug-exit,iobase=0xf4,iosize=0x04 */

NORETURN void cpu_halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

NORETURN void machine_exit(int value)
{
    /* QEMU exits with status (value << 1) | 1. */
    outl(DEBUG_EXIT_PORT, (uint32_t)value);
    /* Still here: there is no isa-debug-exit device. */
    cpu_halt_forever();
}

NORETURN void cpu_jump(uintptr_t address)
{
    __asm__ volatile("jmp *%0" : : "r"(address));
    __builtin_unreachable();
}

NORETURN void cpu_trap_without_vectors(void)
{
    /* An IDT of limit 0: the #UD from ud2 cannot be delivered, nor can
     * the #GP that follows, nor the double fault: a triple fault,
     * which QEMU turns into a machine reset (or an exit with
     * -no-reboot). */
    static const struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } empty_idt = { 0, 0 };

    __asm__ volatile("lidt %0" : : "m"(empty_idt));
    __asm__ volatile("ud2");
    __builtin_unreachable();
}
