/*
 * arch.c - pc: fw_cfg at I/O ports 0x510 (selector, 16-bit), 0x511
 * (data) and 0x514 (DMA address, big-endian, high half at 0x514, low
 * half at 0x518: writing the low half starts the transfer), console on
 * the COM1 16550 at 0x3f8 (docs/specs/fw_cfg.rst, "x86 Register Locations").
 */
#include "fw.h"

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

void arch_fw_cfg_select(uint16_t key)
{
    outw(0x510, key);
}

uint8_t arch_fw_cfg_read8(void)
{
    return inb(0x511);
}

void arch_fw_cfg_dma(uint64_t descriptor)
{
    outl(0x514, __builtin_bswap32((uint32_t)(descriptor >> 32)));
    outl(0x518, __builtin_bswap32((uint32_t)descriptor));
}

#define COM1        0x3f8
#define LSR_THRE    0x20    /* transmit holding register empty */

void arch_putc(char c)
{
    /* No UART: the port reads 0xff, which has THRE set. */
    while (!(inb(COM1 + 5) & LSR_THRE))
        ;
    outb(COM1, (uint8_t)c);
}

NORETURN void arch_halt(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}
