/*
 * cpuid.c - print what CPUID answers (x86_64): every basic leaf up to
 * leaf 0's maximum, every extended leaf up to 0x80000000's, with the
 * subleaves of 4, 7, 0xb and 0xd, one line each:
 *
 *   cpuid 0x00000001.0x00: 0x00060fb1 0x00000800 0x80002001 0x078bfbfd
 *
 * (eax, ebx, ecx, edx), then exit 0.  x86_64 only.
 */
#include "guest.h"

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
}

static void show(uint32_t leaf, uint32_t sub)
{
    uint32_t r[4];
    cpuid(leaf, sub, r);
    console_puts("cpuid ");
    console_put_hex(leaf, 8);
    console_putc('.');
    console_put_hex(sub, 2);
    console_putc(':');
    for (int i = 0; i < 4; i++) {
        console_putc(' ');
        console_put_hex(r[i], 8);
    }
    console_putc('\n');
}

static void range(uint32_t base)
{
    uint32_t r[4];
    cpuid(base, 0, r);
    uint32_t max = r[0];
    if (max < base || max > base + 0x40)
        max = base;
    for (uint32_t leaf = base; leaf <= max; leaf++) {
        int subs = leaf == 4 || leaf == 0xb ? 4 : leaf == 7 ? 2 : leaf == 0xd ? 4 : 1;
        for (int sub = 0; sub < subs; sub++)
            show(leaf, sub);
    }
}

int main(void)
{
    range(0);
    range(0x80000000u);
    return 0;
}
