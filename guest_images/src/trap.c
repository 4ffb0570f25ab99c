/*
 * trap.c - print one line, then take an exception with no usable
 * exception vectors:
 *   x86_64:  an empty IDT, then ud2 (a triple fault),
 *   aarch64: VBAR_EL1 pointing at unmapped memory, then udf #0
 *            (the vector fetch faults too: an endless exception loop).
 */
#include "guest.h"

int main(void)
{
    console_puts("trap: executing an undefined instruction\n");
    cpu_trap_without_vectors();
}
