"""The device tree of emu's ``virt`` machine, written with pylibfdt (libfdt's FdtSw).

It describes what emu models, with the node names, compatibles and properties QEMU's
hw/arm/virt.c gives the same devices (create_fdt, fdt_add_psci_node, fdt_add_cpu_nodes,
create_uart, create_fw_cfg; /chosen as hw/arm/boot.c arm_load_dtb fills it):

- ``/``: ``linux,dummy-virt``, two address and two size cells;
- ``/psci``: PSCI 1.0 over HVC with the 64-bit function IDs;
- ``/memory@40000000``;
- ``/cpus/cpu@0``: the ``-cpu`` model, ``enable-method = "psci"``;
- ``/apb-pclk`` and ``/pl011@9000000``: the console;
- ``/fw-cfg@9020000``: ``qemu,fw-cfg-mmio``, ``dma-coherent``;
- ``/chosen``: ``bootargs`` from ``-append``, ``stdout-path``, and the ``-initrd`` range.

emu has no GIC and no generic timer, so there are no interrupt nodes.
"""

from __future__ import annotations

import libfdt

PSCI_0_2_FN64_CPU_SUSPEND = 0xC4000001
PSCI_0_2_FN_CPU_OFF = 0x84000002
PSCI_0_2_FN64_CPU_ON = 0xC4000003
PSCI_0_2_FN64_MIGRATE = 0xC4000005
CLOCK_PHANDLE = 0x8000
UART_CLOCK_HZ = 24000000

#: -cpu model -> the "compatible" QEMU's CPU models carry (target/arm/cpu64.c dtb_compatible)
CPU_COMPATIBLE = {"cortex-a53": "arm,cortex-a53", "cortex-a57": "arm,cortex-a57",
                  "cortex-a72": "arm,cortex-a72", "max": "arm,arm-v8"}


def _strings(*values: str) -> bytes:
    return b"".join(v.encode() + b"\0" for v in values)


def _reg(*pairs: tuple[int, int]) -> bytes:
    """A ``reg`` value with two address and two size cells per (address, size)."""
    return b"".join(a.to_bytes(8, "big") + s.to_bytes(8, "big") for a, s in pairs)


def build_virt_fdt(*, ram_base: int, ram_size: int, cpu_model: str, uart_base: int,
                   fw_cfg_base: int, bootargs: str,
                   initrd: tuple[int, int] | None = None) -> bytes:
    """The flattened device tree (DTB) of a virt machine; ``initrd`` is (start, end)."""
    sw = libfdt.FdtSw()
    sw.finish_reservemap()
    with sw.add_node(""):
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
            sw.property("clocks", CLOCK_PHANDLE.to_bytes(4, "big") * 2)
            sw.property("clock-names", _strings("uartclk", "apb_pclk"))

        with sw.add_node(f"fw-cfg@{fw_cfg_base:x}"):
            sw.property_string("compatible", "qemu,fw-cfg-mmio")
            sw.property("reg", _reg((fw_cfg_base, 0x18)))
            sw.property("dma-coherent", b"")

        with sw.add_node("chosen"):
            sw.property_string("bootargs", bootargs)
            sw.property_string("stdout-path", "/" + uart)
            if initrd is not None:
                sw.property_u64("linux,initrd-start", initrd[0])
                sw.property_u64("linux,initrd-end", initrd[1])
    fdt = sw.as_fdt()
    fdt.pack()
    return bytes(fdt.as_bytearray())
