/*
 * e820.c - the memory map the firmware hands to the kernel, built as
 * SeaBIOS 1.16 builds the one its int 15h/e820 returns on QEMU 7.2
 * (src/e820map.c e820_add, src/fw/paravirt.c qemu_early_e820 and
 * qemu_preinit, src/malloc.c malloc_preinit and malloc_prepboot,
 * src/post.c init_ebda): QEMU's etc/e820, then
 *
 *   0xfffc0000-0xffffffff   reserved: the 256 KiB BIOS area below 4 GiB
 *   0xa0000-0xeffff         removed (a hole: VGA window, option ROMs)
 *   0xf0000-0xfffff         reserved: the BIOS f-segment
 *   high tables             reserved: the top of RAM below 4 GiB that
 *                           SeaBIOS keeps for its tables (HIGH_TABLES)
 *   0x9fc00-0x9ffff         reserved: the last KiB of base memory (the
 *                           EBDA on SeaBIOS, the MP table on emu)
 */
#include "fw.h"
#include "pc.h"

#define E820_HOLE       0xffffffffu     /* removes what it covers */

static void remove_at(struct e820_map *m, int i)
{
    m->count--;
    for (int j = i; j < m->count; j++)
        m->e[j] = m->e[j + 1];
}

static void insert_at(struct e820_map *m, int i, uint64_t start, uint64_t size, uint32_t type)
{
    if (m->count >= E820_MAX)
        fail("too many memory map entries");
    for (int j = m->count; j > i; j--)
        m->e[j] = m->e[j - 1];
    m->count++;
    m->e[i].start = start;
    m->e[i].size = size;
    m->e[i].type = type;
}

/* SeaBIOS's e820_add: the new range replaces whatever it overlaps and
 * merges with neighbours of its type; the list stays sorted. */
void e820_add(struct e820_map *m, uint64_t start, uint64_t size, uint32_t type)
{
    if (!size)
        return;
    uint64_t end = start + size;
    int i;
    for (i = 0; i < m->count; i++) {
        struct e820_entry *e = &m->e[i];
        uint64_t e_end = e->start + e->size;
        if (start > e_end)
            continue;
        if (start > e->start) {
            if (type == e->type) {
                size += start - e->start;
                start = e->start;
            } else {
                e->size = start - e->start;
                i++;
                if (e_end > end)
                    insert_at(m, i, end, e_end - end, e->type);
            }
        }
        break;
    }
    while (i < m->count) {
        struct e820_entry *e = &m->e[i];
        if (end < e->start)
            break;
        uint64_t e_end = e->start + e->size;
        if (end >= e_end) {
            remove_at(m, i);
            continue;
        }
        e->start = end;
        e->size = e_end - end;
        if (type == e->type) {
            size += e->size;
            remove_at(m, i);
        }
        break;
    }
    if (type != E820_HOLE)
        insert_at(m, i, start, size, type);
}

uint32_t e820_finish(struct e820_map *m)
{
    e820_add(m, BIOS_AREA, BIOS_AREA_SIZE, E820_RESERVED);
    e820_add(m, LOWRAM_END, FSEG - LOWRAM_END, E820_HOLE);
    e820_add(m, FSEG, FSEG_SIZE, E820_RESERVED);

    /* malloc_preinit: the zone for high tables at the top of the highest
     * RAM below 4 GiB that ends above 1 MiB (16 MiB of it when it has
     * room, else 256 KiB) */
    uint32_t high = 0, high_size = 0;
    for (int i = m->count - 1; i >= 0; i--) {
        struct e820_entry *e = &m->e[i];
        uint64_t end = e->start + e->size;
        if (end < 0x100000)
            break;
        if (e->type != E820_RAM || end > 0xffffffffull)
            continue;
        uint32_t s = e->start, en = end;
        uint32_t new_max = (en - HIGH_ZONE_MAX) & ~(HIGH_ALIGN - 1);
        uint32_t new_min = (en - HIGH_ZONE_MIN) & ~(HIGH_ALIGN - 1);
        if (new_max <= en && new_max >= s + HIGH_ZONE_MAX) {
            high = new_max;
            high_size = HIGH_ZONE_MAX;
        } else if (new_min <= en && new_min >= s) {
            high = new_min;
            high_size = HIGH_ZONE_MIN;
        }
        break;
    }
    if (high)
        e820_add(m, high, high_size, E820_RESERVED);
    e820_add(m, EBDA, LOWRAM_END - EBDA, E820_RESERVED);
    if (!high)
        return 0;
    /* malloc_prepboot gives back what the tables did not use: SeaBIOS
     * keeps HIGH_TABLES of it on QEMU 7.2's pc; emu keeps as much, for
     * its own tables. */
    e820_add(m, high, high_size - HIGH_TABLES, E820_RAM);
    return high + high_size - HIGH_TABLES;
}
