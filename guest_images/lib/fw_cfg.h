/*
 * fw_cfg.h - a small portable layer over QEMU's fw_cfg device
 * (QEMU docs/specs/fw_cfg.rst, hw/nvram/fw_cfg.c).
 *
 * The register access is per-arch, static inline in lib/<arch>/arch.h
 * (included through guest.h):
 *
 *   fw_cfg_arch_select(key)          write the selector
 *   fw_cfg_arch_read8()              one 8-bit read of the data register
 *   fw_cfg_arch_write8(v)            one 8-bit write of the data register
 *   fw_cfg_arch_dma_start(addr)      write the whole DMA address register
 *   fw_cfg_arch_dma_write_high(h)    write its high 32 bits only
 *   fw_cfg_arch_dma_write_low(l)     write its low 32 bits only (starts DMA)
 *   fw_cfg_arch_dma_signature(out)   read the DMA register: "QEMU CFG"
 *   FW_CFG_ARCH_HAS_PORTS            1 on pc (then also
 *                                    fw_cfg_arch_comb_read8()), 0 on virt
 *
 * Everything here is static inline too, so only images that include this
 * header and use a function contain it.
 */
#ifndef FW_CFG_H
#define FW_CFG_H

#include "guest.h"

/* ---- selector keys ---- */

#define FW_CFG_SIGNATURE        0x0000  /* "QEMU" */
#define FW_CFG_ID               0x0001  /* le32 feature bits */
#define FW_CFG_FILE_DIR         0x0019  /* the file directory */
#define FW_CFG_WRITE_CHANNEL    0x4000  /* ignored by QEMU */
#define FW_CFG_ARCH_LOCAL       0x8000

/* FW_CFG_ID feature bits */
#define FW_CFG_VERSION          0x01    /* traditional interface */
#define FW_CFG_VERSION_DMA      0x02    /* DMA interface */

/* ---- DMA ---- */

#define FW_CFG_DMA_CTL_ERROR    0x01
#define FW_CFG_DMA_CTL_READ     0x02
#define FW_CFG_DMA_CTL_SKIP     0x04
#define FW_CFG_DMA_CTL_SELECT   0x08
#define FW_CFG_DMA_CTL_WRITE    0x10

/* Control word selecting `key` (bits 31..16) with the given operation. */
#define FW_CFG_DMA_SELECT(key, ops) \
    ((((uint32_t)(key)) << 16) | FW_CFG_DMA_CTL_SELECT | (ops))

/* The DMA descriptor: every field big-endian in guest memory. */
struct fw_cfg_dma_access {
    uint32_t control;
    uint32_t length;
    uint64_t address;
};

/* One entry of the file directory (FW_CFG_FILE_DIR: be32 count, then
 * this many entries). */
struct fw_cfg_file {
    uint32_t size;          /* big-endian */
    uint16_t select;        /* big-endian */
    uint16_t reserved;
    char name[56];          /* NUL-terminated */
};

#define FW_CFG_FILE_NAME_MAX 56

/* Both machines are little-endian. */
static inline uint16_t fw_cfg_be16(uint16_t value) { return __builtin_bswap16(value); }
static inline uint32_t fw_cfg_be32(uint32_t value) { return __builtin_bswap32(value); }
static inline uint64_t fw_cfg_be64(uint64_t value) { return __builtin_bswap64(value); }

static inline void fw_cfg_barrier(void)
{
    __asm__ volatile("" : : : "memory");
}

/* ---- traditional interface ---- */

static inline void fw_cfg_select(uint16_t key)
{
    fw_cfg_arch_select(key);
}

/* Read `length` bytes from the current item, one 8-bit read each. */
static inline void fw_cfg_read(void *buffer, uint32_t length)
{
    uint8_t *p = buffer;

    while (length--)
        *p++ = fw_cfg_arch_read8();
}

static inline void fw_cfg_read_key(uint16_t key, void *buffer, uint32_t length)
{
    fw_cfg_select(key);
    fw_cfg_read(buffer, length);
}

/* Look `name` up in the file directory (read traditionally).  Returns
 * 1 and fills `*file` (fields still big-endian) when found, else 0. */
static inline int fw_cfg_find_file(const char *name, struct fw_cfg_file *file)
{
    uint32_t count;

    fw_cfg_select(FW_CFG_FILE_DIR);
    fw_cfg_read(&count, 4);
    count = fw_cfg_be32(count);
    for (uint32_t i = 0; i < count; i++) {
        /* Compared through a volatile pointer, one byte at a time: with
         * a constant `name`, clang otherwise turns this loop into SSE
         * compares on x86_64 despite -mgeneral-regs-only, and SSE is
         * not enabled in the guest (#UD). */
        const volatile char *entry = file->name;
        int k = 0;

        fw_cfg_read(file, sizeof(*file));
        while (k < FW_CFG_FILE_NAME_MAX && name[k] && entry[k] == name[k])
            k++;
        if (k < FW_CFG_FILE_NAME_MAX && name[k] == 0 && entry[k] == 0)
            return 1;
    }
    return 0;
}

/* ---- DMA interface ---- */

/* Hand the descriptor at `descriptor` (physical = virtual) to the
 * device, which runs the transfer during the register write and writes
 * back the control word.  Returns that control word (host order). */
static inline uint32_t fw_cfg_dma_run(struct fw_cfg_dma_access *descriptor)
{
    fw_cfg_barrier();
    fw_cfg_arch_dma_start((uint64_t)(uintptr_t)descriptor);
    fw_cfg_barrier();
    return fw_cfg_be32(((volatile struct fw_cfg_dma_access *)descriptor)->control);
}

/* Fill in `descriptor` (host order arguments) without starting it. */
static inline void fw_cfg_dma_prepare(struct fw_cfg_dma_access *descriptor,
                                      uint32_t control, uint32_t length,
                                      uint64_t address)
{
    /* Volatile stores, one per field: the device reads them, and clang
     * would otherwise merge them into FP/SIMD register stores. */
    volatile struct fw_cfg_dma_access *d = descriptor;

    d->control = fw_cfg_be32(control);
    d->length = fw_cfg_be32(length);
    d->address = fw_cfg_be64(address);
}

/* One DMA transfer; returns the control word written back. */
static inline uint32_t fw_cfg_dma(struct fw_cfg_dma_access *descriptor,
                                  uint32_t control, uint32_t length,
                                  uint64_t address)
{
    fw_cfg_dma_prepare(descriptor, control, length, address);
    return fw_cfg_dma_run(descriptor);
}

#endif
