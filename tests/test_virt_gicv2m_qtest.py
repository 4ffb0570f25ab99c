"""virt's GICv2m MSI frame (0x08020000) against QEMU 7.2 through qtest.

Both emulators run ``-M virt -cpu cortex-a57`` paused with a GICv2 and get the same command
streams: reads of the frame's registers (MSI_TYPER, MSI_IIDR, the ID registers, undecoded
offsets, accesses of other sizes) and MSI_SETSPI_NS writes, whose effect is read back from
the GIC's distributor (GICD_ISPENDR) and seen on the CPU's IRQ input. Every answer and every
``IRQ`` line must be equal. With ``gic-version=3`` neither has a frame there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_pc_irq_qtest import Pair, qtest_pair

ARGS = ["-M", "virt", "-cpu", "cortex-a57", "-m", "128M", "-display", "none", "-nodefaults",
        "-S"]
CPU = "/machine/unattached/device[0]"
D, C, V2M = 0x08000000, 0x08010000, 0x08020000
SETSPI = V2M + 0x40


@pytest.fixture()
def pair() -> Iterator[Pair]:
    for p in qtest_pair("virt", *ARGS):
        p.same([f"irq_intercept_in {CPU}"])
        yield p


def test_registers_read_as_qemu(pair: Pair) -> None:
    """MSI_TYPER 0x00500040 (SPIs 80-143), MSI_IIDR 0x05100000, zero ID registers; other
    offsets and sizes read as zero; a 64-bit read is two 32-bit ones."""
    lines = [f"readl {V2M + o:#x}" for o in (*range(0, 0x100, 4), *range(0xfc0, 0x1000, 4))]
    lines += [f"readb {V2M + 8:#x}", f"readw {V2M + 8:#x}", f"readw {V2M + 0xa:#x}",
              f"readq {V2M + 8:#x}", f"readq {V2M + 0xfc8:#x}", f"readb {V2M + 0xfcf:#x}"]
    answers = pair.same(lines)
    assert answers[2] == "OK 0x0000000000500040"


def _enable_all_spis() -> list[str]:
    lines = [f"writel {D:#x} 1", f"writel {C:#x} 1", f"writel {C + 4:#x} 0xff"]
    lines += [f"writel {D + 0x100 + 4 * n:#x} 0xffffffff" for n in range(1, 9)]
    return lines


def _pending() -> list[str]:
    return [f"readl {D + 0x200 + 4 * n:#x}" for n in range(1, 9)]


@pytest.mark.parametrize("icfgr", [0, 0xffffffff])
def test_setspi_raises_the_spi(pair: Pair, icfgr: int) -> None:
    """MSI_SETSPI_NS pulses the named SPI: an edge-triggered one stays pending and raises
    IRQ, a level one (the pulse has dropped) does not. IDs outside 80-143 and bits above 9
    are ignored, as are 8-bit writes and writes elsewhere; 16-bit writes count."""
    lines = _enable_all_spis()
    lines += [f"writel {D + 0xc00 + 4 * n:#x} {icfgr:#x}" for n in range(2, 18)]
    for value, width in ((80, "l"), (143, "l"), (100, "w"), (79, "l"), (144, "l"),
                         (0x400 | 90, "l"), (0xfc00 | 91, "l"), (92, "b"), (33, "l")):
        lines += [f"write{width} {SETSPI:#x} {value:#x}", *_pending()]
    lines += [f"writel {V2M + 0x44:#x} 95", f"writel {V2M:#x} 96", *_pending(),
              f"writeq {SETSPI:#x} 0x6100000061", *_pending(), f"readl {C + 0xc:#x}",
              *_pending()]
    pair.same(lines)


def test_gicv3_has_no_frame() -> None:
    for p in qtest_pair("virt", *ARGS[:1], "virt,gic-version=3", *ARGS[2:]):
        p.same([f"readl {V2M + 8:#x}", f"readl {V2M + 0xfcc:#x}"])
