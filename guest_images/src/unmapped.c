/*
 * unmapped.c - print one line, then jump to a physical address with
 * neither RAM nor a device behind it (ARCH_UNMAPPED_ADDR in
 * lib/<arch>/arch.h).  What happens next is up to the machine.
 */
#include "guest.h"

int main(void)
{
    console_puts("unmapped: jumping to unmapped memory\n");
    cpu_jump(ARCH_UNMAPPED_ADDR);
}
