/*
 * cpu.c - x86_64 descriptor tables and paging set-up for the images
 * that take exceptions (see lib/traps.h).
 *
 * Intel SDM vol. 3A: 3.4.5 and 3.5 (segment and system descriptors),
 * 6.14.1 (64-bit IDT gates), 6.14.5 (interrupt stack table), 7.7 (the
 * 64-bit TSS), 4.5 (4-level paging).
 */
#include "traps.h"

/* The handler entry.S calls. */
trap_handler_fn *trap_handler;

/* ---- GDT ---- */

/* 64-bit TSS (SDM vol. 3A figure 7-11); iomap_base past the limit:
 * no I/O permission bitmap. */
struct __attribute__((packed)) tss64 {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
};

static struct tss64 tss;
_Static_assert(sizeof(struct tss64) == TSS_LIMIT + 1, "the 64-bit TSS is 104 bytes");

static uint64_t gdt[10] = {
    0,                          /* 0x00 null */
    0x00af9a000000ffffULL,      /* 0x08 64-bit code, DPL 0 */
    0x00cf92000000ffffULL,      /* 0x10 data, DPL 0 */
    0x00cffa000000ffffULL,      /* 0x18 32-bit code, DPL 3 (STAR slot) */
    0x00cff2000000ffffULL,      /* 0x20 data, DPL 3 */
    0x00affa000000ffffULL,      /* 0x28 64-bit code, DPL 3 */
    0x00cff2000000ffffULL,      /* 0x30 data, DPL 3 (SYSEXIT's SS) */
    0, 0,                       /* 0x38 TSS, filled in below */
    0x00cf12000000ffffULL,      /* 0x48 data, DPL 0, not present */
};

struct __attribute__((packed)) table_register {
    uint16_t limit;
    uint64_t base;
};

/* ---- IDT ---- */

struct idt_gate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;                /* bits 2:0 */
    uint8_t type_attr;          /* P, DPL, 0, type */
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t reserved;
};

#define GATE_INTERRUPT  0x8e    /* P = 1, DPL 0, type 14 */
#define GATE_DPL3       0x60

static struct idt_gate idt[256] __attribute__((aligned(16)));

extern char trap_stubs[];
extern char syscall_entry[];
extern char sysenter_entry[];

static void set_gate(int vector, uint8_t type_attr, uint8_t ist)
{
    uint64_t offset = (uint64_t)(uintptr_t)(trap_stubs + 16 * vector);
    struct idt_gate *gate = &idt[vector];

    gate->offset_low = (uint16_t)offset;
    gate->selector = SEL_KERNEL_CODE;
    gate->ist = ist;
    gate->type_attr = type_attr;
    gate->offset_mid = (uint16_t)(offset >> 16);
    gate->offset_high = (uint32_t)(offset >> 32);
    gate->reserved = 0;
}

/* Write the TSS descriptor (available 64-bit TSS, type 9, present,
 * DPL 0) with `limit` and load TR from it. */
void tss_load(uint32_t limit)
{
    uint64_t base = (uint64_t)(uintptr_t)&tss;

    gdt[SEL_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
                       (0x89ULL << 40) | (((uint64_t)(limit >> 16) & 0xf) << 48) |
                       (((base >> 24) & 0xff) << 56);
    gdt[SEL_TSS / 8 + 1] = base >> 32;
    __asm__ volatile("ltr %w0" : : "r"((uint16_t)SEL_TSS) : "memory");
}

void traps_init(trap_handler_fn *handler)
{
    struct table_register gdtr = { sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt };
    struct table_register idtr = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };

    trap_handler = handler;

    tss.rsp[0] = (uint64_t)(uintptr_t)trap_stack_top;
    tss.ist[0] = (uint64_t)(uintptr_t)df_stack_top;      /* IST1 */
    tss.ist[1] = (uint64_t)(uintptr_t)nmi_stack_top;     /* IST2 */
    tss.iomap_base = sizeof(tss);

    for (int v = 0; v < 256; v++)
        set_gate(v, GATE_INTERRUPT, 0);
    set_gate(2, GATE_INTERRUPT, 2);                     /* NMI: IST2 */
    set_gate(8, GATE_INTERRUPT, 1);                     /* #DF: IST1 */
    set_gate(0x80, GATE_INTERRUPT | GATE_DPL3, 0);      /* int $0x80 from ring 3 */

    /* The kernel selectors keep their values: cs, ds and ss stay. */
    __asm__ volatile("lgdt %0" : : "m"(gdtr) : "memory");
    tss_load(TSS_LIMIT);
    __asm__ volatile("lidt %0" : : "m"(idtr) : "memory");

    /* SYSCALL: CS = 0x08, SS = 0x10; SYSRET: CS = 0x18 + 16, SS =
     * 0x18 + 8 (RPL 3).  FMASK clears TF, IF, DF and AC. */
    wrmsr(MSR_STAR, ((uint64_t)SEL_USER_CODE32 << 48) | ((uint64_t)SEL_KERNEL_CODE << 32));
    wrmsr(MSR_LSTAR, (uint64_t)(uintptr_t)syscall_entry);
    wrmsr(MSR_FMASK, RFLAGS_TF | RFLAGS_IF | RFLAGS_DF | RFLAGS_AC);
    /* SYSENTER: CS = 0x08, SS = 0x10; SYSEXIT to 64-bit code: CS =
     * 0x08 + 32, SS = 0x08 + 40 (RPL 3). */
    wrmsr(MSR_SYSENTER_CS, SEL_KERNEL_CODE);
    wrmsr(MSR_SYSENTER_ESP, (uint64_t)(uintptr_t)trap_stack_top);
    wrmsr(MSR_SYSENTER_EIP, (uint64_t)(uintptr_t)sysenter_entry);
}

/* Gate access for images that break a gate on purpose. */
void idt_set_present(int vector, int present)
{
    if (present)
        idt[vector].type_attr |= 0x80;
    else
        idt[vector].type_attr &= 0x7f;
}

void idt_set_ist(int vector, int ist)
{
    idt[vector].ist = (uint8_t)ist;
}

/* ---- paging ---- */

extern uint64_t pml4[], pdpt[], pd[];     /* start.S: identity map, 2 MiB pages */

static void map_range(char *start, char *end, uint64_t flags)
{
    for (uint64_t va = (uint64_t)(uintptr_t)start; va < (uint64_t)(uintptr_t)end; va += 4096)
        *mmu_pte(va, 0) = va | flags;
}

void mmu_init(void)
{
    /* The first 2 MiB (the image) in 4 KiB kernel pages. */
    uint64_t pt = page_alloc();
    volatile uint64_t *entries = (volatile uint64_t *)(uintptr_t)pt;

    for (uint64_t i = 0; i < 512; i++)
        entries[i] = (i << 12) | PTE_KERNEL_RW;
    /* User mode needs U = 1 at every level; the leaves decide. */
    pml4[0] |= PTE_U;
    pdpt[0] |= PTE_U;
    pd[0] = pt | PTE_TABLE;

    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
    write_cr0(read_cr0() | CR0_WP);

    map_range(__user_text_start, __user_text_end, PTE_USER_RX);
    map_range(__user_data_start, __user_data_end, PTE_USER_RW);
    mmu_flush_all();
}
