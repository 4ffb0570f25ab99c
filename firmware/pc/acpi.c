/*
 * acpi.c - QEMU's BIOS linker/loader (hw/acpi/bios-linker-loader.c), run
 * as SeaBIOS 1.16 runs it (src/fw/romfile_loader.c): the commands of the
 * fw_cfg file etc/table-loader, 128 bytes each,
 *
 *   ALLOCATE       read a fw_cfg file into memory of a zone, aligned
 *   ADD_POINTER    add a file's address to a pointer inside another file
 *   ADD_CHECKSUM   make a byte range of a file sum to zero
 *   WRITE_POINTER  write a file's address into a fw_cfg file (DMA)
 *
 * Zones: SeaBIOS puts ZONE_HIGH files at the top of its high tables area
 * and ZONE_FSEG files in the f-segment. emu's f-segment is ROM, so the
 * f-segment zone is the rest of the last KiB of base memory after the MP
 * table (an area Linux also scans for the RSDP); the high zone is the
 * area e820.c reserves at the top of RAM below 4 GiB. As SeaBIOS, a
 * command it cannot carry out drops the whole script: the kernel then
 * boots without ACPI tables.
 */
#include "fw.h"
#include "pc.h"

#define CMD_ALLOCATE        1
#define CMD_ADD_POINTER     2
#define CMD_ADD_CHECKSUM    3
#define CMD_WRITE_POINTER   4
#define ZONE_HIGH           1
#define ZONE_FSEG           2
#define FILE_SIZE           56
#define MAX_FILES           8
#define MIN_ALIGN           16      /* SeaBIOS's MALLOC_MIN_ALIGN */

struct loader_entry {
    uint32_t command;
    union {
        struct { char file[FILE_SIZE]; uint32_t align; uint8_t zone; } __attribute__((packed)) alloc;
        struct { char dest[FILE_SIZE]; char src[FILE_SIZE]; uint32_t offset; uint8_t size; }
            __attribute__((packed)) pointer;
        struct { char file[FILE_SIZE]; uint32_t offset, start, length; } __attribute__((packed)) cksum;
        struct { char dest[FILE_SIZE]; char src[FILE_SIZE]; uint32_t dst_offset, src_offset;
                 uint8_t size; } __attribute__((packed)) wrptr;
        uint8_t pad[124];
    };
} __attribute__((packed));

struct loaded {
    char name[FILE_SIZE];
    uint32_t addr, size;
};

struct loader {
    struct fw_cfg *fw;
    struct acpi_zones *z;
    int count;
    struct loaded files[MAX_FILES];
};

static int name_eq(const char *a, const char *b)
{
    for (int i = 0; i < FILE_SIZE; i++) {
        if (a[i] != b[i])
            return 0;
        if (!a[i])
            return 1;
    }
    return 1;
}

static struct loaded *find(struct loader *l, const char *name)
{
    for (int i = 0; i < l->count; i++)
        if (name_eq(l->files[i].name, name))
            return &l->files[i];
    return 0;
}

/* The zone's memory: the f-segment zone fills upwards, the high zone
 * downwards (SeaBIOS allocates from the top of its zones); 0 if full. */
static uint32_t allocate(struct acpi_zones *z, uint32_t size, uint32_t align, int zone)
{
    if (zone == ZONE_FSEG) {
        uint32_t addr = (z->fseg + align - 1) & ~(align - 1);
        if (addr < z->fseg || addr + size > z->fseg_end || addr + size < addr)
            return 0;
        z->fseg = addr + size;
        return addr;
    }
    if (zone != ZONE_HIGH || size > z->high_end - z->high)
        return 0;
    uint32_t addr = (z->high_end - size) & ~(align - 1);
    if (addr < z->high)
        return 0;
    z->high_end = addr;
    return addr;
}

static int do_allocate(struct loader *l, const struct loader_entry *e)
{
    char name[FILE_SIZE];
    memcpy(name, e->alloc.file, FILE_SIZE);
    name[FILE_SIZE - 1] = 0;
    uint16_t key;
    uint32_t size;
    if (!fw_cfg_find_file(l->fw, name, &key, &size) || !size)
        return 1;       /* romfile_loader_allocate skips a missing file */
    uint32_t align = e->alloc.align;
    if (align & (align - 1))
        return 0;
    if (align < MIN_ALIGN)
        align = MIN_ALIGN;
    if (l->count >= MAX_FILES)
        return 0;
    uint32_t addr = allocate(l->z, size, align, e->alloc.zone);
    if (!addr)
        return 0;
    fw_cfg_select(l->fw, key);
    fw_cfg_read(l->fw, (void *)(uintptr_t)addr, size);
    struct loaded *f = &l->files[l->count++];
    memcpy(f->name, name, FILE_SIZE);
    f->addr = addr;
    f->size = size;
    return 1;
}

static int do_pointer(struct loader *l, const struct loader_entry *e)
{
    struct loaded *dest = find(l, e->pointer.dest), *src = find(l, e->pointer.src);
    uint32_t off = e->pointer.offset, n = e->pointer.size;
    if (!dest || !src || (n != 1 && n != 2 && n != 4 && n != 8)
        || off > dest->size || n > dest->size - off)
        return 0;
    volatile uint8_t *p = (uint8_t *)(uintptr_t)(dest->addr + off);
    uint64_t v = 0;
    for (uint32_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    v += src->addr;
    for (uint32_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return 1;
}

static int do_checksum(struct loader *l, const struct loader_entry *e)
{
    struct loaded *f = find(l, e->cksum.file);
    uint32_t off = e->cksum.offset, start = e->cksum.start, len = e->cksum.length;
    if (!f || off >= f->size || start > f->size || len > f->size - start)
        return 0;
    volatile uint8_t *d = (uint8_t *)(uintptr_t)f->addr;
    uint8_t sum = 0;
    for (uint32_t i = 0; i < len; i++)
        sum += d[start + i];
    d[off] -= sum;
    return 1;
}

static int do_write_pointer(struct loader *l, const struct loader_entry *e)
{
    char name[FILE_SIZE];
    memcpy(name, e->wrptr.dest, FILE_SIZE);
    name[FILE_SIZE - 1] = 0;
    struct loaded *src = find(l, e->wrptr.src);
    uint32_t n = e->wrptr.size;
    uint16_t key;
    uint32_t size;
    if (!src || (n != 1 && n != 2 && n != 4 && n != 8)
        || !fw_cfg_find_file(l->fw, name, &key, &size)
        || e->wrptr.dst_offset > size || n > size - e->wrptr.dst_offset)
        return 0;
    uint64_t v = (uint64_t)src->addr + e->wrptr.src_offset;
    uint8_t b[8];
    for (uint32_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    fw_cfg_select(l->fw, key);
    fw_cfg_skip(l->fw, e->wrptr.dst_offset);
    return fw_cfg_write(l->fw, b, n);
}

uint32_t acpi_setup(struct fw_cfg *fw, struct acpi_zones *z)
{
    uint16_t key;
    uint32_t size;
    if (!fw_cfg_find_file(fw, "etc/table-loader", &key, &size))
        return 0;
    struct loader l;
    l.fw = fw;
    l.z = z;
    l.count = 0;
    for (uint32_t pos = 0; pos + sizeof(struct loader_entry) <= size;
         pos += sizeof(struct loader_entry)) {
        struct loader_entry e;
        /* every command re-selects the script: the others read other files */
        fw_cfg_select(fw, key);
        fw_cfg_skip(fw, pos);
        fw_cfg_read(fw, &e, sizeof(e));
        int ok = 1;
        switch (e.command) {
        case CMD_ALLOCATE: ok = do_allocate(&l, &e); break;
        case CMD_ADD_POINTER: ok = do_pointer(&l, &e); break;
        case CMD_ADD_CHECKSUM: ok = do_checksum(&l, &e); break;
        case CMD_WRITE_POINTER: ok = do_write_pointer(&l, &e); break;
        default: break;         /* unknown commands are ignored */
        }
        if (!ok) {
            puts_raw("emu firmware: ACPI table loader failed; booting without ACPI\n");
            return 0;
        }
    }
    struct loaded *rsdp = find(&l, "etc/acpi/rsdp");
    return rsdp ? rsdp->addr : 0;
}
