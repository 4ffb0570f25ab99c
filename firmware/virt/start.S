/*
 * start.S - the virt firmware's entry: flash at address 0, where the CPU
 * starts (EL1, MMU and caches off, DAIF masked) when QEMU's virt
 * machine runs firmware, and the jump into the kernel with the arm64
 * Linux boot protocol's registers (Documentation/arm64/booting.rst):
 * x0 = the device tree's physical address, x1 = x2 = x3 = 0.
 */
#include "boot.h"

        .section .text.entry, "ax", @progbits
        .globl  _start
_start:
        ldr     x0, =FW_STACK_TOP
        mov     sp, x0
        bl      fw_main                 /* does not return */
1:      wfi
        b       1b

        .globl  boot_kernel
boot_kernel:                            /* boot_kernel(entry, dtb) */
        mov     x4, x0
        mov     x0, x1
        mov     x1, xzr
        mov     x2, xzr
        mov     x3, xzr
        mov     x5, xzr
        mov     sp, x5
        mov     x30, xzr
        br      x4
