/*
 * boot.h - where the pc firmware keeps its stack and the PVH boot
 * structures: the same addresses emu's direct boot uses
 * (emu/boot/pvh.py), so a kernel sees the same memory either way.
 */
#ifndef BOOT_H
#define BOOT_H

#define FW_STACK_BOTTOM 0x5000  /* the firmware's stack: 0x5000-0x5fff */
/* What start.S enters the kernel with, left at the stack's bottom by
 * fw_main as it returns: the jump target (fw_main's return value), EBX
 * and ESI. */
#define BOOT_JUMP       FW_STACK_BOTTOM
#define BOOT_EBX        (FW_STACK_BOTTOM + 4)
#define BOOT_ESI        (FW_STACK_BOTTOM + 8)
#define BOOT_GDT        0x6000  /* null, unused, code32 0x10, data32 0x18 */
#define START_INFO      0x6100  /* struct hvm_start_info */
#define MODLIST         0x6140  /* struct hvm_modlist_entry[1]: the initrd */
#define MEMMAP          0x6200  /* struct hvm_memmap_table_entry[MEMMAP_MAX] */
#define MEMMAP_MAX      32
#define CMDLINE         0x7000  /* NUL-terminated command line */
#define BOOT_AREA_END   0x8000
#define CMDLINE_MAX     (BOOT_AREA_END - CMDLINE - 1)

#define BOOT_CS         0x10
#define BOOT_DS         0x18

#endif
