/* arch.h - constants of the aarch64 `virt` machine used by the images,
 * console_poll() (see guest.h) and the machine's fw_cfg register access
 * (see fw_cfg.h).  Everything here is static inline, so images that do
 * not use a function do not contain it. */
#ifndef ARCH_H
#define ARCH_H

#include <stdint.h>

#define ARCH_NAME "aarch64"

/* In QEMU's virt memory map (QEMU 7.2, checked with "info mtree"), RAM
 * starts at 0x40000000 and nothing else is mapped until the high PCIe
 * ECAM window at 0x4010000000.  With -m 128M, RAM ends at 0x48000000,
 * so this address has no RAM and no device behind it.  (It would be
 * RAM with -m 1G or more.) */
#define ARCH_UNMAPPED_ADDR 0x7fff0000UL

/* The PL011 flag register (0x09000000 + 0x18), one 32-bit read. */
static inline uint32_t console_poll(void)
{
    return *(volatile uint32_t *)0x09000018UL;
}

/* ---- fw_cfg (QEMU docs/specs/fw_cfg.rst), MMIO on `virt` ---- */

/* All registers are big-endian; the MMU is off, so these are Device
 * accesses of exactly the size given. */
#define FW_CFG_BASE      0x09020000UL
#define FW_CFG_DATA      (FW_CFG_BASE + 0)     /* data: 1/2/4/8-byte reads */
#define FW_CFG_SEL       (FW_CFG_BASE + 8)     /* selector: 16-bit write, BE */
#define FW_CFG_DMA       (FW_CFG_BASE + 16)    /* DMA address: 64-bit BE */

/* No I/O ports: no 8-bit reads of a selector port. */
#define FW_CFG_ARCH_HAS_PORTS 0

static inline void fw_cfg_arch_select(uint16_t key)
{
    *(volatile uint16_t *)FW_CFG_SEL = __builtin_bswap16(key);
}

static inline uint8_t fw_cfg_arch_read8(void)
{
    return *(volatile uint8_t *)FW_CFG_DATA;
}

static inline void fw_cfg_arch_write8(uint8_t value)
{
    *(volatile uint8_t *)FW_CFG_DATA = value;
}

/* The two halves of the DMA address register as two 4-byte stores
 * (high at +16, low at +20; the low half starts the transfer). */
static inline void fw_cfg_arch_dma_write_high(uint32_t high)
{
    *(volatile uint32_t *)FW_CFG_DMA = __builtin_bswap32(high);
}

static inline void fw_cfg_arch_dma_write_low(uint32_t low)
{
    *(volatile uint32_t *)(FW_CFG_DMA + 4) = __builtin_bswap32(low);
}

/* Start a DMA transfer with the descriptor at physical `address`: one
 * 8-byte store. */
static inline void fw_cfg_arch_dma_start(uint64_t address)
{
    *(volatile uint64_t *)FW_CFG_DMA = __builtin_bswap64(address);
}

/* Read the DMA address register (one 8-byte load): 8 bytes, in address
 * order. */
static inline void fw_cfg_arch_dma_signature(uint8_t out[8])
{
    uint64_t value = *(volatile uint64_t *)FW_CFG_DMA;

    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(value >> (8 * i));
}

#endif
