/*
 * boot.h - the virt firmware's use of RAM (which starts at 0x40000000):
 * the device tree at the base of RAM, where QEMU also puts it when it
 * boots firmware (hw/arm/boot.c), and the firmware's stack above it.
 * Kernels must load above FW_AREA_END.
 */
#ifndef BOOT_H
#define BOOT_H

#define RAM_BASE        0x40000000UL
#define DTB_ADDR        RAM_BASE
#define DTB_MAX         0x10000UL               /* 64 KiB */
#define FW_STACK_TOP    (RAM_BASE + 0x20000UL)  /* stack: 0x40010000-0x4001ffff */
#define FW_AREA_END     FW_STACK_TOP

#endif
