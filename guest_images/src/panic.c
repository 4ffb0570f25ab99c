/*
 * panic.c - register the same VMCOREINFO note as vmcoreinfo.c, then
 * panic the way a Linux guest with the pvpanic driver does.
 *
 * The note building and registration are those of src/vmcoreinfo.c
 * (register_and_report; its main() is renamed and never called), so
 * that both images register exactly the same note and print the same
 * "vmcoreinfo: registered note at ..." line.
 *
 * x86_64: QEMU's ISA pvpanic device (-device pvpanic, I/O port 0x505,
 * hw/misc/pvpanic-isa.c).  A read of the port returns the features the
 * device supports (PVPANIC_PANICKED | PVPANIC_CRASH_LOADED = 3; 0xff
 * with no device there); writing PVPANIC_PANICKED (1) reports a guest
 * panic, and QEMU then applies its -action panic= setting (default:
 * shutdown).  If the guest is still running after the write, it says
 * so and halts with interrupts off, for ever.
 *
 * aarch64: the virt machine here has no pvpanic device (only the PCI
 * pvpanic-pci, not used): say so, then wfi for ever.
 */
#define main vmcoreinfo_main
#include "vmcoreinfo.c"
#undef main

int main(void);

#define PVPANIC_PORT        0x505   /* ISA pvpanic default ioport */
#define PVPANIC_PANICKED    1       /* bit 0: guest panicked */

int main(void)
{
    register_and_report();   /* panics even without etc/vmcoreinfo */

    console_puts("panic: guest panicking\n");
#if defined(__x86_64__)
    console_puts("panic: pvpanic features ");
    console_put_hex(inb(PVPANIC_PORT), 2);
    console_putc('\n');
    outb(PVPANIC_PORT, PVPANIC_PANICKED);
    console_puts("panic: still running\n");
#else
    console_puts("panic: no pvpanic on this machine\n");
#endif
    cpu_halt_forever();
}
