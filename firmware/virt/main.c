/*
 * main.c - the virt firmware: load the kernel QEMU's virt machine hands
 * to firmware (hw/arm/boot.c, arm_setup_firmware_boot: the -kernel file
 * as it is in FW_CFG_KERNEL_SIZE/DATA, FW_CFG_INITRD_SIZE/DATA,
 * FW_CFG_CMDLINE_SIZE/DATA), put the device tree where QEMU's -kernel
 * boot puts it and enter the kernel at EL1 with x0 pointing to it.
 *
 * Kernels: an aarch64 ELF executable (its PT_LOAD segments go to their
 * physical addresses; each is read with one DMA transfer after a skip to
 * its file offset, and its .bss zeroed by another, fw_cfg_zero), or an arm64 Linux Image (Documentation/arm64/
 * booting.rst), placed at RAM base + text_offset (2 MiB higher if that
 * is in QEMU's boot stub; 0x80000 without image_size) as QEMU's
 * load_aarch64_image places it.
 *
 * Device tree: the fw_cfg file etc/fdt (emu's virt publishes it): an
 * ELF kernel's at the base of RAM (its used part: the stack is in its
 * free space), an Image's after the initrd at FW_CFG_INITRD_ADDR, 2 MiB
 * aligned, as QEMU's arm_setup_direct_kernel_boot places it. Without
 * etc/fdt, the one QEMU has already put at the base of RAM.
 * Initrd: emu publishes FW_CFG_INITRD_ADDR, and the device tree's
 * /chosen already names that range.
 */
#include "fw.h"
#include "boot.h"

#define FDT_MAGIC       0xd00dfeed
#define EM_AARCH64      183
#define PT_LOAD         1
#define PHDR_MAX        16
#define ARM64_MAGIC     0x644d5241      /* "ARM\x64" at offset 56 */

struct elf64_ehdr {
    uint8_t ident[16];
    uint16_t type;
    uint16_t machine;
    uint32_t version;
    uint64_t entry;
    uint64_t phoff;
    uint64_t shoff;
    uint32_t flags;
    uint16_t ehsize;
    uint16_t phentsize;
    uint16_t phnum;
    uint16_t shentsize;
    uint16_t shnum;
    uint16_t shstrndx;
};

struct elf64_phdr {
    uint32_t type;
    uint32_t flags;
    uint64_t offset;
    uint64_t vaddr;
    uint64_t paddr;
    uint64_t filesz;
    uint64_t memsz;
    uint64_t align;
};

struct arm64_image_header {
    uint32_t code0;
    uint32_t code1;
    uint64_t text_offset;
    uint64_t image_size;
    uint64_t flags;
    uint64_t res2;
    uint64_t res3;
    uint64_t res4;
    uint32_t magic;
    uint32_t res5;
};

void fw_main(void);
NORETURN void boot_kernel(uint64_t entry, uint64_t dtb);

static void check_range(const char *what, uint64_t addr)
{
    if (addr < FW_AREA_END)
        fail_at(what, addr);
}

static uint64_t load_elf(struct fw_cfg *fw, const struct elf64_ehdr *eh)
{
    struct elf64_phdr ph[PHDR_MAX];
    if (eh->ident[4] != 2 || eh->ident[5] != 1 || eh->machine != EM_AARCH64)
        fail("the kernel is not a little-endian aarch64 ELF64 file");
    if (eh->phentsize != sizeof(ph[0]) || eh->phnum == 0 || eh->phnum > PHDR_MAX)
        fail("the kernel's ELF program headers are not usable");
    fw_cfg_select(fw, FW_CFG_KERNEL_DATA);
    fw_cfg_skip(fw, eh->phoff);
    fw_cfg_read(fw, ph, eh->phnum * sizeof(ph[0]));
    for (int i = 0; i < eh->phnum; i++) {
        if (ph[i].type != PT_LOAD || !ph[i].memsz)
            continue;
        check_range("a kernel segment overlaps the firmware's area at", ph[i].paddr);
        uint8_t *dst = (uint8_t *)(uintptr_t)ph[i].paddr;
        fw_cfg_select(fw, FW_CFG_KERNEL_DATA);
        fw_cfg_skip(fw, ph[i].offset);
        fw_cfg_read(fw, dst, ph[i].filesz);
        if (ph[i].memsz > ph[i].filesz)
            fw_cfg_zero(fw, dst + ph[i].filesz, ph[i].memsz - ph[i].filesz);
    }
    return eh->entry;
}

static uint64_t load_image(struct fw_cfg *fw, const struct arm64_image_header *h,
                           uint32_t size)
{
    uint64_t offset = h->image_size ? h->text_offset : KERNEL64_LOAD_ADDR;
    if (h->image_size && offset < BOOTLOADER_MAX_SIZE)
        offset += 0x200000;
    uint64_t addr = RAM_BASE + offset;
    fw_cfg_select(fw, FW_CFG_KERNEL_DATA);
    fw_cfg_read(fw, (void *)(uintptr_t)addr, size);
    return addr;
}

void fw_main(void)
{
    struct fw_cfg fw;
    union {
        struct elf64_ehdr elf;
        struct arm64_image_header image;
    } h;

    fw_cfg_init(&fw);
    uint32_t kernel_size = fw_cfg_u32(&fw, FW_CFG_KERNEL_SIZE);
    if (!kernel_size)
        fail("no kernel to boot (QEMU's -kernel FILE gives one)");
    if (kernel_size < sizeof(h))
        fail("the kernel file is too small");
    fw_cfg_select(&fw, FW_CFG_KERNEL_DATA);
    fw_cfg_read(&fw, &h, sizeof(h));

    uint64_t entry;
    int is_image = 0;
    if (h.elf.ident[0] == 0x7f && h.elf.ident[1] == 'E' && h.elf.ident[2] == 'L'
        && h.elf.ident[3] == 'F')
        entry = load_elf(&fw, &h.elf);
    else if (h.image.magic == ARM64_MAGIC) {
        entry = load_image(&fw, &h.image, kernel_size);
        is_image = 1;
    }
    else
        fail("the kernel is neither an ELF file nor an arm64 Image");

    uint32_t initrd_size = fw_cfg_u32(&fw, FW_CFG_INITRD_SIZE);
    uint32_t initrd_addr = fw_cfg_u32(&fw, FW_CFG_INITRD_ADDR);

    uint16_t key;
    uint32_t size;
    uint64_t dtb = DTB_ADDR;
    if (fw_cfg_find_file(&fw, "etc/fdt", &key, &size)) {
        if (is_image && initrd_addr) {
            dtb = ((uint64_t)initrd_addr + initrd_size + DTB_ALIGN - 1) & ~(DTB_ALIGN - 1);
        } else {
            /* the header's off_dt_strings + size_dt_strings: the used part */
            uint32_t hdr[10];
            if (size < sizeof(hdr))
                fail("etc/fdt is not a device tree");
            fw_cfg_select(&fw, key);
            fw_cfg_read(&fw, hdr, sizeof(hdr));
            size = __builtin_bswap32(hdr[3]) + __builtin_bswap32(hdr[8]);
            if (size > DTB_USED_MAX)
                fail_at("etc/fdt is larger than the firmware's room for it:", size);
        }
        fw_cfg_select(&fw, key);
        fw_cfg_read(&fw, (void *)(uintptr_t)dtb, size);
    } else if (__builtin_bswap32(*(volatile uint32_t *)DTB_ADDR) != FDT_MAGIC) {
        dtb = 0;
    }

    if (initrd_size && initrd_addr) {
        check_range("the initrd overlaps the firmware's area at", initrd_addr);
        fw_cfg_select(&fw, FW_CFG_INITRD_DATA);
        fw_cfg_read(&fw, (void *)(uintptr_t)initrd_addr, initrd_size);
    }

    boot_kernel(entry, dtb);
}
