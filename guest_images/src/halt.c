/*
 * halt.c - print one line, then halt the CPU with interrupts masked.
 * Nothing can wake it: the machine stays up, doing nothing, until it
 * is killed from outside.
 */
#include "guest.h"

int main(void)
{
    console_puts("halt: halting with interrupts off\n");
    cpu_halt_forever();
}
