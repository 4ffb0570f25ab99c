/*
 * cpu_exceptions.c - exception and interrupt entry for Unicorn CPUs, in native code.
 *
 * Unicorn runs QEMU's TCG but never enters a guest's exception vectors: where QEMU's
 * cpu_handle_exception (accel/tcg/cpu-exec.c) calls the CPU's do_interrupt, Unicorn calls
 * its UC_HOOK_INTR hooks (and UC_HOOK_INSN_INVALID for x86 #UD).  The hooks here put the
 * call back: they run QEMU's own exception entry, x86_cpu_do_interrupt (target/i386
 * seg_helper.c: IDT gates, privilege checks, TSS and IST stack switches, error codes,
 * #DF and triple-fault promotion) and arm_cpu_do_interrupt (target/arm/helper.c: ESR,
 * FAR, ELR, SPSR, PSTATE and the VBAR offset).
 *
 * They must be native code: QEMU's entry code reports a fault it meets while delivering
 * (a not-present gate, an unmapped stack) by longjmp back into the CPU loop, which would
 * skip Python frames.  Policy stays in Python: `filter` (a Python callback, called before
 * any delivery) may take an exception itself (PSCI calls through HVC).
 *
 * Page faults are raised the same way.  emu translates guest-virtual addresses itself
 * (Unicorn's virtual TLB mode: emu/cpu/__init__.py); the TLB-fill hook here walks the
 * common case itself (page_walk.c) and asks the Python walk (`walk`) for the rest, which
 * includes every fault.  The hook is given the page, not the address, so when the walk
 * reports a fault the hook leaves a pseudo-exception
 * (EMU_EXCP_TLB_FAULT) and refuses the page: Unicorn's raise_mmu_exception then records
 * the full address in uc->invalid_addr and returns to the CPU loop, which calls the
 * interrupt hook with the pseudo-exception.  That raises the fault as QEMU's own walk
 * would (x86: CR2 and raise_exception_err_ra, which also promotes to #DF or a triple
 * fault; aarch64: FAR in env->exception and raise_exception with the syndrome), with the
 * faulting instruction's state restored and no Python frame on the stack.
 *
 * Unicorn also replaces SYSCALL and SYSENTER by hook calls (target/i386/seg_helper.c),
 * so the x86 instruction hooks here turn each into a pending pseudo-exception
 * (EMU_EXCP_SYSCALL / EMU_EXCP_SYSENTER, QEMU's user-mode numbering) that the interrupt
 * hook then carries out as QEMU's helper_syscall and helper_sysenter do.
 *
 * The structure offsets are those of the Unicorn release emu pins (2.1.4, LP64 hosts);
 * emu/cpu/engine.py checks them against the running library before installing anything.
 */
#include "cpu_bridge.h"
#include "page_walk.h"

static void load_seg_cache(char *env, int seg, uint32_t selector, uint64_t base,
                           uint32_t limit, uint32_t flags)
{
    /* cpu_x86_load_seg_cache (target/i386/cpu.h) */
    char *sc = env + X86_SEGS + seg * X86_SEG_SIZE;
    uint32_t hflags = FIELD(uint32_t, env, X86_HFLAGS);
    uint32_t new_hflags;

    FIELD(uint32_t, sc, 0) = selector;
    FIELD(uint64_t, sc, 8) = base;
    FIELD(uint32_t, sc, 16) = limit;
    FIELD(uint32_t, sc, 20) = flags;
    if (seg == R_CS) {
        if ((hflags & HF_LMA_MASK) && (flags & DESC_L_MASK)) {
            hflags |= HF_CS32_MASK | HF_SS32_MASK | HF_CS64_MASK;
            hflags &= ~HF_ADDSEG_MASK;
        } else {
            new_hflags = (flags & DESC_B_MASK) >> (22 - 4);
            hflags = (hflags & ~(HF_CS32_MASK | HF_CS64_MASK)) | new_hflags;
        }
    }
    if (seg == R_SS) {
        hflags = (hflags & ~HF_CPL_MASK) | ((flags >> DESC_DPL_SHIFT) & 3);
    }
    new_hflags = (FIELD(uint32_t, env + X86_SEGS + R_SS * X86_SEG_SIZE, 20) & DESC_B_MASK)
                 >> (22 - 5);
    if (hflags & HF_CS64_MASK) {
        /* zero base assumed for DS, ES and SS in long mode */
    } else if (!(FIELD(uint64_t, env, X86_CR0) & CR0_PE_MASK) ||
               (FIELD(uint64_t, env, X86_EFLAGS) & VM_MASK) || !(hflags & HF_CS32_MASK)) {
        new_hflags |= HF_ADDSEG_MASK;
    } else {
        uint64_t bases = FIELD(uint64_t, env + X86_SEGS + R_DS * X86_SEG_SIZE, 8) |
                         FIELD(uint64_t, env + X86_SEGS + R_ES * X86_SEG_SIZE, 8) |
                         FIELD(uint64_t, env + X86_SEGS + R_SS * X86_SEG_SIZE, 8);
        new_hflags |= (bases != 0) ? HF_ADDSEG_MASK : 0;
    }
    FIELD(uint32_t, env, X86_HFLAGS) = (hflags & ~(HF_SS32_MASK | HF_ADDSEG_MASK)) | new_hflags;
}

static void set_flags(struct emu_cpu_bridge *b, char *env, uint32_t eflags)
{
    /* the architectural flags, written as helper_write_eflags does after POPF */
    b->write_eflags(env, eflags, ~(LAZY_FLAGS | DF_MASK | 0x2u));
    FIELD(int32_t, env, X86_CC_OP) = CC_OP_EFLAGS;
}

static void deliver(struct emu_cpu_bridge *b, int32_t intno)
{
    if (b->raise_x86) {
        b->delivering_software = FIELD(int32_t, b->cpu + X86_ENV, X86_EXCEPTION_IS_INT);
    }
    b->delivering = intno + 1;
    b->do_interrupt(b->cpu);
    b->delivering = 0;
}

static void x86_fault_at_syscall(struct emu_cpu_bridge *b, char *env, int32_t vector)
{
    FIELD(uint64_t, env, X86_EIP) = b->syscall_pc;
    FIELD(int32_t, b->cpu, CS_EXCEPTION_INDEX) = vector;
    FIELD(int32_t, env, X86_ERROR_CODE) = 0;
    FIELD(int32_t, env, X86_EXCEPTION_IS_INT) = 0;
    deliver(b, vector);
}

static void x86_syscall(struct emu_cpu_bridge *b, char *env)
{
    /* helper_syscall (QEMU 7.2 target/i386/tcg/seg_helper.c); EIP is already past it */
    uint64_t *regs = &FIELD(uint64_t, env, X86_REGS);
    uint64_t next = FIELD(uint64_t, env, X86_EIP);
    uint32_t selector = (uint32_t)(FIELD(uint64_t, env, X86_STAR) >> 32) & 0xffff;
    uint32_t hflags = FIELD(uint32_t, env, X86_HFLAGS);
    uint32_t eflags;

    if (!(FIELD(uint64_t, env, X86_EFER) & EFER_SCE)) {
        x86_fault_at_syscall(b, env, EXCP06_ILLOP);
        return;
    }
    eflags = b->read_eflags(env);
    if (hflags & HF_LMA_MASK) {
        regs[R_ECX] = next;
        regs[R_R11] = eflags & ~RF_MASK;
        set_flags(b, env, eflags & ~((uint32_t)FIELD(uint64_t, env, X86_FMASK) | RF_MASK));
        load_seg_cache(env, R_CS, selector & 0xfffc, 0, 0xffffffff,
                       DESC_G_MASK | DESC_P_MASK | DESC_S_MASK | DESC_CS_MASK |
                       DESC_R_MASK | DESC_A_MASK | DESC_L_MASK);
        load_seg_cache(env, R_SS, (selector + 8) & 0xfffc, 0, 0xffffffff,
                       DESC_G_MASK | DESC_B_MASK | DESC_P_MASK | DESC_S_MASK |
                       DESC_W_MASK | DESC_A_MASK);
        FIELD(uint64_t, env, X86_EIP) = (hflags & HF_CS64_MASK)
                                        ? FIELD(uint64_t, env, X86_LSTAR)
                                        : FIELD(uint64_t, env, X86_CSTAR);
    } else {
        regs[R_ECX] = (uint32_t)next;
        set_flags(b, env, eflags & ~(IF_MASK | RF_MASK | VM_MASK));
        load_seg_cache(env, R_CS, selector & 0xfffc, 0, 0xffffffff,
                       DESC_G_MASK | DESC_B_MASK | DESC_P_MASK | DESC_S_MASK |
                       DESC_CS_MASK | DESC_R_MASK | DESC_A_MASK);
        load_seg_cache(env, R_SS, (selector + 8) & 0xfffc, 0, 0xffffffff,
                       DESC_G_MASK | DESC_B_MASK | DESC_P_MASK | DESC_S_MASK |
                       DESC_W_MASK | DESC_A_MASK);
        FIELD(uint64_t, env, X86_EIP) = (uint32_t)FIELD(uint64_t, env, X86_STAR);
    }
}

static void x86_sysenter(struct emu_cpu_bridge *b, char *env)
{
    /* helper_sysenter (QEMU 7.2 target/i386/tcg/seg_helper.c) */
    uint32_t cs = (uint32_t)FIELD(uint64_t, env, X86_SYSENTER_CS);
    uint32_t flags = DESC_G_MASK | DESC_B_MASK | DESC_P_MASK | DESC_S_MASK | DESC_CS_MASK |
                     DESC_R_MASK | DESC_A_MASK;

    if (cs == 0) {
        x86_fault_at_syscall(b, env, EXCP0D_GPF);
        return;
    }
    set_flags(b, env, b->read_eflags(env) & ~(VM_MASK | IF_MASK | RF_MASK));
    if (FIELD(uint32_t, env, X86_HFLAGS) & HF_LMA_MASK) {
        flags |= DESC_L_MASK;  /* QEMU 7.2 keeps B set with L */
    }
    load_seg_cache(env, R_CS, cs & 0xfffc, 0, 0xffffffff, flags);
    load_seg_cache(env, R_SS, (cs + 8) & 0xfffc, 0, 0xffffffff,
                   DESC_G_MASK | DESC_B_MASK | DESC_P_MASK | DESC_S_MASK | DESC_W_MASK |
                   DESC_A_MASK);
    FIELD(uint64_t, env, X86_REGS + R_ESP * 8) = FIELD(uint64_t, env, X86_SYSENTER_ESP);
    FIELD(uint64_t, env, X86_EIP) = FIELD(uint64_t, env, X86_SYSENTER_EIP);
}

static void raise_tlb_fault(struct emu_cpu_bridge *b, char *uc)
{
    uint64_t address = FIELD(uint64_t, uc, UC_INVALID_ADDR);

    FIELD(int32_t, uc, UC_INVALID_ERROR) = 0;  /* the run goes on */
    if (b->raise_x86) {
        char *env = b->cpu + X86_ENV;
        if (b->fault_vector == 14) {
            FIELD(uint64_t, env, X86_CR2) = address;
        }
        b->raise_x86(env, b->fault_vector, (int)b->fault_code, 0);
    } else {
        FIELD(uint64_t, b->cpu, ARM_EXCEPTION_VADDRESS) = address;
        FIELD(uint32_t, b->cpu, ARM_EXCEPTION_FSR) = 0;
        b->raise_arm(b->cpu + ARM_ENV, (uint32_t)b->fault_vector, b->fault_code,
                     b->fault_target_el);
    }
}

void emu_x86_intr_hook(void *uc, uint32_t intno, void *user_data)
{
    struct emu_cpu_bridge *b = user_data;
    char *env = b->cpu + X86_ENV;

    if (intno == EMU_EXCP_TLB_FAULT) {
        raise_tlb_fault(b, uc);
        return;
    }
    if (intno == EMU_EXCP_SYSCALL) {
        x86_syscall(b, env);
        return;
    }
    if (intno == EMU_EXCP_SYSENTER) {
        x86_sysenter(b, env);
        return;
    }
    if (b->filter && b->filter(intno)) {
        return;
    }
    /* QEMU's do_interrupt64 reports a bad long-mode IDT gate with vector * 16 + 2 and
     * never sets EXT; the architecture (SDM vol. 3A 6.13, "Error Code") says vector * 8,
     * plus IDT (2), plus EXT (1) when the event being delivered is not an INT n, INT3 or
     * INTO (an exception or an external interrupt) */
    if ((intno == EXCP0D_GPF || intno == EXCP0B_NOSEG) && b->delivering &&
        (FIELD(uint32_t, env, X86_HFLAGS) & HF_LMA_MASK) &&
        FIELD(int32_t, env, X86_ERROR_CODE) == (b->delivering - 1) * 16 + 2) {
        FIELD(int32_t, env, X86_ERROR_CODE) = (b->delivering - 1) * 8 + 2 +
                                              (b->delivering_software ? 0 : 1);
    }
    deliver(b, (int32_t)intno);
}

int emu_x86_invalid_hook(void *uc, void *user_data)
{
    struct emu_cpu_bridge *b = user_data;

    (void)uc;
    if (b->filter && b->filter(EXCP06_ILLOP)) {
        return 1;
    }
    deliver(b, EXCP06_ILLOP);
    return 1;
}

static void x86_pseudo_exception(struct emu_cpu_bridge *b, int32_t number)
{
    char *env = b->cpu + X86_ENV;

    b->syscall_pc = FIELD(uint64_t, env, X86_EIP);
    FIELD(int32_t, b->cpu, CS_EXCEPTION_INDEX) = number;
    FIELD(int32_t, env, X86_EXCEPTION_IS_INT) = 0;
    b->cpu_exit(b->cpu);
}

void emu_x86_syscall_hook(void *uc, void *user_data)
{
    (void)uc;
    x86_pseudo_exception(user_data, EMU_EXCP_SYSCALL);
}

void emu_x86_sysenter_hook(void *uc, void *user_data)
{
    (void)uc;
    x86_pseudo_exception(user_data, EMU_EXCP_SYSENTER);
}

static void x86_check_io(struct emu_cpu_bridge *b, uint32_t port, int size)
{
    /* QEMU's gen_check_io and helper_check_io (target/i386/tcg/seg_helper.c), which
     * Unicorn leaves out: in protected mode with CPL > IOPL, or in virtual-8086 mode, the
     * TSS I/O bitmap decides, else #GP(0).  Unicorn has put EIP on the instruction. */
    char *env = b->cpu + X86_ENV;
    uint64_t eflags = FIELD(uint64_t, env, X86_EFLAGS);
    uint32_t cpl = FIELD(uint32_t, env, X86_HFLAGS) & HF_CPL_MASK;
    uint32_t iopl = (uint32_t)(eflags >> 12) & 3;

    if (!(FIELD(uint64_t, env, X86_CR0) & CR0_PE_MASK) ||
        (cpl <= iopl && !(eflags & VM_MASK))) {
        return;
    }
    if (b->io_bitmap_allows && b->io_bitmap_allows(port, size)) {
        return;
    }
    b->raise_x86(env, EXCP0D_GPF, 0, 0);
}

uint32_t emu_x86_in_hook(void *uc, uint32_t port, int size, void *user_data)
{
    struct emu_cpu_bridge *b = user_data;

    x86_check_io(b, port, size);
    return b->in_handler ? b->in_handler(uc, port, size, b->in_user_data) : 0;
}

void emu_x86_out_hook(void *uc, uint32_t port, int size, uint32_t value, void *user_data)
{
    (void)uc;
    (void)value;
    x86_check_io(user_data, port, size);
}

void emu_arm_intr_hook(void *uc, uint32_t intno, void *user_data)
{
    struct emu_cpu_bridge *b = user_data;

    if (intno == EMU_EXCP_TLB_FAULT) {
        raise_tlb_fault(b, uc);
        return;
    }
    if (b->filter && b->filter(intno)) {
        return;
    }
    deliver(b, (int32_t)intno);
}

/* CPUTLBDesc / CPUTLBDescFast / CPUTLBEntry (include/exec/cpu-defs.h; 64-bit target and
 * host, Unicorn's entry with its paddr field: CPU_TLB_ENTRY_BITS 6) */
#define TLB_DESC_SIZE 696
#define TLB_DESC_LARGE_PAGE_ADDR 0
#define TLB_DESC_LARGE_PAGE_MASK 8
#define TLB_DESC_VTABLE 48
#define TLB_VTLB_SIZE 8
#define TLB_FAST_SIZE 16
#define TLB_ENTRY_SIZE 64
#define TLB_ENTRY_ADDR_CODE 16
#define TLB_ENTRY_PADDR 24

static void add_large_page(char *desc, uint64_t vaddr, uint64_t size)
{
    /* tlb_add_large_page (accel/tcg/cputlb.c): a later flush of any page in the region
     * flushes the whole mode, since the entries of a page larger than the TLB's own are
     * one per TLB page.  Unicorn's virtual TLB mode registers every page at the TLB's own
     * size, so that an INVLPG / TLBI of one address of a large page left the rest of it
     * mapped as before. */
    uint64_t lp_addr = FIELD(uint64_t, desc, TLB_DESC_LARGE_PAGE_ADDR);
    uint64_t lp_mask = ~(size - 1);

    if (lp_addr == (uint64_t)-1) {
        lp_addr = vaddr;
    } else {
        lp_mask &= FIELD(uint64_t, desc, TLB_DESC_LARGE_PAGE_MASK);
        while (((lp_addr ^ vaddr) & lp_mask) != 0) {
            lp_mask <<= 1;
        }
    }
    FIELD(uint64_t, desc, TLB_DESC_LARGE_PAGE_ADDR) = lp_addr & lp_mask;
    FIELD(uint64_t, desc, TLB_DESC_LARGE_PAGE_MASK) = lp_mask;
}

static int forget_if_data(char *entry, uint64_t page)
{
    if (FIELD(uint64_t, entry, TLB_ENTRY_ADDR_CODE) == (uint64_t)-1 &&
        FIELD(uint64_t, entry, TLB_ENTRY_PADDR) != (uint64_t)-1 &&
        FIELD(uint64_t, entry, TLB_ENTRY_PADDR) >> 12 == page) {
        for (int i = 0; i < TLB_ENTRY_SIZE; i += 8) {   /* tlb_flush_entry: all -1 */
            FIELD(uint64_t, entry, i) = (uint64_t)-1;
        }
        return 1;
    }
    return 0;
}

int emu_tlb_forget_data(struct emu_cpu_bridge *b, uint64_t page)
{
    /* Drop the data entries (no code permission) that map the 4 KiB physical page `page`,
     * which is about to hold translated code.  QEMU's tlb_protect_code makes every entry of
     * such a page take the slow path for stores (TLB_NOTDIRTY), which invalidates the
     * translated blocks the store overwrites.  Unicorn keeps no dirty bitmap: its slow path
     * marks a data entry clean after the first store, and later stores through it never
     * reach the invalidation.  The refill of a dropped entry asks the walk again, which
     * maps a code page's data entries with code permission too, so that they stay on the
     * slow path (emu/cpu/__init__.py). */
    int dropped = 0;

    for (int mode = 0; mode < b->tlb_modes; mode++) {
        char *fast = b->tlb_f + mode * TLB_FAST_SIZE;
        char *desc = b->tlb_d + mode * TLB_DESC_SIZE;
        uint64_t n = (FIELD(uint64_t, fast, 0) >> 6) + 1;
        char *table = FIELD(char *, fast, 8);

        for (uint64_t i = 0; i < n; i++) {
            dropped += forget_if_data(table + i * TLB_ENTRY_SIZE, page);
        }
        for (int i = 0; i < TLB_VTLB_SIZE; i++) {
            dropped += forget_if_data(desc + TLB_DESC_VTABLE + i * TLB_ENTRY_SIZE, page);
        }
    }
    return dropped;
}

int emu_tlb_fill_hook(void *uc, uint64_t vaddr, int type, struct uc_tlb_entry *entry,
                      void *user_data)
{
    struct emu_cpu_bridge *b = user_data;
    /* the common case in native code (page_walk.c), the rest in Python */
    int found = emu_native_fill(b, vaddr, type, entry) ? 1 : b->walk(vaddr, type, entry);

    (void)uc;
    if (found == 0) {
        /* refused: raise_mmu_exception returns to the CPU loop, which takes this (as a
         * fault: Unicorn moves EIP past a software interrupt before its hooks) */
        FIELD(int32_t, b->cpu, CS_EXCEPTION_INDEX) = EMU_EXCP_TLB_FAULT;
        if (b->raise_x86) {
            FIELD(int32_t, b->cpu + X86_ENV, X86_EXCEPTION_IS_INT) = 0;
        }
    }
    if (found > 0 && b->flush_page && b->walk_page_size == (1u << BLOCK_SHIFT)) {
        /* aarch64: a 2 MiB block; a TLBI of an address in it flushes all of it (below) */
        b->blocks[BLOCK_BIT(vaddr) >> 6] |= 1ull << (BLOCK_BIT(vaddr) & 63);
    } else if (found > 0 && b->walk_page_size > b->target_page_size && b->tlb_d) {
        for (int mode = 0; mode < b->tlb_modes; mode++) {
            add_large_page(b->tlb_d + mode * TLB_DESC_SIZE, vaddr, b->walk_page_size);
        }
    }
    return found > 0;
}

uint32_t emu_arm_sys_hook(void *uc, int reg, const struct uc_arm64_cp_reg *cp, void *user_data)
{
    struct emu_cpu_bridge *b = user_data;

    /* TLBI VAE1, VAAE1, VALE1, VAALE1 (and their IS/OS forms): op0 1, op1 0, CRn 8,
     * CRm 7 / 3 / 1, op2 1 / 3 / 5 / 7; Xt holds VA[55:12].  QEMU's helpers flush the TLB
     * page of that address (tlbi_aa64_vae1_write: sextract64(value << 12, 0, 56)), which
     * is a quarter of the guest's 4 KiB page: Unicorn's aarch64 TLB has 1 KiB pages, and
     * its virtual TLB mode does not register the guest's page size as QEMU's walk does
     * (tlb_add_large_page).  Flush the rest of the page here; the instruction then runs as
     * QEMU has it.  (Blocks larger than 2 MiB are registered as large pages by the fill
     * hook.) */
    (void)uc;
    (void)reg;
    if (cp->op0 == 1 && cp->op1 == 0 && cp->crn == 8 &&
        (cp->crm == 7 || cp->crm == 3 || cp->crm == 1) && (cp->op2 & 1) && b->flush_page) {
        uint64_t page = (uint64_t)((int64_t)(cp->val << 20) >> 8);   /* sextract64(v << 12, 0, 56) */

        if (b->blocks[BLOCK_BIT(page) >> 6] & (1ull << (BLOCK_BIT(page) & 63))) {
            /* the TLB may hold pages of a 2 MiB block there: flush all of it, as QEMU's
             * tlb_flush_page does for an address in a registered large page
             * (tlb_flush_page_locked).  Flushing the block's 2048 TLB pages one by one
             * cost more than the refills of a full flush; the TLB is empty afterwards,
             * so no block is cached any more. */
            b->flush_all(b->cpu);
            volatile uint64_t *blocks = b->blocks;   /* (volatile: no memset without libc) */

            for (int i = 0; i < (int)(sizeof(b->blocks) / sizeof(b->blocks[0])); i++) {
                blocks[i] = 0;
            }
            return 0;
        }
        for (uint64_t at = page; at < page + 4096; at += b->target_page_size) {
            if (at != page) {
                b->flush_page(b->cpu, at);
            }
        }
    }
    return 0;
}

void emu_bridge_at_block(void *user_data)
{
    struct emu_cpu_bridge *b = user_data;

    /* a block starts (called from native/stop_hook.c's block hook): no exception or
     * interrupt entry is under way any more */
    b->delivering = 0;
    /* x86_cpu_exec_interrupt clears CPU_INTERRUPT_VIRQ after the interrupt entry, even
     * when the acknowledge left the interrupt controller's output asserted (another
     * interrupt pending): the machine asks for it again here, before the handler runs */
    if (b->reassert) {
        FIELD(uint32_t, b->cpu, CS_INTERRUPT_REQUEST) |= (uint32_t)b->reassert;
        b->reassert = 0;
    }
    /* an interrupt was requested while the CPU ran (from a device callback): make this
     * block end at its start check, before any of its instructions, so that QEMU's loop
     * sees the request, as cpu_interrupt's icount_decr write does in QEMU.  (Setting it
     * from the callback itself would also end the block after the callback's own memory
     * access, and Unicorn would then execute that instruction again.) */
    if (b->kick) {
        b->kick = 0;
        FIELD(int16_t, FIELD(char *, b->cpu, CS_ICOUNT_DECR_PTR), 2) = -1;
    }
}

void emu_icount_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    struct emu_cpu_bridge *b = user_data;

    /* -icount's instruction counter: a code hook runs before each instruction */
    (void)uc;
    (void)address;
    (void)size;
    if (++b->insns >= b->icount_deadline && b->stop_flag) {
        *b->stop_flag = 1;
    }
}
