/*
 * common.c - architecture-independent helpers: number printing and
 * command line parsing.  No libc here, so everything is done by hand.
 */
#include "guest.h"

void console_puts(const char *s)
{
    while (*s)
        console_putc(*s++);
}

void console_put_hex(uint64_t value, int digits)
{
    static const char hex[] = "0123456789abcdef";

    if (digits < 1)
        digits = 1;
    if (digits > 16)
        digits = 16;
    console_puts("0x");
    for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
        console_putc(hex[(value >> shift) & 0xf]);
}

void console_put_dec(uint64_t value)
{
    char buf[20];       /* 2^64 - 1 has 20 decimal digits */
    int n = 0;

    do {
        buf[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (n)
        console_putc(buf[--n]);
}

/* Does the word starting at `word` read "key=" ? */
static int word_has_key(const char *word, const char *key)
{
    while (*key)
        if (*word++ != *key++)
            return 0;
    return *word == '=';
}

uint64_t cmdline_uint(const char *key, uint64_t fallback)
{
    const char *p = cmdline();

    while (*p) {
        /* skip blanks, then look at one word */
        while (*p == ' ' || *p == '\t')
            p++;
        if (word_has_key(p, key)) {
            const char *digit = p;
            uint64_t value = 0;

            while (*digit != '=')
                digit++;
            digit++;
            if (*digit < '0' || *digit > '9')
                return fallback;        /* "key=" with no number */
            while (*digit >= '0' && *digit <= '9')
                value = value * 10 + (uint64_t)(*digit++ - '0');
            return value;
        }
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    return fallback;
}
