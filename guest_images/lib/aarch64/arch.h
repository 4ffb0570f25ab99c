/* arch.h - constants of the aarch64 `virt` machine used by the images,
 * and console_poll() (see guest.h). */
#ifndef ARCH_H
#define ARCH_H

#include <stdint.h>

#define ARCH_NAME "aarch64"

/* In QEMU's virt memory map (QEMU 7.2, checked with "info mtree"), RAM
 * starts at 0x40000000 and nothing else is mapped until the high PCIe
 * ECAM window at 0x4010000000.  With -m 128M, RAM ends at 0x48000000,
 * so this address has no RAM and no device behind it.  (It would be
 * RAM with -m 1G or more.) */
#define ARCH_UNMAPPED_ADDR 0x7fff0000UL

/* The PL011 flag register (0x09000000 + 0x18), one 32-bit read. */
static inline uint32_t console_poll(void)
{
    return *(volatile uint32_t *)0x09000018UL;
}

#endif
