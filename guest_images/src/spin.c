/*
 * spin.c - a CPU-bound loop for timing and determinism checks.
 *
 * Runs "iters=N" rounds (default SPIN_DEFAULT_ITERS) of a 64-bit
 * xorshift/multiply mix that also adds into a small array, then prints
 * a checksum of the state and the array:
 *
 *   spin: iters=1000000000 checksum=0xf38c574af0b5cbe7
 *
 * Only integer arithmetic is used, so the checksum is the same on every
 * run and on every architecture.
 */
#include "guest.h"

#define SPIN_DEFAULT_ITERS 1000000000
#define TABLE_SIZE 64           /* a power of two */

/* volatile keeps the compiler from folding the table into registers:
 * each round really loads and stores memory. */
static volatile uint32_t table[TABLE_SIZE];

int main(void)
{
    uint64_t iters = cmdline_uint("iters", SPIN_DEFAULT_ITERS);
    uint64_t x = 0x9e3779b97f4a7c15;    /* any non-zero seed */
    uint64_t checksum;

    for (uint64_t i = 0; i < iters; i++) {
        /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* mix in the round number, add into the table */
        table[(x >> 32) & (TABLE_SIZE - 1)] += (uint32_t)(x * 0x2545f4914f6cdd1dULL) ^ (uint32_t)i;
    }

    checksum = x;
    for (int k = 0; k < TABLE_SIZE; k++)
        checksum = (checksum ^ table[k]) * 0x100000001b3ULL;   /* FNV-style */

    console_puts("spin: iters=");
    console_put_dec(iters);
    console_puts(" checksum=");
    console_put_hex(checksum, 16);
    console_putc('\n');
    return 0;
}
