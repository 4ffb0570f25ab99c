/*
 * page_walk.h - the native page walk's state (emu/cpu/native_walk.py's _Walker).
 */
#ifndef EMU_PAGE_WALK_H
#define EMU_PAGE_WALK_H

#include "cpu_bridge.h"

#define WALK_MAX_RAM 16

struct emu_ram_block {
    uint64_t base;          /* guest-physical, 4 KiB aligned */
    uint64_t size;
    char *host;             /* where the block's bytes are (RamBlock.host_address) */
    uint8_t *code_pages;    /* a bit per 4 KiB page: the CPU has fetched code from it */
    uint8_t *stored_pages;  /* a bit per 4 KiB page: it has had a writable data entry */
};

struct emu_walker {
    int32_t enabled;        /* the offsets checked and the RAM known: walk natively */
    int32_t arch;           /* WALK_X86 / WALK_ARM */
    uint32_t phys_bits;     /* x86: the physical-address width (reserved bits above it) */
    uint32_t ram_count;
    struct emu_ram_block ram[WALK_MAX_RAM];
    uint64_t native_fills;  /* misses filled here */
    uint64_t python_fills;  /* misses handed to the Python walk */
};

#define WALK_X86 1
#define WALK_ARM 2

/* 1: the miss is filled (entry, b->walk_page_size); 0: ask the Python walk */
int emu_native_fill(struct emu_cpu_bridge *b, uint64_t vaddr, int type,
                    struct uc_tlb_entry *entry);

#endif
