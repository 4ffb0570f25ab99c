/*
 * paging.c - demand paging: the kernel maps a region of `pages=N`
 * pages (default 256) at TEST_REGION lazily.  The page fault handler
 * allocates a physical page, fills it with the page's initial data,
 * maps it and returns, and the faulting instruction is retried
 * (guest_images/README.md, "paging").
 *
 * After each phase of accesses it prints how many faults the phase
 * took and how many of the N page table entries are "accessed" and
 * "dirty":
 *   x86_64:  the A and D bits, which the CPU sets itself (Intel SDM
 *            vol. 3A 4.8); a page is mapped writable and clean, and
 *            only not-present faults happen.
 *   aarch64: cortex-a57 has no hardware access flag or dirty state
 *            management (FEAT_HAFDBS is ARMv8.1), so the kernel does
 *            it (Arm ARM chapter D5, the Access flag): a read fault maps the page
 *            read-only and clean, a write fault read-write and dirty
 *            (software bit 55); the first write to a clean page takes
 *            a permission fault, which makes it writable and dirty;
 *            an access with AF = 0 takes an access flag fault, which
 *            sets AF.
 */
#include "traps.h"

#define DEFAULT_PAGES   256
#define MAX_PAGES       8192    /* 32 MiB of the 60 MiB page pool */

#if defined(__x86_64__)
#define PTE_DIRTY       PTE_D
#define PTE_DATA_CLEAN  (PTE_P | PTE_W | PTE_NX)    /* the CPU sets A and D */
#define PTE_DATA_DIRTY  PTE_DATA_CLEAN
#else
#define PTE_DIRTY       PTE_SW_DIRTY
#define PTE_DATA_CLEAN  PTE_KERNEL_RO
#define PTE_DATA_DIRTY  (PTE_KERNEL_RW | PTE_SW_DIRTY)
#endif

enum fault_kind { NOT_PRESENT, ACCESS_FLAG, WRITE_PROTECT, OTHER };

static uint64_t pages;
static struct {
    uint64_t not_present, access_flag, write_protect;
} faults;

static uint64_t faults_total(void)
{
    return faults.not_present + faults.access_flag + faults.write_protect;
}

/* The initial contents of word `i` of page `page`. */
static uint64_t initial_word(uint64_t page, uint64_t i)
{
    return ((page << 32) | i) * 0x9e3779b97f4a7c15ULL;
}

/* What kind of fault, at which address, a read or a write. */
static enum fault_kind decode(const struct trap_frame *frame, uint64_t *address, int *write)
{
#if defined(__x86_64__)
    if (frame->vector != 14)
        return OTHER;
    *address = read_cr2();
    *write = (frame->error & PF_W) != 0;
    return (frame->error & PF_P) ? WRITE_PROTECT : NOT_PRESENT;
#else
    uint64_t fsc = ESR_FSC(frame->esr);

    if (ESR_EC(frame->esr) != EC_DABT_SAME)
        return OTHER;
    *address = frame->far;
    *write = (frame->esr & ESR_WNR) != 0;
    switch (FSC_TYPE(fsc)) {
    case FSC_TRANSLATION:
        return NOT_PRESENT;
    case FSC_ACCESS_FLAG:
        return ACCESS_FLAG;
    case FSC_PERMISSION:
        return WRITE_PROTECT;
    default:
        return OTHER;
    }
#endif
}

static void unexpected(const struct trap_frame *frame)
{
    console_puts("paging: unexpected exception ");
#if defined(__x86_64__)
    console_put_hex(frame->vector, 2);
    console_puts(" error=");
    console_put_hex(frame->error, 4);
    console_puts(" cr2=");
    console_put_hex(read_cr2(), 16);
#else
    console_puts("esr=");
    console_put_hex(frame->esr, 8);
    console_puts(" far=");
    console_put_hex(frame->far, 16);
#endif
    console_putc('\n');
    machine_exit(3);
}

static void handler(struct trap_frame *frame)
{
    uint64_t address;
    int write;
    enum fault_kind kind = decode(frame, &address, &write);
    uint64_t page = (address - TEST_REGION) >> 12;
    volatile uint64_t *pte;

    if (kind == OTHER || address < TEST_REGION || page >= pages)
        unexpected(frame);
    pte = mmu_pte(address, 1);
    switch (kind) {
    case NOT_PRESENT: {
        uint64_t frame_address = page_alloc();
        volatile uint64_t *data = (volatile uint64_t *)(uintptr_t)frame_address;

        if (!frame_address || !pte)
            unexpected(frame);
        for (uint64_t i = 0; i < 512; i++)
            data[i] = initial_word(page, i);
        *pte = frame_address | (write ? PTE_DATA_DIRTY : PTE_DATA_CLEAN);
        faults.not_present++;
        break;
    }
    case ACCESS_FLAG:
        *pte |= PTE_ACCESSED;
        faults.access_flag++;
        break;
    default:                    /* WRITE_PROTECT: a write to a clean page */
        if (!write || (*pte & PTE_DIRTY) || PTE_DATA_CLEAN == PTE_DATA_DIRTY)
            unexpected(frame);  /* (x86_64 maps no page read-only) */
        *pte = (*pte & (PTE_ADDR_MASK | PTE_ACCESSED)) | PTE_DATA_DIRTY;
        faults.write_protect++;
        break;
    }
    mmu_flush(address);
    /* return: the access is made again */
}

static volatile uint64_t *page_word(uint64_t page, uint64_t i)
{
    return (volatile uint64_t *)(uintptr_t)(TEST_REGION + (page << 12)) + i;
}

/* After a phase: its faults and the entries' accessed and dirty bits. */
static void report(const char *phase, uint64_t faults_before)
{
    uint64_t accessed = 0, dirty = 0;

    for (uint64_t p = 0; p < pages; p++) {
        volatile uint64_t *pte = mmu_pte(TEST_REGION + (p << 12), 0);

        if (pte && (*pte & PTE_ACCESSED))
            accessed++;
        if (pte && (*pte & PTE_DIRTY))
            dirty++;
    }
    console_puts("paging: ");
    console_puts(phase);
    console_puts(": faults=");
    console_put_dec(faults_total() - faults_before);
    console_puts(" accessed=");
    console_put_dec(accessed);
    console_puts(" dirty=");
    console_put_dec(dirty);
}

int main(void)
{
    uint64_t half, before, tables, checksum = 0xcbf29ce484222325ULL;

    traps_init(handler);
    mmu_init();
    pages = cmdline_uint("pages", DEFAULT_PAGES);
    if (pages < 2)
        pages = 2;
    if (pages > MAX_PAGES)
        pages = MAX_PAGES;
    half = pages / 2;
    tables = pages_allocated();

    console_puts("paging: pages=");
    console_put_dec(pages);
    console_puts(" at ");
    console_put_hex(TEST_REGION, 16);
    console_putc('\n');

    /* 1: read the first half: one not-present fault per page */
    before = faults_total();
    for (uint64_t p = 0; p < half; p++)
        checksum += *page_word(p, 0);
    report("read the first half", before);
    console_putc('\n');

    /* 2: write (only) the second half: one not-present fault per page */
    before = faults_total();
    for (uint64_t p = half; p < pages; p++)
        *page_word(p, 1) = p;
    report("write the second half", before);
    console_putc('\n');

    /* 3: write every 4th page of the first half, already mapped */
    before = faults_total();
    for (uint64_t p = 0; p < half; p += 4)
        *page_word(p, 2) = ~p;
    report("write every 4th page of the first half", before);
    console_putc('\n');

    /* 4: clear every accessed bit, then read every 2nd page */
    for (uint64_t p = 0; p < pages; p++)
        *mmu_pte(TEST_REGION + (p << 12), 0) &= ~PTE_ACCESSED;
    mmu_flush_all();
    before = faults_total();
    for (uint64_t p = 0; p < pages; p += 2)
        checksum += *page_word(p, 3);
    report("clear accessed, read every 2nd page", before);
    console_putc('\n');

    /* 5: read everything */
    before = faults_total();
    for (uint64_t p = 0; p < pages; p++)
        for (uint64_t i = 0; i < 512; i++)
            checksum = (checksum ^ *page_word(p, i)) * 0x100000001b3ULL;
    report("read all", before);
    console_puts(" checksum=");
    console_put_hex(checksum, 16);
    console_putc('\n');

    tables = pages_allocated() - tables - pages;
    console_puts("paging: faults not-present=");
    console_put_dec(faults.not_present);
    console_puts(" access-flag=");
    console_put_dec(faults.access_flag);
    console_puts(" write-protect=");
    console_put_dec(faults.write_protect);
    console_puts(" tables=");
    console_put_dec(tables);
    console_putc('\n');
    return 0;
}
