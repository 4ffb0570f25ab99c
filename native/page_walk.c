/*
 * page_walk.c - the common case of a TLB miss, walked in native code.
 *
 * emu fills Unicorn's virtual TLB from its own page walk (emu/cpu/__init__.py
 * Cpu._on_tlb_fill; emu/cpu/x86.py and emu/cpu/arm64.py translate_access).  Calling
 * Python for each miss costs about 25 us; this file walks the guest's tables in RAM
 * here and applies the same policy, making exactly the decisions of the Python walk:
 *
 * - x86 (X86Cpu.translate_access / _walk; QEMU's mmu_translate, SDM vol. 3A 4.3-4.8):
 *   paging off, 32-bit paging (with PSE 4 MiB pages), PAE, long mode with 4 or 5 levels;
 *   the Accessed bit of every entry used and the Dirty bit of a store's leaf; a load
 *   from a page that is not dirty yet maps it read-only, so that the first store refills;
 * - aarch64 (Arm64Cpu.translate_access / _walk; Arm ARM D5.2-D5.5): the MMU off, or
 *   EL1&0 stage 1 with the 4 KiB granule: TTBR0/TTBR1 by VA bit 55, TxSZ, TBI, EPDx,
 *   levels 0-3, blocks and pages, AP, UXN/PXN and APTable/UXNTable/PXNTable.
 *
 * Everything else returns 0 and the Python walk runs as before: any fault (it computes
 * the syndrome), a table or a page outside RAM (ROM, devices, unassigned), a TxSZ
 * outside 16-39.  A fall-back after an Accessed-bit update is harmless: the Python walk
 * sets the same bits again.  The page sets of the self-modifying-code policy are bitmaps
 * per RAM block, shared with Python (emu/cpu/native_walk.py PageSet).
 */
#include "page_walk.h"

#define MEM_WRITE 17        /* uc_mem_type: UC_MEM_WRITE, UC_MEM_FETCH */
#define MEM_FETCH 18
#define PROT_READ 1
#define PROT_WRITE 2
#define PROT_EXEC 4

#define CR0_PG (1ull << 31)
#define CR0_WP (1ull << 16)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define CR4_SMEP (1ull << 20)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define ADDR_MASK 0x000ffffffffff000ull

struct walk_result {
    uint64_t paddr;
    uint64_t page_size;     /* the leaf's size: 4 KiB, or a large page / block */
    int writable;           /* a store may go through this entry */
    int executable;         /* the CPU may execute there in its current mode */
};

typedef uint64_t __attribute__((aligned(1), may_alias)) u64_unaligned;
typedef uint32_t __attribute__((aligned(1), may_alias)) u32_unaligned;

static struct emu_ram_block *ram_block(struct emu_walker *w, uint64_t paddr)
{
    for (uint32_t i = 0; i < w->ram_count; i++) {
        if (paddr - w->ram[i].base < w->ram[i].size) {
            return &w->ram[i];
        }
    }
    return 0;
}

static char *ram(struct emu_walker *w, uint64_t paddr, uint64_t size)
{
    /* the host address of [paddr, paddr + size) if one RAM block holds all of it */
    struct emu_ram_block *r = ram_block(w, paddr);

    if (!r || paddr - r->base + size > r->size) {
        return 0;
    }
    return r->host + (paddr - r->base);
}

/* -- x86 ---------------------------------------------------------------------------- */

struct x86_rights {
    int writable, user, nx;
};

static uint64_t x86_use(struct x86_rights *rights, char *at, int size, uint64_t e, int nxe,
                        uint64_t bits)
{
    /* X86Cpu._walk's mark(): combine the rights, set A (and D) in guest memory */
    rights->writable = rights->writable && (e & 2);
    rights->user = rights->user && (e & 4);
    rights->nx = rights->nx || (nxe && (e >> 63));
    if ((e & bits) != bits) {
        e |= bits;
        if (size == 4) {
            *(u32_unaligned *)at = (uint32_t)e;
        } else {
            *(u64_unaligned *)at = e;
        }
    }
    return e;
}

static int x86_user_access(struct emu_cpu_bridge *b, char *env, uint64_t vaddr)
{
    /* X86Cpu._user_access: CPL 3 but for the CPU's own accesses to the descriptor tables
     * and an exception entry's stack */
    static const int tables[] = {X86_GDT, X86_IDT, X86_LDT, X86_TR};

    if ((FIELD(uint32_t, env, X86_HFLAGS) & HF_CPL_MASK) != 3 || b->delivering) {
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        uint64_t base = FIELD(uint64_t, env, tables[i] + 8);
        uint32_t limit = FIELD(uint32_t, env, tables[i] + 16);
        if (base <= vaddr && vaddr - base <= limit) {
            return 0;
        }
    }
    return 1;
}

static int x86_walk(struct emu_walker *w, char *env, uint64_t vaddr, int write, int nxe,
                    struct walk_result *r, uint64_t *dirty, struct x86_rights *rights)
{
    /* X86Cpu._walk: 1 with the leaf in *r (and *dirty, *rights), 0 where it stops */
    uint64_t cr3 = FIELD(uint64_t, env, X86_CR3), cr4 = FIELD(uint64_t, env, X86_CR4);
    uint64_t leaf_bits = PTE_A | (write ? PTE_D : 0);
    uint64_t reserved, table, e;
    int shift;
    char *at;

    if (!(cr4 & CR4_PAE)) {     /* 32-bit paging */
        at = ram(w, (cr3 & 0xfffff000ull) + ((vaddr >> 22) & 0x3ff) * 4, 4);
        if (!at || !((e = *(u32_unaligned *)at) & 1)) {
            return 0;
        }
        if ((e & 0x80) && (cr4 & CR4_PSE)) {    /* 4 MiB page */
            e = x86_use(rights, at, 4, e, nxe, leaf_bits);
            r->paddr = (e & 0xffc00000ull) | (vaddr & 0x3fffff);
            r->page_size = 1ull << 22;
            *dirty = e & PTE_D;
            return 1;
        }
        e = x86_use(rights, at, 4, e, nxe, PTE_A);
        at = ram(w, (e & 0xfffff000ull) + ((vaddr >> 12) & 0x3ff) * 4, 4);
        if (!at || !((e = *(u32_unaligned *)at) & 1)) {
            return 0;
        }
        e = x86_use(rights, at, 4, e, nxe, leaf_bits);
        r->paddr = (e & 0xfffff000ull) | (vaddr & 0xfff);
        r->page_size = 0x1000;
        *dirty = e & PTE_D;
        return 1;
    }
    reserved = (((1ull << 52) - 1) & ~((1ull << w->phys_bits) - 1)) | (nxe ? 0 : 1ull << 63);
    if (FIELD(uint64_t, env, X86_EFER) & EFER_LMA) {
        table = cr3 & ADDR_MASK;
        for (shift = (cr4 & CR4_LA57) ? 48 : 39; shift >= 39; shift -= 9) {
            at = ram(w, table + ((vaddr >> shift) & 0x1ff) * 8, 8);
            if (!at || !((e = *(u64_unaligned *)at) & 1) || (e & (reserved | 0x80))) {
                return 0;
            }
            table = x86_use(rights, at, 8, e, nxe, PTE_A) & ADDR_MASK;
        }
        shift = 30;
    } else {                    /* PAE: a PDPTE has no A bit and no rights */
        at = ram(w, (cr3 & 0xffffffe0ull) + ((vaddr >> 30) & 3) * 8, 8);
        if (!at || !((e = *(u64_unaligned *)at) & 1)) {
            return 0;
        }
        table = e & ADDR_MASK;
        shift = 21;
    }
    for (; shift >= 12; shift -= 9) {
        at = ram(w, table + ((vaddr >> shift) & 0x1ff) * 8, 8);
        if (!at || !((e = *(u64_unaligned *)at) & 1) || (e & reserved)) {
            return 0;
        }
        if (shift > 12 && (e & 0x80)) {             /* a 1 GiB or 2 MiB page */
            uint64_t size_mask = (1ull << shift) - 1;
            if (e & (size_mask & 0xffffffffffffe000ull & ADDR_MASK)) {
                return 0;
            }
            e = x86_use(rights, at, 8, e, nxe, leaf_bits);
            r->paddr = (e & ADDR_MASK & ~size_mask) | (vaddr & size_mask);
            r->page_size = 1ull << shift;
            *dirty = e & PTE_D;
            return 1;
        }
        if (shift == 12) {
            e = x86_use(rights, at, 8, e, nxe, leaf_bits);
            r->paddr = (e & ADDR_MASK) | (vaddr & 0xfff);
            r->page_size = 0x1000;
            *dirty = e & PTE_D;
            return 1;
        }
        table = x86_use(rights, at, 8, e, nxe, PTE_A) & ADDR_MASK;
    }
    return 0;
}

static int x86_translate(struct emu_cpu_bridge *b, struct emu_walker *w, uint64_t vaddr,
                         int type, struct walk_result *r)
{
    /* X86Cpu.translate_access, for the accesses that do not fault */
    char *env = b->cpu + X86_ENV;
    uint64_t cr0 = FIELD(uint64_t, env, X86_CR0), cr4 = FIELD(uint64_t, env, X86_CR4);
    uint64_t efer = FIELD(uint64_t, env, X86_EFER);
    int write = type == MEM_WRITE, fetch = type == MEM_FETCH;
    int nxe = (efer & EFER_NXE) != 0, user, wp;
    struct x86_rights rights = {1, 1, 0};
    uint64_t dirty = 0;

    r->page_size = 0;
    r->executable = 1;
    if (!(cr0 & CR0_PG)) {
        r->paddr = (efer & EFER_LMA) ? vaddr : (vaddr & 0xffffffffull);
        r->writable = 1;
        return 1;
    }
    if (efer & EFER_LMA) {
        int bits = (cr4 & CR4_LA57) ? 57 : 48;
        uint64_t top = vaddr >> (bits - 1);
        if (top != 0 && top != (1ull << (65 - bits)) - 1) {
            return 0;           /* #GP(0) */
        }
    }
    user = x86_user_access(b, env, vaddr);
    if (!x86_walk(w, env, vaddr, write, nxe, r, &dirty, &rights)) {
        return 0;
    }
    wp = user || (cr0 & CR0_WP);
    if ((user && !rights.user) || (fetch && rights.nx) ||
        (write && !rights.writable && wp) ||
        (fetch && !user && rights.user && (cr4 & CR4_SMEP))) {
        return 0;
    }
    r->executable = !rights.nx && (user ? rights.user
                                        : !(rights.user && (cr4 & CR4_SMEP)));
    r->writable = dirty && (rights.writable || !wp);
    if (r->page_size <= 0x1000) {
        r->page_size = 0;
    }
    return 1;
}

/* -- aarch64 ------------------------------------------------------------------------ */

static int arm_translate(struct emu_cpu_bridge *b, struct emu_walker *w, uint64_t vaddr,
                         int type, struct walk_result *r)
{
    /* Arm64Cpu.translate_access and _walk, for the accesses that do not fault */
    char *env = b->cpu + ARM_ENV;
    int write = type == MEM_WRITE, fetch = type == MEM_FETCH;
    int el = (FIELD(uint32_t, env, ARM_PSTATE) >> 2) & 3;
    uint64_t tcr = FIELD(uint64_t, env, ARM_TCR_EL1);
    int upper = (vaddr >> 55) & 1;
    int tsz = upper ? (tcr >> 16) & 0x3f : tcr & 0x3f;
    int tbi = (tcr >> (upper ? 38 : 37)) & 1, epd = (tcr >> (upper ? 23 : 7)) & 1;
    int va_bits = 64 - tsz, level, ap = 0, ap_table = 0, xn0 = 0, xn1 = 0;
    uint64_t top_mask, table, desc = 0;
    char *at;

    r->page_size = 0;
    r->executable = 1;
    if (!(FIELD(uint64_t, env, ARM_SCTLR_EL1) & 1)) {    /* the MMU is off */
        r->paddr = vaddr;
        r->writable = 1;
        return 1;
    }
    if (tsz < 16 || tsz > 39) {
        return 0;
    }
    top_mask = (1ull << ((tbi ? 56 : 64) - va_bits)) - 1;
    if (epd || ((vaddr >> va_bits) & top_mask) != (upper ? top_mask : 0)) {
        return 0;
    }
    table = FIELD(uint64_t, env, upper ? ARM_TTBR1_EL1 : ARM_TTBR0_EL1) &
            0x0000fffffffffffeull;
    level = 4 - (va_bits - 12 + 8) / 9;
    for (int lvl = level; lvl < 4; lvl++) {
        int shift = 12 + 9 * (3 - lvl);
        uint64_t index = (vaddr >> shift) &
                         (lvl == level ? (1ull << (va_bits - shift)) - 1 : 0x1ff);
        uint64_t out;

        at = ram(w, table + index * 8, 8);
        if (!at) {
            return 0;
        }
        desc = *(u64_unaligned *)at;
        if (!(desc & 1) || ((lvl == 3 || lvl == 0) && !(desc & 2))) {
            return 0;
        }
        out = desc & 0x0000fffffffff000ull;
        if (lvl == 3 || !(desc & 2)) {              /* a page, or a block at level 1/2 */
            uint64_t mask = (1ull << shift) - 1;
            if (!(desc & (1ull << 10))) {
                return 0;                           /* access flag fault */
            }
            ap = (desc >> 6) & 3;
            if (ap_table & 1) {
                ap &= ~1;
            }
            if (ap_table & 2) {
                ap |= 2;
            }
            r->paddr = (out & ~mask) | (vaddr & mask);
            r->page_size = (1ull << shift) > 0x1000 ? 1ull << shift : 0;
            xn0 = xn0 || ((desc >> 54) & 1);
            xn1 = xn1 || ((desc >> 53) & 1);
            break;
        }
        ap_table |= (desc >> 61) & 3;
        xn0 = xn0 || ((desc >> 60) & 1);
        xn1 = xn1 || ((desc >> 59) & 1);
        table = out;
    }
    {
        int user_ok = ap & 1, read_only = (ap & 2) != 0;
        int denied = el == 0
            ? !user_ok || (write && read_only) || (fetch && xn0)
            : (write && read_only) || (fetch && (xn1 || (user_ok && !read_only)));
        if (denied) {
            return 0;
        }
        r->executable = el == 0 ? !xn0 : !(xn1 || (user_ok && !read_only));
        r->writable = !read_only;
    }
    return 1;
}

/* -- the fill ----------------------------------------------------------------------- */

static int page_bit(uint8_t *bits, struct emu_ram_block *r, uint64_t page)
{
    uint64_t i = page - (r->base >> 12);
    return (bits[i >> 3] >> (i & 7)) & 1;
}

static void set_page_bit(uint8_t *bits, struct emu_ram_block *r, uint64_t page)
{
    uint64_t i = page - (r->base >> 12);
    bits[i >> 3] |= (uint8_t)(1u << (i & 7));
}

int emu_native_fill(struct emu_cpu_bridge *b, uint64_t vaddr, int type,
                    struct uc_tlb_entry *entry)
{
    /* Cpu._on_tlb_fill's policy, for a page in RAM (ROM and devices go to Python) */
    struct emu_walker *w = b->walker;
    struct emu_ram_block *block;
    struct walk_result r;
    uint64_t page;
    int ok;

    if (!w || !w->enabled) {
        return 0;
    }
    ok = w->arch == WALK_X86 ? x86_translate(b, w, vaddr, type, &r)
                             : arm_translate(b, w, vaddr, type, &r);
    if (!ok || !(block = ram_block(w, r.paddr))) {
        w->python_fills++;
        return 0;
    }
    w->native_fills++;
    page = r.paddr >> 12;
    entry->paddr = r.paddr;
    b->walk_page_size = r.page_size;
    if (type == MEM_FETCH) {
        /* a data entry never carries EXEC; once a page holds code, its writable data
         * entries are dropped (and refilled with EXEC, below), see _on_tlb_fill */
        entry->perms = PROT_READ | PROT_EXEC;
        if (!page_bit(block->code_pages, block, page)) {
            set_page_bit(block->code_pages, block, page);
            if (page_bit(block->stored_pages, block, page)) {
                emu_tlb_forget_data(b, page);
            }
        }
    } else {
        entry->perms = r.writable ? PROT_READ | PROT_WRITE : PROT_READ;
        if (r.writable) {
            set_page_bit(block->stored_pages, block, page);
            if (page_bit(block->code_pages, block, page) && r.executable) {
                entry->perms |= PROT_EXEC;
            }
        }
    }
    return 1;
}

void emu_walk_state(struct emu_cpu_bridge *b, uint64_t *out)
{
    /* the CPU state the walk reads, for emu/cpu/native_walk.py's check of the offsets
     * against Unicorn's register API */
    if (b->raise_x86) {
        char *env = b->cpu + X86_ENV;
        static const int fields[] = {X86_CR0, X86_CR3, X86_CR4, X86_EFER,
                                     X86_GDT + 8, X86_IDT + 8, X86_LDT + 8, X86_TR + 8};
        static const int limits[] = {X86_GDT, X86_IDT, X86_LDT, X86_TR};
        for (int i = 0; i < 8; i++) {
            out[i] = FIELD(uint64_t, env, fields[i]);
        }
        for (int i = 0; i < 4; i++) {
            out[8 + i] = FIELD(uint32_t, env, limits[i] + 16);
        }
        out[12] = FIELD(uint32_t, env, X86_HFLAGS) & HF_CPL_MASK;
    } else {
        char *env = b->cpu + ARM_ENV;
        out[0] = FIELD(uint64_t, env, ARM_SCTLR_EL1);
        out[1] = FIELD(uint64_t, env, ARM_TCR_EL1);
        out[2] = FIELD(uint64_t, env, ARM_TTBR0_EL1);
        out[3] = FIELD(uint64_t, env, ARM_TTBR1_EL1);
        out[4] = (FIELD(uint32_t, env, ARM_PSTATE) >> 2) & 3;
    }
}
