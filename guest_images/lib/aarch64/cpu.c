/*
 * cpu.c - AArch64 exception vectors and translation tables for the
 * images that take exceptions (see lib/traps.h).
 *
 * Arm ARM (DDI 0487) chapter D5, the AArch64 virtual memory system
 * (a 4 KiB granule with 48-bit input addresses: lookup from level 0;
 * the descriptor formats), and the descriptions of TCR_EL1, MAIR_EL1
 * and SCTLR_EL1.
 */
#include "traps.h"

/* The handler entry.S calls. */
trap_handler_fn *trap_handler;

extern char vector_table[];

void traps_init(trap_handler_fn *handler)
{
    trap_handler = handler;
    write_sysreg(vbar_el1, (uint64_t)(uintptr_t)vector_table);
}

/* ---- translation tables ---- */

#define RAM_BASE        0x40000000ULL
#define IMAGE_BASE      0x40200000ULL   /* link_user.ld */
#define BLOCK_DEVICE    (PTE_VALID | PTE_ATTR_DEVICE | PTE_AF | PTE_UXN | PTE_PXN)
#define BLOCK_NORMAL    (PTE_VALID | PTE_ATTR_NORMAL | PTE_SH_INNER | PTE_AF | PTE_UXN)

/* MAIR_EL1: attr0 Device-nGnRnE (0x00), attr1 Normal, inner and outer
 * write-back, read- and write-allocate (0xff). */
#define MAIR_VALUE      0xff00ULL
/* TCR_EL1: T0SZ = 16 (48-bit addresses, lookup from level 0), walks
 * inner/outer write-back cacheable and inner shareable, 4 KiB granule;
 * EPD1: no TTBR1 walks; IPS = 0b010 (40-bit physical addresses). */
#define TCR_VALUE       (16ULL | (1ULL << 8) | (1ULL << 10) | (3ULL << 12) | \
                         (16ULL << 16) | (1ULL << 23) | (2ULL << 32))
#define SCTLR_VALUE     (SCTLR_RES1 | SCTLR_NTWE | SCTLR_NTWI | SCTLR_I | \
                         SCTLR_SA0 | SCTLR_SA | SCTLR_C | SCTLR_M)

static void map_range(char *start, char *end, uint64_t flags)
{
    for (uint64_t va = (uint64_t)(uintptr_t)start; va < (uint64_t)(uintptr_t)end; va += 4096)
        *mmu_pte(va, 0) = va | flags;
}

void mmu_init(void)
{
    uint64_t l0 = page_alloc(), l1 = page_alloc(), l2 = page_alloc(), l3 = page_alloc();
    volatile uint64_t *table;

    /* level 0: entry 0 covers 0..512 GiB */
    ((volatile uint64_t *)(uintptr_t)l0)[0] = l1 | PTE_TABLE;
    /* level 1: 0..1 GiB devices (PL011, fw_cfg, ...), 1..2 GiB RAM */
    table = (volatile uint64_t *)(uintptr_t)l1;
    table[0] = 0 | BLOCK_DEVICE;
    table[1] = l2 | PTE_TABLE;
    /* level 2: 2 MiB blocks of RAM, but the image's in 4 KiB pages */
    table = (volatile uint64_t *)(uintptr_t)l2;
    for (uint64_t i = 0; i < 512; i++)
        table[i] = (RAM_BASE + (i << 21)) | BLOCK_NORMAL;
    table[(IMAGE_BASE - RAM_BASE) >> 21] = l3 | PTE_TABLE;
    table = (volatile uint64_t *)(uintptr_t)l3;
    for (uint64_t i = 0; i < 512; i++)
        table[i] = (IMAGE_BASE + (i << 12)) | PTE_KERNEL_RW;

    write_sysreg(mair_el1, MAIR_VALUE);
    write_sysreg(tcr_el1, TCR_VALUE);
    write_sysreg(ttbr0_el1, l0);
    map_range(__user_text_start, __user_text_end, PTE_USER_RX);
    map_range(__user_data_start, __user_data_end, PTE_USER_RW);
    mmu_flush_all();
    write_sysreg(sctlr_el1, SCTLR_VALUE);
}
