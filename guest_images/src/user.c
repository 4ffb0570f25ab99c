/*
 * user.c - run small programs in user mode (x86_64 ring 3, aarch64
 * EL0) and print what the kernel sees of their system calls and
 * exceptions (guest_images/README.md, "user").
 *
 * A program is a function in the user area (USER_TEXT); user_run()
 * starts it on its own user stack and returns when the kernel ends
 * it: at its exit system call, or at its first exception.  Two system
 * calls: SYS_WRITE (the kernel prints a NUL-terminated user string and
 * returns its length) and SYS_EXIT (ends the program with a value).
 * The programs that test one instruction are in assembly, with a
 * label <name>_fault on it; "fault+N" in a line is relative to it.
 */
#include "traps.h"

#define SYS_EXIT    0
#define SYS_WRITE   1

/* Test pages at TEST_REGION, mapped by main(). */
#define PAGE_USER_RO    (TEST_REGION + 0x0000)  /* user read-only */
#define PAGE_KERNEL     (TEST_REGION + 0x1000)  /* kernel read-write */

struct program {
    const char *name;
    void (*entry)(void);
    const char *fault;          /* <name>_fault, or 0 */
    unsigned flags;
};

#define ADDRESS     (1u << 0)   /* print the fault address */
#define ERROR       (1u << 1)   /* print the error code (x86) */
#define TRAP_WFI    (1u << 2)   /* run with SCTLR_EL1.nTWI = 0 (aarch64) */
#define NO_SCE      (1u << 3)   /* run with EFER.SCE = 0 (x86) */

/* What the kernel saw: the first system call or exception. */
static struct {
    unsigned count;
    uint64_t vector, error, pc, address, status, user_sp;
    uint64_t selectors;         /* x86: cs | ss << 16 */
    const char *stack;
} seen;

static const struct program *current;
/* main()'s stack pointer when it starts a program. */
static uint64_t kernel_sp;

/* The user stack and the messages, in the user area. */
static USER_DATA uint64_t user_stack[512] __attribute__((aligned(16)));
#define USER_STACK_TOP ((uint64_t)(uintptr_t)(user_stack + 512))

static void put_address(uint64_t address)
{
    uint64_t base = (uint64_t)(uintptr_t)current->fault;

    if (base && address >= base && address - base < 64) {
        console_puts("fault+");
        console_put_dec(address - base);
    } else {
        console_put_hex(address, 16);
    }
}

static const char *user_sp_name(uint64_t sp)
{
    if (sp >= (uint64_t)(uintptr_t)user_stack && sp <= USER_STACK_TOP)
        return "user_stack";
    return "elsewhere";
}

/* SYS_WRITE: print the user's string (the kernel may read user
 * memory), return its length. */
static uint64_t sys_write(uint64_t address)
{
    const char *s = (const char *)(uintptr_t)address;
    uint64_t n = 0;

    while (n < 256 && s[n])
        console_putc(s[n++]);
    return n;
}

/* Record the first entry into the kernel. */
static void record(uint64_t vector, uint64_t error, uint64_t pc, uint64_t address,
                   uint64_t status, uint64_t user_sp, uint64_t selectors, const char *stack)
{
    if (seen.count++)
        return;
    seen.vector = vector;
    seen.error = error;
    seen.pc = pc;
    seen.address = address;
    seen.status = status;
    seen.user_sp = user_sp;
    seen.selectors = selectors;
    seen.stack = stack;
}

#if defined(__x86_64__)

/* ---------------------------------------------------------------- x86_64 */

/* Intel SDM vol. 3A 6.12.1.1 (INT n checks the gate's DPL),
 * 5.9 (privileged instructions), 6.12 (stack switch through TSS.RSP0
 * on a privilege change), 6.13 (error codes); vol. 2B SYSCALL, SYSRET,
 * SYSENTER.  The user programs' system call stubs take the call
 * number and the argument as (rdi, rsi) and pass them as (rax, rdi). */

__asm__(
    ".section .user.text, \"ax\", @progbits\n"
    "user_int80: mov %rdi, %rax\n"
    "    mov %rsi, %rdi\n"
    "int80_fault: int $0x80\n"
    "    ret\n"
    "user_syscall: mov %rdi, %rax\n"
    "    mov %rsi, %rdi\n"
    "syscall_fault: syscall\n"
    "    ret\n"
    /* SYSEXIT returns to rdx with rsp = rcx */
    "user_sysenter: mov %rdi, %rax\n"
    "    mov %rsi, %rdi\n"
    "    mov %rsp, %rcx\n"
    "    lea 1f(%rip), %rdx\n"
    "sysenter_fault: sysenter\n"
    "1:  ret\n"
    /* one instruction each */
    "prog_kernel_read: movabs $0x8000001000, %rax\n"
    "kernel_read_fault: mov (%rax), %rax\n"
    "    jmp user_exit\n"
    "prog_ro_write: movabs $0x8000000000, %rax\n"
    "ro_write_fault: movq $1, (%rax)\n"
    "    jmp user_exit\n"
    "prog_hlt: nop\n"
    "hlt_fault: hlt\n"
    "    jmp user_exit\n"
    "prog_cli: nop\n"
    "cli_fault: cli\n"
    "    jmp user_exit\n"
    "prog_out: mov $0x3f8, %edx\n"
    "    mov $0x21, %al\n"
    "out_fault: outb %al, %dx\n"
    "    jmp user_exit\n"
    "prog_int81: nop\n"
    "int81_fault: int $0x81\n"
    "    jmp user_exit\n"
    "user_exit: xor %eax, %eax\n"
    "    xor %edi, %edi\n"
    "    int $0x80\n"
    ".text\n");

extern uint64_t user_int80(uint64_t number, uint64_t argument);
extern uint64_t user_syscall(uint64_t number, uint64_t argument);
extern uint64_t user_sysenter(uint64_t number, uint64_t argument);
extern void prog_kernel_read(void), prog_ro_write(void), prog_hlt(void), prog_cli(void);
extern void prog_out(void), prog_int81(void);
extern const char int80_fault[], syscall_fault[], sysenter_fault[], kernel_read_fault[];
extern const char ro_write_fault[], hlt_fault[], cli_fault[], out_fault[], int81_fault[];

static USER_DATA char msg_int80[] = "hello from ring 3 through int $0x80\n";
static USER_DATA char msg_syscall[] = "hello from ring 3 through syscall\n";
static USER_DATA char msg_sysenter[] = "hello from ring 3 through sysenter\n";

static USER_TEXT void prog_int80_hello(void)
{
    user_int80(SYS_EXIT, user_int80(SYS_WRITE, (uint64_t)(uintptr_t)msg_int80));
}

static USER_TEXT void prog_syscall_hello(void)
{
    user_syscall(SYS_EXIT, user_syscall(SYS_WRITE, (uint64_t)(uintptr_t)msg_syscall));
}

static USER_TEXT void prog_sysenter_hello(void)
{
    user_int80(SYS_EXIT, user_sysenter(SYS_WRITE, (uint64_t)(uintptr_t)msg_sysenter));
}

static const struct program programs[] = {
    { "int $0x80 (DPL 3 gate)", prog_int80_hello, int80_fault, 0 },
    { "syscall with EFER.SCE=0", prog_syscall_hello, syscall_fault, NO_SCE },
    { "syscall", prog_syscall_hello, syscall_fault, 0 },
    { "sysenter", prog_sysenter_hello, sysenter_fault, 0 },
    { "read of a kernel page", prog_kernel_read, kernel_read_fault, ERROR | ADDRESS },
    { "write to a read-only user page", prog_ro_write, ro_write_fault, ERROR | ADDRESS },
    { "hlt", prog_hlt, hlt_fault, ERROR },
    { "cli", prog_cli, cli_fault, ERROR },
    { "outb to the UART, IOPL 0", prog_out, out_fault, ERROR },
    { "int $0x81 (DPL 0 gate)", prog_int81, int81_fault, ERROR },
};

static const char *stack_name(uint64_t sp)
{
    if (sp >= (uint64_t)(uintptr_t)trap_stack && sp < (uint64_t)(uintptr_t)trap_stack_top)
        return "rsp0";
    return "elsewhere";
}

static void handler(struct trap_frame *frame)
{
    int fast = frame->vector == VECTOR_SYSCALL || frame->vector == VECTOR_SYSENTER;
    int user = fast || (frame->cs & 3) == 3;
    int syscall = fast || (frame->vector == 0x80 && user);

    if (!user) {
        console_puts("user: exception in the kernel, vector=");
        console_put_hex(frame->vector, 2);
        console_putc('\n');
        machine_exit(3);
    }
    if (syscall && frame->rax == SYS_EXIT)
        user_leave(frame->rdi);
    record(frame->vector, frame->error, frame->rip, read_cr2(), frame->rflags, frame->rsp,
           frame->cs | frame->ss << 16, stack_name((uint64_t)(uintptr_t)frame));
    if (syscall && frame->rax == SYS_WRITE) {
        frame->rax = sys_write(frame->rdi);
        return;
    }
    user_leave(~0ULL);
}

static void put_vector(void)
{
    console_puts("vector=");
    if (seen.vector == VECTOR_SYSCALL)
        console_puts("syscall");
    else if (seen.vector == VECTOR_SYSENTER)
        console_puts("sysenter");
    else
        console_put_hex(seen.vector, 2);
}

static void print_seen(void)
{
    put_vector();
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
    console_puts(" cs=");
    console_put_hex(seen.selectors & 0xffff, 2);
    console_puts(" ss=");
    console_put_hex(seen.selectors >> 16, 2);
    console_puts(" stack=");
    console_puts(seen.stack);
    console_puts(" user_rsp=");
    console_puts(user_sp_name(seen.user_sp));
}

static void map_test_pages(void)
{
    *mmu_pte(PAGE_USER_RO, 1) = page_alloc() | PTE_USER_RO;
    *mmu_pte(PAGE_KERNEL, 1) = page_alloc() | PTE_KERNEL_RW | PTE_NX;
    mmu_flush_all();
}

static void before(const struct program *p)
{
    if (p->flags & NO_SCE)
        wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~EFER_SCE);
}

static void after(const struct program *p)
{
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
    (void)p;
}

#elif defined(__aarch64__)

/* --------------------------------------------------------------- aarch64 */

/* Arm ARM chapter D1 (exceptions from EL0 use the "lower EL,
 * AArch64" entries, VBAR_EL1 + 0x400, and SP_EL1), ESR_EL1 (the
 * syndromes of SVC, trapped MSR/MRS (EC 0x18), WFI (EC 0x01), data
 * aborts from EL0 (EC 0x24)), SCTLR_EL1 (UMA, nTWI).  The system call stub
 * takes the number and the argument in (x0, x1) and passes them as
 * (x8, x0), as Linux does. */

__asm__(
    ".section .user.text, \"ax\", @progbits\n"
    "user_svc: mov x8, x0\n"
    "    mov x0, x1\n"
    "svc_fault: svc #0\n"
    "    ret\n"
    "prog_kernel_read: movz x1, #0x1000\n"
    "    movk x1, #0x80, lsl #32\n"
    "kernel_read_fault: ldr x0, [x1]\n"
    "    b user_exit\n"
    "prog_ro_write: mov x1, #0x8000000000\n"
    "ro_write_fault: str x0, [x1]\n"
    "    b user_exit\n"
    "prog_mrs: nop\n"
    "mrs_fault: mrs x0, sctlr_el1\n"
    "    b user_exit\n"
    "prog_daif: nop\n"
    "daif_fault: msr daifset, #2\n"
    "    b user_exit\n"
    "prog_wfi: nop\n"
    "wfi_fault: wfi\n"
    "    b user_exit\n"
    "user_exit: mov x8, #0\n"
    "    mov x0, #0\n"
    "    svc #0\n"
    ".text\n");

extern uint64_t user_svc(uint64_t number, uint64_t argument);
extern void prog_kernel_read(void), prog_ro_write(void), prog_mrs(void), prog_daif(void);
extern void prog_wfi(void);
extern const char svc_fault[], kernel_read_fault[], ro_write_fault[], mrs_fault[];
extern const char daif_fault[], wfi_fault[];

static USER_DATA char msg_svc[] = "hello from EL0 through svc\n";

static USER_TEXT void prog_svc_hello(void)
{
    user_svc(SYS_EXIT, user_svc(SYS_WRITE, (uint64_t)(uintptr_t)msg_svc));
}

static const struct program programs[] = {
    { "svc #0", prog_svc_hello, svc_fault, 0 },
    { "read of a kernel page", prog_kernel_read, kernel_read_fault, ADDRESS },
    { "write to a read-only user page", prog_ro_write, ro_write_fault, ADDRESS },
    { "mrs sctlr_el1", prog_mrs, mrs_fault, 0 },
    { "msr daifset, SCTLR_EL1.UMA=0", prog_daif, daif_fault, 0 },
    { "wfi, SCTLR_EL1.nTWI=0", prog_wfi, wfi_fault, TRAP_WFI },
};

static void handler(struct trap_frame *frame)
{
    uint64_t esr = frame->esr;
    int syscall = ESR_EC(esr) == EC_SVC64;
    uint64_t sp = (uint64_t)(uintptr_t)frame;

    if (frame->vector != VECTOR_LOWER_A64) {
        console_puts("user: exception in the kernel, esr=");
        console_put_hex(esr, 8);
        console_putc('\n');
        machine_exit(3);
    }
    if (syscall && frame->x[8] == SYS_EXIT)
        user_leave(frame->x[0]);
    /* The kernel's stack: SP_EL1, just below where main() called
     * user_run(). */
    record(frame->vector, esr, frame->elr, frame->far, frame->spsr, frame->sp_el0, 0,
           sp < kernel_sp && kernel_sp - sp < 4096 ? "sp_el1" : "elsewhere");
    if (syscall && frame->x[8] == SYS_WRITE) {
        frame->x[0] = sys_write(frame->x[0]);
        return;
    }
    user_leave(~0ULL);
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
    console_puts(" spsr=");
    console_put_hex(seen.status & 0x0fffffff, 8);
    console_puts(" stack=");
    console_puts(seen.stack);
    console_puts(" sp_el0=");
    console_puts(user_sp_name(seen.user_sp));
}

static void map_test_pages(void)
{
    *mmu_pte(PAGE_USER_RO, 1) = page_alloc() | PTE_USER_RO;
    *mmu_pte(PAGE_KERNEL, 1) = page_alloc() | PTE_KERNEL_RW;
    mmu_flush_all();
}

static void before(const struct program *p)
{
    if (p->flags & TRAP_WFI)
        write_sysreg(sctlr_el1, read_sysreg(sctlr_el1) & ~SCTLR_NTWI);
}

static void after(const struct program *p)
{
    write_sysreg(sctlr_el1, read_sysreg(sctlr_el1) | SCTLR_NTWI);
    (void)p;
}

#endif

int main(void)
{
    traps_init(handler);
    mmu_init();
    map_test_pages();
    console_puts("user: " ARCH_NAME "\n");
    for (size_t i = 0; i < sizeof(programs) / sizeof(programs[0]); i++) {
        const struct program *p = &programs[i];
        uint64_t value;

        current = p;
        seen.count = 0;
        before(p);
        kernel_sp = read_sp();
        value = user_run(p->entry, USER_STACK_TOP);
        after(p);
        console_puts("user: ");
        console_puts(p->name);
        console_puts(": ");
        print_seen();
        if (value != ~0ULL) {
            console_puts(" exit=");
            console_put_dec(value);
        }
        console_putc('\n');
    }
    console_puts("user: done\n");
    return 0;
}
