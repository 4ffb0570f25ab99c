"""ACPI tables for emu's machines, built as QEMU 7.2 builds them (hw/acpi/aml-build.c,
hw/i386/acpi-build.c) and published through fw_cfg with QEMU's BIOS linker/loader script
(hw/acpi/bios-linker-loader.c)."""
