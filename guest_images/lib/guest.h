/*
 * guest.h - the portable API shared by every test image.
 *
 * The images in src/ are written only against this header.  Each
 * architecture provides the functions marked "per-arch" in
 * lib/<arch>/arch.c and the constants below in lib/<arch>/arch.h
 * (found through -Ilib/<arch>).  Everything else lives in lib/common.c.
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdint.h>
#include <stddef.h>

#include "arch.h"   /* ARCH_NAME, ARCH_UNMAPPED_ADDR, console_poll() */

#define NORETURN __attribute__((noreturn))

/* The image's entry point in C, provided by src/<image>.c.  Its return
 * value is handed to machine_exit(). */
int main(void);

/* ---- console (per-arch: console_putc; common: the rest) ---- */

/* Write one byte to the serial port, exactly as given ("\n" is not
 * turned into "\r\n"). */
void console_putc(char c);
/* Write a NUL-terminated string. */
void console_puts(const char *s);
/* Write "0x" followed by exactly `digits` lowercase hex digits
 * (1..16; the value is truncated to fit). */
void console_put_hex(uint64_t value, int digits);
/* Write an unsigned decimal number. */
void console_put_dec(uint64_t value);
/* uint32_t console_poll(void): read the serial port's status register
 * once and return it: x86_64: the 16550 LSR (I/O port 0x3fd, 8 bits);
 * aarch64: the PL011 FR (0x09000018, a 32-bit read).  Per-arch, but
 * defined static inline in lib/<arch>/arch.h (included above), so that
 * images which do not call it do not contain it. */

/* ---- boot information ---- */

/* The kernel command line, never NULL ("" when the boot protocol
 * carries none).  Per-arch. */
const char *cmdline(void);
/* Value of the first "key=N" word (N decimal) on the command line,
 * or `fallback` when there is no such word.  Common. */
uint64_t cmdline_uint(const char *key, uint64_t fallback);
/* The initial RAM disk (-initrd) the machine was booted with: returns 1
 * and sets *address (physical, usable as a pointer: identity map on
 * x86_64, MMU off on aarch64) and *size in bytes, or returns 0 when
 * there is none.  x86_64: the first module of the PVH start_info
 * (ignored unless it lies below 4 GiB); aarch64: /chosen
 * linux,initrd-start and linux,initrd-end of the device tree.  Per-arch. */
int boot_initrd(uint64_t *address, uint64_t *size);

/* ---- leaving the guest (per-arch) ---- */

/* Stop the machine.  On x86_64 the value becomes QEMU's exit status
 * ((value << 1) | 1, through isa-debug-exit); on aarch64 the machine
 * just powers off (status 0). */
NORETURN void machine_exit(int value);
/* Mask interrupts and halt the CPU for ever. */
NORETURN void cpu_halt_forever(void);
/* Jump to a physical address (the MMU maps memory 1:1, if it is on). */
NORETURN void cpu_jump(uintptr_t address);
/* Break the exception vectors, then execute an undefined instruction. */
NORETURN void cpu_trap_without_vectors(void);

#endif
