/*
 * arch.c - pc: fw_cfg at I/O ports 0x510 (selector, 16-bit), 0x511
 * (data) and 0x514 (DMA address, big-endian, high half at 0x514, low
 * half at 0x518: writing the low half starts the transfer), console on
 * the COM1 16550 at 0x3f8 (docs/specs/fw_cfg.rst, "x86 Register Locations").
 */
#include "fw.h"
#include "portio.h"

void arch_fw_cfg_select(uint16_t key)
{
    outw(0x510, key);
}

uint8_t arch_fw_cfg_read8(void)
{
    return inb(0x511);
}

void arch_fw_cfg_dma(uint64_t descriptor)
{
    outl(0x514, __builtin_bswap32((uint32_t)(descriptor >> 32)));
    outl(0x518, __builtin_bswap32((uint32_t)descriptor));
}

#define COM1        0x3f8
#define LSR_THRE    0x20    /* transmit holding register empty */

void arch_putc(char c)
{
    /* No UART: the port reads 0xff, which has THRE set. */
    while (!(inb(COM1 + 5) & LSR_THRE))
        ;
    outb(COM1, (uint8_t)c);
}

/*
 * The i8042 keyboard controller, set up as SeaBIOS 1.16 leaves it
 * (src/hw/ps2port.c, ps2_keyboard_setup): both ports disabled and drained,
 * controller and keyboard port tests, the keyboard reset (FA AA), reset
 * and disabled (F5), put in scancode set 2 (F0 02) and enabled (F4), with
 * the command byte 0x61 at the end: keyboard interrupt on, mouse port off,
 * set 2 -> set 1 translation on.  Linux's i8042 driver keeps the
 * translation bit it finds (its "AT Translated Set 2 keyboard").  A
 * missing controller (status 0xff) or a wrong answer ends the setup, as
 * it ends SeaBIOS's.
 */
#define KBD_DATA        0x60
#define KBD_STATUS      0x64
#define KBD_STR_OBF     0x01
#define KBD_STR_IBF     0x02
#define KBD_TRIES       10000

static int kbd_wait_write(void)
{
    for (int i = 0; i < KBD_TRIES; i++)
        if (!(inb(KBD_STATUS) & KBD_STR_IBF))
            return 0;
    return -1;
}

static int kbd_read(void)
{
    for (int i = 0; i < KBD_TRIES; i++)
        if (inb(KBD_STATUS) & KBD_STR_OBF)
            return inb(KBD_DATA);
    return -1;
}

static int kbd_flush(void)
{
    for (int i = 0; i < 16; i++) {
        if (!(inb(KBD_STATUS) & KBD_STR_OBF))
            return 0;
        inb(KBD_DATA);
    }
    return -1;
}

static int kbd_out(uint16_t port, uint8_t v)
{
    if (kbd_wait_write())
        return -1;
    outb(port, v);
    return 0;
}

/* A controller command with an optional argument byte (arg < 0: none). */
static int kbd_command(uint8_t cmd, int arg)
{
    if (kbd_out(KBD_STATUS, cmd))
        return -1;
    return arg < 0 ? 0 : kbd_out(KBD_DATA, (uint8_t)arg);
}

/* A byte to the keyboard, which must answer ACK (0xfa). */
static int kbd_send(uint8_t v)
{
    return kbd_out(KBD_DATA, v) || kbd_read() != 0xfa ? -1 : 0;
}

void arch_kbd_setup(void)
{
    if (kbd_flush() || kbd_command(0xad, -1) || kbd_command(0xa7, -1) || kbd_flush())
        return;
    if (kbd_command(0xaa, -1) || kbd_read() != 0x55)
        return;
    if (kbd_command(0xab, -1) || kbd_read() != 0x00)
        return;
    /* keyboard port on, interrupts off, no translation while commanding */
    if (kbd_command(0x60, 0x20))
        return;
    if (kbd_send(0xff) || kbd_read() != 0xaa)
        return;
    if (kbd_send(0xf5) || kbd_send(0xf0) || kbd_send(0x02) || kbd_send(0xf4))
        return;
    kbd_command(0x60, 0x61);
}

NORETURN void arch_halt(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}
