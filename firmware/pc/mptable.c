/*
 * mptable.c - the Intel MultiProcessor Specification 1.4 tables, with
 * the entries SeaBIOS 1.16 writes on QEMU (src/fw/mptable.c
 * mptable_setup, src/std/mptable.h): one processor entry per possible
 * CPU (etc/max-cpus), the ISA bus, the IOAPIC (id 0, version 0x11 as
 * SeaBIOS writes it, at 0xfec00000), an interrupt source entry for each
 * ISA IRQ that is not a PCI IRQ (5, 9, 10 and 11 are not listed), with
 * QEMU's IRQ0 -> pin 2 override (etc/irq0-override), and the two local
 * interrupts (ExtINT on LINT0 of the BSP, NMI on LINT1 of all).
 *
 * Differences from SeaBIOS on QEMU:
 * - emu's pc has no PCI bus, so there is neither a PCI bus entry nor
 *   PCI interrupt entries (what SeaBIOS writes when its PCI scan finds
 *   no device), and the ISA bus is bus 0.
 * - Only the CPU emu emulates (the BSP) is marked enabled; SeaBIOS marks
 *   the CPUs that answered its INIT-SIPI.
 * - The floating pointer is in the last KiB of base memory (0x9fc00, an
 *   MP spec location Linux scans), with the configuration table after it
 *   as SeaBIOS places it after its pointer in the f-segment: emu's
 *   f-segment is read-only ROM (emu models no i440FX PAM shadow RAM).
 */
#include "fw.h"
#include "boot.h"
#include "pc.h"

#define FW_CFG_MAX_CPUS         0x0f
#define FW_CFG_NB_CPUS          0x05
#define FW_CFG_IRQ0_OVERRIDE    0x8002

#define APIC_BASE       0xfee00000u
#define IOAPIC_BASE     0xfec00000u
#define IOAPIC_ID       0
#define PCI_IRQS        ((1 << 5) | (1 << 9) | (1 << 10) | (1 << 11))

struct mp_floating {
    uint32_t signature;     /* "_MP_" */
    uint32_t physaddr;
    uint8_t length;         /* in 16-byte units */
    uint8_t spec_rev;
    uint8_t checksum;
    uint8_t feature[5];
} __attribute__((packed));

struct mp_config {
    uint32_t signature;     /* "PCMP" */
    uint16_t length;
    uint8_t spec;
    uint8_t checksum;
    char oemid[8];
    char productid[12];
    uint32_t oemptr;
    uint16_t oemsize;
    uint16_t entrycount;
    uint32_t lapic;
    uint16_t exttable_length;
    uint8_t exttable_checksum;
    uint8_t reserved;
} __attribute__((packed));

struct mp_cpu {
    uint8_t type, apicid, apicver, cpuflag;
    uint32_t cpusignature, featureflag, reserved[2];
} __attribute__((packed));

struct mp_bus {
    uint8_t type, busid;
    char bustype[6];
} __attribute__((packed));

struct mp_ioapic {
    uint8_t type, apicid, apicver, flags;
    uint32_t apicaddr;
} __attribute__((packed));

struct mp_intsrc {
    uint8_t type, irqtype;
    uint16_t irqflag;
    uint8_t srcbus, srcbusirq, dstapic, dstirq;
} __attribute__((packed));

enum { MPT_CPU, MPT_BUS, MPT_IOAPIC, MPT_INTSRC, MPT_LOCAL_INT };

static uint8_t checksum(const volatile void *p, uint32_t len)
{
    const volatile uint8_t *b = p;
    uint8_t sum = 0;
    while (len--)
        sum += *b++;
    return sum;
}

static void intsrc(volatile struct mp_intsrc *e, uint8_t type, uint8_t irqtype, uint8_t bus,
                   uint8_t srcirq, uint8_t dstapic, uint8_t dstirq)
{
    e->type = type;
    e->irqtype = irqtype;
    e->irqflag = 0;         /* conform to the bus */
    e->srcbus = bus;
    e->srcbusirq = srcirq;
    e->dstapic = dstapic;
    e->dstirq = dstirq;
}

void mptable_setup(struct fw_cfg *fw, struct acpi_zones *z)
{
    uint32_t max_cpus = fw_cfg_u32(fw, FW_CFG_MAX_CPUS) & 0xffff;
    uint32_t nb_cpus = fw_cfg_u32(fw, FW_CFG_NB_CPUS) & 0xffff;
    if (max_cpus < nb_cpus)
        max_cpus = nb_cpus;
    int irq0_override = fw_cfg_u32(fw, FW_CFG_IRQ0_OVERRIDE) != 0;

    uint32_t sig, ebx, ecx, features;
    __asm__ volatile("cpuid" : "=a"(sig), "=b"(ebx), "=c"(ecx), "=d"(features) : "a"(1), "c"(0));
    if (!sig) {
        sig = 0x600;
        features = 0x201;
    }
    uint32_t pkgcpus = 1;
    if (features & (1u << 28)) {    /* only the first logical CPU of each package */
        uint32_t n = (ebx >> 16) & 0xff;
        pkgcpus = n > 1 ? 2u << (31 - __builtin_clz(n - 1)) : 1;
    }
    uint32_t apic_version = *(volatile uint32_t *)(APIC_BASE + 0x30) & 0xff;
    uint32_t bsp_id = *(volatile uint32_t *)(APIC_BASE + 0x20) >> 24;

    /* Count the entries first: the table goes after the pointer when it
     * fits in the last KiB of base memory, else to the high tables. */
    uint32_t ncpus = (max_cpus + pkgcpus - 1) / pkgcpus;
    uint32_t nisa = 0;
    for (int i = 0; i < 16; i++)
        if (!(PCI_IRQS & (1 << i)) && !(irq0_override && i == 2))
            nisa++;
    uint32_t length = sizeof(struct mp_config) + ncpus * sizeof(struct mp_cpu)
        + sizeof(struct mp_bus) + sizeof(struct mp_ioapic)
        + (nisa + 2) * sizeof(struct mp_intsrc);
    uint32_t addr = EBDA + sizeof(struct mp_floating);
    if (addr + length > REBOOT_MARK) {
        if (length > z->high_end - z->high)
            return;
        addr = z->high;
        z->high += length;
        z->fseg = EBDA + sizeof(struct mp_floating);
    } else {
        z->fseg = addr + length;
    }

    volatile struct mp_config *config = (struct mp_config *)addr;
    memset((void *)config, 0, length);
    config->signature = 0x504d4350;         /* "PCMP" */
    config->length = length;
    config->spec = 4;
    memcpy((void *)config->oemid, "BOCHSCPU", 8);
    memcpy((void *)config->productid, "0.1         ", 12);
    config->lapic = APIC_BASE;

    volatile struct mp_cpu *cpu = (struct mp_cpu *)&config[1];
    for (uint32_t i = 0; i < max_cpus; i += pkgcpus, cpu++) {
        cpu->type = MPT_CPU;
        cpu->apicid = i;
        cpu->apicver = apic_version;
        cpu->cpuflag = (i == bsp_id ? 0x01 : 0) | (i == 0 ? 0x02 : 0);  /* enabled, BSP */
        cpu->cpusignature = sig;
        cpu->featureflag = features;
    }

    uint8_t isa = 0;        /* no PCI bus before it */
    volatile struct mp_bus *bus = (struct mp_bus *)cpu;
    bus->type = MPT_BUS;
    bus->busid = isa;
    memcpy((void *)bus->bustype, "ISA   ", 6);

    volatile struct mp_ioapic *ioapic = (struct mp_ioapic *)&bus[1];
    ioapic->type = MPT_IOAPIC;
    ioapic->apicid = IOAPIC_ID;
    ioapic->apicver = 0x11;
    ioapic->flags = 1;      /* enabled */
    ioapic->apicaddr = IOAPIC_BASE;

    volatile struct mp_intsrc *src = (struct mp_intsrc *)&ioapic[1];
    for (int i = 0; i < 16; i++) {
        if (PCI_IRQS & (1 << i))
            continue;
        if (irq0_override && i == 2)    /* pin 2 is IRQ0's */
            continue;
        intsrc(src++, MPT_INTSRC, 0 /* INT */, isa, i, IOAPIC_ID,
               irq0_override && i == 0 ? 2 : i);
    }
    intsrc(src++, MPT_LOCAL_INT, 3 /* ExtINT */, isa, 0, 0, 0);      /* BSP LINT0 */
    intsrc(src++, MPT_LOCAL_INT, 1 /* NMI */, isa, 0, 0xff, 1);      /* all LINT1 */

    config->entrycount = ncpus + 1 + 1 + nisa + 2;
    config->checksum = -checksum(config, length);

    volatile struct mp_floating *fp = (struct mp_floating *)EBDA;
    memset((void *)fp, 0, sizeof(*fp));
    fp->signature = 0x5f504d5f;             /* "_MP_" */
    fp->physaddr = addr;
    fp->length = 1;
    fp->spec_rev = 4;
    fp->checksum = -checksum(fp, sizeof(*fp));
}
