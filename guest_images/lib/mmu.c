/*
 * mmu.c - page tables shared by both machines: four levels of 512
 * 8-byte entries and 4 KiB pages (x86_64 4-level paging, Intel SDM
 * vol. 3A 4.5; AArch64 VMSAv8-64 with a 4 KiB granule and a 48-bit
 * input address, Arm ARM chapter D5).  The entry encodings are in
 * lib/<arch>/cpu.h; mmu_init() is per-arch (lib/<arch>/cpu.c).
 */
#include "traps.h"

static uint64_t next_page = PAGE_POOL_START;

uint64_t page_alloc(void)
{
    uint64_t page = next_page;

    if (page >= PAGE_POOL_END)
        return 0;
    next_page += 4096;
    /* Volatile stores: a plain loop may become SSE / SIMD stores. */
    for (volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)page;
         p < (volatile uint64_t *)(uintptr_t)(page + 4096); p++)
        *p = 0;
    return page;
}

uint64_t pages_allocated(void)
{
    return (next_page - PAGE_POOL_START) / 4096;
}

volatile uint64_t *mmu_pte(uint64_t va, int create)
{
    uint64_t table = mmu_root();

    /* Levels 0..2 (PML4, PDPT, PD) hold tables; level 3 the page. */
    for (int shift = 39; shift > 12; shift -= 9) {
        volatile uint64_t *entry = (volatile uint64_t *)(uintptr_t)table + ((va >> shift) & 511);

        if (!(*entry & PTE_VALID)) {
            uint64_t page;

            if (!create || !(page = page_alloc()))
                return 0;
            *entry = page | PTE_TABLE;
        }
        table = *entry & PTE_ADDR_MASK;
    }
    return (volatile uint64_t *)(uintptr_t)table + ((va >> 12) & 511);
}
