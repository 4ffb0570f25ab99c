/*
 * fill.c - write every 4 KiB page of RAM from 16 MiB up to "mib=N" MiB
 * (default 128; at most 3 GiB, the most the pc has below 4 GiB, all
 * identity-mapped) with a pattern zlib compresses about twentyfold that
 * differs from page to page: each eighth 64-bit word holds the word's
 * own address, the others the same text.  Then print one line and halt
 * with interrupts off, so that the host can dump a guest whose memory is
 * written through (bench/dump_kdump.py).
 */
#include "guest.h"

#define FILL_START      (16ull << 20)
#define FILL_MAX        (3ull << 30)
#define TEXT_WORD       0x2064656c6c696621ull   /* "!filled " */

int main(void)
{
    uint64_t top = cmdline_uint("mib", 128) << 20;

    if (top > FILL_MAX)
        top = FILL_MAX;
    for (uint64_t addr = FILL_START; addr < top; addr += 8) {
        volatile uint64_t *word = (volatile uint64_t *)(uintptr_t)addr;
        *word = (addr & 0x38) ? TEXT_WORD : addr;
    }
    console_puts("fill: memory written\n");
    cpu_halt_forever();
}
