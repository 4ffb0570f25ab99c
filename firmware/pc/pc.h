/*
 * pc.h - the pc firmware's memory map and MP table (e820.c, mptable.c),
 * with SeaBIOS 1.16's addresses and sizes (src/config.h).
 */
#ifndef PC_H
#define PC_H

#include <stdint.h>

#define E820_RAM        1
#define E820_RESERVED   2
#define E820_ACPI       3
#define E820_MAX        32      /* the PVH memory map's room (boot.h MEMMAP_MAX) */

#define EBDA            0x9fc00     /* the last KiB of base memory */
/* The EBDA's last dword: REBOOT_MAGIC once the firmware has booted a
 * kernel; the board clears it at every machine reset (emu/boards/pc.py
 * REBOOT_MARK), as QEMU's reset puts back the shadowed f-segment where
 * SeaBIOS keeps its HaveRunPost. */
#define REBOOT_MARK     0x9fffc
#define REBOOT_MAGIC    0x746f6f62u /* "boot" */
#define LOWRAM_END      0xa0000
#define FSEG            0xf0000
#define FSEG_SIZE       0x10000
#define BIOS_AREA       0xfffc0000u /* paravirt.c: 256 KiB reserved below 4 GiB */
#define BIOS_AREA_SIZE  0x40000
#define HIGH_ZONE_MAX   0x1000000   /* BUILD_MAX_HIGHTABLE */
#define HIGH_ZONE_MIN   0x40000     /* BUILD_MIN_HIGHTABLE */
#define HIGH_ALIGN      16          /* MALLOC_MIN_ALIGN */
/* What SeaBIOS 1.16 keeps of its high zone on QEMU 7.2's pc (measured:
 * 128 KiB below the end of RAM under 4 GiB for 128 MiB to 5 GiB). */
#define HIGH_TABLES     0x20000

struct e820_entry {
    uint64_t start;
    uint64_t size;
    uint32_t type;
};

struct e820_map {
    int count;
    struct e820_entry e[E820_MAX];
};

void e820_add(struct e820_map *m, uint64_t start, uint64_t size, uint32_t type);
/* Add SeaBIOS's reservations to the map made from etc/e820; returns the
 * start of the high tables area (HIGH_TABLES bytes), 0 if there is none. */
uint32_t e820_finish(struct e820_map *m);

/* Where the firmware's tables go: [fseg, fseg_end) in the last KiB of base
 * memory (what SeaBIOS puts in the f-segment, which is ROM on emu) and
 * [high, high_end) at the top of RAM below 4 GiB (SeaBIOS's high zone);
 * each user takes its part and moves the bounds. */
struct acpi_zones {
    uint32_t fseg, fseg_end;
    uint32_t high, high_end;
};

struct fw_cfg;
/* Write the MP floating pointer at EBDA and its configuration table
 * after it (or at the bottom of the high zone if it does not fit). */
void mptable_setup(struct fw_cfg *fw, struct acpi_zones *z);
/* Run etc/table-loader (acpi.c); returns the RSDP's address, 0 if none. */
uint32_t acpi_setup(struct fw_cfg *fw, struct acpi_zones *z);
/* Set up the PCI functions of bus 0 as SeaBIOS does (pci.c). */
void pci_setup(void);

/* Program the MTRRs as SeaBIOS does; ram_size: the end of RAM below
 * 4 GiB as etc/e820 gives it (SeaBIOS's RamSize). */
void mtrr_setup(uint32_t ram_size);

struct fw_cfg;
/* Stop with `what` if [addr, addr + size) overlaps the firmware's stack
 * and boot structures (main.c). */
void check_range(const char *what, uint32_t addr, uint32_t size);
/* Load a bzImage published as QEMU publishes it and build its zero page
 * from the memory map (linux.c); returns code32_start and the zero page's
 * address in *zero_page. */
uint32_t linux_load(struct fw_cfg *fw, const struct e820_map *m, uint32_t *zero_page);

#endif
