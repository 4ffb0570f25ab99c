/*
 * arch.c - virt: fw_cfg MMIO at 0x09020000 (data +0, selector +8 as a
 * big-endian 16-bit register, DMA address +16 as a big-endian 64-bit
 * register; docs/specs/fw_cfg.rst, "Memory-Mapped Register Locations"),
 * console on the PL011 at 0x09000000.
 */
#include "fw.h"

#define FW_CFG_BASE 0x09020000UL
#define PL011_BASE  0x09000000UL
#define PL011_FR    0x18
#define FR_TXFF     (1u << 5)

void arch_fw_cfg_select(uint16_t key)
{
    *(volatile uint16_t *)(FW_CFG_BASE + 8) = __builtin_bswap16(key);
}

uint8_t arch_fw_cfg_read8(void)
{
    return *(volatile uint8_t *)FW_CFG_BASE;
}

void arch_fw_cfg_dma(uint64_t descriptor)
{
    *(volatile uint64_t *)(FW_CFG_BASE + 16) = __builtin_bswap64(descriptor);
}

void arch_putc(char c)
{
    while (*(volatile uint32_t *)(PL011_BASE + PL011_FR) & FR_TXFF)
        ;
    *(volatile uint32_t *)PL011_BASE = (uint8_t)c;
}

NORETURN void arch_halt(void)
{
    __asm__ volatile("msr daifset, #0xf");
    for (;;)
        __asm__ volatile("wfi");
}
