/*
 * fw_cfg.c - the guest side of QEMU's fw_cfg interface
 * (docs/specs/fw_cfg.rst: "Selector Register", "Data Register",
 * "Directory", "DMA interface").
 *
 * Items are selected through the selector register; data is then read
 * with DMA transfers continuing from the current offset (no SELECT bit
 * in the control word), or byte by byte from the data register when the
 * device has no DMA interface.
 */
#include "fw.h"

#define DMA_CTL_ERROR   0x01
#define DMA_CTL_READ    0x02
#define DMA_CTL_SKIP    0x04
#define DMA_CTL_SELECT  0x08
#define DMA_CTL_WRITE   0x10

/* QEMU's FW_CFG_INVALID: as a selector it names no item on any fw_cfg
 * (index 0x3fff is beyond the file slots, or an arch-local slot that
 * nothing fills), so a DMA read after selecting it returns only zeros. */
#define FW_CFG_KEY_NONE 0xffff

/* The DMA descriptor (every field big-endian); it lives on the stack. */
struct dma_access {
    uint32_t control;
    uint32_t length;
    uint64_t address;
} __attribute__((aligned(16)));

/* One directory entry (FW_CFG_FILE_DIR: be32 count, then the entries). */
struct dir_entry {
    uint32_t size;      /* big-endian */
    uint16_t select;    /* big-endian */
    uint16_t reserved;
    char name[56];
};

static void dma_transfer(uint32_t control, void *address, uint32_t len)
{
    struct dma_access access;
    access.control = __builtin_bswap32(control);
    access.length = __builtin_bswap32(len);
    access.address = __builtin_bswap64((uint64_t)(uintptr_t)address);
    arch_fw_cfg_dma((uint64_t)(uintptr_t)&access);
    /* QEMU (and emu) finish the transfer before the register write
     * returns; the spec still asks the guest to wait for control to
     * clear. */
    uint32_t left;
    while ((left = __builtin_bswap32(*(volatile uint32_t *)&access.control)) & ~DMA_CTL_ERROR)
        ;
    if (left & DMA_CTL_ERROR)
        fail("fw_cfg DMA transfer failed");
}

void fw_cfg_init(struct fw_cfg *fw)
{
    char sig[4];
    fw->dma = 0;
    arch_fw_cfg_select(FW_CFG_SIGNATURE);
    for (int i = 0; i < 4; i++)
        sig[i] = (char)arch_fw_cfg_read8();
    if (sig[0] != 'Q' || sig[1] != 'E' || sig[2] != 'M' || sig[3] != 'U')
        fail("no fw_cfg device (signature is not \"QEMU\")");
    fw->dma = (fw_cfg_u32(fw, FW_CFG_ID) & 2) != 0;
}

void fw_cfg_select(struct fw_cfg *fw, uint16_t key)
{
    (void)fw;
    arch_fw_cfg_select(key);
}

/* A transfer is at most 4 GiB - 1; split longer ones (whole pages). */
#define DMA_CHUNK 0x80000000u

void fw_cfg_read(struct fw_cfg *fw, void *dst, uint64_t len)
{
    uint8_t *d = dst;
    if (!fw->dma) {
        while (len--)
            *d++ = arch_fw_cfg_read8();
        return;
    }
    while (len) {
        uint32_t n = len > DMA_CHUNK ? DMA_CHUNK : (uint32_t)len;
        dma_transfer(DMA_CTL_READ, d, n);
        d += n;
        len -= n;
    }
}

void fw_cfg_skip(struct fw_cfg *fw, uint64_t len)
{
    if (!fw->dma) {
        while (len--)
            (void)arch_fw_cfg_read8();
        return;
    }
    while (len) {
        uint32_t n = len > DMA_CHUNK ? DMA_CHUNK : (uint32_t)len;
        dma_transfer(DMA_CTL_SKIP, 0, n);
        len -= n;
    }
}

void fw_cfg_zero(struct fw_cfg *fw, void *dst, uint64_t len)
{
    uint8_t *d = dst;
    if (!fw->dma) {
        memset(dst, 0, len);
        return;
    }
    /* The spec's DMA read of an invalid or empty item (or past an item's
     * end) fills the guest's buffer with zeros; QEMU does it with
     * dma_memory_set (hw/nvram/fw_cfg.c, fw_cfg_dma_transfer), a host
     * memset, far faster than the guest's own stores. */
    while (len) {
        uint32_t n = len > DMA_CHUNK ? DMA_CHUNK : (uint32_t)len;
        dma_transfer((uint32_t)FW_CFG_KEY_NONE << 16 | DMA_CTL_SELECT | DMA_CTL_READ, d, n);
        d += n;
        len -= n;
    }
}

int fw_cfg_write(struct fw_cfg *fw, const void *src, uint32_t len)
{
    if (!fw->dma)
        return 0;
    dma_transfer(DMA_CTL_WRITE, (void *)src, len);
    return 1;
}

uint32_t fw_cfg_u32(struct fw_cfg *fw, uint16_t key)
{
    uint8_t b[4];
    fw_cfg_select(fw, key);
    for (int i = 0; i < 4; i++)
        b[i] = arch_fw_cfg_read8();
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

int fw_cfg_find_file(struct fw_cfg *fw, const char *name, uint16_t *key, uint32_t *size)
{
    uint32_t count;
    struct dir_entry entry;
    fw_cfg_select(fw, FW_CFG_FILE_DIR);
    fw_cfg_read(fw, &count, sizeof(count));
    count = __builtin_bswap32(count);
    while (count--) {
        fw_cfg_read(fw, &entry, sizeof(entry));
        entry.name[sizeof(entry.name) - 1] = 0;
        if (!strcmp(entry.name, name)) {
            *key = __builtin_bswap16(entry.select);
            *size = __builtin_bswap32(entry.size);
            return 1;
        }
    }
    return 0;
}
