/*
 * hello.c - the smallest useful guest: greet, echo the command line,
 * describe the initrd if there is one, exit with the value of "exit=N"
 * (default 0).
 *
 *   Hello from the guest! (x86_64)
 *   cmdline: exit=3
 *   initrd: size=4096 sum=0x88d6ce5789d35325
 *
 * The initrd line only if the machine passed an initrd (here: the 4096
 * bytes i & 0xff); sum is the 64-bit FNV-1a hash of its bytes.
 */
#include "guest.h"

#define FNV1A64_OFFSET_BASIS 0xcbf29ce484222325ULL
#define FNV1A64_PRIME        0x00000100000001b3ULL

static uint64_t fnv1a64(uint64_t address, uint64_t size)
{
    /* Byte loads through a volatile pointer: plain loads could be
     * widened or vectorised, and on aarch64 (MMU off, Device memory)
     * a wide load must be aligned. */
    const volatile uint8_t *p = (const volatile uint8_t *)(uintptr_t)address;
    uint64_t hash = FNV1A64_OFFSET_BASIS;

    for (uint64_t i = 0; i < size; i++) {
        hash ^= p[i];
        hash *= FNV1A64_PRIME;
    }
    return hash;
}

int main(void)
{
    uint64_t initrd_address, initrd_size;

    console_puts("Hello from the guest! (" ARCH_NAME ")\n");
    console_puts("cmdline: ");
    console_puts(cmdline());
    console_putc('\n');
    if (boot_initrd(&initrd_address, &initrd_size)) {
        console_puts("initrd: size=");
        console_put_dec(initrd_size);
        console_puts(" sum=");
        console_put_hex(fnv1a64(initrd_address, initrd_size), 16);
        console_putc('\n');
    }
    return (int)cmdline_uint("exit", 0);
}
