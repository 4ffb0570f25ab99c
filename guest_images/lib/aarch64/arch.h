/* arch.h - constants of the aarch64 `virt` machine used by the images. */
#ifndef ARCH_H
#define ARCH_H

#define ARCH_NAME "aarch64"

/* In QEMU's virt memory map (QEMU 7.2, checked with "info mtree"), RAM
 * starts at 0x40000000 and nothing else is mapped until the high PCIe
 * ECAM window at 0x4010000000.  With -m 128M, RAM ends at 0x48000000,
 * so this address has no RAM and no device behind it.  (It would be
 * RAM with -m 1G or more.) */
#define ARCH_UNMAPPED_ADDR 0x7fff0000UL

#endif
