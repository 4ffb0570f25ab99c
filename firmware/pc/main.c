/*
 * main.c - the pc firmware: load a PVH kernel through fw_cfg and build
 * its start_info, as QEMU's pvh.bin option ROM does for -kernel
 * (pc-bios/optionrom/pvh_main.c), with these items (hw/i386/x86.c,
 * x86_load_linux, PVH branch):
 *
 *   FW_CFG_KERNEL_ADDR/SIZE   the lowest load address and the size of the
 *                             kernel's memory image (PT_LOAD span)
 *   FW_CFG_KERNEL_DATA        that image (emu: QEMU itself copies PVH
 *                             segments into RAM instead)
 *   FW_CFG_KERNEL_ENTRY       the PVH entry (Xen note PHYS32_ENTRY)
 *   FW_CFG_CMDLINE_SIZE/DATA  the command line, NUL included
 *   FW_CFG_INITRD_ADDR/SIZE/DATA   the initrd and where it goes
 *   etc/e820                  the memory map (with SeaBIOS's reservations:
 *                             e820.c)
 *
 * and, after programming the MTRRs as SeaBIOS does (mtrr.c), sets up the PCI
 * functions as SeaBIOS does (pci.c), writes the MP table SeaBIOS writes
 * (mptable.c) and the ACPI tables QEMU's loader script places (acpi.c), whose
 * RSDP goes to the kernel in start_info, as pvh.bin passes the one SeaBIOS
 * made.  A bzImage (FW_CFG_SETUP_ADDR published) goes to linux.c instead.
 */
#include "fw.h"
#include "boot.h"
#include "pc.h"

#define HVM_START_MAGIC 0x336ec578

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

struct etc_e820_entry {     /* etc/e820: packed, little-endian */
    uint64_t address;
    uint64_t length;
    uint32_t type;
} __attribute__((packed));

struct gdt_desc {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

extern const uint64_t rom_gdt[4];
void load_gdt(const struct gdt_desc *desc);
uint32_t fw_main(void);
void arch_kbd_setup(void);   /* arch.c: the i8042 as SeaBIOS leaves it */

/* The local APIC as SeaBIOS leaves it (src/fw/smp.c, smp_scan): software
 * enabled, LINT0 ExtINT (the 8259s reach the CPU through it) and LINT1
 * NMI, both level-triggered.  After reset LINT0 is masked, and QEMU's APIC
 * then passes no 8259 interrupt on. */
#define APIC_SVR   0xfee000f0u
#define APIC_LINT0 0xfee00350u
#define APIC_LINT1 0xfee00360u

static void apic_setup(void)
{
    uint32_t svr;

    /* A separate load and store: the compiler would otherwise make one
     * read-modify-write instruction of them, which emu's MMIO replay
     * cannot split when it stops the CPU at every device access. */
    __asm__ volatile("movl (%1), %0" : "=r"(svr) : "r"(APIC_SVR));
    svr |= 0x100;
    __asm__ volatile("movl %0, (%1)" : : "r"(svr), "r"(APIC_SVR) : "memory");
    *(volatile uint32_t *)APIC_LINT0 = 0x8700;
    *(volatile uint32_t *)APIC_LINT1 = 0x8400;
}

/* QEMU's memory map: its RAM and reserved ranges, in SeaBIOS's sorted
 * list (src/fw/paravirt.c qemu_early_e820 takes no other type). */
static void read_e820(struct fw_cfg *fw, struct e820_map *m)
{
    uint16_t key;
    uint32_t size;
    if (!fw_cfg_find_file(fw, "etc/e820", &key, &size))
        fail("no etc/e820 memory map in fw_cfg");
    m->count = 0;
    fw_cfg_select(fw, key);
    for (uint32_t i = 0; i < size / sizeof(struct etc_e820_entry); i++) {
        struct etc_e820_entry e;
        fw_cfg_read(fw, &e, sizeof(e));
        if (e.type == E820_RAM || e.type == E820_RESERVED)
            e820_add(m, e.address, e.length, e.type);
    }
}

/* Refuse to load over the firmware's own stack and boot structures. */
void check_range(const char *what, uint32_t addr, uint32_t size)
{
    if (addr < BOOT_AREA_END && addr + size > FW_STACK_BOTTOM)
        fail_at(what, addr);
}

/* The guest jumped to the reset vector without a machine reset (Linux's
 * machine_real_restart does, after its keyboard-controller attempts):
 * SeaBIOS then finds HaveRunPost set and asks for a hard reset
 * (src/resume.c tryReboot): the 8042's reset line, then a triple fault. */
NORETURN static void hard_reboot(void)
{
    static const struct gdt_desc no_idt = { 0, 0 };
    __asm__ volatile("outb %%al, $0x64" : : "a"(0xfe));
    __asm__ volatile("lidtl %0; int3" : : "m"(no_idt));
    for (;;)
        __asm__ volatile("hlt");
}

uint32_t fw_main(void)
{
    struct fw_cfg fw;
    volatile struct hvm_start_info *info = (struct hvm_start_info *)START_INFO;

    if (*(volatile uint32_t *)REBOOT_MARK == REBOOT_MAGIC)
        hard_reboot();
    apic_setup();
    pci_setup();
    arch_kbd_setup();
    fw_cfg_init(&fw);

    /* The memory map and the MP table, as SeaBIOS makes them. */
    struct e820_map e820;
    read_e820(&fw, &e820);
    uint32_t ram_size = 0;      /* SeaBIOS's RamSize: RAM's end below 4 GiB */
    for (int i = 0; i < e820.count; i++) {
        uint64_t end = e820.e[i].start + e820.e[i].size;
        if (e820.e[i].type == E820_RAM && end <= 0x100000000ull && end > ram_size)
            ram_size = (uint32_t)end;
    }
    mtrr_setup(ram_size);
    struct acpi_zones zones;
    zones.fseg = EBDA;
    zones.fseg_end = REBOOT_MARK;
    zones.high = e820_finish(&e820);
    zones.high_end = zones.high ? zones.high + HIGH_TABLES : 0;
    mptable_setup(&fw, &zones);
    uint32_t rsdp = acpi_setup(&fw, &zones);

    uint32_t kernel_size = fw_cfg_u32(&fw, FW_CFG_KERNEL_SIZE);
    if (!kernel_size)
        fail("no kernel to boot (QEMU's -kernel FILE gives one)");
    /* QEMU publishes FW_CFG_SETUP_ADDR only for a Linux boot protocol
     * kernel (a bzImage); a PVH ELF has none. */
    *(volatile uint32_t *)REBOOT_MARK = REBOOT_MAGIC;
    if (fw_cfg_u32(&fw, FW_CFG_SETUP_ADDR)) {
        uint32_t zero_page;
        uint32_t code32 = linux_load(&fw, &e820, &zero_page);
        /* boot_params.acpi_rsdp_addr (Documentation/arch/x86/zero-page.rst, 0x070) */
        *(volatile uint64_t *)(zero_page + 0x070) = rsdp;
        memcpy((void *)BOOT_GDT, rom_gdt, sizeof(rom_gdt));
        struct gdt_desc desc = { sizeof(rom_gdt) - 1, BOOT_GDT };
        load_gdt(&desc);
        *(volatile uint32_t *)BOOT_EBX = 0;
        *(volatile uint32_t *)BOOT_ESI = zero_page;
        return code32;
    }
    uint32_t kernel_addr = fw_cfg_u32(&fw, FW_CFG_KERNEL_ADDR);
    uint32_t entry = fw_cfg_u32(&fw, FW_CFG_KERNEL_ENTRY);
    if (!entry)
        fail("the kernel has no PVH entry point");
    check_range("the kernel overlaps the firmware's boot area at", kernel_addr, kernel_size);
    fw_cfg_select(&fw, FW_CFG_KERNEL_DATA);
    fw_cfg_read(&fw, (void *)(uintptr_t)kernel_addr, kernel_size);

    memset((void *)START_INFO, 0, BOOT_AREA_END - START_INFO);
    info->magic = HVM_START_MAGIC;
    info->version = 1;
    info->rsdp_paddr = rsdp;

    uint32_t cmdline_size = fw_cfg_u32(&fw, FW_CFG_CMDLINE_SIZE);
    if (cmdline_size > CMDLINE_MAX)
        cmdline_size = CMDLINE_MAX;
    fw_cfg_select(&fw, FW_CFG_CMDLINE_DATA);
    fw_cfg_read(&fw, (void *)CMDLINE, cmdline_size);
    info->cmdline_paddr = CMDLINE;

    uint32_t initrd_size = fw_cfg_u32(&fw, FW_CFG_INITRD_SIZE);
    if (initrd_size) {
        uint32_t initrd_addr = fw_cfg_u32(&fw, FW_CFG_INITRD_ADDR);
        volatile struct hvm_modlist_entry *mod = (struct hvm_modlist_entry *)MODLIST;
        check_range("the initrd overlaps the firmware's boot area at", initrd_addr, initrd_size);
        fw_cfg_select(&fw, FW_CFG_INITRD_DATA);
        fw_cfg_read(&fw, (void *)(uintptr_t)initrd_addr, initrd_size);
        mod->paddr = initrd_addr;
        mod->size = initrd_size;
        info->nr_modules = 1;
        info->modlist_paddr = MODLIST;
    }

    volatile struct hvm_memmap_table_entry *map = (struct hvm_memmap_table_entry *)MEMMAP;
    for (int i = 0; i < e820.count; i++) {
        map[i].addr = e820.e[i].start;
        map[i].size = e820.e[i].size;
        map[i].type = e820.e[i].type;
        map[i].reserved = 0;
    }
    info->memmap_paddr = MEMMAP;
    info->memmap_entries = e820.count;

    /* The GDT the kernel is entered with: the same one emu's direct
     * boot gives, at the same address. */
    memcpy((void *)BOOT_GDT, rom_gdt, sizeof(rom_gdt));
    struct gdt_desc desc = { sizeof(rom_gdt) - 1, BOOT_GDT };
    load_gdt(&desc);
    *(volatile uint32_t *)BOOT_EBX = START_INFO;
    *(volatile uint32_t *)BOOT_ESI = 0;
    return entry;
}
