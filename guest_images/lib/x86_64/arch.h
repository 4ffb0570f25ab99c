/* arch.h - constants of the x86_64 `pc` machine used by the images,
 * port I/O helpers, console_poll() (see guest.h) and the machine's
 * fw_cfg register access (see fw_cfg.h).  Everything here is static
 * inline, so images that do not use a function do not contain it. */
#ifndef ARCH_H
#define ARCH_H

#include <stdint.h>

#define ARCH_NAME "x86_64"

/* Inside the PCI hole (0xc0000000..0xfec00000 with <= 3 GiB of RAM):
 * no RAM and, on a default `pc` machine, no device either.  It is
 * below 4 GiB, so the start code's identity map covers it. */
#define ARCH_UNMAPPED_ADDR 0xdead0000UL

/* The 16550 line status register of COM1 (0x3f8 + 5), read with inb. */
static inline uint32_t console_poll(void)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"((uint16_t)0x3fd));
    return value;
}

/* ---- port I/O ---- */

static inline void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t value)
{
    __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t value)
{
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t value;
    __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

/* ---- fw_cfg (QEMU docs/specs/fw_cfg.rst), I/O ports on `pc` ---- */

#define FW_CFG_PORT_SEL     0x510   /* selector: 16-bit write, key in LE */
#define FW_CFG_PORT_DATA    0x511   /* data: 8-bit reads */
#define FW_CFG_PORT_DMA_HI  0x514   /* DMA address, high 32 bits, big-endian */
#define FW_CFG_PORT_DMA_LO  0x518   /* DMA address, low 32 bits, big-endian; starts DMA */

/* The machine has the I/O port interface (and its 8-bit reads of the
 * selector port 0x510, which QEMU answers like the data port). */
#define FW_CFG_ARCH_HAS_PORTS 1

static inline void fw_cfg_arch_select(uint16_t key)
{
    outw(FW_CFG_PORT_SEL, key);
}

static inline uint8_t fw_cfg_arch_read8(void)
{
    return inb(FW_CFG_PORT_DATA);
}

static inline void fw_cfg_arch_write8(uint8_t value)
{
    outb(FW_CFG_PORT_DATA, value);
}

/* An 8-bit read of the selector port 0x510. */
static inline uint8_t fw_cfg_arch_comb_read8(void)
{
    return inb(FW_CFG_PORT_SEL);
}

/* The two halves of the DMA address register, written separately
 * (the low half starts the transfer). */
static inline void fw_cfg_arch_dma_write_high(uint32_t high)
{
    outl(FW_CFG_PORT_DMA_HI, __builtin_bswap32(high));
}

static inline void fw_cfg_arch_dma_write_low(uint32_t low)
{
    outl(FW_CFG_PORT_DMA_LO, __builtin_bswap32(low));
}

/* Start a DMA transfer with the descriptor at physical `address`. */
static inline void fw_cfg_arch_dma_start(uint64_t address)
{
    fw_cfg_arch_dma_write_high((uint32_t)(address >> 32));
    fw_cfg_arch_dma_write_low((uint32_t)address);
}

/* Read the DMA address register: 8 bytes, in address order. */
static inline void fw_cfg_arch_dma_signature(uint8_t out[8])
{
    uint32_t high = inl(FW_CFG_PORT_DMA_HI);
    uint32_t low = inl(FW_CFG_PORT_DMA_LO);

    for (int i = 0; i < 4; i++) {
        out[i] = (uint8_t)(high >> (8 * i));
        out[4 + i] = (uint8_t)(low >> (8 * i));
    }
}

#endif
