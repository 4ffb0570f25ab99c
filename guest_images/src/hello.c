/*
 * hello.c - the smallest useful guest: greet, echo the command line,
 * exit with the value of "exit=N" (default 0).
 *
 *   Hello from the guest! (x86_64)
 *   cmdline: exit=3
 */
#include "guest.h"

int main(void)
{
    console_puts("Hello from the guest! (" ARCH_NAME ")\n");
    console_puts("cmdline: ");
    console_puts(cmdline());
    console_putc('\n');
    return (int)cmdline_uint("exit", 0);
}
