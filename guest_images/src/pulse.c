/*
 * pulse.c - a CPU-bound loop whose every round updates memory in place.
 *
 * Runs "iters=N" rounds (default PULSE_DEFAULT_ITERS) of the same
 * xorshift/multiply mix as spin.c.  Each round also
 *
 *   - adds into, and xors into, entries of a volatile table (on x86_64
 *     these are single read-modify-write instructions with a memory
 *     destination, "add %reg, table(,%idx,4)" and "xor ...");
 *   - adds into a volatile 64-bit total (another memory-destination
 *     "add" on x86_64);
 *   - increments a 64-bit counter atomically ("lock" prefixed on
 *     x86_64, an ldxr/stxr loop on aarch64 cortex-a57);
 *
 * and every "poll=N" rounds (default PULSE_DEFAULT_POLL; 0 = never) it
 * reads the console's status register with console_poll().  The value
 * read does not enter the checksum, which therefore depends only on
 * "iters" and is the same on both architectures.
 *
 * None of the updates is idempotent: an update applied twice, or lost,
 * changes the checksum or the counter.  It prints one line:
 *
 *   pulse: iters=20000000 checksum=0x<16 hex digits> counter=20000000
 */
#include "guest.h"

#define PULSE_DEFAULT_ITERS 20000000
#define PULSE_DEFAULT_POLL  1000
#define TABLE_SIZE 64           /* a power of two */

static volatile uint32_t table[TABLE_SIZE];
static volatile uint64_t total;
static volatile uint64_t counter;
/* Where each status register read goes, so that it is really done. */
static volatile uint32_t last_status;

int main(void)
{
    uint64_t iters = cmdline_uint("iters", PULSE_DEFAULT_ITERS);
    uint64_t poll = cmdline_uint("poll", PULSE_DEFAULT_POLL);
    uint64_t until_poll = poll;
    uint64_t x = 0x9e3779b97f4a7c15;    /* any non-zero seed */
    uint64_t checksum;

    for (uint64_t i = 0; i < iters; i++) {
        /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* read-modify-write updates of memory */
        table[(x >> 32) & (TABLE_SIZE - 1)] += (uint32_t)(x * 0x2545f4914f6cdd1dULL) ^ (uint32_t)i;
        table[(x >> 48) & (TABLE_SIZE - 1)] ^= (uint32_t)(x >> 8);
        total += x;
        __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        /* a device register read now and then */
        if (poll && --until_poll == 0) {
            until_poll = poll;
            last_status = console_poll();
        }
    }

    checksum = x;
    for (int k = 0; k < TABLE_SIZE; k++)
        checksum = (checksum ^ table[k]) * 0x100000001b3ULL;   /* FNV-style */
    checksum = (checksum ^ total) * 0x100000001b3ULL;
    checksum = (checksum ^ counter) * 0x100000001b3ULL;

    console_puts("pulse: iters=");
    console_put_dec(iters);
    console_puts(" checksum=");
    console_put_hex(checksum, 16);
    console_puts(" counter=");
    console_put_dec(counter);
    console_putc('\n');
    return 0;
}
