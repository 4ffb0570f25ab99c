"""The device tree of emu's ``virt`` machine, written with pylibfdt (libfdt's FdtSw).

It describes what emu models, with the node names, compatibles and properties QEMU's
hw/arm/virt.c gives the same devices (create_fdt, fdt_add_psci_node, fdt_add_cpu_nodes,
create_uart, create_fw_cfg, fdt_add_gic_node, fdt_add_timer_nodes; /chosen as hw/arm/boot.c
arm_load_dtb fills it):

- ``/``: ``linux,dummy-virt``, two address and two size cells, ``interrupt-parent`` the GIC;
- ``/psci``: PSCI 1.0 over HVC with the 64-bit function IDs;
- ``/memory@40000000``;
- ``/cpus/cpu@0``: the ``-cpu`` model, ``enable-method = "psci"``;
- ``/intc@8000000``: the GIC, ``arm,cortex-a15-gic`` (GICv2: distributor and CPU interface)
  or ``arm,gic-v3`` (distributor and one redistributor region), with QEMU's phandle 0x8002
  (QEMU allocates 0x8000 to the clock, 0x8001 to the CPU for its cpu-map, then the GIC's);
  with a GICv2 its child ``v2m@8020000``, the GICv2m MSI frame (``arm,gic-v2m-frame``,
  ``msi-controller``, QEMU's next phandle 0x8003; hw/arm/virt.c fdt_add_v2m_gic_node); the
  GICv3's ITS child (``its@8080000``) is left out: emu has no ITS;
- ``/timer``: the generic timer's four PPIs (secure, non-secure physical, virtual,
  hypervisor) as level-high, with the CPU mask of a GICv2 in bits 8-15;
- ``/apb-pclk`` and ``/pl011@9000000``: the console, on SPI 1;
- ``/fw-cfg@9020000``: ``qemu,fw-cfg-mmio``, ``dma-coherent``;
- ``/chosen``: ``kaslr-seed`` and ``rng-seed`` (random, as QEMU's dtb-randomness gives
  them), ``bootargs`` from ``-append``, ``stdout-path``, and the ``-initrd`` range.

The blob's ``totalsize`` is QEMU's: 1 MiB (softmmu/device_tree.c create_device_tree makes
the tree in an FDT_MAX_SIZE buffer and virt never packs it), the free space after the
strings block; Linux reserves the whole ``totalsize`` in memblock, so the size shows in its
"Memory:" line.

Properties are written in QEMU's values; QEMU's libfdt calls add each property and node in
front of the earlier ones, so its DTB lists them in the reverse order (the tests compare the
trees, not the bytes). QEMU's nodes for devices emu does not have (virtio-mmio, PCIe, PL031,
PL061, the PMU, flash, platform bus) are left out.
"""

from __future__ import annotations

import os

import libfdt

PSCI_0_2_FN64_CPU_SUSPEND = 0xC4000001
PSCI_0_2_FN_CPU_OFF = 0x84000002
PSCI_0_2_FN64_CPU_ON = 0xC4000003
PSCI_0_2_FN64_MIGRATE = 0xC4000005
CLOCK_PHANDLE = 0x8000
#: QEMU's third phandle (qemu_fdt_alloc_phandle after the clock's and the CPU's)
GIC_PHANDLE = 0x8002
#: the fourth (create_v2m allocates it after fdt_add_gic_node)
V2M_PHANDLE = 0x8003
#: softmmu/device_tree.c FDT_MAX_SIZE: the totalsize of QEMU's virt device tree
FDT_MAX_SIZE = 0x100000
GIC_DIST = (0x08000000, 0x10000)
GIC_CPU = (0x08010000, 0x10000)
GIC_REDIST = (0x080A0000, 0xF60000)
GIC_V2M = (0x08020000, 0x1000)
UART_SPI = 1
#: include/hw/arm/fdt.h
GIC_FDT_IRQ_TYPE_SPI, GIC_FDT_IRQ_TYPE_PPI = 0, 1
GIC_FDT_IRQ_FLAGS_LEVEL_HI = 4
GIC_FDT_IRQ_PPI_CPU_START = 8
#: include/hw/arm/virt.h: the timer PPIs in QEMU's /timer order
ARCH_TIMER_S_EL1_IRQ, ARCH_TIMER_NS_EL1_IRQ = 13, 14
ARCH_TIMER_VIRT_IRQ, ARCH_TIMER_NS_EL2_IRQ = 11, 10
UART_CLOCK_HZ = 24000000

#: -cpu model -> the "compatible" QEMU's CPU models carry (target/arm/cpu64.c dtb_compatible)
CPU_COMPATIBLE = {"cortex-a53": "arm,cortex-a53", "cortex-a57": "arm,cortex-a57",
                  "cortex-a72": "arm,cortex-a72", "max": "arm,arm-v8"}


def _strings(*values: str) -> bytes:
    return b"".join(v.encode() + b"\0" for v in values)


def _reg(*pairs: tuple[int, int]) -> bytes:
    """A ``reg`` value with two address and two size cells per (address, size)."""
    return b"".join(a.to_bytes(8, "big") + s.to_bytes(8, "big") for a, s in pairs)


def _cells(*values: int) -> bytes:
    return b"".join(v.to_bytes(4, "big") for v in values)


def _add_gic(sw: libfdt.FdtSw, gic_version: int) -> None:
    """``fdt_add_gic_node`` for a machine without virtualization=on."""
    with sw.add_node(f"intc@{GIC_DIST[0]:x}"):
        sw.property_u32("#interrupt-cells", 3)
        sw.property("interrupt-controller", b"")
        sw.property_u32("#address-cells", 2)
        sw.property_u32("#size-cells", 2)
        sw.property("ranges", b"")
        if gic_version == 2:
            sw.property_string("compatible", "arm,cortex-a15-gic")
            sw.property("reg", _reg(GIC_DIST, GIC_CPU))
        else:
            sw.property_string("compatible", "arm,gic-v3")
            sw.property_u32("#redistributor-regions", 1)
            sw.property("reg", _reg(GIC_DIST, GIC_REDIST))
        sw.property_u32("phandle", GIC_PHANDLE)
        if gic_version == 2:
            with sw.add_node(f"v2m@{GIC_V2M[0]:x}"):
                sw.property_string("compatible", "arm,gic-v2m-frame")
                sw.property("msi-controller", b"")
                sw.property("reg", _reg(GIC_V2M))
                sw.property_u32("phandle", V2M_PHANDLE)


def _add_timer(sw: libfdt.FdtSw, gic_version: int, cpus: int = 1) -> None:
    """``fdt_add_timer_nodes`` for an Armv8 CPU on a virt-2.9 or later machine."""
    flags = GIC_FDT_IRQ_FLAGS_LEVEL_HI
    if gic_version == 2:
        flags |= ((1 << cpus) - 1) << GIC_FDT_IRQ_PPI_CPU_START
    with sw.add_node("timer"):
        sw.property("compatible", _strings("arm,armv8-timer", "arm,armv7-timer"))
        sw.property("always-on", b"")
        sw.property("interrupts", _cells(
            *(cell for ppi in (ARCH_TIMER_S_EL1_IRQ, ARCH_TIMER_NS_EL1_IRQ,
                               ARCH_TIMER_VIRT_IRQ, ARCH_TIMER_NS_EL2_IRQ)
              for cell in (GIC_FDT_IRQ_TYPE_PPI, ppi, flags))))


def build_virt_fdt(*, ram_base: int, ram_size: int, cpu_model: str, uart_base: int,
                   fw_cfg_base: int, bootargs: str,
                   initrd: tuple[int, int] | None = None, gic_version: int = 2) -> bytes:
    """The flattened device tree (DTB) of a virt machine; ``initrd`` is (start, end).
    Its ``totalsize`` is QEMU's 1 MiB; ValueError if the tree does not fit in it."""
    sw = libfdt.FdtSw()
    sw.finish_reservemap()
    with sw.add_node(""):
        sw.property_u32("interrupt-parent", GIC_PHANDLE)
        sw.property_u32("#address-cells", 2)
        sw.property_u32("#size-cells", 2)
        sw.property_string("compatible", "linux,dummy-virt")

        with sw.add_node("psci"):
            sw.property("compatible", _strings("arm,psci-1.0", "arm,psci-0.2", "arm,psci"))
            sw.property_string("method", "hvc")
            sw.property_u32("cpu_suspend", PSCI_0_2_FN64_CPU_SUSPEND)
            sw.property_u32("cpu_off", PSCI_0_2_FN_CPU_OFF)
            sw.property_u32("cpu_on", PSCI_0_2_FN64_CPU_ON)
            sw.property_u32("migrate", PSCI_0_2_FN64_MIGRATE)

        with sw.add_node(f"memory@{ram_base:x}"):
            sw.property_string("device_type", "memory")
            sw.property("reg", _reg((ram_base, ram_size)))

        with sw.add_node("cpus"):
            sw.property_u32("#address-cells", 1)
            sw.property_u32("#size-cells", 0)
            with sw.add_node("cpu@0"):
                sw.property_string("device_type", "cpu")
                sw.property_string("compatible", CPU_COMPATIBLE.get(cpu_model, "arm,arm-v8"))
                sw.property_u32("reg", 0)
                sw.property_string("enable-method", "psci")

        _add_gic(sw, gic_version)
        _add_timer(sw, gic_version)

        with sw.add_node("apb-pclk"):
            sw.property_string("compatible", "fixed-clock")
            sw.property_u32("#clock-cells", 0)
            sw.property_u32("clock-frequency", UART_CLOCK_HZ)
            sw.property_string("clock-output-names", "clk24mhz")
            sw.property_u32("phandle", CLOCK_PHANDLE)

        uart = f"pl011@{uart_base:x}"
        with sw.add_node(uart):
            sw.property("compatible", _strings("arm,pl011", "arm,primecell"))
            sw.property("reg", _reg((uart_base, 0x1000)))
            sw.property("interrupts", _cells(GIC_FDT_IRQ_TYPE_SPI, UART_SPI,
                                             GIC_FDT_IRQ_FLAGS_LEVEL_HI))
            sw.property("clocks", CLOCK_PHANDLE.to_bytes(4, "big") * 2)
            sw.property("clock-names", _strings("uartclk", "apb_pclk"))

        with sw.add_node(f"fw-cfg@{fw_cfg_base:x}"):
            sw.property_string("compatible", "qemu,fw-cfg-mmio")
            sw.property("reg", _reg((fw_cfg_base, 0x18)))
            sw.property("dma-coherent", b"")

        with sw.add_node("chosen"):
            # hw/arm/virt.c create_randomness (dtb-randomness, on by default): a KASLR seed
            # and an RNG seed, new for every machine (Linux: "KASLR enabled", an early
            # "random: crng init done")
            seed = os.urandom(8 + 32)
            sw.property("kaslr-seed", seed[:8])
            sw.property("rng-seed", seed[8:])
            sw.property_string("bootargs", bootargs)
            sw.property_string("stdout-path", "/" + uart)
            if initrd is not None:
                sw.property_u64("linux,initrd-start", initrd[0])
                sw.property_u64("linux,initrd-end", initrd[1])
    fdt = sw.as_fdt()
    fdt.pack()
    if fdt.totalsize() > FDT_MAX_SIZE:
        raise ValueError(f"the device tree would be {fdt.totalsize()} bytes, over QEMU's "
                         f"{FDT_MAX_SIZE}")
    fdt.resize(FDT_MAX_SIZE)
    return bytes(fdt.as_bytearray())
