/*
 * entry.S - AArch64 exception vectors and user mode entry for the
 * images that take exceptions (see lib/traps.h).
 *
 *   vector_table    16 entries of 128 bytes (VBAR_EL1 is 2 KiB
 *                   aligned): current EL with SP0, current EL with
 *                   SPx, lower EL AArch64, lower EL AArch32, each with
 *                   synchronous, IRQ, FIQ and SError entries (Arm ARM,
 *                   "Exception vectors").  Each entry saves x0/x1, puts its own
 *                   offset in x0 and branches to trap_common.
 *   trap_common     saves the rest of struct trap_frame (cpu.h) on
 *                   SP_EL1, calls the handler, restores ELR_EL1,
 *                   SPSR_EL1, SP_EL0 and the registers, eret.
 *   user_run / user_leave
 */

#define FRAME_SIZE      304     /* sizeof(struct trap_frame) */
#define OFF_SP_EL0      248
#define OFF_ELR         256
#define OFF_ESR         272
#define OFF_VECTOR      288
#define SPSR_EL0T_MASKED 0x3c0  /* EL0t, D, A, I and F masked */

        .text
        .balign 2048
        .globl  vector_table
vector_table:
        .set    off, 0
        .rept   16
        .balign 128
        sub     sp, sp, #FRAME_SIZE
        stp     x0, x1, [sp, #0]
        mov     x0, #off
        b       trap_common
        .set    off, off + 0x80
        .endr

trap_common:
        stp     x2, x3, [sp, #16]
        stp     x4, x5, [sp, #32]
        stp     x6, x7, [sp, #48]
        stp     x8, x9, [sp, #64]
        stp     x10, x11, [sp, #80]
        stp     x12, x13, [sp, #96]
        stp     x14, x15, [sp, #112]
        stp     x16, x17, [sp, #128]
        stp     x18, x19, [sp, #144]
        stp     x20, x21, [sp, #160]
        stp     x22, x23, [sp, #176]
        stp     x24, x25, [sp, #192]
        stp     x26, x27, [sp, #208]
        stp     x28, x29, [sp, #224]
        mrs     x1, sp_el0
        stp     x30, x1, [sp, #240]
        mrs     x1, elr_el1
        mrs     x2, spsr_el1
        stp     x1, x2, [sp, #OFF_ELR]
        mrs     x1, esr_el1
        mrs     x2, far_el1
        stp     x1, x2, [sp, #OFF_ESR]
        str     x0, [sp, #OFF_VECTOR]
        mov     x0, sp
        adrp    x1, trap_handler
        ldr     x1, [x1, :lo12:trap_handler]
        blr     x1
        ldp     x1, x2, [sp, #OFF_ELR]
        msr     elr_el1, x1
        msr     spsr_el1, x2
        ldr     x1, [sp, #OFF_SP_EL0]
        msr     sp_el0, x1
        ldp     x0, x1, [sp, #0]
        ldp     x2, x3, [sp, #16]
        ldp     x4, x5, [sp, #32]
        ldp     x6, x7, [sp, #48]
        ldp     x8, x9, [sp, #64]
        ldp     x10, x11, [sp, #80]
        ldp     x12, x13, [sp, #96]
        ldp     x14, x15, [sp, #112]
        ldp     x16, x17, [sp, #128]
        ldp     x18, x19, [sp, #144]
        ldp     x20, x21, [sp, #160]
        ldp     x22, x23, [sp, #176]
        ldp     x24, x25, [sp, #192]
        ldp     x26, x27, [sp, #208]
        ldp     x28, x29, [sp, #224]
        ldr     x30, [sp, #240]
        add     sp, sp, #FRAME_SIZE
        eret

/* ---- uint64_t user_run(void (*entry)(void), uint64_t sp) ---- */
        .globl  user_run
user_run:
        stp     x29, x30, [sp, #-96]!
        stp     x19, x20, [sp, #16]
        stp     x21, x22, [sp, #32]
        stp     x23, x24, [sp, #48]
        stp     x25, x26, [sp, #64]
        stp     x27, x28, [sp, #80]
        mov     x2, sp
        adrp    x3, user_kernel_sp
        str     x2, [x3, :lo12:user_kernel_sp]
        msr     sp_el0, x1
        msr     elr_el1, x0
        mov     x2, #SPSR_EL0T_MASKED
        msr     spsr_el1, x2
        .irp    r, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30
        mov     x\r, #0
        .endr
        eret

/* ---- NORETURN void user_leave(uint64_t value) ---- */
        .globl  user_leave
user_leave:
        adrp    x1, user_kernel_sp
        ldr     x1, [x1, :lo12:user_kernel_sp]
        mov     sp, x1
        ldp     x19, x20, [sp, #16]
        ldp     x21, x22, [sp, #32]
        ldp     x23, x24, [sp, #48]
        ldp     x25, x26, [sp, #64]
        ldp     x27, x28, [sp, #80]
        ldp     x29, x30, [sp], #96
        ret

        .bss
        .balign 8
user_kernel_sp: .skip 8
