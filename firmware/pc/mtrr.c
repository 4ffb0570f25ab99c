/*
 * mtrr.c - the MTRRs as SeaBIOS 1.16 programs them on QEMU's pc
 * (src/fw/mtrr.c mtrr_setup, run after pci_setup): fixed ranges write-back
 * below 640 KiB, uncached at 0xa0000-0xbffff, write-protect for the ROM
 * area 0xc0000-0xfffff; one variable range making the PCI hole (from
 * pcimem_start, src/fw/pciinit.c i440fx_mem_addr_setup) to 4 GiB uncached;
 * default type write-back, fixed and variable ranges enabled.  Linux reads
 * them back (arch/x86/kernel/cpu/mtrr) and, with MTRRs on, programs PAT.
 */
#include "fw.h"
#include "pc.h"

#define MSR_MTRRcap             0x0fe
#define MSR_MTRRfix64K_00000    0x250
#define MSR_MTRRfix16K_80000    0x258
#define MSR_MTRRfix16K_A0000    0x259
#define MSR_MTRRfix4K_C0000     0x268
#define MSR_MTRRdefType         0x2ff
#define MTRRphysBase_MSR(reg)   (0x200 + 2 * (reg))
#define MTRRphysMask_MSR(reg)   (0x200 + 2 * (reg) + 1)
#define MTRR_MEMTYPE_UC         0
#define MTRR_MEMTYPE_WP         5
#define MTRR_MEMTYPE_WB         6
#define CPUID_MSR               (1u << 5)
#define CPUID_MTRR              (1u << 12)

static void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

static void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

void mtrr_setup(uint32_t ram_size)
{
    uint32_t eax, ebx, ecx, edx;
    cpuid(1, &eax, &ebx, &ecx, &edx);
    if (!(edx & CPUID_MTRR) || !(edx & CPUID_MSR))
        return;
    uint32_t cap = (uint32_t)rdmsr(MSR_MTRRcap);
    int vcnt = cap & 0xff;
    if (!vcnt || !(cap & 0x100))
        return;

    wrmsr(MSR_MTRRdefType, 0);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        if (ram_size >= 65536u * (i + 1))
            v |= (uint64_t)MTRR_MEMTYPE_WB << (8 * i);
    wrmsr(MSR_MTRRfix64K_00000, v);
    v = 0;
    for (int i = 0; i < 8; i++)
        if (ram_size >= 0x80000u + 16384u * (i + 1))
            v |= (uint64_t)MTRR_MEMTYPE_WB << (8 * i);
    wrmsr(MSR_MTRRfix16K_80000, v);
    wrmsr(MSR_MTRRfix16K_A0000, 0);
    for (int j = 0; j < 8; j++) {
        v = 0;
        for (int i = 0; i < 8; i++)
            if (ram_size >= 0xc0000u + j * 0x8000u + 4096u * (i + 1))
                v |= (uint64_t)MTRR_MEMTYPE_WP << (8 * i);
        wrmsr(MSR_MTRRfix4K_C0000 + j, v);
    }

    int phys_bits = 36;
    cpuid(0x80000000u, &eax, &ebx, &ecx, &edx);
    if (eax >= 0x80000008u) {
        cpuid(0x80000008u, &eax, &ebx, &ecx, &edx);
        phys_bits = eax & 0xff;
    }
    uint64_t phys_mask = (1ull << phys_bits) - 1;
    for (int i = 0; i < vcnt; i++) {
        wrmsr(MTRRphysBase_MSR(i), 0);
        wrmsr(MTRRphysMask_MSR(i), 0);
    }
    uint64_t pcimem_start = ram_size <= 0x80000000u ? 0x80000000u
                          : ram_size <= 0xc0000000u ? 0xc0000000u : ram_size;
    wrmsr(MTRRphysBase_MSR(0), pcimem_start | MTRR_MEMTYPE_UC);
    wrmsr(MTRRphysMask_MSR(0), (-((1ull << 32) - pcimem_start) & phys_mask) | 0x800);
    wrmsr(MSR_MTRRdefType, 0xc00 | MTRR_MEMTYPE_WB);
}
