/*
 * gicv3.c - the GICv3 of QEMU's virt machine (-M virt,gic-version=3)
 * seen from its CPU: the CPU interface's ICC_* system registers, the
 * distributor (0x08000000) and the redistributor of CPU 0 (RD_base
 * 0x080a0000, SGI_base 0x080b0000) working together.  Every step prints
 * one line of the values it read, so that two implementations can be
 * compared line by line (Arm IHI 0069H, "Arm Generic Interrupt
 * Controller Architecture Specification, GIC architecture version 3 and
 * version 4"; chapter 4 for priorities, preemption and groups, 12.2 for
 * the registers).
 *
 * aarch64 only: there is no x86_64 version.  The CPU runs at EL1 with
 * interrupts masked (PSTATE.I and F) except in the "take" step, so a
 * pending interrupt shows as ISR_EL1.I (IRQ line up) or ISR_EL1.F (FIQ)
 * without being taken.  Steps, in order:
 *
 *   id      ID registers and the reset values of the ICC_* registers
 *   regs    register write masks: PMR, BPR0/1 (with CBPR), CTLR, IGRPEN,
 *           AP0R0/AP1R0 and the running priority, SRE, GICR_WAKER
 *   undef   ICC_* accesses that are UNDEFINED: write-only registers read,
 *           read-only ones written, unimplemented ones, EL2/EL3 ones,
 *           and an EL0 access; prints ESR_EL1
 *   sgi     SGIs to self through ICC_SGI1R/SGI0R/ASGI1R_EL1, with their
 *           groups, IAR0/IAR1 visibility and the FIQ/IRQ lines
 *   prio    SPIs made pending through GICD_ISPENDR: highest priority
 *           first, equal priorities by INTID, ICC_PMR_EL1 masking,
 *           preemption by group priority (ICC_BPR1_EL1), nesting
 *   eoimode ICC_CTLR_EL1.EOImode: EOIR drops the priority, DIR
 *           deactivates
 *   level   the PL011's level-triggered SPI 1 (INTID 33), also turned
 *           edge-triggered while its line is high
 *   ppi     the virtual timer's PPI (INTID 27), and GICR_ICFGR1
 *   take    an IRQ and an FIQ taken through the vector table
 *   lpi     LPIs from the tables in memory (GICR_PROPBASER/PENDBASER)
 *
 * Then "gicv3: done".
 */
#include "traps.h"

#define GICD        0x08000000UL
#define GICR        0x080a0000UL
#define GICR_SGI    (GICR + 0x10000)
#define UART        0x09000000UL

/* ICC_* by encoding (op0 3, op1, CRn, CRm, op2) */
#define ICC_PMR_EL1     "s3_0_c4_c6_0"
#define ICC_IAR0_EL1    "s3_0_c12_c8_0"
#define ICC_EOIR0_EL1   "s3_0_c12_c8_1"
#define ICC_HPPIR0_EL1  "s3_0_c12_c8_2"
#define ICC_BPR0_EL1    "s3_0_c12_c8_3"
#define ICC_AP0R0_EL1   "s3_0_c12_c8_4"
#define ICC_AP0R1_EL1   "s3_0_c12_c8_5"
#define ICC_AP1R0_EL1   "s3_0_c12_c9_0"
#define ICC_DIR_EL1     "s3_0_c12_c11_1"
#define ICC_RPR_EL1     "s3_0_c12_c11_3"
#define ICC_SGI1R_EL1   "s3_0_c12_c11_5"
#define ICC_ASGI1R_EL1  "s3_0_c12_c11_6"
#define ICC_SGI0R_EL1   "s3_0_c12_c11_7"
#define ICC_IAR1_EL1    "s3_0_c12_c12_0"
#define ICC_EOIR1_EL1   "s3_0_c12_c12_1"
#define ICC_HPPIR1_EL1  "s3_0_c12_c12_2"
#define ICC_BPR1_EL1    "s3_0_c12_c12_3"
#define ICC_CTLR_EL1    "s3_0_c12_c12_4"
#define ICC_SRE_EL1     "s3_0_c12_c12_5"
#define ICC_IGRPEN0_EL1 "s3_0_c12_c12_6"
#define ICC_IGRPEN1_EL1 "s3_0_c12_c12_7"
#define ICC_SRE_EL2     "s3_4_c12_c9_5"
#define ICC_CTLR_EL3    "s3_6_c12_c12_4"
#define ISR_EL1         "s3_0_c12_c1_0"
#define ID_AA64PFR0_EL1 "s3_0_c0_c4_0"

#define MRS(reg) ({ uint64_t _v; __asm__ volatile("mrs %0, " reg : "=r"(_v) : : "memory"); _v; })
#define MSR(reg, value) \
    __asm__ volatile("msr " reg ", %0\n\tisb" : : "r"((uint64_t)(value)) : "memory")

/* LPI tables in RAM, far above the image (0x40200000): the configuration
 * table (4 KiB aligned) for INTIDs 8192..16383 (IDbits 13), and the
 * pending table (64 KiB aligned, one bit per INTID 0..16383) */
#define LPI_CONFIG      0x41000000UL
#define LPI_PENDING     0x41010000UL
#define LPI_IDBITS      13

static inline uint32_t rd32(uint64_t address)
{
    return *(volatile uint32_t *)address;
}

static inline void wr32(uint64_t address, uint32_t value)
{
    *(volatile uint32_t *)address = value;
}

static inline uint8_t rd8(uint64_t address)
{
    return *(volatile uint8_t *)address;
}

static inline void wr8(uint64_t address, uint8_t value)
{
    *(volatile uint8_t *)address = value;
}

/* ---- output: "<step>: name=value name=value ...\n" ---- */

static void begin(const char *step)
{
    console_puts(step);
    console_putc(':');
}

static void val(const char *name, uint64_t value)
{
    console_putc(' ');
    console_puts(name);
    console_putc('=');
    console_put_hex(value, value >> 32 ? 16 : 8);
}

static void end(void)
{
    console_putc('\n');
}

/* ISR_EL1 bits 7 (I) and 6 (F): the CPU's IRQ and FIQ inputs */
static void lines(void)
{
    uint64_t isr = MRS(ISR_EL1);

    val("irq", (isr >> 7) & 1);
    val("fiq", (isr >> 6) & 1);
}

/* ---- exceptions ---- */

static volatile uint64_t last_vector, last_esr, last_intid;

static void handler(struct trap_frame *frame)
{
    last_vector = frame->vector;
    if (frame->vector == VECTOR_CURRENT_SPX + 0x80) {        /* IRQ */
        last_intid = MRS(ICC_IAR1_EL1);
        MSR(ICC_EOIR1_EL1, last_intid);
        return;
    }
    if (frame->vector == VECTOR_CURRENT_SPX + 0x100) {       /* FIQ */
        last_intid = MRS(ICC_IAR0_EL1);
        MSR(ICC_EOIR0_EL1, last_intid);
        return;
    }
    last_esr = frame->esr;
    if (frame->vector == VECTOR_LOWER_A64)
        user_leave(frame->esr);
    frame->elr += 4;            /* step over the instruction that trapped */
}

/* ---- steps ---- */

static void wake_redistributor(void)
{
    wr32(GICR + 0x14, rd32(GICR + 0x14) & ~2u);     /* GICR_WAKER.ProcessorSleep */
    while (rd32(GICR + 0x14) & 4)                   /* ChildrenAsleep */
        ;
}

static void step_id(void)
{
    begin("id");
    val("gicd_pidr2", rd32(GICD + 0xffe8));
    val("gicr_pidr2", rd32(GICR + 0xffe8));
    val("gicd_typer", rd32(GICD + 0x4));
    val("gicd_iidr", rd32(GICD + 0x8));
    val("gicd_ctlr", rd32(GICD + 0x0));
    val("gicr_typer_lo", rd32(GICR + 0x8));
    val("gicr_typer_hi", rd32(GICR + 0xc));
    val("gicr_ctlr", rd32(GICR + 0x0));
    val("gicr_waker", rd32(GICR + 0x14));
    val("pfr0_gic", (MRS(ID_AA64PFR0_EL1) >> 24) & 0xf);
    end();
    begin("id");
    val("sre", MRS(ICC_SRE_EL1));
    val("ctlr", MRS(ICC_CTLR_EL1));
    val("pmr", MRS(ICC_PMR_EL1));
    val("bpr0", MRS(ICC_BPR0_EL1));
    val("bpr1", MRS(ICC_BPR1_EL1));
    val("igrpen0", MRS(ICC_IGRPEN0_EL1));
    val("igrpen1", MRS(ICC_IGRPEN1_EL1));
    val("ap0r0", MRS(ICC_AP0R0_EL1));
    val("ap1r0", MRS(ICC_AP1R0_EL1));
    val("rpr", MRS(ICC_RPR_EL1));
    val("hppir0", MRS(ICC_HPPIR0_EL1));
    val("hppir1", MRS(ICC_HPPIR1_EL1));
    val("iar0", MRS(ICC_IAR0_EL1));
    val("iar1", MRS(ICC_IAR1_EL1));
    lines();
    end();
}

static void step_regs(void)
{
    begin("regs pmr");
    MSR(ICC_PMR_EL1, 0xff);
    val("w0xff", MRS(ICC_PMR_EL1));
    MSR(ICC_PMR_EL1, 0x1ff);
    val("w0x1ff", MRS(ICC_PMR_EL1));
    MSR(ICC_PMR_EL1, 0x7);
    val("w0x7", MRS(ICC_PMR_EL1));
    MSR(ICC_PMR_EL1, 0xfffffffffffffff0ULL);
    val("w-16", MRS(ICC_PMR_EL1));
    MSR(ICC_PMR_EL1, 0);
    end();

    begin("regs bpr");
    MSR(ICC_BPR0_EL1, 0);
    val("bpr0_w0", MRS(ICC_BPR0_EL1));
    MSR(ICC_BPR0_EL1, 7);
    val("bpr0_w7", MRS(ICC_BPR0_EL1));
    MSR(ICC_BPR0_EL1, 8);
    val("bpr0_w8", MRS(ICC_BPR0_EL1));
    MSR(ICC_BPR0_EL1, 3);
    val("bpr0_w3", MRS(ICC_BPR0_EL1));
    MSR(ICC_BPR1_EL1, 0);
    val("bpr1_w0", MRS(ICC_BPR1_EL1));
    MSR(ICC_BPR1_EL1, 5);
    val("bpr1_w5", MRS(ICC_BPR1_EL1));
    MSR(ICC_CTLR_EL1, 0xffffffffffffffffULL);
    val("ctlr_w-1", MRS(ICC_CTLR_EL1));
    val("bpr1_cbpr", MRS(ICC_BPR1_EL1));
    MSR(ICC_BPR1_EL1, 6);
    val("bpr1_cbpr_w6", MRS(ICC_BPR1_EL1));
    MSR(ICC_BPR0_EL1, 7);
    val("bpr1_cbpr_bpr0_7", MRS(ICC_BPR1_EL1));
    MSR(ICC_CTLR_EL1, 0);
    val("ctlr_w0", MRS(ICC_CTLR_EL1));
    val("bpr1", MRS(ICC_BPR1_EL1));
    MSR(ICC_BPR0_EL1, 2);
    MSR(ICC_BPR1_EL1, 3);
    end();

    begin("regs en");
    MSR(ICC_IGRPEN0_EL1, 0xff);
    MSR(ICC_IGRPEN1_EL1, 0xfe);
    val("igrpen0_w0xff", MRS(ICC_IGRPEN0_EL1));
    val("igrpen1_w0xfe", MRS(ICC_IGRPEN1_EL1));
    MSR(ICC_IGRPEN0_EL1, 0);
    MSR(ICC_SRE_EL1, 0);
    val("sre_w0", MRS(ICC_SRE_EL1));
    wr32(GICR + 0x14, 0);
    val("waker_w0", rd32(GICR + 0x14));
    wr32(GICR + 0x14, 0xffffffff);
    val("waker_w-1", rd32(GICR + 0x14));
    wr32(GICR + 0x14, 4);
    val("waker_w4", rd32(GICR + 0x14));
    end();

    begin("regs apr");
    MSR(ICC_AP0R0_EL1, 0xffffffffffffffffULL);
    val("ap0r0", MRS(ICC_AP0R0_EL1));
    val("rpr", MRS(ICC_RPR_EL1));
    MSR(ICC_AP0R0_EL1, 0x100);
    val("rpr_bit8", MRS(ICC_RPR_EL1));
    MSR(ICC_AP1R0_EL1, 0x10);
    val("rpr_bit4", MRS(ICC_RPR_EL1));
    MSR(ICC_EOIR0_EL1, 1023);
    val("ap1r0_eoi1023", MRS(ICC_AP1R0_EL1));
    MSR(ICC_EOIR0_EL1, 40);
    val("ap1r0_eoir0", MRS(ICC_AP1R0_EL1));
    val("ap0r0_eoir0", MRS(ICC_AP0R0_EL1));
    MSR(ICC_EOIR1_EL1, 40);
    val("ap1r0_eoir1", MRS(ICC_AP1R0_EL1));
    MSR(ICC_EOIR1_EL1, 40);
    val("ap0r0_eoir1", MRS(ICC_AP0R0_EL1));
    MSR(ICC_AP0R0_EL1, 0);
    MSR(ICC_AP1R0_EL1, 0);
    val("rpr_idle", MRS(ICC_RPR_EL1));
    end();
}

/* Each UNDEFINED access is stepped over by the handler, which records
 * ESR_EL1. */
#define UNDEF(name, insn) do {                                   \
        last_esr = 0xdead;                                       \
        __asm__ volatile(insn : : : "x0", "memory");             \
        val(name, last_esr);                                     \
    } while (0)

static uint8_t user_stack[256] __attribute__((aligned(16))) USER_DATA;

USER_TEXT static void user_reads_pmr(void)
{
    __asm__ volatile("mrs x0, " ICC_PMR_EL1 "\n\tsvc #0" : : : "x0");
}

static void step_undef(void)
{
    begin("undef");
    UNDEF("mrs_sgi1r", "mrs x0, " ICC_SGI1R_EL1);
    UNDEF("mrs_eoir1", "mrs x0, " ICC_EOIR1_EL1);
    UNDEF("mrs_dir", "mrs x0, " ICC_DIR_EL1);
    UNDEF("msr_iar1", "msr " ICC_IAR1_EL1 ", x0");
    UNDEF("msr_hppir0", "msr " ICC_HPPIR0_EL1 ", x0");
    UNDEF("msr_rpr", "msr " ICC_RPR_EL1 ", x0");
    UNDEF("mrs_ap0r1", "mrs x0, " ICC_AP0R1_EL1);
    UNDEF("mrs_sre_el2", "mrs x0, " ICC_SRE_EL2);
    UNDEF("mrs_ctlr_el3", "mrs x0, " ICC_CTLR_EL3);
    UNDEF("msr_pfr0", "msr " ID_AA64PFR0_EL1 ", x0");
    val("el0_pmr", user_run(user_reads_pmr, (uint64_t)(uintptr_t)(user_stack + sizeof(user_stack))));
    end();
}

static void sgi_state(void)
{
    val("pend", rd32(GICR_SGI + 0x200));
    val("act", rd32(GICR_SGI + 0x300));
    val("hppir0", MRS(ICC_HPPIR0_EL1));
    val("hppir1", MRS(ICC_HPPIR1_EL1));
    val("rpr", MRS(ICC_RPR_EL1));
    lines();
}

static void step_sgi(void)
{
    wake_redistributor();
    wr32(GICD + 0x0, 3);                        /* EnableGrp0, EnableGrp1NS */
    wr32(GICR_SGI + 0x080, 0xff00ff00);         /* SGIs 8-15, PPIs 24-31: Group 1 */
    wr32(GICR_SGI + 0x100, 0xffffffff);
    MSR(ICC_PMR_EL1, 0xff);
    MSR(ICC_IGRPEN0_EL1, 1);
    MSR(ICC_IGRPEN1_EL1, 1);

    begin("sgi g1");
    MSR(ICC_SGI1R_EL1, (9ULL << 24) | 1);      /* SGI 9, Aff 0.0.0, target list: CPU 0 */
    sgi_state();
    val("iar0", MRS(ICC_IAR0_EL1));
    val("iar1", MRS(ICC_IAR1_EL1));
    sgi_state();
    val("ap1r0", MRS(ICC_AP1R0_EL1));
    MSR(ICC_EOIR1_EL1, 9);
    sgi_state();
    end();

    begin("sgi g0");
    MSR(ICC_SGI1R_EL1, (2ULL << 24) | 1);      /* SGI 2 is Group 0: not sent */
    val("pend_sgi1r", rd32(GICR_SGI + 0x200));
    MSR(ICC_SGI0R_EL1, (2ULL << 24) | 1);
    sgi_state();
    val("iar1", MRS(ICC_IAR1_EL1));
    val("iar0", MRS(ICC_IAR0_EL1));
    sgi_state();
    MSR(ICC_EOIR1_EL1, 2);                      /* wrong group: ignored */
    val("rpr_eoir1", MRS(ICC_RPR_EL1));
    MSR(ICC_EOIR0_EL1, 2);
    sgi_state();
    MSR(ICC_ASGI1R_EL1, (3ULL << 24) | 1);     /* taken as Group 0 */
    val("pend_asgi1r", rd32(GICR_SGI + 0x200));
    val("iar0", MRS(ICC_IAR0_EL1));
    MSR(ICC_EOIR0_EL1, 3);
    MSR(ICC_SGI0R_EL1, (11ULL << 24) | 1);     /* SGI 11 is Group 1: not sent */
    val("pend_sgi0r_g1", rd32(GICR_SGI + 0x200));
    end();

    begin("sgi route");
    MSR(ICC_SGI1R_EL1, (9ULL << 24) | 2);                  /* Aff0 1: no such CPU */
    MSR(ICC_SGI1R_EL1, (9ULL << 24) | (1ULL << 16) | 1);   /* Aff1 1 */
    MSR(ICC_SGI1R_EL1, (9ULL << 24) | (1ULL << 32) | 1);   /* Aff2 1 */
    MSR(ICC_SGI1R_EL1, (9ULL << 24) | (1ULL << 40));       /* IRM: all but self */
    val("pend", rd32(GICR_SGI + 0x200));
    MSR(ICC_SGI1R_EL1, (9ULL << 24) | 0xffff);             /* every Aff0 */
    val("pend_all", rd32(GICR_SGI + 0x200));
    wr8(GICR_SGI + 0x400 + 9, 0x80);                       /* GICR_IPRIORITYR: 0x80 */
    val("prio", rd32(GICR_SGI + 0x408));
    MSR(ICC_PMR_EL1, 0x80);
    sgi_state();
    val("iar1_masked", MRS(ICC_IAR1_EL1));
    MSR(ICC_PMR_EL1, 0x88);
    sgi_state();
    val("iar1", MRS(ICC_IAR1_EL1));
    val("rpr", MRS(ICC_RPR_EL1));
    val("ap1r0", MRS(ICC_AP1R0_EL1));
    MSR(ICC_EOIR1_EL1, 9);
    wr8(GICR_SGI + 0x400 + 9, 0);
    MSR(ICC_PMR_EL1, 0xff);
    sgi_state();
    end();
}

#define GICD_ISPENDR1   (GICD + 0x204)
#define GICD_ICPENDR1   (GICD + 0x284)
#define GICD_ISACTIVER1 (GICD + 0x304)

static void spi_state(void)
{
    val("pend", rd32(GICD_ISPENDR1));
    val("act", rd32(GICD_ISACTIVER1));
    val("hppir1", MRS(ICC_HPPIR1_EL1));
    val("rpr", MRS(ICC_RPR_EL1));
    lines();
}

static void step_prio(void)
{
    wr32(GICD + 0x84, 0xffffffff);              /* GICD_IGROUPR1: SPIs 32-63 Group 1 */
    wr32(GICD + 0x104, 0xffffffff);             /* GICD_ISENABLER1 */
    wr8(GICD + 0x400 + 40, 0xa0);
    wr8(GICD + 0x400 + 41, 0x60);
    wr8(GICD + 0x400 + 42, 0x58);
    wr32(GICD + 0x42c, 0x80808080);             /* 44-47 */
    wr8(GICD + 0x400 + 43, 0x80);

    begin("prio order");
    val("prio40", rd32(GICD + 0x428));
    wr32(GICD_ISPENDR1, 0x3 << 8);              /* 40, 41 */
    spi_state();
    val("iar1", MRS(ICC_IAR1_EL1));
    spi_state();
    val("ap1r0", MRS(ICC_AP1R0_EL1));
    end();

    begin("prio preempt");
    wr32(GICD_ISPENDR1, 1u << 10);              /* 42 at 0x58 */
    spi_state();
    MSR(ICC_BPR1_EL1, 6);                       /* group priority bits [7:6]: no preemption */
    spi_state();
    val("iar1_bpr6", MRS(ICC_IAR1_EL1));
    MSR(ICC_BPR1_EL1, 5);                       /* bits [7:5]: 0x40 beats 0x60 */
    spi_state();
    val("iar1_bpr5", MRS(ICC_IAR1_EL1));
    spi_state();
    val("ap1r0", MRS(ICC_AP1R0_EL1));
    MSR(ICC_EOIR1_EL1, 42);
    spi_state();
    MSR(ICC_EOIR1_EL1, 41);
    spi_state();
    MSR(ICC_BPR1_EL1, 3);
    end();

    begin("prio pmr");
    MSR(ICC_PMR_EL1, 0xa0);
    spi_state();
    val("iar1_masked", MRS(ICC_IAR1_EL1));
    MSR(ICC_PMR_EL1, 0xa8);
    spi_state();
    val("iar1", MRS(ICC_IAR1_EL1));
    MSR(ICC_EOIR1_EL1, 40);
    MSR(ICC_PMR_EL1, 0xff);
    spi_state();
    end();

    begin("prio equal");
    wr32(GICD_ISPENDR1, 0x3u << 11);            /* 43 and 44, both 0x80 */
    spi_state();
    wr32(GICD + 0x0, 1);                        /* Group 1 disabled at the distributor */
    spi_state();
    wr32(GICD + 0x0, 3);
    MSR(ICC_IGRPEN1_EL1, 0);                    /* ... at the CPU interface */
    spi_state();
    MSR(ICC_IGRPEN1_EL1, 1);
    wr32(GICD + 0x184, 1u << 11);               /* GICD_ICENABLER1: 43 */
    spi_state();
    wr32(GICD + 0x104, 1u << 11);
    wr8(GICD + 0x400 + 44, 0x70);
    spi_state();
    wr32(GICD + 0xc08, 0x00800000);             /* GICD_ICFGR2: 43 edge (not recomputed) */
    spi_state();
    val("icfgr2", rd32(GICD + 0xc08));
    wr32(GICD_ICPENDR1, 0xffffffff);
    spi_state();
    end();

    begin("prio route");
    wr32(GICD + 0x6000 + 8 * 45, 0x100);        /* GICD_IROUTER45: Aff1 1, no such CPU */
    wr32(GICD_ISPENDR1, 1u << 13);
    spi_state();
    val("irouter", rd32(GICD + 0x6000 + 8 * 45));
    wr32(GICD + 0x6000 + 8 * 45, 0);
    spi_state();
    wr32(GICD + 0x6000 + 8 * 45 + 4, 0x80);     /* Aff3 0x80: no such CPU */
    val("irouter_hi", rd32(GICD + 0x6000 + 8 * 45 + 4));
    spi_state();
    wr32(GICD + 0x6000 + 8 * 45 + 4, 0);
    wr32(GICD + 0x6000 + 8 * 45, 0x80000000);   /* Interrupt_Routing_Mode (1 of N) */
    val("irouter_irm", rd32(GICD + 0x6000 + 8 * 45));
    spi_state();
    wr32(GICD + 0x6000 + 8 * 45, 0);
    wr32(GICD_ICPENDR1, 0xffffffff);
    spi_state();
    end();
}

static void step_eoimode(void)
{
    MSR(ICC_CTLR_EL1, 2);                       /* EOImode */
    begin("eoimode");
    wr32(GICD_ISPENDR1, 1u << 13);              /* 45 */
    val("iar1", MRS(ICC_IAR1_EL1));
    MSR(ICC_DIR_EL1, 45);                       /* before the priority drop */
    spi_state();
    MSR(ICC_EOIR1_EL1, 45);
    spi_state();
    wr32(GICD_ISPENDR1, 1u << 13);
    spi_state();
    MSR(ICC_DIR_EL1, 1023);
    MSR(ICC_DIR_EL1, 45);
    spi_state();
    val("iar1", MRS(ICC_IAR1_EL1));
    MSR(ICC_EOIR1_EL1, 45);
    MSR(ICC_DIR_EL1, 45);
    spi_state();
    MSR(ICC_CTLR_EL1, 0);
    end();
}

/* UARTIMSC, alone in a function: the store is the only memory access
 * here (an implementation that ran it again when the interrupt it
 * raises stops the CPU would change nothing else). */
__attribute__((noinline)) static void uart_imsc(uint32_t value)
{
    wr32(UART + 0x38, value);
}

static void step_level(void)
{
    begin("level");
    wr8(GICD + 0x400 + 33, 0x90);
    val("prio33", rd32(GICD + 0x420));
    uart_imsc(0x20);                            /* TX (raised by every print) */
    spi_state();
    val("iar1", MRS(ICC_IAR1_EL1));
    spi_state();
    MSR(ICC_EOIR1_EL1, 33);
    spi_state();                                /* still high: pending again */
    end();

    /* Made edge-triggered while its line is high and its pending latch
     * clear, INTID 33 is no longer pending (GICD_ISPENDR1); QEMU does
     * not recompute the highest pending interrupt on a GICD_ICFGR
     * write, so the CPU interface still offers it until the next
     * change recomputes. */
    begin("level to edge");
    wr32(GICD + 0xc08, 0x8);                    /* GICD_ICFGR2: 33 edge */
    spi_state();
    val("iar1", MRS(ICC_IAR1_EL1));
    spi_state();
    MSR(ICC_EOIR1_EL1, 33);
    spi_state();
    wr32(GICD + 0xc08, 0);                      /* level again: not recomputed either */
    spi_state();
    wr32(GICD + 0x104, 0);                      /* a write that recomputes */
    spi_state();
    uart_imsc(0);
    spi_state();
    end();
}

#define GICR_ISPENDR0   (GICR_SGI + 0x200)

static void step_ppi(void)
{
    begin("ppi");
    __asm__ volatile("msr cntv_cval_el0, %0; msr cntv_ctl_el0, %1; isb"
                     : : "r"((uint64_t)0), "r"((uint64_t)1));
    val("pend", rd32(GICR_ISPENDR0));
    val("hppir1", MRS(ICC_HPPIR1_EL1));
    lines();
    val("iar1", MRS(ICC_IAR1_EL1));
    val("act", rd32(GICR_SGI + 0x300));
    MSR(ICC_EOIR1_EL1, 27);
    val("hppir1", MRS(ICC_HPPIR1_EL1));
    __asm__ volatile("msr cntv_ctl_el0, %0; isb" : : "r"((uint64_t)0));
    val("pend_off", rd32(GICR_ISPENDR0));
    val("hppir1_off", MRS(ICC_HPPIR1_EL1));
    wr32(GICR_SGI + 0xc04, 0x00800000);         /* GICR_ICFGR1: PPI 27 edge */
    val("icfgr1", rd32(GICR_SGI + 0xc04));
    val("icfgr0", rd32(GICR_SGI + 0xc00));
    __asm__ volatile("msr cntv_ctl_el0, %0; isb" : : "r"((uint64_t)1));
    __asm__ volatile("msr cntv_ctl_el0, %0; isb" : : "r"((uint64_t)0));
    val("pend_edge", rd32(GICR_ISPENDR0));
    val("iar1", MRS(ICC_IAR1_EL1));
    MSR(ICC_EOIR1_EL1, 27);
    val("pend_after", rd32(GICR_ISPENDR0));
    wr32(GICR_SGI + 0xc04, 0);
    end();
}

static void step_take(void)
{
    begin("take");
    last_vector = last_intid = 0;
    MSR(ICC_SGI1R_EL1, (12ULL << 24) | 1);
    __asm__ volatile("msr daifclr, #2; isb; nop; msr daifset, #2" : : : "memory");
    val("irq_vector", last_vector);
    val("irq_intid", last_intid);
    last_vector = last_intid = 0;
    MSR(ICC_SGI0R_EL1, (4ULL << 24) | 1);
    __asm__ volatile("msr daifclr, #1; isb; nop; msr daifset, #1" : : : "memory");
    val("fiq_vector", last_vector);
    val("fiq_intid", last_intid);
    val("rpr", MRS(ICC_RPR_EL1));
    lines();
    end();
}

static void step_lpi(void)
{
    begin("lpi");
    for (uint64_t i = 0; i < (1u << LPI_IDBITS); i++)
        wr8(LPI_CONFIG + i, 0);
    for (uint64_t i = 0; i < (2u << LPI_IDBITS) / 8; i++)
        wr8(LPI_PENDING + i, 0);
    wr8(LPI_CONFIG + 3, 0x40 | 1);              /* LPI 8195: priority 0x40, enabled */
    wr8(LPI_CONFIG + 5, 0x30);                  /* LPI 8197: disabled */
    wr8(LPI_CONFIG + 9, 0x50 | 1);              /* LPI 8201: priority 0x50 */
    wr8(LPI_PENDING + 8192 / 8, 0x28);          /* 8195 and 8197 pending */
    wr8(LPI_PENDING + 8201 / 8, 0x02);          /* 8201 */
    wr32(GICR + 0x70, LPI_CONFIG | (LPI_IDBITS));       /* GICR_PROPBASER */
    wr32(GICR + 0x74, 0);
    wr32(GICR + 0x78, LPI_PENDING);                      /* GICR_PENDBASER */
    wr32(GICR + 0x7c, 0);
    val("hppir1_off", MRS(ICC_HPPIR1_EL1));
    wr32(GICR + 0x0, 1);                        /* GICR_CTLR.EnableLPIs */
    val("ctlr", rd32(GICR + 0x0));
    val("propbaser", rd32(GICR + 0x70));
    val("hppir1", MRS(ICC_HPPIR1_EL1));
    lines();
    val("iar1", MRS(ICC_IAR1_EL1));
    val("pending", rd8(LPI_PENDING + 8192 / 8));
    val("rpr", MRS(ICC_RPR_EL1));
    val("hppir1", MRS(ICC_HPPIR1_EL1));
    MSR(ICC_EOIR1_EL1, 8195);
    val("rpr", MRS(ICC_RPR_EL1));
    val("hppir1", MRS(ICC_HPPIR1_EL1));
    val("iar1", MRS(ICC_IAR1_EL1));
    MSR(ICC_EOIR1_EL1, 8201);
    val("pending", rd8(LPI_PENDING + 8201 / 8));
    val("hppir1", MRS(ICC_HPPIR1_EL1));
    wr32(GICR + 0x0, 0);
    val("ctlr_off", rd32(GICR + 0x0));
    end();
}

int main(void)
{
    traps_init(handler);
    step_id();
    step_regs();
    step_undef();
    step_sgi();
    step_prio();
    step_eoimode();
    step_level();
    step_ppi();
    step_take();
    step_lpi();
    console_puts("gicv3: done\n");
    return 0;
}
