/*
 * entry.S - x86_64 kernel entry points for the images that take
 * exceptions (see lib/traps.h):
 *
 *   trap_stubs      256 stubs of 16 bytes, one per IDT vector: push a
 *                   0 error code unless the CPU pushed one, push the
 *                   vector, jump to trap_common
 *   trap_common     save the general registers (struct trap_frame of
 *                   cpu.h), call the handler, restore them, iretq
 *   syscall_entry   LSTAR: SYSCALL from ring 3 (no stack switch by the
 *                   CPU: switch to trap_stack here), build the same
 *                   frame with vector VECTOR_SYSCALL, sysretq
 *   sysenter_entry  SYSENTER_EIP: user passes its RSP in rcx and the
 *                   return RIP in rdx (what SYSEXIT loads), sysexitq
 *                   (the frames of both hold the cs and ss the CPU
 *                   loaded on the way in, the kernel's)
 *   user_run / user_leave
 *
 * Intel SDM vol. 3A 6.14 (64-bit interrupt frames: the CPU aligns RSP
 * to 16 bytes and pushes SS, RSP, RFLAGS, CS, RIP, then the error
 * code), vol. 2B SYSCALL, SYSRET, SYSENTER, SYSEXIT, IRET.
 */

#define SEL_KERNEL_DATA 0x10
#define SEL_USER_CS     0x2b
#define SEL_USER_SS     0x23
#define VECTOR_SYSCALL  0x100
#define VECTOR_SYSENTER 0x101

        .text

        .macro  SAVE_GPRS
        push    %r15
        push    %r14
        push    %r13
        push    %r12
        push    %r11
        push    %r10
        push    %r9
        push    %r8
        push    %rbp
        push    %rdi
        push    %rsi
        push    %rdx
        push    %rcx
        push    %rbx
        push    %rax
        .endm

        .macro  RESTORE_GPRS
        pop     %rax
        pop     %rbx
        pop     %rcx
        pop     %rdx
        pop     %rsi
        pop     %rdi
        pop     %rbp
        pop     %r8
        pop     %r9
        pop     %r10
        pop     %r11
        pop     %r12
        pop     %r13
        pop     %r14
        pop     %r15
        .endm

/* ---- the IDT stubs: trap_stubs + 16 * vector ---- */
        .balign 16
        .globl  trap_stubs
trap_stubs:
        .set    vec, 0
        .rept   256
        .balign 16
        /* SDM vol. 3A table 6-1: these push an error code */
        .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
        .else
        pushq   $0
        .endif
        pushq   $vec
        jmp     trap_common
        .set    vec, vec + 1
        .endr

/* 15 registers + vector + error + the CPU's 5 words = 22 words from a
 * 16-byte aligned RSP: the call below is made with RSP 16-aligned. */
trap_common:
        SAVE_GPRS
        mov     %rsp, %rdi
        cld
        call    *trap_handler(%rip)
        RESTORE_GPRS
        add     $16, %rsp               /* vector, error code */
        iretq

/* ---- SYSCALL: rcx = user RIP, r11 = user RFLAGS, RFLAGS masked by
 * FMASK, CS/SS from STAR[47:32]; RSP is still the user's ---- */
        .globl  syscall_entry
syscall_entry:
        mov     %rsp, syscall_user_rsp(%rip)
        lea     trap_stack_top(%rip), %rsp
        /* the frame's ss and cs: those SYSCALL loaded (from STAR) */
        sub     $8, %rsp
        mov     %ss, (%rsp)
        pushq   syscall_user_rsp(%rip)
        push    %r11                    /* RFLAGS */
        sub     $8, %rsp
        mov     %cs, (%rsp)
        push    %rcx                    /* RIP */
        pushq   $0
        pushq   $VECTOR_SYSCALL
        SAVE_GPRS
        mov     %rsp, %rdi
        cld
        call    *trap_handler(%rip)
        RESTORE_GPRS
        add     $16, %rsp
        pop     %rcx                    /* RIP for SYSRET */
        add     $8, %rsp                /* CS */
        pop     %r11                    /* RFLAGS for SYSRET */
        pop     %rsp                    /* back on the user stack */
        sysretq

/* ---- SYSENTER: CS/SS from SYSENTER_CS, RSP = SYSENTER_ESP, RIP =
 * SYSENTER_EIP; nothing of the user's is saved by the CPU ---- */
        .globl  sysenter_entry
sysenter_entry:
        /* the frame's ss and cs: those SYSENTER loaded (SYSENTER_CS),
         * rflags: the kernel's */
        sub     $8, %rsp
        mov     %ss, (%rsp)
        push    %rcx                    /* user RSP (for SYSEXIT) */
        pushfq
        sub     $8, %rsp
        mov     %cs, (%rsp)
        push    %rdx                    /* user RIP (for SYSEXIT) */
        pushq   $0
        pushq   $VECTOR_SYSENTER
        SAVE_GPRS
        mov     %rsp, %rdi
        cld
        call    *trap_handler(%rip)
        RESTORE_GPRS
        add     $16, %rsp
        pop     %rdx                    /* RIP */
        add     $16, %rsp               /* CS, RFLAGS */
        pop     %rcx                    /* RSP */
        add     $8, %rsp                /* SS */
        sysexitq

/* ---- uint64_t user_run(void (*entry)(void), uint64_t sp) ---- */
        .globl  user_run
user_run:
        push    %rbx
        push    %rbp
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        mov     %rsp, user_kernel_rsp(%rip)
        pushq   $SEL_USER_SS
        push    %rsi                    /* RSP */
        pushq   $2                      /* RFLAGS: IF = 0, IOPL = 0 */
        pushq   $SEL_USER_CS
        push    %rdi                    /* RIP */
        xor     %eax, %eax
        xor     %ebx, %ebx
        xor     %ecx, %ecx
        xor     %edx, %edx
        xor     %esi, %esi
        xor     %edi, %edi
        xor     %ebp, %ebp
        xor     %r8d, %r8d
        xor     %r9d, %r9d
        xor     %r10d, %r10d
        xor     %r11d, %r11d
        xor     %r12d, %r12d
        xor     %r13d, %r13d
        xor     %r14d, %r14d
        xor     %r15d, %r15d
        iretq

/* ---- NORETURN void user_leave(uint64_t value) ---- */
        .globl  user_leave
user_leave:
        mov     user_kernel_rsp(%rip), %rsp
        mov     $SEL_KERNEL_DATA, %eax  /* the way to ring 0 nulled them */
        mov     %eax, %ss
        mov     %eax, %ds
        mov     %eax, %es
        mov     %rdi, %rax
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %rbp
        pop     %rbx
        ret

        .bss
        .balign 8
user_kernel_rsp:        .skip 8
syscall_user_rsp:       .skip 8

        .balign 16
        .globl  trap_stack, trap_stack_top, df_stack, df_stack_top
        .globl  nmi_stack, nmi_stack_top
trap_stack:     .skip 16384
trap_stack_top:
df_stack:       .skip 8192
df_stack_top:
nmi_stack:      .skip 8192
nmi_stack_top:
