/*
 * pci.c - PCI setup on bus 0 as SeaBIOS 1.16 does it on QEMU's pc
 * (src/fw/pciinit.c), through configuration mechanism #1 (0xcf8/0xcfc):
 *
 *   - PIIX3 ISA bridge (8086:7000): PIRQA-D routed to IRQs 10, 10, 11, 11
 *     (0x60-0x63) and those IRQs made level-triggered in the ELCRs
 *     (piix_isa_bridge_setup);
 *   - PIIX3 IDE (8086:7010): both channels' decode enabled (0x40, 0x42 =
 *     0x8000, piix_ide_setup);
 *   - PIIX4 PM (8086:7113): Interrupt Line 9 (the SCI), PMBA 0x600 with
 *     PMIOSE, the SMBus base 0x700, enabled (piix4_pm_setup);
 *   - every function: Interrupt Line from the PIRQ its pin and slot use
 *     (piix_pci_slot_get_irq), I/O BARs from 0xc000 up, largest first
 *     (pci_bios_map_devices), then I/O, memory and SERR enabled in
 *     Command (pci_bios_init_device).
 *
 * and leaves the registers of what SeaBIOS does beyond that as SeaBIOS leaves
 * them on QEMU 7.2 (measured): the i440FX's PAM registers 0x59-0x5f with the
 * BIOS areas read-only but the last 32 KiB of the e-segment (shadow.c
 * make_bios_readonly), SMRAM 0x0a (smm.c: SMRAM enabled) and the PIIX4's
 * APMC SMI enable (bit 25 of DEVACTB 0x58). emu's i440FX does not act on PAM
 * or SMRAM and emu has no SMM: these are register values only.
 *
 * Memory BARs are left unassigned: no function emu has decodes memory.
 */
#include "fw.h"
#include "pc.h"
#include "portio.h"

#define PCI_VENDOR_ID       0x00
#define PCI_COMMAND         0x04
#define PCI_HEADER_TYPE     0x0e
#define PCI_BASE_ADDRESS_0  0x10
#define PCI_INTERRUPT_LINE  0x3c
#define PCI_INTERRUPT_PIN   0x3d
#define PCI_CMD_ENABLE      (0x1 | 0x2 | 0x100)    /* I/O, memory, SERR */
#define PCI_IO_START        0xc000
#define ACPI_PM_BASE        0x600
#define PIIX_ELCR1          0x4d0
#define PIIX_ELCR2          0x4d1
#define MAX_BARS            32

static const uint8_t pci_irqs[4] = {10, 10, 11, 11};
static const uint8_t pam_final[7] = {0x10, 0x11, 0x11, 0x11, 0x11, 0x11, 0x33};

static void cfg_addr(int devfn, int reg)
{
    outl(0xcf8, 0x80000000u | (devfn << 8) | (reg & 0xfc));
}

static uint32_t cfg_readl(int devfn, int reg)
{
    cfg_addr(devfn, reg);
    return inl(0xcfc);
}

static uint16_t cfg_readw(int devfn, int reg)
{
    cfg_addr(devfn, reg);
    return inw(0xcfc + (reg & 2));
}

static uint8_t cfg_readb(int devfn, int reg)
{
    cfg_addr(devfn, reg);
    return inb(0xcfc + (reg & 3));
}

static void cfg_writel(int devfn, int reg, uint32_t v)
{
    cfg_addr(devfn, reg);
    outl(0xcfc, v);
}

static void cfg_writew(int devfn, int reg, uint16_t v)
{
    cfg_addr(devfn, reg);
    outw(0xcfc + (reg & 2), v);
}

static void cfg_writeb(int devfn, int reg, uint8_t v)
{
    cfg_addr(devfn, reg);
    outb(0xcfc + (reg & 3), v);
}

struct bar {
    int devfn, reg;
    uint32_t size;
};

static void setup_function(int devfn, uint32_t id)
{
    int pin = cfg_readb(devfn, PCI_INTERRUPT_PIN);
    if (pin)    /* piix_pci_slot_get_irq: slot 1's pins start at PIRQA */
        cfg_writeb(devfn, PCI_INTERRUPT_LINE,
                   pci_irqs[(pin - 1 + (devfn >> 3) - 1) & 3]);
    switch (id) {
    case 0x12378086:                            /* i440FX */
        for (int i = 0; i < 7; i++)
            cfg_writeb(devfn, 0x59 + i, pam_final[i]);
        cfg_writeb(devfn, 0x72, 0x0a);
        break;
    case 0x70008086: {                          /* PIIX3 ISA */
        uint8_t elcr[2] = {0, 0};
        for (int i = 0; i < 4; i++) {
            elcr[pci_irqs[i] >> 3] |= 1 << (pci_irqs[i] & 7);
            cfg_writeb(devfn, 0x60 + i, pci_irqs[i]);
        }
        outb(PIIX_ELCR1, elcr[0]);
        outb(PIIX_ELCR2, elcr[1]);
        break;
    }
    case 0x70108086:                            /* PIIX3 IDE */
        cfg_writew(devfn, 0x40, 0x8000);
        cfg_writew(devfn, 0x42, 0x8000);
        break;
    case 0x71138086:                            /* PIIX4 PM */
        cfg_writeb(devfn, PCI_INTERRUPT_LINE, 9);
        cfg_writel(devfn, 0x40, ACPI_PM_BASE | 1);
        cfg_writeb(devfn, 0x80, 0x01);
        cfg_writel(devfn, 0x90, (ACPI_PM_BASE + 0x100) | 1);
        cfg_writeb(devfn, 0xd2, 0x09);
        cfg_writel(devfn, 0x58, cfg_readl(devfn, 0x58) | (1u << 25));
        break;
    }
    cfg_writew(devfn, PCI_COMMAND, cfg_readw(devfn, PCI_COMMAND) | PCI_CMD_ENABLE);
}

void pci_setup(void)
{
    struct bar bars[MAX_BARS];
    int nbars = 0;

    for (int devfn = 0; devfn < 256; devfn++) {
        uint32_t id = cfg_readl(devfn, PCI_VENDOR_ID);
        if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0)
            continue;
        for (int reg = PCI_BASE_ADDRESS_0; reg < PCI_BASE_ADDRESS_0 + 24; reg += 4) {
            uint32_t old = cfg_readl(devfn, reg);
            cfg_writel(devfn, reg, ~0u);
            uint32_t probe = cfg_readl(devfn, reg);
            cfg_writel(devfn, reg, old);
            if (!(old & 1) || !(probe & ~3u) || nbars == MAX_BARS)
                continue;   /* only I/O BARs (see above) */
            bars[nbars].devfn = devfn;
            bars[nbars].reg = reg;
            bars[nbars].size = (~(probe & ~3u) + 1) & 0xffff;
            nbars++;
        }
    }
    /* pci_bios_map_devices: the largest first, each aligned to its size */
    uint32_t io = PCI_IO_START;
    for (int n = 0; n < nbars; n++) {
        int best = n;
        for (int i = n + 1; i < nbars; i++)
            if (bars[i].size > bars[best].size)
                best = i;
        struct bar b = bars[best];
        bars[best] = bars[n];
        bars[n] = b;
        io = (io + b.size - 1) & ~(b.size - 1);
        cfg_writel(b.devfn, b.reg, io | 1);
        io += b.size;
    }
    for (int devfn = 0; devfn < 256; devfn++) {
        uint32_t id = cfg_readl(devfn, PCI_VENDOR_ID);
        if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0)
            continue;
        setup_function(devfn, id);
    }
}
