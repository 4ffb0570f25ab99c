"""virt's GICv3 (``-M virt,gic-version=3``) against QEMU 7.2 through qtest.

Both emulators run ``-M virt,gic-version=3 -cpu cortex-a57`` paused (``-S``) and get the same
command streams: MMIO reads and writes of the distributor (0x08000000) and of the
redistributor of CPU 0 (RD_base 0x080a0000, SGI_base 0x080b0000), interrupt inputs driven
with ``set_irq_in`` on the GIC (``/machine/unattached/device[1]``, QEMU's ``arm-gicv3``: SPIs
0-255, then CPU 0's 32 internal interrupts), and the CPU's IRQ/FIQ inputs
(``irq_intercept_in`` on ``/machine/unattached/device[0]``). Every answer and every ``IRQ``
line must be equal.

The CPU interface is system registers, which qtest cannot reach: it stays as the CPU's reset
left it (ICC_PMR_EL1 0, both groups disabled), so no interrupt reaches the CPU here, and
the ``IRQ`` lines compare only that. tests/test_virt_gicv3_guest.py drives the CPU interface
from a guest. 8-byte accesses are made only to the registers QEMU defines as 64-bit
(GICD_IROUTER<n>, GICR_TYPER, PROPBASER, PENDBASER): emu's bus hands a device an 8-byte
access as two 4-byte ones (emu/bus.py), which for those registers is the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pc_irq_qtest import Pair, qtest_pair

ARGS = ["-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-m", "128M", "-display", "none",
        "-nodefaults", "-S"]
CPU, GIC = "/machine/unattached/device[0]", "/machine/unattached/device[1]"
D, R = 0x08000000, 0x080A0000
S = R + 0x10000
UART = 0x09000000



def _pair(*args: str) -> Iterator[Pair]:
    return qtest_pair("virt", *args)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    for p in _pair(*ARGS):
        p.same([f"irq_intercept_in {CPU}"])
        yield p


@pytest.fixture()
def gic(pair: Pair) -> Pair:
    """The shared pair with every state the tests touch put back by register writes and
    input changes (qtest has no reset command)."""
    lines = [f"writel {D:#x} 0", f"writel {R:#x} 0", f"writel {R + 0x14:#x} 6"]
    for n in range(1, 9):
        lines += [f"writel {D + 0x180 + 4 * n:#x} 0xffffffff",
                  f"writel {D + 0x280 + 4 * n:#x} 0xffffffff",
                  f"writel {D + 0x380 + 4 * n:#x} 0xffffffff",
                  f"writel {D + 0x80 + 4 * n:#x} 0"]
    lines += [f"writel {D + 0x400 + 4 * n:#x} 0" for n in range(8, 72)]
    lines += [f"writel {D + 0xc00 + 4 * n:#x} 0" for n in range(2, 18)]
    lines += [f"writeq {D + 0x6000 + 8 * n:#x} 0" for n in range(32, 288)]
    lines += [f"writel {S + o:#x} 0xffffffff" for o in (0x180, 0x280, 0x380)]
    lines += [f"writel {S + 0x80:#x} 0", f"writel {S + 0xc04:#x} 0"]
    lines += [f"writel {S + 0x400 + 4 * n:#x} 0" for n in range(8)]
    lines += [f"writeq {R + 0x70:#x} 0", f"writeq {R + 0x78:#x} 0"]
    lines += [f"set_irq_in {GIC} unnamed-gpio-in {n} 0" for n in (*range(10), 40, 255)]
    lines += [f"set_irq_in {GIC} unnamed-gpio-in {256 + n} 0" for n in (16, 23, 27, 30, 31)]
    lines += [f"writel {UART + 0x38:#x} 0", f"writel {UART + 0x44:#x} 0x7ff"]
    pair.same(lines)
    return pair


def _reads(base: int, offsets: range | list[int], width: str = "l") -> list[str]:
    return [f"read{width} {base + o:#x}" for o in offsets]


# -- reset state -------------------------------------------------------------------------------

def test_distributor_reset_state_matches_qemu() -> None:
    """Every distributor register QEMU decodes, and samples of the reserved space, in a fresh
    machine: GICD_CTLR 0x50 (DS, ARE: no Security Extensions), TYPER 0x37a0007 (LPIs,
    16-bit INTIDs, 288 interrupts), IIDR 0x43b, PIDR2 0x3b (ArchRev 3); SGIs and PPIs and
    the GICv2-only registers read as zero; byte accesses only to IPRIORITYR."""
    lines = _reads(D, range(0, 0x100, 4)) + _reads(D, range(0x100, 0x400, 4)) + \
        _reads(D, range(0x400, 0x520, 4)) + _reads(D, range(0x7f8, 0x840, 4)) + \
        _reads(D, range(0xc00, 0xd48, 4)) + _reads(D, range(0xe00, 0xe48, 4)) + \
        _reads(D, range(0xf00, 0xf40, 4)) + _reads(D, range(0xfc0, 0x1010, 4)) + \
        _reads(D, range(0x6000, 0x6120, 4)) + _reads(D, range(0x7f00, 0x8010, 4)) + \
        _reads(D, range(0xffc0, 0x10000, 4)) + \
        _reads(D, [0x0, 0x4, 0x8, 0x400, 0x41f, 0x420, 0x423, 0x800, 0x820, 0xf10, 0xf20,
                   0xc08, 0xffe8, 0xffe0], "b") + \
        _reads(D, [0x0, 0x4, 0x420, 0x6100], "w") + \
        _reads(D, [0x6000, 0x6100, 0x6108, 0x68f8, 0x6900, 0x7fd8], "q")
    for p in _pair(*ARGS):
        p.same(lines)


def test_redistributor_reset_state_matches_qemu() -> None:
    """RD_base and SGI_base of CPU 0: GICR_CTLR 2 (CES: EnableLPIs can be cleared), TYPER
    0x1000011 (Last, PLPIS, CommonLPIAff 1, affinity 0), WAKER 6 (ProcessorSleep,
    ChildrenAsleep), PIDR0 0x93; ICFGR0 0xaaaaaaaa (SGIs edge-triggered); every other
    SGI/PPI register zero."""
    lines = _reads(R, range(0, 0x100, 4)) + _reads(R, range(0xffc0, 0x10000, 4)) + \
        _reads(S, range(0, 0x100, 4)) + _reads(S, range(0x100, 0x400, 4)) + \
        _reads(S, range(0x400, 0x440, 4)) + _reads(S, range(0xc00, 0xc10, 4)) + \
        _reads(S, range(0xd00, 0xd10, 4)) + _reads(S, range(0xe00, 0xe10, 4)) + \
        _reads(R, [0x0, 0x8, 0x14], "b") + _reads(S, [0x400, 0x41f, 0x420, 0x80], "b") + \
        _reads(R, [0x0, 0x8], "w") + _reads(S, [0x400], "w") + \
        _reads(R, [0x8, 0x70, 0x78], "q") + _reads(S, [0xfffc, 0x1fffc])
    for p in _pair(*ARGS):
        p.same(lines)


@pytest.mark.parametrize("gic_version", ["max", "3"])
def test_gic_version_max_is_the_same_gicv3(gic_version: str) -> None:
    """``gic-version=max`` is a GICv3 under TCG: the same ID and type registers."""
    args = ["-M", f"virt,gic-version={gic_version}", *ARGS[2:]]
    for p in _pair(*args):
        p.same(_reads(D, [0x0, 0x4, 0x8, 0xffe8]) + _reads(R, [0x8, 0xc, 0xffe8]))


# -- distributor -------------------------------------------------------------------------------

def test_distributor_write_masks(gic: Pair) -> None:
    """GICD_CTLR keeps DS and ARE whatever is written (only the group enables change);
    IGROUPR, the set/clear pairs, IPRIORITYR (4 bytes, or one), ICFGR (odd bits), IROUTER
    (both halves and as one 64-bit register) are stored as QEMU stores them; IGRPMODR,
    NSACR, ITARGETSR, SGIR and the SGI pending registers are RAZ/WI; SGIs and PPIs cannot be
    set through the distributor."""
    gic.same([
        f"writel {D:#x} 0xffffffff", f"readl {D:#x}", f"writel {D:#x} 0", f"readl {D:#x}",
        f"writel {D + 0x80:#x} 0xffffffff", f"readl {D + 0x80:#x}",
        f"writel {D + 0x84:#x} 0xa5a5a5a5", f"readl {D + 0x84:#x}",
        f"writel {D + 0xa4:#x} 0xffffffff", f"readl {D + 0xa4:#x}",
        f"writel {D + 0x100:#x} 0xffffffff", f"readl {D + 0x100:#x}",
        f"writel {D + 0x108:#x} 0x0f0f", f"readl {D + 0x108:#x}", f"readl {D + 0x188:#x}",
        f"writel {D + 0x188:#x} 0x0003", f"readl {D + 0x108:#x}",
        f"writel {D + 0x200:#x} 0xffffffff", f"readl {D + 0x200:#x}",
        f"writel {D + 0x20c:#x} 0xf0", f"readl {D + 0x28c:#x}",
        f"writel {D + 0x28c:#x} 0x30", f"readl {D + 0x20c:#x}",
        f"writel {D + 0x310:#x} 0x11", f"readl {D + 0x390:#x}",
        f"writel {D + 0x390:#x} 0x1", f"readl {D + 0x310:#x}",
        f"writel {D + 0x420:#x} 0x12345678", f"readl {D + 0x420:#x}",
        f"writeb {D + 0x425:#x} 0xab", f"readl {D + 0x424:#x}", f"readb {D + 0x425:#x}",
        f"writew {D + 0x428:#x} 0xffff", f"readl {D + 0x428:#x}",
        f"writel {D + 0x41c:#x} 0x12345678", f"readl {D + 0x41c:#x}",
        f"writel {D + 0x51c:#x} 0x12345678", f"readl {D + 0x51c:#x}",
        f"writel {D + 0x518:#x} 0x12345678", f"readl {D + 0x518:#x}",
        f"writeb {D + 0x403:#x} 0x80", f"readl {D + 0x400:#x}",
        f"writel {D + 0xc00:#x} 0xffffffff", f"readl {D + 0xc00:#x}",
        f"writel {D + 0xc08:#x} 0xffffffff", f"readl {D + 0xc08:#x}",
        f"writel {D + 0xc0c:#x} 0xaaaa5555", f"readl {D + 0xc0c:#x}",
        f"writel {D + 0xd04:#x} 0xffffffff", f"readl {D + 0xd04:#x}",
        f"writel {D + 0xe08:#x} 0xffffffff", f"readl {D + 0xe08:#x}",
        f"writel {D + 0x820:#x} 0xffffffff", f"readl {D + 0x820:#x}",
        f"writeb {D + 0x821:#x} 0xff", f"readb {D + 0x821:#x}",
        f"writel {D + 0xf00:#x} 0x02010003", f"readl {D + 0xf00:#x}",
        f"writel {D + 0xf20:#x} 0xffffffff", f"readl {D + 0xf20:#x}", f"readl {S + 0x200:#x}",
        f"writel {D + 0x6100:#x} 0x01020304", f"writel {D + 0x6104:#x} 0xffffffff",
        f"readl {D + 0x6100:#x}", f"readl {D + 0x6104:#x}", f"readq {D + 0x6100:#x}",
        f"writeq {D + 0x6108:#x} 0x1122334455667788", f"readl {D + 0x6108:#x}",
        f"readl {D + 0x610c:#x}", f"writel {D + 0x6000:#x} 5", f"readl {D + 0x6000:#x}",
        f"writeq {D + 0x6900:#x} 7", f"readq {D + 0x6900:#x}",
        f"writel {D + 0x4:#x} 0", f"readl {D + 0x4:#x}", f"writel {D + 0xffe8:#x} 0",
        f"readl {D + 0xffe8:#x}", f"writel {D + 0x1000:#x} 1", f"readl {D + 0x1000:#x}"])


def test_spi_inputs_level_and_edge(gic: Pair) -> None:
    """An SPI input: level-triggered, it reads as pending while high (latch or not);
    edge-triggered (GICD_ICFGR), a rising edge latches pending until cleared; an active
    interrupt (ISACTIVER) stays pending too."""
    line = f"set_irq_in {GIC} unnamed-gpio-in"
    gic.same([
        f"writel {D:#x} 2", f"writel {D + 0x84:#x} 0xffffffff",
        f"writel {D + 0x104:#x} 0xffffffff",
        f"{line} 1 1", f"readl {D + 0x204:#x}", f"{line} 1 0", f"readl {D + 0x204:#x}",
        f"writel {D + 0xc08:#x} 0x8", f"{line} 1 1", f"{line} 1 0", f"readl {D + 0x204:#x}",
        f"{line} 1 1", f"writel {D + 0x284:#x} 0x2", f"readl {D + 0x204:#x}",
        f"{line} 1 0", f"writel {D + 0x304:#x} 0x100", f"{line} 8 1", f"readl {D + 0x204:#x}",
        f"readl {D + 0x304:#x}", f"{line} 8 0", f"readl {D + 0x204:#x}",
        f"{line} 255 1", f"readl {D + 0x21c:#x}", f"{line} 255 0", f"readl {D + 0x21c:#x}"])


def test_ppi_inputs_and_redistributor_registers(gic: Pair) -> None:
    """The timer's PPIs (27, 30) through the redistributor: level while the line is high,
    edge-triggered with GICR_ICFGR1; GICR_ICFGR0 is read-only; SGIs and PPIs can be made
    pending, active and enabled through the SGI_base registers; GICR_IPRIORITYR by bytes
    and words; IGRPMODR0 and NSACR are RAZ/WI."""
    line = f"set_irq_in {GIC} unnamed-gpio-in"
    gic.same([
        f"{line} {256 + 27} 1", f"readl {S + 0x200:#x}", f"{line} {256 + 27} 0",
        f"readl {S + 0x200:#x}", f"writel {S + 0xc04:#x} 0x00800000", f"readl {S + 0xc04:#x}",
        f"{line} {256 + 27} 1", f"{line} {256 + 27} 0", f"readl {S + 0x200:#x}",
        f"readl {S + 0x280:#x}", f"writel {S + 0x280:#x} 0x08000000", f"readl {S + 0x200:#x}",
        f"{line} {256 + 30} 1", f"readl {S + 0x200:#x}",
        f"writel {S + 0xc04:#x} 0xffffffff", f"readl {S + 0xc04:#x}",
        f"writel {S + 0xc00:#x} 0", f"readl {S + 0xc00:#x}",
        f"writel {S + 0x80:#x} 0xffffffff", f"readl {S + 0x80:#x}",
        f"writel {S + 0x100:#x} 0x10002", f"readl {S + 0x100:#x}", f"readl {S + 0x180:#x}",
        f"writel {S + 0x180:#x} 0x2", f"readl {S + 0x100:#x}",
        f"writel {S + 0x200:#x} 0x10002", f"readl {S + 0x200:#x}",
        f"writel {S + 0x280:#x} 0x2", f"readl {S + 0x200:#x}",
        f"writel {S + 0x300:#x} 0x10002", f"readl {S + 0x300:#x}",
        f"writel {S + 0x380:#x} 0x2", f"readl {S + 0x380:#x}",
        f"writel {S + 0x400:#x} 0x12345678", f"readl {S + 0x400:#x}",
        f"writeb {S + 0x41f:#x} 0xff", f"readl {S + 0x41c:#x}", f"readb {S + 0x41f:#x}",
        f"writew {S + 0x404:#x} 0xffff", f"readl {S + 0x404:#x}",
        f"writel {S + 0xd00:#x} 0xffffffff", f"readl {S + 0xd00:#x}",
        f"writel {S + 0xe00:#x} 0xffffffff", f"readl {S + 0xe00:#x}",
        f"{line} {256 + 30} 0"])


def test_redistributor_control_waker_and_lpi_tables(gic: Pair) -> None:
    """GICR_WAKER: only ProcessorSleep is writable and ChildrenAsleep follows it;
    GICR_CTLR.EnableLPIs sets and clears (CES); PROPBASER and PENDBASER keep every bit, in
    32-bit halves or as 64-bit registers; TYPER, IIDR and the ID registers are read-only."""
    gic.same([
        f"writel {R + 0x14:#x} 0", f"readl {R + 0x14:#x}",
        f"writel {R + 0x14:#x} 0xffffffff", f"readl {R + 0x14:#x}",
        f"writel {R + 0x14:#x} 4", f"readl {R + 0x14:#x}",
        f"writel {R:#x} 0xffffffff", f"readl {R:#x}", f"writel {R:#x} 0", f"readl {R:#x}",
        f"writel {R + 0x70:#x} 0xffffffff", f"writel {R + 0x74:#x} 0xffffffff",
        f"readl {R + 0x70:#x}", f"readl {R + 0x74:#x}", f"readq {R + 0x70:#x}",
        f"writeq {R + 0x78:#x} 0x123456789abcdef0", f"readq {R + 0x78:#x}",
        f"readl {R + 0x7c:#x}", f"writel {R + 0x8:#x} 0", f"writel {R + 0xc:#x} 5",
        f"readq {R + 0x8:#x}", f"writel {R + 0x4:#x} 0", f"readl {R + 0x4:#x}",
        f"writel {R + 0xffe8:#x} 0", f"readl {R + 0xffe8:#x}",
        f"writeq {R + 0x70:#x} 0x4100000d", f"writeq {R + 0x78:#x} 0x41010000",
        f"writel {R:#x} 1", f"readl {R:#x}", f"writel {R:#x} 0", f"readl {R:#x}"])


def test_uart_interrupt_reaches_spi_1(gic: Pair) -> None:
    """The PL011's combined interrupt is SPI 1 (INTID 33): TX, raised by a DR write and
    enabled in IMSC, pends it; ICR clears it."""
    gic.same([
        f"writel {UART + 0x38:#x} 0x20", f"readl {D + 0x204:#x}", f"writel {UART:#x} 0x41",
        f"readl {UART + 0x40:#x}", f"readl {D + 0x204:#x}", f"writel {UART + 0x44:#x} 0x20",
        f"readl {D + 0x204:#x}", f"writel {UART + 0x38:#x} 0"])


# -- random sequences --------------------------------------------------------------------------

_DIST_REGS = [0x0, 0x4, 0x80, 0x84, 0x88, 0x100, 0x104, 0x180, 0x184, 0x200, 0x204, 0x280,
              0x284, 0x300, 0x304, 0x380, 0x384, 0x400, 0x420, 0x424, 0xc00, 0xc08, 0xc0c,
              0xd04, 0xf00, 0x6100, 0x6104, 0x6108, 0xffe8]
_REDIST_REGS = [R - R, 0x14, 0x70, 0x78, 0x10080, 0x10100, 0x10180, 0x10200, 0x10280,
                0x10300, 0x10380, 0x10400, 0x10418, 0x1041c, 0x10c00, 0x10c04, 0x10d00]
_VALUES = st.one_of(st.sampled_from([0, 1, 2, 3, 6, 0x20, 0x80, 0xff, 0x3ff, 0x100, 0x800000,
                                     0x08000000, 0x40000000, 0xffffffff, 0xa0a0a0a0,
                                     0x55555555]),
                    st.integers(0, 0xFFFFFFFF))
_COMMAND = st.one_of(
    st.builds(lambda o, v: f"writel {D + o:#x} {v:#x}", st.sampled_from(_DIST_REGS), _VALUES),
    st.builds(lambda o, v: f"writeb {D + o:#x} {v & 0xff:#x}",
              st.sampled_from([0x401, 0x421, 0x422, 0x85, 0x205]), _VALUES),
    st.builds(lambda o: f"readl {D + o:#x}", st.sampled_from(_DIST_REGS)),
    st.builds(lambda o, v: f"writel {R + o:#x} {v:#x}", st.sampled_from(_REDIST_REGS), _VALUES),
    st.builds(lambda o: f"readl {R + o:#x}", st.sampled_from(_REDIST_REGS)),
    st.builds(lambda n, lvl: f"set_irq_in {GIC} unnamed-gpio-in {n} {lvl}",
              st.sampled_from([0, 1, 2, 3, 8, 256 + 16, 256 + 27, 256 + 30]),
              st.integers(0, 1)),
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_COMMAND, min_size=5, max_size=40))
def test_random_sequences_match_qemu(gic: Pair, lines: list[str]) -> None:
    """Random register writes and reads and input changes, then every pending, active and
    enable register: the state QEMU keeps, bit for bit."""
    gic.same(lines + _reads(D, [0x0, 0x84, 0x104, 0x204, 0x304, 0xc08]) +
             _reads(S, [0x80, 0x100, 0x200, 0x300, 0xc04]))
