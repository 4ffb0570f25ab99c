/*
 * start.S - the pc firmware's first and last instructions.
 *
 * The ROM is mapped at the top of the 32-bit address space and the CPU
 * starts at the reset vector, 0xfffffff0.  emu's pc board starts it in
 * 32-bit protected mode with flat segments and paging off (Unicorn
 * cannot give a CPU the real-mode reset state: see firmware/README.md),
 * so the code here is 32-bit: load our own GDT, reload every segment,
 * run fw_main() on a stack in low RAM, then enter the kernel's PVH
 * entry point as the PVH ABI says (xen/include/public/arch-x86/hvm/
 * start_info.h): 32-bit protected mode, paging off, flat CS/DS/ES/SS,
 * EBX = the physical address of struct hvm_start_info.
 */
#include "boot.h"

        .code32
        .section .text.entry, "ax", @progbits
        .globl  entry32
entry32:
        cli
        cld
        lgdtl   rom_gdt_desc
        ljmpl   $BOOT_CS, $1f
1:      movl    $BOOT_DS, %eax
        movl    %eax, %ds
        movl    %eax, %es
        movl    %eax, %ss
        movl    %eax, %fs
        movl    %eax, %gs
        movl    $START_INFO - 0x100, %esp      /* top of the stack: 0x6000 */
        call    fw_main                         /* returns the PVH entry point */

        /* fw_main has moved GDTR to the GDT at BOOT_GDT (same contents). */
        movl    %eax, FW_STACK_BOTTOM           /* the jump target, in RAM */
        pushl   $2
        popfl                                   /* EFLAGS: only the fixed bit */
        xorl    %eax, %eax
        xorl    %ecx, %ecx
        xorl    %edx, %edx
        xorl    %esi, %esi
        xorl    %edi, %edi
        xorl    %ebp, %ebp
        movl    %eax, %esp
        movl    $START_INFO, %ebx
        jmpl    *FW_STACK_BOTTOM

        .globl  load_gdt
load_gdt:                                       /* void load_gdt(const void *desc) */
        movl    4(%esp), %eax
        lgdtl   (%eax)
        ret

        .section .rodata, "a", @progbits
        .balign 8
        .globl  rom_gdt
rom_gdt:
        .quad   0                               /* null */
        .quad   0                               /* unused */
        .quad   0x00CF9B000000FFFF              /* 0x10: code, 32-bit, flat, accessed */
        .quad   0x00CF93000000FFFF              /* 0x18: data, flat, accessed */
rom_gdt_end:
        .balign 4
rom_gdt_desc:
        .word   rom_gdt_end - rom_gdt - 1
        .long   rom_gdt

        /* The reset vector: the last 16 bytes of the ROM. */
        .section .reset, "ax", @progbits
        .globl  reset_vector
reset_vector:
        jmp     entry32
        .fill   16 - (. - reset_vector), 1, 0xf4    /* hlt */
