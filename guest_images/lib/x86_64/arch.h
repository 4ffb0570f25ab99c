/* arch.h - constants of the x86_64 `pc` machine used by the images,
 * and console_poll() (see guest.h). */
#ifndef ARCH_H
#define ARCH_H

#include <stdint.h>

#define ARCH_NAME "x86_64"

/* Inside the PCI hole (0xc0000000..0xfec00000 with <= 3 GiB of RAM):
 * no RAM and, on a default `pc` machine, no device either.  It is
 * below 4 GiB, so the start code's identity map covers it. */
#define ARCH_UNMAPPED_ADDR 0xdead0000UL

/* The 16550 line status register of COM1 (0x3f8 + 5), read with inb. */
static inline uint32_t console_poll(void)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"((uint16_t)0x3fd));
    return value;
}

#endif
