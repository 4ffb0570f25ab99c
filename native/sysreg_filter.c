/*
 * sysreg_filter.c - the aarch64 MRS/MSR hook's filter, in native code.
 *
 * emu dispatches the system registers its devices implement (the generic timer, the
 * GICv3 CPU interface) from a UC_HOOK_INSN hook on MRS and MSR (emu/cpu/arm64_sysregs.py).
 * Unicorn calls that hook for every MRS and MSR the guest executes, most of them of
 * registers no device handles (TPIDR_EL1, SP_EL0, DAIF...): this filter calls the Python
 * dispatcher only for the (op0, op1, CRn, CRm, op2) keys it has an entry for, and returns
 * 0 (Unicorn executes the instruction itself) for the others, as the dispatcher would.
 */
#include "cpu_bridge.h"

typedef uint32_t (*sys_hook)(void *uc, int reg, const struct uc_arm64_cp_reg *cp,
                             void *user_data);

struct emu_sysreg_filter {
    sys_hook python;            /* the dispatcher's hook (a ctypes callback) */
    uint8_t keys[65536 / 8];    /* a bit per key: op0[1:0] op1[2:0] CRn[3:0] CRm[3:0] op2[2:0] */
};

uint32_t emu_sysreg_filter_hook(void *uc, int reg, const struct uc_arm64_cp_reg *cp,
                                void *user_data)
{
    struct emu_sysreg_filter *f = user_data;
    uint32_t key = (cp->op0 & 3) << 14 | (cp->op1 & 7) << 11 | (cp->crn & 15) << 7 |
                   (cp->crm & 15) << 3 | (cp->op2 & 7);

    if (!(f->keys[key >> 3] & (1u << (key & 7)))) {
        return 0;
    }
    return f->python(uc, reg, cp, 0);
}
