/*
 * start.S - the pc firmware's first and last instructions.
 *
 * The ROM is mapped at the top of the 32-bit address space and the CPU
 * starts at the reset vector, 0xfffffff0.  A real PC (and QEMU) starts
 * there in real mode with CS.base = 0xffff0000; emu's pc board starts it
 * in 32-bit protected mode with flat segments and paging off (Unicorn
 * cannot give a CPU the real-mode reset state: see firmware/README.md).
 * The reset vector's first instructions mean the same in 16-bit and in
 * 32-bit code and look at CR0.PE: from real mode the firmware switches
 * to protected mode itself, from protected mode it goes straight on.
 * Then: load our own GDT, reload every segment, run fw_main() on a stack
 * in low RAM, and enter the kernel's PVH entry point as the PVH ABI says
 * (xen/include/public/arch-x86/hvm/start_info.h): 32-bit protected mode,
 * paging off, flat CS/DS/ES/SS, EBX = the physical address of struct
 * hvm_start_info; or a bzImage's code32_start as Linux's 32-bit boot
 * protocol says (linux.c): the same state, ESI = the zero page.
 */
#include "boot.h"

        .code32
        .section .text.entry, "ax", @progbits
        .globl  entry32
entry32:
        cli
        cld
        lgdtl   %cs:rom_gdt_desc                /* DS may be a real-mode segment */
        ljmpl   $BOOT_CS, $1f
1:      movl    $BOOT_DS, %eax
        movl    %eax, %ds
        movl    %eax, %es
        movl    %eax, %ss
        movl    %eax, %fs
        movl    %eax, %gs
        movl    $START_INFO - 0x100, %esp      /* top of the stack: 0x6000 */
        call    fw_main                         /* returns the entry point */

        /* fw_main has moved GDTR to the GDT at BOOT_GDT (same contents)
         * and left EBX and ESI for the kernel at BOOT_EBX and BOOT_ESI:
         * PVH wants EBX = START_INFO, Linux's 32-bit protocol ESI = the
         * zero page. */
        movl    %eax, BOOT_JUMP                 /* the jump target, in RAM */
        pushl   $2
        popfl                                   /* EFLAGS: only the fixed bit */
        xorl    %eax, %eax
        xorl    %ecx, %ecx
        xorl    %edx, %edx
        xorl    %edi, %edi
        xorl    %ebp, %ebp
        movl    %eax, %esp
        movl    BOOT_EBX, %ebx
        movl    BOOT_ESI, %esi
        jmpl    *BOOT_JUMP

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

        /* The last 256 bytes of the ROM: both ways in, then the reset
         * vector at 0xfffffff0. */
        .section .reset, "ax", @progbits
RESET_SECTION_OFFSET = 0xff00           /* link.ld: .reset at 0xffffff00 = CS.base + 0xff00 */

        .code16
real_mode:                              /* CS.base = 0xffff0000, IP < 0x10000 */
        cli
        cld
        lgdtl   %cs:(RESET_SECTION_OFFSET + real_mode_gdt_desc - real_mode)
        movl    %cr0, %eax
        orb     $1, %al
        movl    %eax, %cr0
        ljmpl   $BOOT_CS, $entry32

        .balign 4
real_mode_gdt_desc:                     /* rom_gdt_desc, within real mode's reach */
        .word   rom_gdt_end - rom_gdt - 1
        .long   rom_gdt

        .code32
        .org    0xe0                    /* within a jnz rel8 of the reset vector */
protected_mode:                         /* flat 32-bit segments already */
        jmp     entry32

        .org    0xf0
        .globl  reset_vector
reset_vector:                           /* the same bytes in 16-bit and 32-bit code */
        .byte   0x0f, 0x20, 0xc0        /* mov %cr0, %eax */
        .byte   0xa8, 0x01              /* test $1, %al: CR0.PE */
        .byte   0x75, protected_mode - (. + 1)  /* jnz protected_mode */
        .byte   0xe9                    /* jmp real_mode (16-bit: rel16) */
        .word   real_mode - (. + 2)
        .fill   16 - (. - reset_vector), 1, 0xf4    /* hlt */
