/*
 * stop_hook.c - the run loop's stop request, as a Unicorn block hook in native code.
 *
 * emu/cpu/stop_request.py installs emu_stop_hook as a UC_HOOK_BLOCK callback for
 * every address.  Unicorn calls a block hook at the start of each translated block,
 * before the block's own exit-request check (translator_loop in
 * qemu/accel/tcg/translator.c), so a uc_emu_stop() made here ends the run at that
 * check: no instruction of the block has started, and none can take effect twice.
 *
 * Any thread may set `requested`; the hook clears it, records in `taken` that it
 * stopped the CPU, and asks Unicorn to stop.  The first block of each run is always
 * executed (the run loop sets `first` before it starts the CPU), so the guest makes
 * progress however often it is stopped.  The hook costs a few loads and compares per
 * block while nothing is requested, so it is always installed.
 *
 * The hook also runs the CPU's own block-start work, `at_block` (native/cpu_exceptions.c:
 * the end of an interrupt entry), so that Unicorn calls one block hook, not two: each
 * block hook costs a dispatch at every block.
 */
#include <stdint.h>

struct emu_stop_request {
    volatile int32_t requested;     /* set by any thread: stop at the next block */
    volatile int32_t taken;         /* set here: the CPU stopped for a request */
    int32_t first;                  /* set by the run loop: the next block starts a run */
    int32_t reserved;
    int (*uc_emu_stop)(void *uc);   /* Unicorn's uc_emu_stop, from the loaded library */
    void (*at_block)(void *arg);    /* the CPU's block-start work, or NULL */
    void *at_block_arg;
};

void emu_stop_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    struct emu_stop_request *r = user_data;

    (void)address;
    (void)size;
    if (r->at_block) {
        r->at_block(r->at_block_arg);
    }
    if (r->first) {
        r->first = 0;
        return;
    }
    if (r->requested) {
        r->requested = 0;
        r->taken = 1;
        r->uc_emu_stop(uc);
    }
}
