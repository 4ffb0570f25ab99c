/*
 * vmcoreinfo.c - register a VMCOREINFO ELF note with QEMU's vmcoreinfo
 * device, as Linux's drivers/firmware/qemu_fw_cfg.c does at probe time
 * (fw_cfg_write_vmcoreinfo), so that a host dump (QEMU's
 * dump-guest-memory) carries a real VMCOREINFO note.
 *
 * The note lives in an 8 KiB page-aligned buffer in .bss: one note
 * (name "VMCOREINFO", type 0, text "KEY=value\n" lines), then an empty
 * terminator note, then zeros up to (and past) the 4132 bytes announced
 * to the device.  The registration is one DMA write of 16 bytes
 * {le16 host_format 0, le16 guest_format 1 (ELF), le32 size 4132,
 * le64 paddr} to the fw_cfg file "etc/vmcoreinfo".
 *
 * Then, on x86_64, exit with 0 (QEMU status 1), or, with "halt" on the
 * command line, halt with interrupts off so that the host can take a
 * dump of the live guest.  On aarch64 (no command line) it always stays
 * up: wfi for ever.
 */
#include "guest.h"
#include "fw_cfg.h"

#define VMCOREINFO_NOTE_SIZE    4132    /* 12 + 12 + 4096 + 12, as in Linux */
#define NOTE_HDR_SIZE           12      /* Elf64_Nhdr: three 32-bit words */
#define NOTE_NAME_SIZE          12      /* "VMCOREINFO\0" padded to 4 bytes */
#define NOTE_TEXT_OFFSET        (NOTE_HDR_SIZE + NOTE_NAME_SIZE)
#define NOTE_TEXT_MAX           4096

#define OSRELEASE   "6.1.0-emu-test"
#define BUILD_ID    "656d752d766d636f7265696e666f2d6275696c64"  /* "emu-vmcoreinfo-build" */

#if defined(__x86_64__)
extern char pml4[];             /* lib/x86_64/start.S: the live PML4 (CR3) */
extern char pvh_start32[];      /* the entry point */
#define TOP_PAGE_TABLE  pml4
#define START_SYMBOL    pvh_start32
#define PHYS_LINE       "NUMBER(phys_base)=0\n"
#else
extern char _start[];           /* lib/aarch64/start.S: the entry point */
/* The MMU is off: a zeroed, page-aligned stand-in for the top-level
 * kernel page table. */
char swapper_pg_dir[4096] __attribute__((aligned(4096)));
#define TOP_PAGE_TABLE  swapper_pg_dir
#define START_SYMBOL    _start
#define PHYS_LINE       "NUMBER(PHYS_OFFSET)=0x40000000\n"
#endif

/* The note: zero-filled (.bss) beyond what is written. */
static uint8_t vmcoreinfo_note[8192] __attribute__((aligned(4096)));
/* The 16 bytes written to etc/vmcoreinfo, and the DMA descriptor. */
static uint8_t vmcoreinfo_data[16] __attribute__((aligned(16)));
static struct fw_cfg_dma_access desc __attribute__((aligned(16)));
static struct fw_cfg_file file;

/* Linux's struct new_utsname, preceded by 4 bytes, so that the release
 * string is at init_uts_ns + 4 + 2 * 65. */
struct emu_uts_namespace {
    uint32_t kref;
    struct {
        char sysname[65];
        char nodename[65];
        char release[65];
        char version[65];
        char machine[65];
        char domainname[65];
    } name;
};

struct emu_uts_namespace init_uts_ns = {
    1,
    { "Linux", "emu-guest", OSRELEASE, "#1", ARCH_NAME, "(none)" },
};

const char vmcoreinfo_marker[] = "emu-vmcoreinfo-marker: guest memory is readable";

/* ---- building the note text (volatile stores: no memcpy, no SIMD) ---- */

static uint32_t text_length;

static void put8(uint32_t offset, uint8_t value)
{
    ((volatile uint8_t *)vmcoreinfo_note)[offset] = value;
}

static void put32(uint32_t offset, uint32_t value)
{
    for (int i = 0; i < 4; i++)
        put8(offset + (uint32_t)i, (uint8_t)(value >> (8 * i)));
}

static void emit(char c)
{
    if (text_length < NOTE_TEXT_MAX)
        put8(NOTE_TEXT_OFFSET + text_length++, (uint8_t)c);
}

static void emit_str(const char *s)
{
    while (*s)
        emit(*s++);
}

/* Lowercase hex, no "0x", no leading zeros: Linux's "%lx". */
static void emit_hex(uint64_t value)
{
    static const char hex[] = "0123456789abcdef";
    int shift = 60;

    while (shift > 0 && ((value >> shift) & 0xf) == 0)
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        emit(hex[(value >> shift) & 0xf]);
}

static void emit_symbol(const char *name, const void *address)
{
    emit_str("SYMBOL(");
    emit_str(name);
    emit_str(")=");
    emit_hex((uint64_t)(uintptr_t)address);
    emit('\n');
}

/* Returns the offset just past the terminator note. */
static uint32_t build_note(void)
{
    static const char name[] = "VMCOREINFO";
    uint32_t end;

    text_length = 0;
    emit_str("OSRELEASE=" OSRELEASE "\n");
    emit_str("BUILD-ID=" BUILD_ID "\n");
    emit_str("PAGESIZE=4096\n");
    emit_symbol("swapper_pg_dir", TOP_PAGE_TABLE);
    emit_str(PHYS_LINE);
    emit_str("KERNELOFFSET=0\n");
    emit_symbol("_stext", START_SYMBOL);
    emit_symbol("init_uts_ns", &init_uts_ns);

    put32(0, sizeof(name));             /* n_namesz = 11 */
    put32(4, text_length);              /* n_descsz */
    put32(8, 0);                        /* n_type */
    for (uint32_t i = 0; i < sizeof(name); i++)
        put8(NOTE_HDR_SIZE + i, (uint8_t)name[i]);
    /* The padding after the name and the text, and the terminator note
     * (12 zero bytes) after the padded text, are .bss zeros already. */
    end = NOTE_TEXT_OFFSET + ((text_length + 3) & ~3u) + NOTE_HDR_SIZE;
    return end;
}

/* ---- registration ---- */

static uint32_t register_note(uint16_t key)
{
    volatile uint8_t *d = vmcoreinfo_data;
    uint64_t paddr = (uint64_t)(uintptr_t)vmcoreinfo_note;
    volatile struct fw_cfg_dma_access *v = &desc;
    uint32_t control;

    d[0] = 0;                           /* le16 host_format */
    d[1] = 0;
    d[2] = 1;                           /* le16 guest_format: ELF */
    d[3] = 0;
    for (int i = 0; i < 4; i++)         /* le32 size */
        d[4 + i] = (uint8_t)(VMCOREINFO_NOTE_SIZE >> (8 * i));
    for (int i = 0; i < 8; i++)         /* le64 paddr */
        d[8 + i] = (uint8_t)(paddr >> (8 * i));

    fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(key, FW_CFG_DMA_CTL_WRITE),
               sizeof(vmcoreinfo_data), (uint64_t)(uintptr_t)vmcoreinfo_data);
    /* QEMU completes the transfer during the register write; wait
     * anyway, as Linux does. */
    do {
        fw_cfg_barrier();
        control = fw_cfg_be32(v->control);
    } while (control & ~(uint32_t)FW_CFG_DMA_CTL_ERROR);
    return control;
}

#if defined(__x86_64__)
/* Is `word` one of the blank-separated words of the command line? */
static int cmdline_has_word(const char *word)
{
    const char *p = cmdline();

    while (*p) {
        const char *w = word;

        while (*p == ' ' || *p == '\t')
            p++;
        while (*w && *p == *w) {
            p++;
            w++;
        }
        if (*w == 0 && (*p == 0 || *p == ' ' || *p == '\t'))
            return 1;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    return 0;
}
#endif

/*
 * Find etc/vmcoreinfo, build and register the note, report it on the
 * console.  Returns 0 when the machine has no etc/vmcoreinfo.
 */
static int register_and_report(void)
{
    uint32_t control;

    if (!fw_cfg_find_file("etc/vmcoreinfo", &file)) {
        console_puts("vmcoreinfo: etc/vmcoreinfo missing\n");
        return 0;
    }
    build_note();
    control = register_note(fw_cfg_be16(file.select));

    console_puts("vmcoreinfo: registered note at ");
    console_put_hex((uint64_t)(uintptr_t)vmcoreinfo_note, 16);
    console_puts(" size 4132 control=");
    console_put_hex(control, 8);
    console_putc('\n');
    return 1;
}

int main(void)
{
    if (!register_and_report())
        return 0;
    console_puts("vmcoreinfo: marker at ");
    console_put_hex((uint64_t)(uintptr_t)vmcoreinfo_marker, 16);
    console_putc('\n');
    console_puts("vmcoreinfo: swapper_pg_dir at ");
    console_put_hex((uint64_t)(uintptr_t)TOP_PAGE_TABLE, 16);
    console_putc('\n');
    console_puts("vmcoreinfo: done\n");

#if defined(__x86_64__)
    if (cmdline_has_word("halt"))
        cpu_halt_forever();
    return 0;
#else
    cpu_halt_forever();         /* no command line on virt: stay up */
#endif
}
