/*
 * cpu.h - x86_64 CPU structures for the images that take exceptions
 * (included through lib/traps.h): the trap frame, segment selectors,
 * page table entry bits, control register and MSR access.
 *
 * Intel SDM vol. 3A: 3.4.5 (segment descriptors), 4.5 (4-level
 * paging), 6.12-6.14 (64-bit interrupt and exception handling),
 * 7.7 (64-bit TSS); vol. 2B SYSCALL/SYSRET.
 */
#ifndef CPU_H
#define CPU_H

#include <stdint.h>

/* ---- the GDT that traps_init() loads (lib/x86_64/cpu.c) ----
 * The kernel selectors are those of start.S.  SYSRET to 64-bit code
 * loads CS = STAR[63:48] + 16 and SS = STAR[63:48] + 8, so the user
 * selectors follow a 32-bit user code slot at 0x18. */
#define SEL_KERNEL_CODE     0x08
#define SEL_KERNEL_DATA     0x10
#define SEL_USER_CODE32     0x18    /* STAR[63:48]; never loaded */
#define SEL_USER_DATA       0x20    /* DPL 3 (with RPL 3: 0x23) */
#define SEL_USER_CODE       0x28    /* 64-bit, DPL 3 (with RPL 3: 0x2b) */
#define SEL_USER_DATA2      0x30    /* SYSEXIT to 64-bit: SS = SYSENTER_CS + 40 */
#define SEL_TSS             0x38    /* 16-byte system descriptor */
#define SEL_NOT_PRESENT     0x48    /* a writable data segment with P = 0 */
#define SEL_USER_CS         (SEL_USER_CODE | 3)
#define SEL_USER_SS         (SEL_USER_DATA | 3)

/* The stacks of lib/x86_64/entry.S that traps_init() puts in the TSS:
 * RSP0 (ring 3 -> 0), IST1 (#DF) and IST2 (NMI). */
extern char trap_stack[], trap_stack_top[];
extern char df_stack[], df_stack_top[];
extern char nmi_stack[], nmi_stack_top[];

/* Vector numbers the trap frame carries besides the IDT's 0..255. */
#define VECTOR_SYSCALL      0x100   /* entered through SYSCALL (LSTAR) */
#define VECTOR_SYSENTER     0x101   /* entered through SYSENTER */

/* What the entry stubs (lib/x86_64/entry.S) save, lowest address
 * first: the general registers, the vector, the error code (0 when
 * the CPU pushes none), then the CPU's own frame.  A handler may
 * change any field; the stub's iretq loads rip, cs, rflags, rsp and
 * ss from it.  For VECTOR_SYSCALL and VECTOR_SYSENTER the entry code
 * builds the frame: rip and rsp are the user's (SYSCALL: rcx and
 * rflags = r11; SYSENTER: rdx and rcx), cs and ss those the
 * instruction loaded (the kernel's); the return takes rip, rflags
 * (SYSRET only) and rsp from it. */
struct trap_frame {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t vector;
    uint64_t error;
    uint64_t rip, cs, rflags, rsp, ss;
};

/* lib/x86_64/cpu.c: set or clear the present bit of IDT gate
 * `vector`; set its IST index (0: none); load TR from the TSS
 * descriptor, rewritten with `limit` (traps_init: 103, the whole TSS;
 * the 64-bit TSS holds IST n at offset 0x24 + 8 * (n - 1)). */
void idt_set_present(int vector, int present);
void idt_set_ist(int vector, int ist);
void tss_load(uint32_t limit);
#define TSS_LIMIT   103

/* The exceptions that push an error code (SDM vol. 3A table 6-1). */
static inline int vector_has_error_code(uint64_t vector)
{
    return vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 ||
           vector == 21 || vector == 29 || vector == 30;
}

/* ---- page table entries (4-level paging, 4 KiB pages) ---- */
#define PTE_P       (1ULL << 0)     /* present */
#define PTE_W       (1ULL << 1)     /* writable */
#define PTE_U       (1ULL << 2)     /* user */
#define PTE_A       (1ULL << 5)     /* accessed (set by the CPU) */
#define PTE_D       (1ULL << 6)     /* dirty (set by the CPU) */
#define PTE_PS      (1ULL << 7)     /* large page, in a PDE/PDPTE */
#define PTE_RSVD51  (1ULL << 51)    /* reserved for any MAXPHYADDR < 52 */
#define PTE_NX      (1ULL << 63)    /* no execute (with EFER.NXE) */

#define PTE_VALID       PTE_P
#define PTE_ADDR_MASK   0x000ffffffffff000ULL
#define PTE_TABLE       (PTE_P | PTE_W | PTE_U)   /* leaves decide */
#define PTE_ACCESSED    PTE_A
#define PTE_KERNEL_RW   (PTE_P | PTE_W)
#define PTE_KERNEL_RO   (PTE_P)
#define PTE_USER_RX     (PTE_P | PTE_U)
#define PTE_USER_RW     (PTE_P | PTE_W | PTE_U | PTE_NX)
#define PTE_USER_RO     (PTE_P | PTE_U | PTE_NX)

/* Page fault error code bits (SDM vol. 3A 4.7). */
#define PF_P        (1u << 0)
#define PF_W        (1u << 1)
#define PF_U        (1u << 2)
#define PF_RSVD     (1u << 3)
#define PF_I        (1u << 4)

/* ---- control registers, MSRs, flags ---- */
#define CR0_TS      (1ULL << 3)
#define CR0_WP      (1ULL << 16)
#define CR0_AM      (1ULL << 18)
#define RFLAGS_TF   (1ULL << 8)
#define RFLAGS_IF   (1ULL << 9)
#define RFLAGS_DF   (1ULL << 10)
#define RFLAGS_AC   (1ULL << 18)

#define MSR_EFER            0xc0000080
#define MSR_STAR            0xc0000081
#define MSR_LSTAR           0xc0000082
#define MSR_FMASK           0xc0000084
#define MSR_SYSENTER_CS     0x174
#define MSR_SYSENTER_ESP    0x175
#define MSR_SYSENTER_EIP    0x176
#define EFER_SCE            (1ULL << 0)
#define EFER_NXE            (1ULL << 11)

#define DEFINE_CR(n) \
    static inline uint64_t read_cr##n(void) \
    { uint64_t v; __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v)); return v; } \
    static inline void write_cr##n(uint64_t v) \
    { __asm__ volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); }
DEFINE_CR(0)
DEFINE_CR(3)
DEFINE_CR(4)
#undef DEFINE_CR

static inline uint64_t read_cr2(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr2, %0" : "=r"(v));
    return v;
}

static inline uint64_t read_dr6(void)
{
    uint64_t v;
    __asm__ volatile("mov %%dr6, %0" : "=r"(v));
    return v;
}

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t value)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value),
                     "d"((uint32_t)(value >> 32)) : "memory");
}

/* The stack pointer of the caller. */
static inline uint64_t read_sp(void)
{
    uint64_t v;
    __asm__ volatile("mov %%rsp, %0" : "=r"(v));
    return v;
}

/* ---- portable names used by lib/traps.h and lib/mmu.c ---- */

/* The CPU's own page table root: the pml4 of start.S. */
static inline uint64_t mmu_root(void)
{
    return read_cr3() & PTE_ADDR_MASK;
}

static inline void mmu_flush(uint64_t va)
{
    __asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

static inline void mmu_flush_all(void)
{
    write_cr3(read_cr3());
}

/* Physical pages for page_alloc(): 4 MiB up to 64 MiB, identity
 * mapped by start.S (the image and its .bss end below 2 MiB). */
#define PAGE_POOL_START     0x00400000ULL
#define PAGE_POOL_END       0x04000000ULL

#endif
