/*
 * fwcfgbench.c - a throughput benchmark of QEMU's fw_cfg device.
 *
 * Looks up the file "opt/bench" in the fw_cfg directory (given on the
 * host with -fw_cfg name=opt/bench,file=PATH), reads all of it 8 times
 * with DMA (SELECT|READ, one transfer per copy) into a fixed buffer in
 * RAM beyond the image, sums the last copy, then reads its first 1 MiB
 * (or all of it, if smaller) one byte at a time through the traditional
 * data register and sums that.  There is no timer: the host timestamps
 * the marker lines as they arrive on the serial port.  Each timed phase
 * starts right after the newline of one line and ends right before the
 * first byte of the next, so the host takes the arrival of a newline as
 * the start and the arrival of a line's first byte as the end:
 *
 *   after "dma start\n"      the 8 DMA copies, nothing else
 *   "dma done sum="          printed before the sum of the last copy is
 *                            computed (so the sum is not timed)
 *   after "dma done ...\n"   select, then the 1 MiB of 8-bit reads
 *   "pio done sum="          printed right after the last read
 *
 * The buffer is written once with zeros before "dma start", so that the
 * host's first-touch cost of those pages is not part of the DMA phase.
 *
 *   fwcfgbench: file size=N
 *   fwcfgbench: dma start
 *   fwcfgbench: dma done sum=0x<16 hex digits>
 *   fwcfgbench: pio done sum=0x<16 hex digits>
 *   fwcfgbench: done
 *
 * Both sums are the sum modulo 2^64 of the little-endian 64-bit words
 * of the bytes read (a last partial word zero-padded): "dma" over the
 * whole file, "pio" over its first min(size, 1 MiB) bytes.
 *
 * Errors (exit value 1): "fwcfgbench: opt/bench missing", "fwcfgbench:
 * opt/bench too large" (more than BUF_MAX bytes), "fwcfgbench: dma
 * error control=0x...".
 */
#include "guest.h"
#include "fw_cfg.h"

#define FILE_NAME "opt/bench"
#define DMA_COPIES 8
#define PIO_BYTES (1u << 20)

/* The DMA destination: a fixed physical address in RAM, well above the
 * image, its .bss and (on virt) the device tree; identity-mapped on
 * x86_64, MMU off on aarch64.  Room for 48 MiB, all inside -m 128M. */
#if defined(__x86_64__)
#define BUF_ADDR 0x01000000UL           /* 16 MiB */
#elif defined(__aarch64__)
#define BUF_ADDR 0x41000000UL           /* RAM base 0x40000000 + 16 MiB */
#else
#error "unknown architecture"
#endif
#define BUF_MAX (48u << 20)

static struct fw_cfg_dma_access desc __attribute__((aligned(16)));
static struct fw_cfg_file file;

/* Sum of the little-endian 64-bit words of `size` bytes at `p` (8-byte
 * aligned), the last partial word zero-padded.  Read through volatile
 * pointers: clang otherwise vectorizes the loop into SSE adds on x86_64
 * despite -mgeneral-regs-only, and SSE is not enabled in the guest. */
static uint64_t sum_words(const volatile uint8_t *p, uint32_t size)
{
    const volatile uint64_t *words = (const volatile uint64_t *)p;
    uint32_t count = size / 8;
    uint64_t sum = 0;

    for (uint32_t i = 0; i < count; i++)
        sum += words[i];
    for (uint32_t i = count * 8; i < size; i++)
        sum += (uint64_t)p[i] << (8 * (i & 7));
    return sum;
}

int main(void)
{
    uint8_t *buf = (uint8_t *)BUF_ADDR;
    uint32_t size, pio_bytes, control = 0;
    uint16_t key;
    uint64_t sum;

    if (!fw_cfg_find_file(FILE_NAME, &file)) {
        console_puts("fwcfgbench: " FILE_NAME " missing\n");
        return 1;
    }
    key = fw_cfg_be16(file.select);
    size = fw_cfg_be32(file.size);
    console_puts("fwcfgbench: file size=");
    console_put_dec(size);
    console_putc('\n');
    if (size > BUF_MAX) {
        console_puts("fwcfgbench: " FILE_NAME " too large\n");
        return 1;
    }

    /* touch the buffer first (volatile: no call to memset) */
    for (uint32_t i = 0; i < size / 8; i++)
        ((volatile uint64_t *)buf)[i] = 0;

    /* 8 complete copies with DMA, then the sum of the last one */
    console_puts("fwcfgbench: dma start\n");
    for (int i = 0; i < DMA_COPIES; i++)
        control |= fw_cfg_dma(&desc, FW_CFG_DMA_SELECT(key, FW_CFG_DMA_CTL_READ),
                              size, (uintptr_t)buf);
    if (control != 0) {
        console_puts("fwcfgbench: dma error control=");
        console_put_hex(control, 8);
        console_putc('\n');
        return 1;
    }
    console_puts("fwcfgbench: dma done sum=");
    fw_cfg_barrier();
    sum = sum_words(buf, size);
    console_put_hex(sum, 16);
    console_putc('\n');

    /* the first 1 MiB, one 8-bit read of the data register per byte */
    pio_bytes = size < PIO_BYTES ? size : PIO_BYTES;
    sum = 0;
    fw_cfg_select(key);
    for (uint32_t i = 0; i < pio_bytes; i++)
        sum += (uint64_t)fw_cfg_arch_read8() << (8 * (i & 7));
    console_puts("fwcfgbench: pio done sum=");  /* its first byte ends the phase */
    console_put_hex(sum, 16);
    console_putc('\n');

    console_puts("fwcfgbench: done\n");
    return 0;
}
