/*
 * arch.c - aarch64 (`virt` machine) side of the guest API:
 * PL011 UART console, PSCI power-off.
 */
#include "guest.h"

/* ---- entry ---- */

/* Called by start.S with x0 = 0: no boot information is passed. */
NORETURN void arch_entry(uint64_t boot_info);
NORETURN void arch_entry(uint64_t boot_info)
{
    (void)boot_info;
    machine_exit(main());
}

const char *cmdline(void)
{
    /* A bare ELF on virt gets no command line. */
    return "";
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
