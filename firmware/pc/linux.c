/*
 * linux.c - boot a Linux/x86 bzImage as QEMU publishes it (hw/i386/x86.c
 * x86_load_linux, after its PVH branch):
 *
 *   FW_CFG_SETUP_ADDR/SIZE/DATA    the setup sectors, QEMU's header changes
 *                                  in (command line pointer, loader type,
 *                                  heap, initrd)
 *   FW_CFG_KERNEL_ADDR/SIZE/DATA   the protected-mode part (at 1 MiB)
 *   FW_CFG_CMDLINE_ADDR/SIZE/DATA  the command line, NUL included
 *   FW_CFG_INITRD_ADDR/SIZE/DATA   the initrd, where QEMU placed it
 *
 * Each item is read to its address, as SeaBIOS's linuxboot_dma option ROM
 * reads them (pc-bios/optionrom/linuxboot_dma.c), the initrd too, unless
 * QEMU put it below RAM's top rather than below initrd_addr_max: then it
 * goes below the top of memory INT 15h E801 reports (under SeaBIOS's
 * high tables), with ramdisk_image changed, as that ROM moves it.  That ROM then runs the
 * kernel's real-mode setup code; this firmware runs in 32-bit protected
 * mode, so it takes the 32-bit boot protocol instead
 * (Documentation/arch/x86/boot.rst, "32-bit BOOT PROTOCOL"): the zero page
 * (struct boot_params) is built over the setup sectors: zeros, the setup
 * header as QEMU left it (0x1f1 to 0x202 + the byte at 0x201) and the
 * memory map SeaBIOS's INT 15h E820 would give (the PVH map, e820.c).
 * start.S then enters code32_start with the boot GDT (__BOOT_CS 0x10,
 * __BOOT_DS 0x18), interrupts off, ESI = the zero page, EBX = EBP = EDI = 0.
 */
#include "fw.h"
#include "boot.h"
#include "pc.h"

#define HDRS_MAGIC      0x53726448      /* "HdrS" */
#define OFF_SETUP_SECTS 0x1f1
#define OFF_JUMP_LEN    0x201           /* the jump's offset byte: header end - 0x202 */
#define OFF_HEADER      0x202
#define OFF_VERSION     0x206
#define OFF_LOADFLAGS   0x211
#define LOADED_HIGH     0x01
#define OFF_CODE32      0x214
#define OFF_RAMDISK_IMAGE 0x218
#define OFF_INITRD_MAX  0x22c
#define OFF_E820_COUNT  0x1e8           /* boot_params.e820_entries */
#define OFF_E820_TABLE  0x2d0           /* boot_params.e820_table[128] */
#define ZERO_PAGE_SIZE  4096

struct boot_e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} __attribute__((packed));

static uint32_t load_item(struct fw_cfg *fw, const char *what, uint16_t addr_key,
                          uint16_t size_key, uint16_t data_key)
{
    uint32_t addr = fw_cfg_u32(fw, addr_key);
    uint32_t size = fw_cfg_u32(fw, size_key);
    check_range(what, addr, size);
    fw_cfg_select(fw, data_key);
    fw_cfg_read(fw, (void *)(uintptr_t)addr, size);
    return addr;
}

/* What SeaBIOS answers to INT 15h AX=E801 as the top of memory
 * (src/system.c handle_15e801, src/malloc.c calcRamSize: the end of the
 * highest RAM or ACPI entry below 4 GiB), as linuxboot_dma.c's
 * get_e801_addr turns it into an address. */
static uint32_t e801_top(const struct e820_map *m)
{
    uint32_t rs = 0;
    for (int i = m->count - 1; i >= 0; i--) {
        uint64_t end = m->e[i].start + m->e[i].size;
        if (end <= 0xffffffffu && (m->e[i].type == E820_RAM || m->e[i].type == E820_ACPI)) {
            rs = (uint32_t)end;
            break;
        }
    }
    if (rs < 0x100000)
        rs = 0x100000;
    if (rs > 0x1000000)
        return ((rs - 0x1000000) / 0x10000 + 256) << 16;
    uint32_t cx = (rs - 0x100000) / 1024;
    return cx ? (cx + 1024) << 10 : 0;
}

uint32_t linux_load(struct fw_cfg *fw, const struct e820_map *m, uint32_t *zero_page)
{
    uint32_t setup_size = fw_cfg_u32(fw, FW_CFG_SETUP_SIZE);
    if (setup_size < OFF_HEADER + 8)
        fail("the kernel's setup sectors are missing");
    uint8_t *bp = (uint8_t *)(uintptr_t)load_item(
        fw, "the setup sectors overlap the firmware's boot area at",
        FW_CFG_SETUP_ADDR, FW_CFG_SETUP_SIZE, FW_CFG_SETUP_DATA);
    uint32_t magic;
    uint16_t version;
    memcpy(&magic, bp + OFF_HEADER, 4);
    memcpy(&version, bp + OFF_VERSION, 2);
    if (magic != HDRS_MAGIC || version < 0x202 || !(bp[OFF_LOADFLAGS] & LOADED_HIGH))
        fail("the kernel is not a bzImage of boot protocol 2.02 or later");
    if (version < 0x203) {      /* no initrd_addr_max: the ROM assumes this one */
        uint32_t assumed = 0x37ffffff;
        memcpy(bp + OFF_INITRD_MAX, &assumed, 4);
    }
    uint32_t initrd_addr = fw_cfg_u32(fw, FW_CFG_INITRD_ADDR);
    uint32_t initrd_size = fw_cfg_u32(fw, FW_CFG_INITRD_SIZE);
    uint32_t initrd_max;
    memcpy(&initrd_max, bp + OFF_INITRD_MAX, 4);
    uint32_t end_page = (initrd_addr + initrd_size) & -4096u;
    if (end_page && (initrd_max & -4096u) && end_page != (initrd_max & -4096u)) {
        /* QEMU put it at the end of RAM: the ROM moves it below the top
         * of memory INT 15h E801 reports. */
        initrd_addr = (e801_top(m) - initrd_size) & -4096u;
        memcpy(bp + OFF_RAMDISK_IMAGE, &initrd_addr, 4);
    }
    if (initrd_size) {
        check_range("the initrd overlaps the firmware's boot area at", initrd_addr,
                    initrd_size);
        fw_cfg_select(fw, FW_CFG_INITRD_DATA);
        fw_cfg_read(fw, (void *)(uintptr_t)initrd_addr, initrd_size);
    }
    load_item(fw, "the kernel overlaps the firmware's boot area at",
              FW_CFG_KERNEL_ADDR, FW_CFG_KERNEL_SIZE, FW_CFG_KERNEL_DATA);
    load_item(fw, "the command line overlaps the firmware's boot area at",
              FW_CFG_CMDLINE_ADDR, FW_CFG_CMDLINE_SIZE, FW_CFG_CMDLINE_DATA);

    /* The zero page, over the setup sectors (their code is never run). */
    uint32_t end = OFF_HEADER + bp[OFF_JUMP_LEN];
    if (end > setup_size)
        end = setup_size;
    if (end > ZERO_PAGE_SIZE)
        end = ZERO_PAGE_SIZE;
    uint32_t code32;
    memcpy(&code32, bp + OFF_CODE32, 4);
    memset(bp, 0, OFF_SETUP_SECTS);
    memset(bp + end, 0, ZERO_PAGE_SIZE - end);
    struct boot_e820_entry *table = (struct boot_e820_entry *)(bp + OFF_E820_TABLE);
    for (int i = 0; i < m->count; i++) {
        table[i].addr = m->e[i].start;
        table[i].size = m->e[i].size;
        table[i].type = m->e[i].type;
    }
    bp[OFF_E820_COUNT] = (uint8_t)m->count;
    *zero_page = (uint32_t)(uintptr_t)bp;
    return code32;
}
