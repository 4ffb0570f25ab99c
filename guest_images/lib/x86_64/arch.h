/* arch.h - constants of the x86_64 `pc` machine used by the images. */
#ifndef ARCH_H
#define ARCH_H

#define ARCH_NAME "x86_64"

/* Inside the PCI hole (0xc0000000..0xfec00000 with <= 3 GiB of RAM):
 * no RAM and, on a default `pc` machine, no device either.  It is
 * below 4 GiB, so the start code's identity map covers it. */
#define ARCH_UNMAPPED_ADDR 0xdead0000UL

#endif
