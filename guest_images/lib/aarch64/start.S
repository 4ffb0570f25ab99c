/*
 * start.S - aarch64 start code for QEMU's `virt` machine.
 *
 * QEMU loads the ELF at its physical addresses and starts the CPU at
 * e_entry (_start) at EL1, MMU and caches off, interrupts (DAIF)
 * masked.  There is no stack yet.  x0 is the device tree's address
 * when a boot loader passes one (emu's firmware, Linux's arm64 boot
 * protocol), 0 after QEMU's direct -kernel of an ELF (which puts its
 * device tree at the base of RAM, when it fits below the image);
 * arch_entry() gets it as is.
 */

#define CPACR_FPEN_ALL  (3 << 20)   /* no trapping of FP/SIMD at EL0/EL1 */

        .section .text.start, "ax", @progbits
        .globl  _start
_start:
        /* Keep x0 (the device tree, or 0) for arch_entry in x19, a
         * callee-saved register that nothing below touches. */
        mov     x19, x0

        /* Stack: the top of a buffer in .bss (16-byte aligned). */
        adrp    x1, stack_top
        add     x1, x1, :lo12:stack_top
        mov     sp, x1

        /* Allow FP/SIMD instructions, in case the compiler emits any
         * (the images are built with -mgeneral-regs-only). */
        mov     x1, #CPACR_FPEN_ALL
        msr     cpacr_el1, x1
        isb

        /* Zero .bss, 16 bytes at a time (both ends are 16-byte aligned). */
        adrp    x1, __bss_start
        add     x1, x1, :lo12:__bss_start
        adrp    x2, __bss_end
        add     x2, x2, :lo12:__bss_end
1:      cmp     x1, x2
        b.hs    2f
        stp     xzr, xzr, [x1], #16
        b       1b

2:      mov     x0, x19         /* arch_entry(x0 at entry) */
        bl      arch_entry
3:      wfi                     /* arch_entry never returns */
        b       3b

        .section .bss, "aw", @nobits
        .balign 16
stack:  .skip   16384
stack_top:
