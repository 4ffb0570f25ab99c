/*
 * traps.h - exceptions, user mode and page tables for the images that
 * take exceptions (vectors, user, paging).  build.py links these
 * images with lib/<arch>/entry.S, lib/<arch>/cpu.c and lib/mmu.c.
 *
 * The architecture's own structures (struct trap_frame, page table
 * entry bits, system register access) are in lib/<arch>/cpu.h.
 */
#ifndef TRAPS_H
#define TRAPS_H

#include "guest.h"
#include "cpu.h"

/* Called for every exception, interrupt and system call, on the
 * kernel's stack, with the state saved at entry.  Changes to the frame
 * take effect when the handler returns (x86_64: iretq, or sysretq for
 * VECTOR_SYSCALL; aarch64: eret). */
typedef void trap_handler_fn(struct trap_frame *frame);

/* Install the exception vectors and everything they need, and send
 * every exception to `handler`.
 *   x86_64:  a GDT with user segments and a TSS (RSP0 = trap_stack,
 *            IST1 = df_stack for #DF, IST2 = nmi_stack for NMI), an IDT
 *            of 256 interrupt gates (DPL 0; DPL 3 for vector 0x80),
 *            SYSCALL (STAR, LSTAR, FMASK; EFER.SCE stays as it is)
 *            and SYSENTER MSRs.
 *   aarch64: VBAR_EL1 = the vector table of entry.S; exceptions are
 *            taken on SP_EL1, the kernel's own stack. */
void traps_init(trap_handler_fn *handler);

/* Run `entry` in user mode (x86_64: ring 3, CS 0x2b, SS 0x23, RFLAGS
 * 0x2; aarch64: EL0t, DAIF masked) on the stack `sp`, until a handler
 * calls user_leave(); returns the value given to it. */
uint64_t user_run(void (*entry)(void), uint64_t sp);
/* Called from a handler: drop the user context (and the handler's own
 * frame) and return `value` from user_run(). */
NORETURN void user_leave(uint64_t value);

/* ---- user pages ----
 * Code and data marked USER_TEXT / USER_DATA go to the page-aligned
 * user area of the linker script (lib/<arch>/link.ld), which
 * mmu_init() maps for user mode: text read-only and executable, data
 * read-write and not executable.  Everything else is kernel only.
 * User code must call nothing outside the user area (no libc, no
 * console_*), and read no kernel constants (so: no string literals). */
#define USER_TEXT   __attribute__((section(".user.text"), noinline))
#define USER_DATA   __attribute__((section(".user.data")))
extern char __user_text_start[], __user_text_end[];
extern char __user_data_start[], __user_data_end[];

/* ---- page tables (lib/mmu.c; four levels of 512 entries, 4 KiB
 * pages, on both machines) ----
 * mmu_init():
 *   x86_64:  the first 2 MiB of start.S's identity map become 4 KiB
 *            pages (kernel only), the user area is mapped for user
 *            mode, EFER.NXE and CR0.WP are set;
 *   aarch64: new tables map 0..1 GiB as Device memory (UART, fw_cfg)
 *            and 1..2 GiB (RAM) as Normal memory, the image's 2 MiB in
 *            4 KiB pages with the user area mapped for EL0; then the
 *            MMU is turned on.
 * The region at TEST_REGION (PML4 / level 0 entry 1) is free for the
 * images to map as they like. */
#define TEST_REGION 0x0000008000000000ULL
void mmu_init(void);
/* The level-3 (4 KiB page) entry for `va`, or 0 when a table on the
 * way is missing and `create` is 0; with `create`, missing tables are
 * taken from page_alloc() (zeroed) and linked with PTE_TABLE.  `va`
 * must not be in a larger page or block (x86_64: the identity map
 * above 2 MiB; aarch64: RAM outside the image's 2 MiB, devices). */
volatile uint64_t *mmu_pte(uint64_t va, int create);
/* A zeroed 4 KiB physical page (identity mapped), from the pool
 * PAGE_POOL_START..PAGE_POOL_END of cpu.h; 0 when the pool is empty. */
uint64_t page_alloc(void);
/* How many pages page_alloc() has handed out. */
uint64_t pages_allocated(void);

#endif
