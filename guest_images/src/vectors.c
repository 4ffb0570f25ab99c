/*
 * vectors.c - take one exception after another through the guest's
 * own exception vectors and print what the handler saw, one line per
 * case (guest_images/README.md, "vectors").
 *
 * Each case is a small assembly function case_<name> with two labels:
 * <name>_fault, the instruction expected to take the exception, and
 * <name>_resume, where the handler sends the CPU afterwards (or, for
 * the cases that fix the cause and retry, the handler returns to the
 * faulting instruction).  Cases marked USER run in user mode through
 * user_run(); their handler ends them with user_leave().
 *
 * The handler records the first exception of a case; the line shows
 * the vector and, where the architecture defines them, the error code
 * or syndrome, the fault address and where the exception was taken,
 * relative to <name>_fault.
 */
#include "traps.h"

/* Test page n at TEST_REGION; region_init() below maps them (the
 * assembly of the cases has their addresses as numbers). */
#define PAGE(n)     (TEST_REGION + (n) * 0x1000ULL)

/* Case flags */
#define USER        (1u << 0)   /* run in user mode */
#define ERROR       (1u << 1)   /* print the error code (x86) */
#define ADDRESS     (1u << 2)   /* print CR2 (x86) / FAR_EL1 (aarch64) */
#define DR6         (1u << 3)   /* print DR6 (x86) */
#define RETRY       (1u << 4)   /* the handler fixes the cause and retries */
#define NO_WP       (1u << 5)   /* run with CR0.WP = 0 (x86) */

struct fault_case {
    const char *name;
    void (*run)(void);
    const char *fault;          /* <name>_fault */
    const char *resume;         /* <name>_resume */
    unsigned flags;
};

/* What the handler saw (the first exception of a case). */
static struct {
    unsigned count;
    uint64_t vector;            /* x86: IDT vector; aarch64: VBAR offset */
    uint64_t error;             /* x86: error code; aarch64: ESR_EL1 */
    uint64_t pc;                /* RIP / ELR_EL1 */
    uint64_t address;           /* CR2 / FAR_EL1 */
    uint64_t status;            /* x86: DR6; aarch64: SPSR_EL1 */
    const char *stack;          /* where the handler's frame was */
} seen;

static const struct fault_case *current;

#define CASE(name, label, flags) \
    { name, case_##label, label##_fault, label##_resume, flags }
#define DECLARE_CASE(label) \
    extern void case_##label(void); \
    extern const char label##_fault[], label##_resume[]

/* An address in the code of the case as "fault+N" (so that the line
 * does not depend on where the image puts the case), else in hex. */
static void put_address(uint64_t address)
{
    uint64_t base = (uint64_t)(uintptr_t)current->fault;

    if (address >= base && address - base < 64) {
        console_puts("fault+");
        console_put_dec(address - base);
    } else {
        console_put_hex(address, 16);
    }
}

#if defined(__x86_64__)

/* ---------------------------------------------------------------- x86_64 */

/* Intel SDM vol. 3A chapter 6 (exceptions), 4.7 (page fault error
 * codes), 6.13 (error codes of segment and IDT faults). */

/* A user buffer for the misaligned access of #AC (used by name in
 * the assembly below). */
USER_DATA __attribute__((used)) uint64_t user_buffer[2];
static USER_DATA uint64_t user_stack[512] __attribute__((aligned(16)));
/* Kernel state the cases keep. */
uint64_t df_saved_rsp;

__asm__(
    ".text\n"
    /* #DE: divide by zero */
    "case_de: xor %ecx, %ecx\n"
    "    mov $1, %eax\n"
    "    xor %edx, %edx\n"
    "de_fault: div %ecx\n"
    "de_resume: ret\n"
    /* #DB: single step.  TF set by popf traps after the instruction
     * that follows the popf. */
    "case_db: pushfq\n"
    "    orq $0x100, (%rsp)\n"
    "    popfq\n"
    "db_fault: nop\n"
    "    nop\n"
    "db_resume: ret\n"
    /* int $2: NMI's gate, which uses IST2 */
    "case_nmi: nop\n"
    "nmi_fault: int $2\n"
    "nmi_resume: ret\n"
    /* #BP */
    "case_bp: nop\n"
    "bp_fault: int3\n"
    "bp_resume: ret\n"
    /* #UD */
    "case_ud: nop\n"
    "ud_fault: ud2\n"
    "ud_resume: ret\n"
    /* #NM: an x87 instruction with CR0.TS set; the handler clears TS
     * and the instruction is retried */
    "case_nm: mov %cr0, %rax\n"
    "    or $8, %rax\n"
    "    mov %rax, %cr0\n"
    "nm_fault: fninit\n"
    "nm_resume: ret\n"
    /* #GP(selector): a data segment selector past the GDT limit */
    "case_gp_sel: mov $0x1000, %eax\n"
    "gp_sel_fault: mov %eax, %ds\n"
    "gp_sel_resume: ret\n"
    /* #GP(0): a non-canonical address */
    "case_gp_canon: movabs $0x8000000000000000, %rax\n"
    "gp_canon_fault: mov (%rax), %rax\n"
    "gp_canon_resume: ret\n"
    /* #NP(selector): a not-present data segment */
    "case_np_seg: mov $0x48, %eax\n"
    "np_seg_fault: mov %eax, %ds\n"
    "np_seg_resume: ret\n"
    /* #SS(selector): a not-present stack segment */
    "case_ss_seg: mov $0x48, %eax\n"
    "ss_seg_fault: mov %eax, %ss\n"
    "ss_seg_resume: ret\n"
    /* #TS(TSS selector): int $0x82, whose gate uses IST7, which is
     * past the TSS limit */
    "case_ts: nop\n"
    "ts_fault: int $0x82\n"
    "ts_resume: ret\n"
    /* int $0x80 */
    "case_int80: nop\n"
    "int80_fault: int $0x80\n"
    "int80_resume: ret\n"
    /* int $0x81 through a not-present gate */
    "case_int81: nop\n"
    "int81_fault: int $0x81\n"
    "int81_resume: ret\n"
    /* #UD through a not-present gate (the main program clears it) */
    "case_ud_np: nop\n"
    "ud_np_fault: ud2\n"
    "ud_np_resume: ret\n"
    /* #PF cases: the address is in rax */
    "case_pf_read: movabs $0x8000000000, %rax\n"
    "pf_read_fault: mov (%rax), %rax\n"
    "pf_read_resume: ret\n"
    "case_pf_write: movabs $0x8000000000, %rax\n"
    "pf_write_fault: movq $1, (%rax)\n"
    "pf_write_resume: ret\n"
    "case_pf_ro: movabs $0x8000001000, %rax\n"
    "pf_ro_fault: movq $1, (%rax)\n"
    "pf_ro_resume: ret\n"
    "case_pf_nx: movabs $0x8000002000, %rax\n"
    "pf_nx_fault: jmp *%rax\n"
    "pf_nx_resume: ret\n"
    "case_pf_rsvd: movabs $0x8000003000, %rax\n"
    "pf_rsvd_fault: mov (%rax), %rax\n"
    "pf_rsvd_resume: ret\n"
    /* #DF: #PF with a stack the #PF frame cannot be pushed on */
    "case_df: mov %rsp, df_saved_rsp(%rip)\n"
    "    movabs $0x8000006000, %rsp\n"
    "    movabs $0x8000000000, %rax\n"
    "df_fault: mov (%rax), %rax\n"
    "df_resume: mov df_saved_rsp(%rip), %rsp\n"
    "    ret\n"

    /* User-mode cases, run by user_run(): the handler ends them at the
     * exception, or the int $0x80 after the fault label does. */
    ".section .user.text, \"ax\", @progbits\n"
    "case_pf_user: movabs $0x8000004000, %rax\n"
    "pf_user_fault: mov (%rax), %rax\n"
    "pf_user_resume: int $0x80\n"
    "case_ac: pushfq\n"
    "    orl $0x40000, (%rsp)\n"
    "    popfq\n"
    "    lea user_buffer+1(%rip), %rax\n"
    "ac_fault: mov (%rax), %eax\n"
    "ac_resume: int $0x80\n"
    ".text\n");

DECLARE_CASE(de); DECLARE_CASE(db); DECLARE_CASE(nmi); DECLARE_CASE(bp);
DECLARE_CASE(ud); DECLARE_CASE(nm); DECLARE_CASE(gp_sel); DECLARE_CASE(gp_canon);
DECLARE_CASE(np_seg); DECLARE_CASE(ss_seg); DECLARE_CASE(int80); DECLARE_CASE(int81);
DECLARE_CASE(ud_np); DECLARE_CASE(pf_read); DECLARE_CASE(pf_write); DECLARE_CASE(pf_ro);
DECLARE_CASE(pf_nx); DECLARE_CASE(pf_rsvd); DECLARE_CASE(pf_user); DECLARE_CASE(ac);
DECLARE_CASE(df); DECLARE_CASE(ts);

/* The cases, in the order they run; before() and after() set up and
 * undo what some of them need. */
static const struct fault_case cases[] = {
    CASE("#DE div by zero", de, 0),
    CASE("#DB single step", db, DR6),
    CASE("int $2 (NMI gate, IST2)", nmi, 0),
    CASE("#BP int3", bp, 0),
    CASE("#UD ud2", ud, 0),
    CASE("#NM fninit with CR0.TS", nm, RETRY),
    CASE("#GP mov ds, selector past the GDT limit", gp_sel, ERROR),
    CASE("#GP load from a non-canonical address", gp_canon, ERROR),
    CASE("#NP mov ds, not-present segment", np_seg, ERROR),
    CASE("#SS mov ss, not-present segment", ss_seg, ERROR),
    CASE("#TS int $0x82, IST7 past the TSS limit", ts, ERROR),
    CASE("int $0x80", int80, 0),
    CASE("#NP int $0x81, gate not present", int81, ERROR),
    CASE("#NP ud2, #UD gate not present", ud_np, ERROR),
    CASE("#PF read, not present", pf_read, ERROR | ADDRESS),
    CASE("#PF write, not present", pf_write, ERROR | ADDRESS),
    CASE("#PF write, read-only page, CR0.WP=1", pf_ro, ERROR | ADDRESS),
    CASE("#PF write, read-only page, CR0.WP=0", pf_ro, NO_WP | ERROR | ADDRESS),
    CASE("#PF fetch, NX page", pf_nx, ERROR | ADDRESS),
    CASE("#PF read, reserved bit 51 set", pf_rsvd, ERROR | ADDRESS),
    CASE("#PF user read of a supervisor page", pf_user, USER | ERROR | ADDRESS),
    CASE("#AC user misaligned load, CR0.AM=1 EFLAGS.AC=1", ac, USER | ERROR),
    CASE("#DF #PF with the stack not present", df, ERROR | ADDRESS),
};

static const char *stack_name(uint64_t sp)
{
    if (sp >= (uint64_t)(uintptr_t)df_stack && sp < (uint64_t)(uintptr_t)df_stack_top)
        return "ist1";
    if (sp >= (uint64_t)(uintptr_t)nmi_stack && sp < (uint64_t)(uintptr_t)nmi_stack_top)
        return "ist2";
    if (sp >= (uint64_t)(uintptr_t)trap_stack && sp < (uint64_t)(uintptr_t)trap_stack_top)
        return "rsp0";
    return "current";
}

static void handler(struct trap_frame *frame)
{
    if (frame->vector == 0x80 && (frame->cs & 3) == 3)
        user_leave(0);          /* the end of a user case */
    if (seen.count++ == 0) {
        seen.vector = frame->vector;
        seen.error = frame->error;
        seen.pc = frame->rip;
        seen.address = read_cr2();
        seen.status = read_dr6();
        seen.stack = stack_name((uint64_t)(uintptr_t)frame);
    }
    frame->rflags &= ~RFLAGS_TF;
    if ((frame->cs & 3) == 3)
        user_leave(0);
    if (current->flags & RETRY) {
        /* #NM: let the x87 instruction run */
        write_cr0(read_cr0() & ~CR0_TS);
        return;
    }
    frame->rip = (uint64_t)(uintptr_t)current->resume;
}

static void print_seen(void)
{
    console_puts("vector=");
    console_put_hex(seen.vector, 2);
    if (current->flags & ERROR) {
        console_puts(" error=");
        console_put_hex(seen.error, 4);
    }
    console_puts(" rip=");
    put_address(seen.pc);
    if (current->flags & ADDRESS) {
        console_puts(" cr2=");
        put_address(seen.address);
    }
    if (current->flags & DR6) {
        console_puts(" dr6=");
        console_put_hex(seen.status, 8);
    }
    console_puts(" stack=");
    console_puts(seen.stack);
}

/* Map the test pages; page 5 stays not present too (the #DF case's
 * stack). */
static void region_init(void)
{
    *mmu_pte(PAGE(0), 1) = 0;                                           /* not present */
    *mmu_pte(PAGE(1), 1) = page_alloc() | PTE_P | PTE_NX;               /* read-only */
    *mmu_pte(PAGE(2), 1) = page_alloc() | PTE_P | PTE_W | PTE_NX;       /* NX */
    *mmu_pte(PAGE(3), 1) = page_alloc() | PTE_P | PTE_W | PTE_RSVD51;   /* reserved bit */
    *mmu_pte(PAGE(4), 1) = page_alloc() | PTE_P | PTE_W | PTE_NX;       /* supervisor */
    mmu_flush_all();
}

static void before(const struct fault_case *c)
{
    if (c->run == case_ud_np)
        idt_set_present(6, 0);
    if (c->run == case_int81)
        idt_set_present(0x81, 0);
    if (c->flags & NO_WP)
        write_cr0(read_cr0() & ~CR0_WP);
    if (c->run == case_ts) {
        idt_set_ist(0x82, 7);
        tss_load(0x24 + 6 * 8 - 1);     /* up to IST6 */
    }
    if (c->run == case_ac)
        write_cr0(read_cr0() | CR0_AM);
    /* DR6 keeps its bits: start each case from its reset value. */
    __asm__ volatile("mov %0, %%dr6" : : "r"(0xffff0ff0ULL));
}

static void after(const struct fault_case *c)
{
    idt_set_present(6, 1);
    idt_set_present(0x81, 1);
    if (c->run == case_ts) {
        idt_set_ist(0x82, 0);
        tss_load(TSS_LIMIT);
    }
    write_cr0((read_cr0() | CR0_WP) & ~CR0_AM);
}

#define USER_STACK_TOP ((uint64_t)(uintptr_t)(user_stack + 512))

#elif defined(__aarch64__)

/* --------------------------------------------------------------- aarch64 */

/* Arm ARM chapter D1 (exception entry), ESR_EL1 (the syndromes),
 * chapter D5 (MMU faults: translation, access flag, permission,
 * alignment).  Every case runs at EL1 with SP_EL1 (EL1h), so the
 * exceptions come through the "current EL with SPx" synchronous entry,
 * VBAR_EL1 + 0x200. */

static USER_DATA uint64_t user_stack[512] __attribute__((aligned(16)));

__asm__(
    ".text\n"
    /* SVC: preferred return address = the next instruction */
    "case_svc: nop\n"
    "svc_fault: svc #0x1234\n"
    "svc_resume: ret\n"
    /* BRK */
    "case_brk: nop\n"
    "brk_fault: brk #0x42\n"
    "brk_resume: ret\n"
    /* UDF: an undefined instruction (EC 0) */
    "case_udf: nop\n"
    "udf_fault: udf #0\n"
    "udf_resume: ret\n"
    /* data aborts: the address is in x1 */
    "case_dabt_read: mov x1, #0x8000000000\n"
    "dabt_read_fault: ldr x0, [x1]\n"
    "dabt_read_resume: ret\n"
    "case_dabt_write: mov x1, #0x8000000000\n"
    "dabt_write_fault: str x0, [x1]\n"
    "dabt_write_resume: ret\n"
    "case_dabt_ro: movz x1, #0x1000\n"
    "    movk x1, #0x80, lsl #32\n"
    "dabt_ro_fault: str x0, [x1]\n"
    "dabt_ro_resume: ret\n"
    "case_dabt_af: movz x1, #0x2000\n"
    "    movk x1, #0x80, lsl #32\n"
    "dabt_af_fault: ldr x0, [x1]\n"
    "dabt_af_resume: ret\n"
    "case_align: movz x1, #0x3001\n"
    "    movk x1, #0x80, lsl #32\n"
    "align_fault: ldr x0, [x1]\n"
    "align_resume: ret\n"
    "case_dev_align: movz x1, #0x0fe1\n"
    "    movk x1, #0x0900, lsl #16\n"
    "dev_align_fault: ldr w0, [x1]\n"
    "dev_align_resume: ret\n"
    "case_ext: movz x1, #0x7fff, lsl #16\n"
    "ext_fault: ldr x0, [x1]\n"
    "ext_resume: ret\n"
    /* instruction aborts: a branch to the address in x1 */
    "case_iabt: mov x1, #0x8000000000\n"
    "iabt_fault: br x1\n"
    "iabt_resume: ret\n"
    "case_iabt_pxn: movz x1, #0x4000\n"
    "    movk x1, #0x80, lsl #32\n"
    "iabt_pxn_fault: br x1\n"
    "iabt_pxn_resume: ret\n"
    "case_pc_align: adr x1, pc_align_resume\n"
    "    add x1, x1, #2\n"
    "pc_align_fault: br x1\n"
    "pc_align_resume: ret\n"
    ".text\n");

DECLARE_CASE(svc); DECLARE_CASE(brk); DECLARE_CASE(udf); DECLARE_CASE(dabt_read);
DECLARE_CASE(dabt_write); DECLARE_CASE(dabt_ro); DECLARE_CASE(dabt_af); DECLARE_CASE(align);
DECLARE_CASE(dev_align); DECLARE_CASE(ext); DECLARE_CASE(iabt); DECLARE_CASE(iabt_pxn);
DECLARE_CASE(pc_align);

#define ALIGN_CHECK (1u << 6)   /* run with SCTLR_EL1.A = 1 */

/* The cases, in the order they run. */
static const struct fault_case cases[] = {
    CASE("svc #0x1234", svc, 0),
    CASE("brk #0x42", brk, 0),
    CASE("udf #0", udf, 0),
    CASE("load, translation fault", dabt_read, ADDRESS),
    CASE("store, translation fault", dabt_write, ADDRESS),
    CASE("store, read-only page", dabt_ro, ADDRESS),
    CASE("load, access flag 0", dabt_af, ADDRESS | RETRY),
    CASE("misaligned load, SCTLR_EL1.A=1", align, ADDRESS | ALIGN_CHECK),
    CASE("misaligned load from Device memory", dev_align, ADDRESS),
    CASE("load, no memory behind the address", ext, ADDRESS),
    CASE("branch, translation fault", iabt, ADDRESS),
    CASE("branch, PXN page", iabt_pxn, ADDRESS),
    CASE("branch to a misaligned address", pc_align, ADDRESS),
};

static void handler(struct trap_frame *frame)
{
    uint64_t esr = frame->esr;

    if (frame->vector == VECTOR_LOWER_A64 && ESR_EC(esr) == EC_SVC64)
        user_leave(0);          /* the end of a user case */
    if (seen.count++ == 0) {
        seen.vector = frame->vector;
        seen.error = esr;
        seen.pc = frame->elr;
        seen.address = frame->far;
        seen.status = frame->spsr;
        seen.stack = "sp_el1";
    }
    if (frame->vector == VECTOR_LOWER_A64)
        user_leave(0);
    if ((current->flags & RETRY) && (ESR_EC(esr) == EC_DABT_SAME) &&
        FSC_TYPE(ESR_FSC(esr)) == FSC_ACCESS_FLAG) {
        /* set the access flag, and retry the load */
        *mmu_pte(frame->far, 0) |= PTE_AF;
        mmu_flush(frame->far);
        return;
    }
    frame->elr = (uint64_t)(uintptr_t)current->resume;
}

static void print_seen(void)
{
    console_puts("vector=");
    console_put_hex(seen.vector, 3);
    console_puts(" esr=");
    console_put_hex(seen.error, 8);
    if (current->flags & ADDRESS) {
        console_puts(" far=");
        put_address(seen.address);
    }
    console_puts(" elr=");
    put_address(seen.pc);
    /* without NZCV, which depend on the code before the case */
    console_puts(" spsr=");
    console_put_hex(seen.status & 0x0fffffff, 8);
}

/* Map the test pages. */
static void region_init(void)
{
    *mmu_pte(PAGE(0), 1) = 0;                                           /* unmapped */
    *mmu_pte(PAGE(1), 1) = page_alloc() | PTE_KERNEL_RO;                /* read-only */
    *mmu_pte(PAGE(2), 1) = page_alloc() | (PTE_KERNEL_RW & ~PTE_AF);    /* access flag 0 */
    *mmu_pte(PAGE(3), 1) = page_alloc() | PTE_KERNEL_RW;                /* Normal, RW */
    *mmu_pte(PAGE(4), 1) = page_alloc() | PTE_KERNEL_RW | PTE_PXN;      /* no EL1 execute */
    mmu_flush_all();
}

static void before(const struct fault_case *c)
{
    if (c->flags & ALIGN_CHECK)
        write_sysreg(sctlr_el1, read_sysreg(sctlr_el1) | SCTLR_A);
}

static void after(const struct fault_case *c)
{
    if (c->flags & ALIGN_CHECK)
        write_sysreg(sctlr_el1, read_sysreg(sctlr_el1) & ~SCTLR_A);
}

#define USER_STACK_TOP ((uint64_t)(uintptr_t)(user_stack + 512))

#endif

static void run_case(const struct fault_case *c)
{
    current = c;
    seen.count = 0;
    before(c);
    if (c->flags & USER)
        user_run(c->run, USER_STACK_TOP);
    else
        c->run();
    after(c);

    console_puts(c->name);
    console_puts(": ");
    if (seen.count == 0) {
        console_puts("no exception\n");
        return;
    }
    print_seen();
    if (seen.count > 1) {
        console_puts(" exceptions=");
        console_put_dec(seen.count);
    }
    if (c->flags & RETRY)
        console_puts(" retried");
    console_putc('\n');
}

int main(void)
{
    traps_init(handler);
    mmu_init();
    region_init();
    console_puts("vectors: " ARCH_NAME "\n");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
    console_puts("vectors: done\n");
    return 0;
}
