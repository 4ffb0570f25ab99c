/*
 * start.S - x86_64 start code, entered through PVH.
 *
 * QEMU's `-kernel` loader finds the Xen ELF note below, loads the
 * image's PT_LOAD segments at their physical addresses and has its PVH
 * option ROM jump to pvh_start32 with:
 *   - 32-bit protected mode, paging off, interrupts off,
 *   - flat 4 GiB code and data segments (from a GDT we must not rely on),
 *   - ebx = physical address of struct hvm_start_info,
 *   - no usable stack.
 * We load our own GDT, build identity page tables for the first 4 GiB,
 * switch to 64-bit long mode and call arch_entry(start_info) in C.
 */

#define CR0_PG      (1 << 31)
#define CR4_PAE     (1 << 5)
#define MSR_EFER    0xc0000080
#define EFER_LME    (1 << 8)

#define PTE_P       (1 << 0)    /* present */
#define PTE_W       (1 << 1)    /* writable */
#define PTE_PS      (1 << 7)    /* 2 MiB page (in a page directory entry) */

#define CODE64_SEL  0x08
#define DATA_SEL    0x10

/* ---- the PVH note: "Xen", type 18 = XEN_ELFNOTE_PHYS32_ENTRY ---- */
        .section .note.Xen, "a", @note
        .balign 4
        .long   4               /* name size: "Xen\0" */
        .long   8               /* descriptor size: one 64-bit address */
        .long   18              /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz  "Xen"
        .balign 4
        .quad   pvh_start32     /* physical address of the 32-bit entry */

/* ---- 32-bit entry ---- */
        .section .text.start, "ax", @progbits
        .code32
        .globl  pvh_start32
pvh_start32:
        cli
        cld
        /* ebx holds the start_info address until main: no code below
         * touches it.  Our own GDT first, then reload the data
         * segments from it (cs is reloaded by the far jump). */
        lgdt    gdt_ptr
        movl    $DATA_SEL, %eax
        movl    %eax, %ds
        movl    %eax, %es
        movl    %eax, %ss

        /* Zero .bss now: the page tables built next live there.
         * (The linker script aligns both ends to 16 bytes.) */
        movl    $__bss_start, %edi
        movl    $__bss_end, %ecx
        subl    %edi, %ecx
        shrl    $2, %ecx
        xorl    %eax, %eax
        rep stosl

        /* PML4[0] -> PDPT */
        movl    $pdpt + (PTE_P | PTE_W), pml4
        /* PDPT[0..3] -> the four page directories (1 GiB each) */
        movl    $pd + (PTE_P | PTE_W), %eax
        movl    $pdpt, %edi
        movl    $4, %ecx
1:      movl    %eax, (%edi)
        addl    $4096, %eax
        addl    $8, %edi
        loop    1b
        /* PD entries 0..2047: 2 MiB pages mapping 0..4 GiB 1:1.  The
         * upper half of every 8-byte entry stays zero. */
        movl    $(PTE_P | PTE_W | PTE_PS), %eax
        movl    $pd, %edi
        movl    $2048, %ecx
2:      movl    %eax, (%edi)
        addl    $0x200000, %eax
        addl    $8, %edi
        loop    2b

        /* Turn on long mode: PAE, then CR3, then EFER.LME, then paging. */
        movl    %cr4, %eax
        orl     $CR4_PAE, %eax
        movl    %eax, %cr4
        movl    $pml4, %eax
        movl    %eax, %cr3
        movl    $MSR_EFER, %ecx
        rdmsr
        orl     $EFER_LME, %eax
        wrmsr
        movl    %cr0, %eax
        orl     $CR0_PG, %eax
        movl    %eax, %cr0
        /* Still 32-bit code (compatibility mode) until cs is reloaded. */
        ljmp    $CODE64_SEL, $start64

/* ---- 64-bit entry ---- */
        .code64
start64:
        movl    $DATA_SEL, %eax
        movl    %eax, %ds
        movl    %eax, %es
        movl    %eax, %ss
        movl    %eax, %fs
        movl    %eax, %gs
        movq    $stack_top, %rsp
        movl    %ebx, %edi      /* arch_entry(start_info) */
        call    arch_entry
3:      cli                     /* arch_entry never returns */
        hlt
        jmp     3b

/* ---- our GDT (in .data: the CPU sets "accessed" bits in it) ---- */
        .section .data, "aw", @progbits
        .balign 8
gdt:
        .quad   0                       /* null descriptor */
        .quad   0x00af9a000000ffff      /* 0x08: 64-bit code, DPL 0 */
        .quad   0x00cf92000000ffff      /* 0x10: flat data, DPL 0 */
gdt_end:
gdt_ptr:
        .word   gdt_end - gdt - 1       /* limit */
        .long   gdt                     /* base (32 bits: lgdt in 32-bit mode) */

/* ---- page tables and stack, zeroed by the code above ---- */
        .section .bss.pagetables, "aw", @nobits
        .balign 4096
        .globl  pml4, pdpt, pd
pml4:   .skip   4096
pdpt:   .skip   4096
pd:     .skip   4 * 4096                /* four page directories */

        .section .bss, "aw", @nobits
        .balign 16
stack:  .skip   16384
stack_top:
