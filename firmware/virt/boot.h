/*
 * boot.h - the virt firmware's use of RAM (which starts at 0x40000000).
 *
 * The device tree is 1 MiB, as QEMU's (totalsize FDT_MAX_SIZE). An ELF
 * kernel's goes at the base of RAM (where QEMU puts it when the kernel
 * leaves room, and for firmware); an arm64 Image's after the initrd,
 * 2 MiB aligned (hw/arm/boot.c arm_setup_direct_kernel_boot). The
 * firmware's stack lies in the free space of a tree at the base of RAM
 * (QEMU's, or one an ELF kernel gets, of which the firmware copies only
 * the used part) and below where an arm64 Image can load (0x40080000 at
 * the lowest, for an Image without image_size): 0x40070000-0x4007ffff.
 * ELF kernels and the initrd must load above FW_AREA_END.
 */
#ifndef BOOT_H
#define BOOT_H

#define RAM_BASE        0x40000000UL
#define DTB_ADDR        RAM_BASE
#define DTB_SIZE        0x100000UL              /* QEMU's FDT_MAX_SIZE */
#define DTB_ALIGN       0x200000UL              /* an aarch64 kernel's tree: 2 MiB */
#define FW_STACK_TOP    (RAM_BASE + 0x80000UL)  /* stack: 0x40070000-0x4007ffff */
#define DTB_USED_MAX    0x70000UL               /* an ELF kernel's tree, below the stack */
#define FW_AREA_END     (RAM_BASE + DTB_SIZE)
#define BOOTLOADER_MAX_SIZE 0x1000UL            /* QEMU's boot stub below an Image */
#define KERNEL64_LOAD_ADDR  0x80000UL

#endif
