/*
 * util.c - the few library routines the firmware uses (the compiler may
 * also call memset and memcpy on its own).
 */
#include "fw.h"

/* Word stores for the aligned middle (an emulated store costs the same
 * whatever its width), bytes at the ends; aligned, because the virt
 * firmware runs with the MMU off, where RAM is Device memory and an
 * unaligned access faults. */
void *memset(void *dst, int c, size_t n)
{
    volatile uint8_t *d = dst;      /* volatile: not turned back into a memset call */
    uintptr_t word = (uintptr_t)(uint8_t)c * (UINTPTR_MAX / 0xff);
    while (n && ((uintptr_t)d & (sizeof(word) - 1))) {
        *d++ = (uint8_t)c;
        n--;
    }
    volatile uintptr_t *w = (volatile uintptr_t *)d;
    for (; n >= sizeof(word); n -= sizeof(word))
        *w++ = word;
    d = (volatile uint8_t *)w;
    while (n--)
        *d++ = (uint8_t)c;
    return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
    volatile uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (uint8_t)*a - (uint8_t)*b;
}

void puts_raw(const char *s)
{
    while (*s)
        arch_putc(*s++);
}

void put_hex(uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    int shift = 60;
    puts_raw("0x");
    while (shift > 0 && !(v >> shift))
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        arch_putc(digits[(v >> shift) & 0xf]);
}

NORETURN void fail(const char *msg)
{
    puts_raw("emu firmware: ");
    puts_raw(msg);
    arch_putc('\n');
    arch_halt();
}

NORETURN void fail_at(const char *msg, uint64_t value)
{
    puts_raw("emu firmware: ");
    puts_raw(msg);
    arch_putc(' ');
    put_hex(value);
    arch_putc('\n');
    arch_halt();
}
