/*
 * fwcfg.c - exercise QEMU's fw_cfg device: the traditional interface,
 * the file directory and the DMA interface, including error cases.
 *
 * One line per case.  Lines that depend on the machine's own file list
 * start with "dir "; every other line is the same on every run.  Byte
 * strings are printed as "data=" followed by two hex digits per byte.
 * For DMA cases, "data" is the first 8 bytes of the destination buffer
 * (filled with 0xaa before each transfer) unless said otherwise, and
 * where a case takes two transfers, "control" is the OR of the two
 * control words written back.
 */
#include "guest.h"
#include "fw_cfg.h"

#define FILL 0xaa
#define BAD_ADDR ARCH_UNMAPPED_ADDR     /* no RAM, no device (with -m 128M) */

/* DMA descriptors and buffers: in .bss (below 4 GiB, identity-mapped),
 * 16-byte aligned. */
static struct fw_cfg_dma_access desc __attribute__((aligned(16)));
static struct fw_cfg_dma_access desc2 __attribute__((aligned(16)));
static uint8_t buf[32] __attribute__((aligned(16)));
static uint8_t src[32] __attribute__((aligned(16)));
/* src written byte by byte (volatile: clang would otherwise merge
 * constant stores into FP/SIMD registers, even with -mgeneral-regs-only) */
static volatile uint8_t *const src_bytes = src;
static struct fw_cfg_file file;

/* ---- printing ---- */

static void put_bytes(const uint8_t *bytes, int count)
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 0; i < count; i++) {
        console_putc(hex[bytes[i] >> 4]);
        console_putc(hex[bytes[i] & 0xf]);
    }
}

static void put_data_line(const char *label, const uint8_t *bytes, int count)
{
    console_puts(label);
    console_puts(": data=");
    put_bytes(bytes, count);
    console_putc('\n');
}

/* "dma <name>: control=0x%08x data=<count bytes of `bytes`>" */
static void put_dma_line(const char *name, uint32_t control,
                         const uint8_t *bytes, int count)
{
    console_puts("dma ");
    console_puts(name);
    console_puts(": control=");
    console_put_hex(control, 8);
    console_puts(" data=");
    put_bytes(bytes, count);
    console_putc('\n');
}

static void fill(uint8_t *p, int count, uint8_t value)
{
    volatile uint8_t *v = p;    /* volatile: no call to memset */

    for (int i = 0; i < count; i++)
        v[i] = value;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uintptr_t addr_of(const void *p)
{
    return (uintptr_t)p;
}

/* ---- the cases ---- */

static void traditional(void)
{
    uint8_t bytes[8];

    fw_cfg_read_key(FW_CFG_SIGNATURE, bytes, 4);
    console_puts("signature: ");
    for (int i = 0; i < 4; i++)
        console_putc((char)bytes[i]);
    console_putc('\n');

    fw_cfg_read_key(FW_CFG_ID, bytes, 4);
    console_puts("id: ");
    console_put_hex(le32(bytes), 8);
    console_putc('\n');

    fw_cfg_arch_dma_signature(bytes);
    console_puts("dma signature: ");
    for (int i = 0; i < 8; i++)
        console_putc((char)bytes[i]);
    console_putc('\n');
}

static void directory(void)
{
    uint32_t count;

    fw_cfg_read_key(FW_CFG_FILE_DIR, &count, 4);
    count = fw_cfg_be32(count);
    console_puts("dir count=");
    console_put_dec(count);
    console_putc('\n');
    for (uint32_t i = 0; i < count; i++) {
        fw_cfg_read(&file, sizeof(file));
        console_puts("dir ");
        console_put_hex(fw_cfg_be16(file.select), 4);
        console_puts(" size=");
        console_put_dec(fw_cfg_be32(file.size));
        console_puts(" name=");
        for (int k = 0; k < FW_CFG_FILE_NAME_MAX && file.name[k]; k++)
            console_putc(file.name[k]);
        console_putc('\n');
    }

    console_puts("boot-fail-wait: ");
    if (fw_cfg_find_file("etc/boot-fail-wait", &file)) {
        uint8_t bytes[4];

        fw_cfg_read_key(fw_cfg_be16(file.select), bytes, 4);
        console_put_hex(le32(bytes), 8);
    } else {
        console_puts("missing");
    }
    console_putc('\n');
}

static void traditional_edges(void)
{
    uint8_t bytes[8];

    fw_cfg_read_key(FW_CFG_SIGNATURE, bytes, 8);
    put_data_line("traditional past end", bytes, 8);

    fw_cfg_read_key(FW_CFG_WRITE_CHANNEL | FW_CFG_SIGNATURE, bytes, 4);
    put_data_line("write channel bit", bytes, 4);

    fw_cfg_read_key(0x3fff, bytes, 4);
    put_data_line("invalid key 0x3fff", bytes, 4);

    fw_cfg_read_key(0xffff, bytes, 4);
    put_data_line("invalid key 0xffff", bytes, 4);

    fw_cfg_select(FW_CFG_SIGNATURE);
    fw_cfg_arch_write8(0x55);
    fw_cfg_read(bytes, 4);
    put_data_line("data port write ignored", bytes, 4);

#if FW_CFG_ARCH_HAS_PORTS
    fw_cfg_select(FW_CFG_SIGNATURE);
    for (int i = 0; i < 4; i++)
        bytes[i] = fw_cfg_arch_comb_read8();
    put_data_line("comb 8-bit read of 0x510", bytes, 4);
#else
    console_puts("comb 8-bit read of 0x510: n/a\n");
#endif
}

/* SELECT|READ key 0, 4 bytes into buf; prints "dma <name>: ...". */
static void dma_read_signature(const char *name)
{
    uint32_t control;

    fill(buf, sizeof(buf), FILL);
    control = fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(FW_CFG_SIGNATURE, FW_CFG_DMA_CTL_READ),
                         4, addr_of(buf));
    put_dma_line(name, control, buf, 8);
}

static void dma_cases(void)
{
    uint8_t bytes[8];
    uint32_t control;

    /* a. */
    dma_read_signature("read");

    /* b. */
    fill(buf, sizeof(buf), FILL);
    control = fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(FW_CFG_SIGNATURE, FW_CFG_DMA_CTL_READ),
                         8, addr_of(buf));
    put_dma_line("read past end", control, buf, 8);

    /* c. */
    fill(buf, sizeof(buf), FILL);
    control = fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(FW_CFG_SIGNATURE, FW_CFG_DMA_CTL_SKIP),
                         2, addr_of(buf));
    control |= fw_cfg_dma(&desc, FW_CFG_DMA_CTL_READ, 2, addr_of(buf));
    put_dma_line("skip then read", control, buf, 8);

    /* d. select only: no transfer, then the selected item read
     * traditionally */
    fill(buf, sizeof(buf), FILL);
    control = fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(FW_CFG_ID, 0), 4, addr_of(buf));
    fw_cfg_read(bytes, 4);
    put_dma_line("select only", control, bytes, 4);

    /* e. */
    fill(buf, sizeof(buf), FILL);
    control = fw_cfg_dma(&desc, 0, 4, addr_of(buf));
    put_dma_line("no operation", control, buf, 8);

    /* f. */
    fill(buf, sizeof(buf), FILL);
    control = fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(0x3fff, FW_CFG_DMA_CTL_READ),
                         4, addr_of(buf));
    put_dma_line("read invalid key", control, buf, 8);

    /* g. write to a read-only item, then read it traditionally */
    src_bytes[0] = 0x11;
    src_bytes[1] = 0x22;
    src_bytes[2] = 0x33;
    src_bytes[3] = 0x44;
    control = fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(FW_CFG_SIGNATURE, FW_CFG_DMA_CTL_WRITE),
                         4, addr_of(src));
    fw_cfg_read_key(FW_CFG_SIGNATURE, bytes, 4);
    put_dma_line("write read-only", control, bytes, 4);

    /* h. */
    fill(buf, sizeof(buf), FILL);
    control = fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(0x3fff, FW_CFG_DMA_CTL_WRITE),
                         4, addr_of(src));
    put_dma_line("write invalid key", control, buf, 8);

    /* i. */
    fill(buf, sizeof(buf), FILL);
    control = fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(0x3fff, FW_CFG_DMA_CTL_SKIP),
                         4, addr_of(buf));
    put_dma_line("skip invalid key", control, buf, 8);

    /* j. destination with no RAM behind it; buf is untouched */
    fill(buf, sizeof(buf), FILL);
    control = fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(FW_CFG_SIGNATURE, FW_CFG_DMA_CTL_READ),
                         4, BAD_ADDR);
    put_dma_line("buffer outside RAM", control, buf, 8);

    /* k. descriptor with no RAM behind it, then a good transfer */
    fw_cfg_barrier();
    fw_cfg_arch_dma_start(BAD_ADDR);
    fw_cfg_barrier();
    dma_read_signature("after bad descriptor");

    /* l. the two halves of the address register written separately */
    fill(buf, sizeof(buf), FILL);
    fw_cfg_dma_prepare(&desc, FW_CFG_DMA_SELECT(FW_CFG_SIGNATURE, FW_CFG_DMA_CTL_READ),
                       4, addr_of(buf));
    fw_cfg_barrier();
    fw_cfg_arch_dma_write_high((uint32_t)((uint64_t)addr_of(&desc) >> 32));
    fw_cfg_arch_dma_write_low((uint32_t)addr_of(&desc));
    fw_cfg_barrier();
    put_dma_line("high half only", fw_cfg_be32(desc.control), buf, 8);

    fill(buf, sizeof(buf), FILL);
    fw_cfg_dma_prepare(&desc2, FW_CFG_DMA_SELECT(FW_CFG_SIGNATURE, FW_CFG_DMA_CTL_READ),
                       4, addr_of(buf));
    fw_cfg_barrier();
    fw_cfg_arch_dma_write_low((uint32_t)addr_of(&desc2));
    fw_cfg_barrier();
    put_dma_line("low half only", fw_cfg_be32(desc2.control), buf, 8);
}

/* SELECT|READ all 16 bytes of the writable file into buf. */
static uint32_t read_back(uint16_t key)
{
    fill(buf, sizeof(buf), FILL);
    return fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(key, FW_CFG_DMA_CTL_READ), 16, addr_of(buf));
}

static void dma_writable_file(void)
{
    uint16_t key;
    uint32_t control;

    if (!fw_cfg_find_file("etc/vmcoreinfo", &file)) {
        console_puts("dma writable file: missing\n");
        return;
    }
    console_puts("dma writable file: found\n");
    key = fw_cfg_be16(file.select);

    control = read_back(key);
    put_dma_line("read writable file", control, buf, 16);

    /* {le16 host_format 0, le16 guest_format 1, le32 size 4132,
     *  le64 paddr 0x1000} */
    fill(src, sizeof(src), 0);
    src_bytes[2] = 0x01;
    src_bytes[4] = 0x24;
    src_bytes[5] = 0x10;
    src_bytes[9] = 0x10;
    control = fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(key, FW_CFG_DMA_CTL_WRITE), 16, addr_of(src));
    read_back(key);
    put_dma_line("write whole", control, buf, 16);

    /* 20 bytes into a 16-byte file: refused, nothing written */
    fill(src, sizeof(src), 0x77);
    control = fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(key, FW_CFG_DMA_CTL_WRITE), 20, addr_of(src));
    read_back(key);
    put_dma_line("write past end", control, buf, 16);

    /* skip 8, then write le64 0x2000 over paddr */
    fill(src, sizeof(src), 0);
    src_bytes[1] = 0x20;
    control = fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(key, FW_CFG_DMA_CTL_SKIP), 8, addr_of(buf));
    control |= fw_cfg_dma(&desc, FW_CFG_DMA_CTL_WRITE, 8, addr_of(src));
    read_back(key);
    put_dma_line("write at offset 8", control, buf, 16);

    /* the offset is now at the end: a read without select gives zeros */
    fill(buf, sizeof(buf), FILL);
    control = fw_cfg_dma(&desc, FW_CFG_DMA_CTL_READ, 16, addr_of(buf));
    put_dma_line("read without select at end", control, buf, 16);

    control = read_back(key);
    put_dma_line("read back after reset of selection", control, buf, 16);
}

int main(void)
{
    traditional();
    directory();
    traditional_edges();
    dma_cases();
    dma_writable_file();
    console_puts("fwcfg: done\n");
    return 0;
}
