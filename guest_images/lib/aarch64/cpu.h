/*
 * cpu.h - AArch64 CPU structures for the images that take exceptions
 * (included through lib/traps.h): the trap frame, translation table
 * descriptor bits, ESR_EL1 fields, system register access.
 *
 * Arm Architecture Reference Manual (ARMv8-A, DDI 0487): chapter D1
 * (exception entry, vector offsets), chapter D5 (VMSAv8-64 translation
 * table descriptors), and the descriptions of ESR_EL1, SCTLR_EL1,
 * TCR_EL1 and MAIR_EL1.
 */
#ifndef CPU_H
#define CPU_H

#include <stdint.h>

/* What the vector entries (lib/aarch64/entry.S) save.  A handler may
 * change x[], sp_el0, elr and spsr; eret uses them. */
struct trap_frame {
    uint64_t x[31];
    uint64_t sp_el0;
    uint64_t elr;
    uint64_t spsr;
    uint64_t esr;
    uint64_t far;
    uint64_t vector;            /* offset of the entry in the table */
    uint64_t pad;
};

/* Vector table offsets (VBAR_EL1 + ...) of the synchronous entries. */
#define VECTOR_CURRENT_SP0  0x000
#define VECTOR_CURRENT_SPX  0x200
#define VECTOR_LOWER_A64    0x400
#define VECTOR_LOWER_A32    0x600

/* ---- ESR_EL1 ---- */
#define ESR_EC(esr)         (((esr) >> 26) & 0x3f)
#define ESR_ISS(esr)        ((esr) & 0x1ffffff)
#define EC_UNKNOWN          0x00
#define EC_SVC64            0x15
#define EC_SYSREG           0x18
#define EC_IABT_LOWER       0x20
#define EC_IABT_SAME        0x21
#define EC_PC_ALIGN         0x22
#define EC_DABT_LOWER       0x24
#define EC_DABT_SAME        0x25
#define EC_BRK64            0x3c
#define ESR_WNR             (1u << 6)       /* data abort: a write */
#define ESR_FSC(esr)        ((esr) & 0x3f)  /* fault status code */
#define FSC_TYPE(fsc)       ((fsc) & 0x3c)  /* without the level */
#define FSC_TRANSLATION     0x04
#define FSC_ACCESS_FLAG     0x08
#define FSC_PERMISSION      0x0c

/* ---- translation table descriptors (4 KiB granule) ---- */
#define PTE_VALID       (1ULL << 0)
#define PTE_NON_BLOCK   (1ULL << 1)         /* table (levels 0-2) / page (level 3) */
#define PTE_ATTR_DEVICE (0ULL << 2)         /* MAIR_EL1 attr0: Device-nGnRnE */
#define PTE_ATTR_NORMAL (1ULL << 2)         /* MAIR_EL1 attr1: Normal, write-back */
#define PTE_AP_EL0      (1ULL << 6)         /* AP[1]: EL0 access */
#define PTE_AP_RO       (1ULL << 7)         /* AP[2]: read-only */
#define PTE_SH_INNER    (3ULL << 8)
#define PTE_AF          (1ULL << 10)        /* access flag */
#define PTE_PXN         (1ULL << 53)
#define PTE_UXN         (1ULL << 54)
#define PTE_SW_DIRTY    (1ULL << 55)        /* software use: "written to" */

#define PTE_ADDR_MASK   0x0000fffffffff000ULL
#define PTE_TABLE       (PTE_VALID | PTE_NON_BLOCK)
#define PTE_ACCESSED    PTE_AF
#define PTE_PAGE        (PTE_VALID | PTE_NON_BLOCK | PTE_ATTR_NORMAL | PTE_SH_INNER | PTE_AF)
#define PTE_KERNEL_RW   (PTE_PAGE | PTE_UXN)
#define PTE_KERNEL_RO   (PTE_PAGE | PTE_UXN | PTE_AP_RO)
#define PTE_USER_RX     (PTE_PAGE | PTE_PXN | PTE_AP_EL0 | PTE_AP_RO)
#define PTE_USER_RW     (PTE_PAGE | PTE_PXN | PTE_UXN | PTE_AP_EL0)
#define PTE_USER_RO     (PTE_PAGE | PTE_PXN | PTE_UXN | PTE_AP_EL0 | PTE_AP_RO)

/* ---- SCTLR_EL1 ---- */
#define SCTLR_M         (1ULL << 0)
#define SCTLR_A         (1ULL << 1)
#define SCTLR_C         (1ULL << 2)
#define SCTLR_SA        (1ULL << 3)
#define SCTLR_SA0       (1ULL << 4)
#define SCTLR_UMA       (1ULL << 9)
#define SCTLR_I         (1ULL << 12)
#define SCTLR_NTWI      (1ULL << 16)
#define SCTLR_NTWE      (1ULL << 18)
/* ARMv8.0 RES1 bits: 11, 20, 22, 23, 28, 29 */
#define SCTLR_RES1      0x30d00800ULL

#define read_sysreg(name) ({ \
        uint64_t _v; \
        __asm__ volatile("mrs %0, " #name : "=r"(_v)); \
        _v; })
#define write_sysreg(name, value) \
    __asm__ volatile("msr " #name ", %0\n\tisb" : : "r"((uint64_t)(value)) : "memory")

/* The stack pointer of the caller. */
static inline uint64_t read_sp(void)
{
    uint64_t v;
    __asm__ volatile("mov %0, sp" : "=r"(v));
    return v;
}

/* ---- portable names used by lib/traps.h and lib/mmu.c ---- */

static inline uint64_t mmu_root(void)
{
    return read_sysreg(ttbr0_el1) & PTE_ADDR_MASK;
}

/* After changing an entry that may be cached: invalidate it. */
static inline void mmu_flush(uint64_t va)
{
    __asm__ volatile("dsb ishst\n\t"
                     "tlbi vaae1is, %0\n\t"
                     "dsb ish\n\t"
                     "isb" : : "r"(va >> 12) : "memory");
}

static inline void mmu_flush_all(void)
{
    __asm__ volatile("dsb ishst\n\t"
                     "tlbi vmalle1is\n\t"
                     "dsb ish\n\t"
                     "isb" : : : "memory");
}

/* Physical pages for page_alloc(): RAM from 0x40400000 (the image at
 * 0x40200000 ends well below) to 0x44000000. */
#define PAGE_POOL_START     0x40400000ULL
#define PAGE_POOL_END       0x44000000ULL

#endif
