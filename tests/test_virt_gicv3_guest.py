"""virt's GICv3 from its CPU: the gicv3 guest image (guest_images/src/gicv3.c) drives the
ICC_* system registers together with the distributor and the redistributor, and prints what
it reads at each step. emu must print exactly what QEMU 7.2 prints, on each CPU model emu
offers (they all have 5 priority and 5 preemption bits).

A few of QEMU's lines are also checked against the architecture (Arm IHI 0069H), so that the
comparison cannot pass on a QEMU that printed something else.
"""

from __future__ import annotations

import pytest
from conftest import image, run_emu, run_qemu


def _args(gic: str, cpu: str) -> list[str]:
    return ["-M", f"virt,gic-version={gic}", "-cpu", cpu, "-m", "128M", "-display", "none",
            "-serial", "stdio", "-kernel", image("virt", "gicv3")]


def _fields(out: bytes, step: str) -> list[str]:
    """The ``name=value`` words of the line that starts with ``step:``."""
    for line in out.decode().splitlines():
        if line.startswith(step + ":"):
            return line.split(":", 1)[1].split()
    raise AssertionError(f"no {step!r} line in {out!r}")


@pytest.mark.parametrize("gic, cpu", [("3", "cortex-a57"), ("max", "cortex-a53"),
                                      ("3", "cortex-a72"), ("max", "max")])
def test_gicv3_image_prints_what_qemu_prints(gic: str, cpu: str) -> None:
    args = _args(gic, cpu)
    qemu = run_qemu("virt", args)
    assert qemu.returncode == 0, qemu.stderr
    assert qemu.stdout.endswith(b"gicv3: done\n")
    ours = run_emu(args, timeout=120)
    assert (ours.returncode, ours.stderr) == (0, b"")
    assert ours.stdout.decode().splitlines() == qemu.stdout.decode().splitlines()


def test_qemu_lines_are_the_architecture() -> None:
    """What QEMU printed (and so emu, by the test above) agrees with the GIC specification:
    ID_AA64PFR0_EL1.GIC 1 and ICC_SRE_EL1.SRE 1 (system registers), PIDR2.ArchRev 3;
    ICC_CTLR_EL1 reset A3V, IDbits 24-bit, PRIbits 5; the reset running priority is idle
    (0xff) and nothing is pending (1023); every UNDEFINED access has the Unknown syndrome
    (EC 0, IL 1); an SGI to self pends it in GICR_ISPENDR0 and raises IRQ (Group 1) or FIQ
    (Group 0); an IRQ is taken at VBAR_EL1 + 0x280 and an FIQ at + 0x300."""
    out = run_qemu("virt", _args("3", "cortex-a57")).stdout
    ident = _fields(out, "id")
    assert {"gicd_pidr2=0x0000003b", "gicr_pidr2=0x0000003b", "pfr0_gic=0x00000001"} <= \
        set(ident)
    lines = out.decode().splitlines()
    second = lines[1].split()[1:]
    assert {"sre=0x00000007", "ctlr=0x00008c00", "rpr=0x000000ff", "hppir1=0x000003ff",
            "iar1=0x000003ff", "irq=0x00000000", "fiq=0x00000000"} <= set(second)
    assert {f.split("=")[1] for f in _fields(out, "undef")} == {"0x02000000"}
    g1 = _fields(out, "sgi g1")
    assert g1[:4] == ["pend=0x00000200", "act=0x00000000", "hppir0=0x000003ff",
                      "hppir1=0x00000009"] and "irq=0x00000001" in g1
    g0 = _fields(out, "sgi g0")
    assert "pend=0x00000004" in g0 and "fiq=0x00000001" in g0
    assert _fields(out, "take") == [
        "irq_vector=0x00000280", "irq_intid=0x0000000c", "fiq_vector=0x00000300",
        "fiq_intid=0x00000004", "rpr=0x000000ff", "irq=0x00000000", "fiq=0x00000000"]
    lpi = _fields(out, "lpi")
    assert "hppir1=0x00002003" in lpi and "iar1=0x00002003" in lpi


def test_storm_runs_on_gic_version_max() -> None:
    """storm finds the GICv3 of ``gic-version=max`` too (tests/test_interrupts.py runs it on
    ``gic-version=3`` against QEMU)."""
    args = ["-M", "virt,gic-version=max", "-cpu", "cortex-a57", "-m", "128M", "-display",
            "none", "-serial", "stdio", "-kernel", image("virt", "storm"), "-append",
            "iters=1000 hz=20000 wait=5"]
    qemu, ours = run_qemu("virt", args), run_emu(args, timeout=120)
    assert qemu.stdout == ours.stdout
    assert ours.stdout.endswith(b"storm: waited for 5 ticks\n")


@pytest.mark.parametrize("gic", ["2", "3"])
def test_an_interrupt_raised_by_a_store_does_not_repeat_it(gic: str) -> None:
    """A store that raises the CPU's IRQ line (the PL011's UARTIMSC enabling its pending TX
    interrupt, SPI 1, which the GIC signals to the CPU) reaches the device once, as on
    QEMU, with either GIC, and the store before it in the same block keeps its value (a
    CPU stopped from inside the device's callback would run the store again)."""
    from unicorn import arm64_const as A

    from emu.config import MachineConfig
    from emu.machine import Machine

    m = Machine(MachineConfig(machine="virt", accel="tcg", gic_version=gic, direct_boot=True,
                              kernel=image("virt", "hello")))
    try:
        assert m.cpu.engine is not None and m.cpu.engine.available
        board = m.board
        dist = board.gic.dist.ops
        if gic == "3":
            dist.write(0, 4, 2)                    # GICD_CTLR.EnableGrp1NS
            dist.write(0x84, 4, 2)                 # INTID 33: Group 1, enabled
            dist.write(0x104, 4, 2)
            board.gic_cpuif.write_sysreg(3, 0, 4, 6, 0, 0xFF)   # ICC_PMR_EL1
            board.gic_cpuif.write_sysreg(3, 0, 12, 12, 7, 1)    # ICC_IGRPEN1_EL1
        else:
            dist.write(0, 4, 1)
            dist.write(0x104, 4, 2)
            board.gic.cpu.ops.write(4, 4, 0xFF)    # GICC_PMR
            board.gic.cpu.ops.write(0, 4, 1)       # GICC_CTLR
        m.mmio_bus.mmio_write(0x09000000, 4, 0x41)  # a DR write: TX raised, not enabled
        writes: list[tuple[int, int]] = []
        mapping = next(mp for mp in m.mmio_bus.mappings if mp.region is board.uart.region)
        original = mapping.write

        def counting(offset: int, size: int, value: int) -> None:
            writes.append((offset, value))
            original(offset, size, value)

        mapping.write = counting
        # mov w8,#0x90; mov w21,#0x38; movk w21,#0x900,lsl #16; strb w8,[x19,#541]
        # (GICD_IPRIORITYR of INTID 33); mov w8,#0x20; str w8,[x21] (UARTIMSC); nop;
        # then PSCI SYSTEM_OFF: movz x0,#8; movk x0,#0x8400,lsl #16; hvc #0
        code = [0x52801208, 0x52800715, 0x72A12015, 0x39087668, 0x52800408, 0xB90002A8,
                0xD503201F, 0xD2800100, 0xF2B08000, 0xD4000002]
        m.address_space.write(0x40100000, b"".join(w.to_bytes(4, "little") for w in code))
        m.cpu.uc.reg_write(A.UC_ARM64_REG_X19, 0x08000000 + 0x421 - 541)
        m.cpu.pc = 0x40100000
        assert m.run() == 0
        assert dist.read(0x421, 1) == 0x90
        assert writes == [(0x38, 0x20)]
    finally:
        m.close()


@pytest.mark.parametrize("gic, pfr0", [("2", 0x2222), ("3", 0x1002222)])
def test_id_aa64pfr0_gic_field_follows_the_gic(gic: str, pfr0: int) -> None:
    """``mrs x0, id_aa64pfr0_el1`` on the board's CPU: Unicorn's cortex-a57 value (0x2222;
    QEMU's virt clears the EL2 and EL3 fields, emu's CPU has both levels) with the GIC field
    (bits 27:24) 1 only with the GICv3, as QEMU's id_aa64pfr0_read sets it."""
    from unicorn import arm64_const as A

    from emu.config import MachineConfig
    from emu.machine import Machine

    m = Machine(MachineConfig(machine="virt", accel="qtest", gic_version=gic))
    try:
        m.address_space.write(0x40000000, (0xD5380400).to_bytes(4, "little"))
        m.cpu.uc.ctl_set_exits([0x40000004])  # (the machine's exit list is empty otherwise)
        m.cpu.uc.emu_start(0x40000000, 0x40000004)
        assert m.cpu.uc.reg_read(A.UC_ARM64_REG_X0) == pfr0
    finally:
        m.close()
