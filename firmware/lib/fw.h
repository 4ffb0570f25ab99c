/*
 * fw.h - what emu's firmware needs from each machine and gives back.
 *
 * The firmware runs from ROM (pc) or flash (virt) and has no writable
 * data section: its only RAM is the stack, set up by the start code.
 * Each machine provides the fw_cfg register access and a console
 * (pc/arch.c, virt/arch.c); lib/fw_cfg.c implements the fw_cfg
 * protocol (docs/specs/fw_cfg.rst) on top of them.
 */
#ifndef FW_H
#define FW_H

#include <stddef.h>
#include <stdint.h>

#define NORETURN __attribute__((noreturn))

/* ---- provided by the machine (pc/arch.c, virt/arch.c) ---- */

void arch_fw_cfg_select(uint16_t key);      /* write the selector register */
uint8_t arch_fw_cfg_read8(void);            /* one read of the data register */
void arch_fw_cfg_dma(uint64_t descriptor);  /* write the DMA address register */
void arch_putc(char c);                     /* console output */
NORETURN void arch_halt(void);              /* stop for ever */

/* ---- fw_cfg selector keys (docs/specs/fw_cfg.rst, "Selector Register") ---- */

#define FW_CFG_SIGNATURE        0x00
#define FW_CFG_ID               0x01
#define FW_CFG_KERNEL_ADDR      0x07
#define FW_CFG_KERNEL_SIZE      0x08
#define FW_CFG_INITRD_ADDR      0x0a
#define FW_CFG_INITRD_SIZE      0x0b
#define FW_CFG_KERNEL_ENTRY     0x10
#define FW_CFG_KERNEL_DATA      0x11
#define FW_CFG_INITRD_DATA      0x12
#define FW_CFG_CMDLINE_ADDR     0x13
#define FW_CFG_CMDLINE_SIZE     0x14
#define FW_CFG_CMDLINE_DATA     0x15
#define FW_CFG_SETUP_ADDR       0x16
#define FW_CFG_SETUP_SIZE       0x17
#define FW_CFG_SETUP_DATA       0x18
#define FW_CFG_FILE_DIR         0x19

/* ---- lib/fw_cfg.c ---- */

struct fw_cfg {
    int dma;            /* the DMA interface is there (FW_CFG_ID bit 1) */
};

/* Check the "QEMU" signature and look for DMA; stops with a message if
 * there is no fw_cfg device. */
void fw_cfg_init(struct fw_cfg *fw);
/* Select an item: the next read starts at its first byte. */
void fw_cfg_select(struct fw_cfg *fw, uint16_t key);
/* Read `len` bytes of the selected item into `dst` (DMA when available). */
void fw_cfg_read(struct fw_cfg *fw, void *dst, uint64_t len);
/* Skip `len` bytes of the selected item. */
void fw_cfg_skip(struct fw_cfg *fw, uint64_t len);
/* Zero `len` bytes at `dst`: a DMA read of an item that does not exist
 * (the device fills the buffer with zeros), or stores without DMA.
 * Leaves no item selected. */
void fw_cfg_zero(struct fw_cfg *fw, void *dst, uint64_t len);
/* Write `len` bytes at the selected item's current offset (DMA only, as
 * QEMU allows: 0 when there is no DMA interface). */
int fw_cfg_write(struct fw_cfg *fw, const void *src, uint32_t len);
/* A 32-bit little-endian item (0 when the item does not exist). */
uint32_t fw_cfg_u32(struct fw_cfg *fw, uint16_t key);
/* Find a file in the directory: its key and size, or 0 if it is missing. */
int fw_cfg_find_file(struct fw_cfg *fw, const char *name, uint16_t *key, uint32_t *size);

/* ---- lib/util.c ---- */

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int strcmp(const char *a, const char *b);
void puts_raw(const char *s);
void put_hex(uint64_t v);
/* "emu firmware: <msg>\n" on the console, then stop. */
NORETURN void fail(const char *msg);
/* "emu firmware: <msg> 0x<value>\n" on the console, then stop. */
NORETURN void fail_at(const char *msg, uint64_t value);

#endif
