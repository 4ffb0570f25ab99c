/*
 * cpu_bridge.h - what emu's native CPU code shares: QEMU's CPU-state offsets in Unicorn
 * 2.1.4 (LP64 hosts) and the bridge to the Python side (emu/cpu/engine.py's _Bridge).
 */
#ifndef EMU_CPU_BRIDGE_H
#define EMU_CPU_BRIDGE_H

#include <stdint.h>

/* CPUState (include/hw/core/cpu.h) */
#define CS_INTERRUPT_REQUEST 0x1c
#define CS_ICOUNT_DECR_PTR 0x130     /* IcountDecr *: u16.high at +2 */
#define CS_EXCEPTION_INDEX 0x81a0

/* CPUX86State (target/i386/cpu.h), from the CPUState */
#define X86_ENV 0x8a50
#define X86_REGS 0x0
#define X86_EIP 0x80
#define X86_EFLAGS 0x88
#define X86_CC_OP 0xa8
#define X86_HFLAGS 0xb0
#define X86_SEGS 0xb8           /* SegmentCache[6]: selector, base, limit, flags */
#define X86_SEG_SIZE 24
#define X86_TR 0x160            /* SegmentCache: selector, base, limit, flags */
#define X86_CR0 0x1a8
#define X86_CR2 0x1b8
#define X86_CR3 0x1c0
#define X86_CR4 0x1c8
#define X86_LDT 0x148           /* SegmentCache: the system segments' bases and limits */
#define X86_GDT 0x178
#define X86_IDT 0x190
#define X86_EFER 0x250
#define X86_SYSENTER_CS 0x12c0
#define X86_SYSENTER_ESP 0x12c8
#define X86_SYSENTER_EIP 0x12d0
#define X86_STAR 0x12d8
#define X86_LSTAR 0x12e8
#define X86_CSTAR 0x12f0
#define X86_FMASK 0x12f8
#define X86_ERROR_CODE 0x1508
#define X86_EXCEPTION_IS_INT 0x150c
#define X86_EXCEPTION_NEXT_EIP 0x1510

#define R_ECX 1
#define R_ESP 4
#define R_R11 11
#define R_ES 0
#define R_CS 1
#define R_SS 2
#define R_DS 3

#define HF_CPL_MASK 3u
#define HF_CS32_MASK (1u << 4)
#define HF_SS32_MASK (1u << 5)
#define HF_ADDSEG_MASK (1u << 6)
#define HF_LMA_MASK (1u << 14)
#define HF_CS64_MASK (1u << 15)

#define DESC_A_MASK (1u << 8)
#define DESC_W_MASK (1u << 9)
#define DESC_R_MASK (1u << 9)
#define DESC_CS_MASK (1u << 11)
#define DESC_S_MASK (1u << 12)
#define DESC_P_MASK (1u << 15)
#define DESC_L_MASK (1u << 21)
#define DESC_B_MASK (1u << 22)
#define DESC_G_MASK (1u << 23)
#define DESC_DPL_SHIFT 13

#define IF_MASK 0x200u
#define RF_MASK 0x10000u
#define VM_MASK 0x20000u
/* the flags TCG keeps outside env->eflags while it runs (CC_SRC and df) */
#define LAZY_FLAGS 0xcd5u
#define DF_MASK 0x400u
#define CC_OP_EFLAGS 1
#define CR0_PE_MASK 1u
#define EFER_SCE 1u

#define EXCP06_ILLOP 6
#define EXCP0B_NOSEG 11
#define EXCP0D_GPF 13
#define EMU_EXCP_SYSCALL 0x100
#define EMU_EXCP_SYSENTER 0x101
#define EMU_EXCP_TLB_FAULT 0x102

/* struct uc_struct (include/uc_priv.h) */
#define UC_INVALID_ADDR 0x588
#define UC_INVALID_ERROR 0x590

/* CPUARMState's `exception` (target/arm/cpu.h), from the CPUState */
#define ARM_EXCEPTION_SYNDROME 0xaf20
#define ARM_EXCEPTION_FSR 0xaf24
#define ARM_EXCEPTION_VADDRESS 0xaf28
#define ARM_ENV 0xa350
/* CPUARMState fields the page walk reads, from the env: pstate (EL in bits 3:2) and cp15's
 * sctlr_el[1], tcr_el[1].raw_tcr, ttbr0_el[1], ttbr1_el[1] */
#define ARM_PSTATE 0x148
#define ARM_SCTLR_EL1 0x2a8
#define ARM_TCR_EL1 0x358
#define ARM_TTBR0_EL1 0x308
#define ARM_TTBR1_EL1 0x328

struct uc_tlb_entry {                           /* include/unicorn/unicorn.h */
    uint64_t paddr;
    int perms;
};

struct uc_arm64_cp_reg {                        /* include/unicorn/arm64.h */
    uint32_t crn;
    uint32_t crm;
    uint32_t op0;
    uint32_t op1;
    uint32_t op2;
    uint64_t val;
};

struct emu_walker;

struct emu_cpu_bridge {
    char *cpu;                                  /* Unicorn's CPUState */
    void (*do_interrupt)(void *cpu);            /* x86_cpu_do_interrupt / arm_cpu_do_interrupt */
    void (*cpu_exit)(void *cpu);                /* leave the TB chain at the next block */
    uint32_t (*read_eflags)(void *env);         /* x86: helper_read_eflags */
    void (*write_eflags)(void *env, uint32_t value, uint32_t mask);  /* helper_write_eflags */
    int (*filter)(uint32_t intno);              /* Python: nonzero = emu took it itself */
    /* Python: the walk of a TLB miss: 1 mapped (entry filled), 0 a guest fault (fault_*
     * set), -1 emu cannot go on (the run ends with Unicorn's error) */
    int (*walk)(uint64_t vaddr, int type, struct uc_tlb_entry *entry);
    void (*raise_x86)(void *env, int vector, int error_code, uintptr_t retaddr);
    void (*raise_arm)(void *env, uint32_t excp, uint32_t syndrome, uint32_t target_el);
    int32_t fault_vector;                       /* x86 vector / aarch64 EXCP_* */
    uint32_t fault_code;                        /* x86 error code / aarch64 syndrome */
    uint64_t fault_address;                     /* x86 CR2 / aarch64 FAR */
    uint32_t fault_target_el;
    int32_t delivering;                         /* vector + 1 while QEMU's entry code runs */
    int32_t reassert;                           /* x86: request bits to set at the next block */
    int32_t delivering_software;                /* x86: the event is an INT n / INT3 / INTO */
    int32_t kick;                               /* leave the chain at the next block start */
    /* -icount: instructions started so far, and the count at which the next timer is due
     * (the stop hook's flag is then set: the CPU stops at the next block boundary) */
    uint64_t insns;
    uint64_t icount_deadline;
    volatile int32_t *stop_flag;
    /* x86 port I/O: Python's check of the TSS I/O bitmap (1: allowed), and the machine's
     * IN handler, which this library's IN hook calls once the access is allowed */
    int (*io_bitmap_allows)(uint32_t port, int size);
    uint32_t (*in_handler)(void *uc, uint32_t port, int size, void *user_data);
    void *in_user_data;
    uint64_t syscall_pc;                        /* x86: where the SYSCALL/SYSENTER was */
    /* the softmmu TLB (CPUTLB in CPUNegativeOffsetState, include/exec/cpu-defs.h): its
     * per-mode descriptors d[] and fast tables f[], and the number of modes */
    char *tlb_d;
    char *tlb_f;
    int32_t tlb_modes;
    /* the size of the page the last walk mapped (0: the TLB's own page size or smaller),
     * and the TLB's page size (TARGET_PAGE_SIZE: x86 4 KiB, arm 1 KiB) */
    uint64_t walk_page_size;
    uint64_t target_page_size;
    /* aarch64: tlb_flush_page (accel/tcg/cputlb.c), for the TLBI hook, and the 2 MiB
     * blocks the TLB may hold pages of (a bit per block, hashed by VA[36:21]) */
    void (*flush_page)(void *cpu, uint64_t addr);
    uint64_t blocks[1024];
    /* the native page walk's state (page_walk.h); NULL: every miss asks `walk` */
    struct emu_walker *walker;
    /* aarch64: tlb_flush (accel/tcg/cputlb.c), for a TLBI in a 2 MiB block */
    void (*flush_all)(void *cpu);
};

#define BLOCK_SHIFT 21
#define BLOCK_BIT(va) (((va) >> BLOCK_SHIFT) & 0xffff)

#define FIELD(type, base, off) (*(type *)((base) + (off)))

int emu_tlb_forget_data(struct emu_cpu_bridge *b, uint64_t page);

#endif
