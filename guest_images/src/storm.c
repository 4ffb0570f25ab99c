/*
 * storm.c - pulse's read-modify-write loop under a fast timer interrupt.
 *
 * A timer interrupts the CPU "hz=N" times a second (default 20000): the
 * PIT's counter 0 in mode 2 through the 8259 on x86_64 (vector 0x20),
 * the virtual generic timer through the GIC on aarch64 (PPI 27, INTID
 * 27).  On aarch64 the GIC is found from its ID registers: a GICv2
 * (virt's default) is driven through its memory-mapped CPU interface, a
 * GICv3 (-M virt,gic-version=3) through its redistributor and the ICC_*
 * system registers.  The interrupt handler changes memory too, in place:
 *
 *   ticks += 1;  tick_sum += ticks;  slots[ticks % 64] += ticks;
 *
 * while the main loop runs "iters=N" rounds (default 2000000) of
 * pulse's updates (memory-destination add/xor, a 64-bit total, an
 * atomic counter).  Every update is a read-modify-write, so one that an
 * interruption makes take effect twice, or not at all, shows: in the
 * main loop's checksum and counter (which depend only on "iters"), or
 * in the handler's own invariants (tick_sum is 1 + 2 + ... + ticks; the
 * slots add up to tick_sum).
 *
 * Then it spins on a variable only the handler changes, until the
 * handler has run "wait=N" more times (default 100): that ends only if
 * interrupts reach a CPU that computes without touching a device.
 *
 * With "hz=0" there is no timer at all (the second line is then
 * "storm: no timer" and nothing is waited for): the same work without
 * interrupts, to measure what they cost.
 *
 * With "show=1" it also prints how many interrupts it took and a hash of
 * the addresses they interrupted, which only a deterministic machine
 * (-icount) repeats run after run.
 *
 * It prints (the number of ticks depends on time, and is not printed):
 *
 *   storm: iters=2000000 checksum=0x<16 hex digits> counter=2000000
 *   storm: handler ticked, tick_sum and slots consistent
 *   storm: waited for 100 ticks
 */
#include "guest.h"

#define STORM_DEFAULT_ITERS 2000000
#define STORM_DEFAULT_HZ    20000
#define STORM_DEFAULT_WAIT  100
#define TABLE_SIZE 64

static volatile uint32_t table[TABLE_SIZE];
static volatile uint64_t total;
static volatile uint64_t counter;

static volatile uint64_t ticks;
static volatile uint64_t tick_sum;
static volatile uint64_t slots[TABLE_SIZE];
static volatile uint64_t where = 0xcbf29ce484222325ULL;

/* The handler's work, called with interrupts masked; pc: where the
 * interrupt came. */
void storm_tick(uint64_t pc);

void storm_tick(uint64_t pc)
{
    uint64_t t = ticks + 1;

    ticks = t;
    tick_sum += t;
    slots[t % TABLE_SIZE] += t;
    where = (where ^ pc) * 0x100000001b3ULL;
}

#if defined(__x86_64__)

#define PIT_HZ 1193182
#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1

__asm__(
    ".text\n"
    ".balign 16\n"
    "storm_irq0:\n"
    "    pushq %rax\n"
    "    pushq %rcx\n"
    "    pushq %rdx\n"
    "    pushq %rsi\n"
    "    pushq %rdi\n"
    "    pushq %r8\n"
    "    pushq %r9\n"
    "    pushq %r10\n"
    "    pushq %r11\n"
    "    movq 72(%rsp), %rdi\n"    /* the interrupted RIP */
    "    subq $8, %rsp\n"           /* 16-byte alignment for the call */
    "    cld\n"
    "    call storm_tick\n"
    "    movb $0x20, %al\n"         /* non-specific EOI to the master 8259 */
    "    outb %al, $0x20\n"
    "    addq $8, %rsp\n"
    "    popq %r11\n"
    "    popq %r10\n"
    "    popq %r9\n"
    "    popq %r8\n"
    "    popq %rdi\n"
    "    popq %rsi\n"
    "    popq %rdx\n"
    "    popq %rcx\n"
    "    popq %rax\n"
    "    iretq\n");

extern const char storm_irq0[];

struct idt_entry {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t zero;
};

static struct idt_entry idt[0x21] __attribute__((aligned(16)));

static void timer_start(uint64_t hz)
{
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } idtr;
    uint64_t address = (uint64_t)(uintptr_t)storm_irq0;
    uint64_t divisor = (PIT_HZ + hz / 2) / hz;

    idt[0x20].offset_low = (uint16_t)address;
    idt[0x20].selector = 0x08;      /* the start code's 64-bit code segment */
    idt[0x20].type_attr = 0x8e;     /* present, DPL 0, 64-bit interrupt gate */
    idt[0x20].offset_mid = (uint16_t)(address >> 16);
    idt[0x20].offset_high = (uint32_t)(address >> 32);
    idtr.limit = sizeof(idt) - 1;
    idtr.base = (uint64_t)(uintptr_t)idt;
    __asm__ volatile("lidt %0" : : "m"(idtr));

    /* the 8259s: edge-triggered, cascaded, vectors 0x20 and 0x28 */
    outb(PIC1_CMD, 0x11);
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, 0x20);
    outb(PIC2_DATA, 0x28);
    outb(PIC1_DATA, 0x04);
    outb(PIC2_DATA, 0x02);
    outb(PIC1_DATA, 0x01);
    outb(PIC2_DATA, 0x01);
    outb(PIC1_DATA, 0xfe);          /* only IRQ 0 */
    outb(PIC2_DATA, 0xff);

    /* PIT counter 0, lobyte/hibyte, mode 2 (rate generator) */
    outb(0x43, 0x34);
    outb(0x40, (uint8_t)divisor);
    outb(0x40, (uint8_t)(divisor >> 8));
    __asm__ volatile("sti");
}

static void timer_stop(void)
{
    __asm__ volatile("cli");
    outb(PIC1_DATA, 0xff);
}

#elif defined(__aarch64__)

#define GICD 0x08000000UL
#define GICC 0x08010000UL            /* GICv2 CPU interface */
#define GICR 0x080a0000UL            /* GICv3 redistributor of CPU 0: RD_base */
#define GICR_SGI (GICR + 0x10000)    /* its SGI_base frame */
#define VTIMER_INTID 27

/* The GIC's architecture version: GICD_PIDR2.ArchRev (bits 7:4).  A
 * GICv2 distributor is 4 KiB with PIDR2 at 0xfe8; a GICv3 distributor is
 * 64 KiB with PIDR2 at 0xffe8, and its offset 0xfe8 is reserved (reads
 * as zero).  On a GICv2 nothing is mapped at 0x0800ffe8, so that offset
 * is read only once 0xfe8 has not said 2. */
static int gic_version;

/* GICv3 CPU interface registers, by encoding (the assembler's generic
 * names need no GIC feature). */
#define ICC_PMR_EL1     "s3_0_c4_c6_0"
#define ICC_IAR1_EL1    "s3_0_c12_c12_0"
#define ICC_EOIR1_EL1   "s3_0_c12_c12_1"
#define ICC_SRE_EL1     "s3_0_c12_c12_5"
#define ICC_IGRPEN1_EL1 "s3_0_c12_c12_7"

static uint64_t timer_interval;

static inline void mmio_write32(uint64_t address, uint32_t value)
{
    *(volatile uint32_t *)address = value;
}

static inline uint32_t mmio_read32(uint64_t address)
{
    return *(volatile uint32_t *)address;
}

static int gic_detect(void)
{
    if (((mmio_read32(GICD + 0xfe8) >> 4) & 0xf) == 2)
        return 2;
    return (mmio_read32(GICD + 0xffe8) >> 4) & 0xf;
}

/* Called from the IRQ vector with the caller-saved registers saved. */
void storm_irq(void)
{
    uint64_t iar;

    if (gic_version == 3)
        __asm__ volatile("mrs %0, " ICC_IAR1_EL1 : "=r"(iar));
    else
        iar = mmio_read32(GICC + 0x0c);         /* GICC_IAR */

    if ((iar & 0x3ff) == VTIMER_INTID) {
        uint64_t elr;

        __asm__ volatile("msr cntv_tval_el0, %0" : : "r"(timer_interval));
        __asm__ volatile("mrs %0, elr_el1" : "=r"(elr));
        storm_tick(elr);
    }
    if ((iar & 0xffffff) < 1020) {
        if (gic_version == 3)
            __asm__ volatile("msr " ICC_EOIR1_EL1 ", %0" : : "r"(iar));
        else
            mmio_write32(GICC + 0x10, (uint32_t)iar);   /* GICC_EOIR */
    }
}

/* The vector table: only "current EL with SP_ELx, IRQ" (VBAR + 0x280) is
 * used; everything else spins where a debugger can see it. */
__asm__(
    ".text\n"
    ".balign 2048\n"
    "storm_vectors:\n"
    "    .rept 5\n"
    "    .balign 128\n"
    "    b .\n"
    "    .endr\n"
    "    .balign 128\n"                 /* + 0x280 */
    "    stp x29, x30, [sp, #-176]!\n"
    "    stp x0, x1, [sp, #16]\n"
    "    stp x2, x3, [sp, #32]\n"
    "    stp x4, x5, [sp, #48]\n"
    "    stp x6, x7, [sp, #64]\n"
    "    stp x8, x9, [sp, #80]\n"
    "    stp x10, x11, [sp, #96]\n"
    "    stp x12, x13, [sp, #112]\n"
    "    stp x14, x15, [sp, #128]\n"
    "    stp x16, x17, [sp, #144]\n"
    "    str x18, [sp, #160]\n"
    "    bl storm_irq\n"
    "    ldr x18, [sp, #160]\n"
    "    ldp x16, x17, [sp, #144]\n"
    "    ldp x14, x15, [sp, #128]\n"
    "    ldp x12, x13, [sp, #112]\n"
    "    ldp x10, x11, [sp, #96]\n"
    "    ldp x8, x9, [sp, #80]\n"
    "    ldp x6, x7, [sp, #64]\n"
    "    ldp x4, x5, [sp, #48]\n"
    "    ldp x2, x3, [sp, #32]\n"
    "    ldp x0, x1, [sp, #16]\n"
    "    ldp x29, x30, [sp], #176\n"
    "    eret\n"
    "    .rept 10\n"
    "    .balign 128\n"
    "    b .\n"
    "    .endr\n");

extern const char storm_vectors[];

static void timer_start(uint64_t hz)
{
    uint64_t freq;

    __asm__ volatile("msr vbar_el1, %0; isb" : : "r"(storm_vectors));
    gic_version = gic_detect();
    if (gic_version == 3) {
        uint64_t sre;

        /* the redistributor: wake it (GICR_WAKER.ProcessorSleep = 0, then
         * wait for ChildrenAsleep to clear), PPI 27 in Non-secure Group 1
         * (an IRQ), enabled */
        mmio_write32(GICR + 0x14, mmio_read32(GICR + 0x14) & ~2u);
        while (mmio_read32(GICR + 0x14) & 4)
            ;
        mmio_write32(GICR_SGI + 0x080, 1u << VTIMER_INTID);   /* GICR_IGROUPR0 */
        mmio_write32(GICR_SGI + 0x100, 1u << VTIMER_INTID);   /* GICR_ISENABLER0 */
        mmio_write32(GICD + 0x000, 2);              /* GICD_CTLR: EnableGrp1NS */
        __asm__ volatile("mrs %0, " ICC_SRE_EL1 : "=r"(sre));
        __asm__ volatile("msr " ICC_SRE_EL1 ", %0; isb" : : "r"(sre | 1));
        __asm__ volatile("msr " ICC_PMR_EL1 ", %0" : : "r"((uint64_t)0xff));
        __asm__ volatile("msr " ICC_IGRPEN1_EL1 ", %0; isb" : : "r"((uint64_t)1));
    } else {
        mmio_write32(GICD + 0x000, 1);                      /* GICD_CTLR: enable */
        mmio_write32(GICD + 0x100, 1u << VTIMER_INTID);     /* GICD_ISENABLER0 */
        mmio_write32(GICC + 0x004, 0xff);                   /* GICC_PMR: all */
        mmio_write32(GICC + 0x000, 1);                      /* GICC_CTLR: enable */
    }
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(freq));
    timer_interval = freq / hz;
    __asm__ volatile("msr cntv_tval_el0, %0" : : "r"(timer_interval));
    __asm__ volatile("msr cntv_ctl_el0, %0" : : "r"((uint64_t)1));   /* enable */
    __asm__ volatile("msr daifclr, #2");                     /* unmask IRQ */
}

static void timer_stop(void)
{
    __asm__ volatile("msr daifset, #2");
    __asm__ volatile("msr cntv_ctl_el0, %0" : : "r"((uint64_t)0));
}

#endif

int main(void)
{
    uint64_t iters = cmdline_uint("iters", STORM_DEFAULT_ITERS);
    uint64_t hz = cmdline_uint("hz", STORM_DEFAULT_HZ);
    uint64_t wait = cmdline_uint("wait", STORM_DEFAULT_WAIT);
    uint64_t show = cmdline_uint("show", 0);
    uint64_t x = 0x9e3779b97f4a7c15;
    uint64_t checksum, seen, target, slot_total = 0;

    if (hz)
        timer_start(hz);
    else
        wait = 0;           /* no timer: nothing to wait for */
    for (uint64_t i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        table[(x >> 32) & (TABLE_SIZE - 1)] += (uint32_t)(x * 0x2545f4914f6cdd1dULL) ^ (uint32_t)i;
        table[(x >> 48) & (TABLE_SIZE - 1)] ^= (uint32_t)(x >> 8);
        total += x;
        __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
    }
    /* spin on what only the handler changes, touching no device */
    target = ticks + wait;
    do {
        seen = ticks;
    } while (seen < target);
    if (hz)
        timer_stop();

    checksum = x;
    for (int k = 0; k < TABLE_SIZE; k++)
        checksum = (checksum ^ table[k]) * 0x100000001b3ULL;
    checksum = (checksum ^ total) * 0x100000001b3ULL;
    checksum = (checksum ^ counter) * 0x100000001b3ULL;
    for (int k = 0; k < TABLE_SIZE; k++)
        slot_total += slots[k];

    console_puts("storm: iters=");
    console_put_dec(iters);
    console_puts(" checksum=");
    console_put_hex(checksum, 16);
    console_puts(" counter=");
    console_put_dec(counter);
    console_putc('\n');
    if (!hz) {
        console_puts("storm: no timer\n");
    } else if (ticks > 0 && tick_sum == ticks * (ticks + 1) / 2 && slot_total == tick_sum) {
        console_puts("storm: handler ticked, tick_sum and slots consistent\n");
    } else {
        console_puts("storm: handler inconsistent: ticks=");
        console_put_dec(ticks);
        console_puts(" tick_sum=");
        console_put_dec(tick_sum);
        console_puts(" slots=");
        console_put_dec(slot_total);
        console_putc('\n');
    }
    console_puts("storm: waited for ");
    console_put_dec(wait);
    console_puts(" ticks\n");
    if (show) {
        console_puts("storm: ticks=");
        console_put_dec(ticks);
        console_puts(" where=");
        console_put_hex(where, 16);
        console_putc('\n');
    }
    return 0;
}
