"""The pc board's interrupt fabric and legacy timer chips, wired as QEMU 7.2's ``pc`` does
(hw/i386/pc.c ``pc_basic_device_init``, hw/i386/pc_piix.c, hw/i386/x86.c ``gsi_handler``).

* 24 GSI lines: GSI n < 16 goes to 8259 input n (ISA IRQ n) and, like every GSI, to IOAPIC
  input n (QEMU's ``gsi_handler``; the IOAPIC itself maps its input 0 to pin 2). Trace event
  ``x86_gsi_interrupt`` (QEMU's).
* the IOAPIC at 0xfec00000 (:mod:`emu.devices.ioapic`): its messages go to
  ``ioapic.deliver`` (the local APIC connects there), its ExtINT entries acknowledge the 8259s;
* the 8259 pair (:mod:`emu.devices.i8259`), whose output goes to the local APIC's LINT0
  while the APIC accepts 8259 interrupts (QEMU's ``pic_irq_request``), and nowhere otherwise;
* the local APIC of the CPU at 0xfee00000 (:mod:`emu.devices.apic`), which takes the IOAPIC's
  messages and drives the CPU's interrupt request ``intr`` and ``nmi``; ``get_interrupt`` is
  the CPU's interrupt acknowledge (QEMU's ``cpu_get_pic_interrupt``);
* the 8254 PIT, counter 0 on GSI 0, and port 0x61 (:mod:`emu.devices.pcspk`);
* the MC146818 RTC on GSI 8, its NVRAM filled as QEMU's ``pc_cmos_init`` fills it
  (:func:`pc_cmos_init`).

* the HPET at 0xfed00000 (:mod:`emu.devices.hpet`; ``-M pc,hpet=off`` leaves it out), its 24
  first interrupt routes on the GSIs. As in QEMU, the PIT's and the RTC's outputs go through
  the HPET's legacy inputs, which pass them on to GSI 0 and 8 while the HPET is not in legacy
  replacement mode (its state after reset), and the HPET's ``pit_enabled`` output switches the
  PIT's interrupt on and off; without the HPET they are wired straight to those GSIs.

Each device's GPIO lists are registered under QEMU's QOM paths (``qom_gpios``) for the qtest
commands ``irq_intercept_in``, ``irq_intercept_out`` and ``set_irq_in`` (QEMU's qtests watch
the GSIs at the IOAPIC's inputs: ``irq_intercept_in ioapic``).
"""

from __future__ import annotations

from collections.abc import Callable

from emu import trace as tracing
from emu.bus import Region
from emu.clock import Clock
from emu.config import KiB, MachineConfig, MiB
from emu.devices.apic import (
    APIC_DEFAULT_ADDRESS,
    APIC_LVT_LINT0,
    APIC_LVT_LINT1,
    APIC_SV_ENABLE,
    Apic,
    ApicBus,
)
from emu.devices.hpet import HPET_BASE, HPET_LEGACY_PIT_INT, HPET_LEGACY_RTC_INT, Hpet
from emu.devices.i8254 import PIT_BASE, Pit
from emu.devices.i8259 import PicPair
from emu.devices.ioapic import IOAPIC_BASE, ApicMessage, IoApic
from emu.devices.mc146818rtc import RTC_BASE, RTC_ISA_IRQ, MC146818Rtc
from emu.devices.pcspk import PCSPK_PORT, PcSpeaker
from emu.errors import ConfigError
from emu.irq import Gpios, IrqLine, input_lines
from emu.trace import trace

GSI_NUM_PINS = 24
#: the LVT LINT0 and LINT1 entries firmware programs: ExtINT and NMI, level-triggered
FIRMWARE_LINT0, FIRMWARE_LINT1 = 0x8700, 0x8400
ISA_NUM_IRQS = 16
PIT_ISA_IRQ = 0

#: QEMU 7.2's QOM paths of these devices on ``-M pc`` without a VGA (``-nodefaults``, as the
#: qtests run it; a VGA takes device[8] and moves the later ones up by one)
QOM_PATHS = {"pic-master": "/machine/unattached/device[6]",
             "pic-slave": "/machine/unattached/device[7]",
             "hpet": "/machine/unattached/device[8]",
             "rtc": "/machine/unattached/device[9]",
             "pit": "/machine/unattached/device[10]",
             "ioapic": "/machine/i440fx/ioapic"}

_BOOT_NIBBLES = {"a": 1, "b": 1, "c": 2, "d": 3, "n": 4}


def boot_nibbles(order: str) -> tuple[int, int, int]:
    """QEMU's ``set_boot_dev``: the CMOS boot device codes of a ``-boot order=`` string
    (checked first as QEMU's ``validate_bootdevices`` checks it)."""
    for i, ch in enumerate(order):
        if not "a" <= ch <= "p":
            raise ConfigError(f"Invalid boot device '{ch}'")
        if ch in order[:i]:
            raise ConfigError(f"Boot device '{ch}' was given twice")
    if len(order) > 3:
        raise ConfigError("Too many boot devices for PC")
    bds = [0, 0, 0]
    for i, ch in enumerate(order):
        bds[i] = _BOOT_NIBBLES.get(ch, 0)
        if not bds[i]:
            raise ConfigError(f"Invalid boot device for PC: '{ch}'")
    return bds[0], bds[1], bds[2]


def set_boot_dev(rtc: MC146818Rtc, boot_order: str, fd_bootchk: bool = True) -> None:
    """QEMU's ``set_boot_dev``: the boot devices at CMOS 0x3d and 0x38."""
    bds = boot_nibbles(boot_order)
    rtc.set_cmos_data(0x3D, (bds[1] << 4) | bds[0])
    rtc.set_cmos_data(0x38, (bds[2] << 4) | (0 if fd_bootchk else 1))


def pc_cmos_init(rtc: MC146818Rtc, below_4g: int, above_4g: int, cpus: int,
                 boot_order: str, fd_bootchk: bool = True) -> None:
    """The NVRAM bytes QEMU 7.2's ``pc_cmos_init`` / ``pc_cmos_init_late`` store for a pc with
    no IDE disks and no floppy drives (the only kind emu builds)."""
    put = rtc.set_cmos_data
    val = min(below_4g // KiB, 640)  # base memory
    put(0x15, val)
    put(0x16, val >> 8)
    val = min((below_4g - MiB) // KiB if below_4g > MiB else 0, 65535)  # extended, KiB
    for index in (0x17, 0x30):
        put(index, val)
        put(index + 1, val >> 8)
    val = min((below_4g - 16 * MiB) // (64 * KiB) if below_4g > 16 * MiB else 0, 65535)
    put(0x34, val)  # 16 MiB to 4 GiB, in 64 KiB units
    put(0x35, val >> 8)
    val = above_4g // 65536  # above 4 GiB, in 64 KiB units
    put(0x5B, val)
    put(0x5C, val >> 8)
    put(0x5D, val >> 16)
    put(0x5F, cpus - 1)
    set_boot_dev(rtc, boot_order, fd_bootchk)
    put(0x14, 0x02 | 0x04)  # equipment: FPU, PS/2 mouse (no floppy drives)


class PcChipset:
    """The GSI fabric, 8259s, IOAPIC, local APIC, PIT, port 0x61 and RTC of one pc machine.

    The CPU's side: ``intr`` (the CPU's interrupt request, QEMU's ``CPU_INTERRUPT_HARD``),
    ``nmi`` (``CPU_INTERRUPT_NMI``: raised for an NMI, lowered by the CPU when it takes it),
    :meth:`get_interrupt` (the vector of the external interrupt the CPU takes) and ``apic``
    (IA32_APIC_BASE, CR8, INIT and SIPI). ``cpu_access`` tells whether a register access of
    the local APIC comes from the CPU (QEMU's ``cpu_get_current_apic``: qtest accesses do not;
    default: every access does)."""

    def __init__(self, clock: Clock, map_port: Callable[[int, Region], None],
                 map_mmio: Callable[[int, Region], None],
                 cpu_access: Callable[[], bool] | None = None, hpet: bool = True) -> None:
        self.clock = clock
        self._resets = 0
        self._restore_boot: tuple[str, bool] | None = None
        self.pic = PicPair()
        self.apic_bus = ApicBus()
        self.ioapic = IoApic(clock, deliver=self._ioapic_message, extint=self.pic.acknowledge)
        self.apic = Apic(clock, self.apic_bus, 0, pic_output=lambda: self.pic.output,
                         eoi_broadcast=self.ioapic.eoi_broadcast, current=cpu_access)
        #: the CPU's interrupt request and NMI request (the local APIC drives them)
        self.intr: IrqLine = self.apic.intr
        self.nmi: IrqLine = self.apic.nmi
        self.pic.intr.connect(self._pic_irq_request)
        self.ioapic_inputs = self.ioapic.inputs
        self.gsi = input_lines("gsi", GSI_NUM_PINS, self._gsi_handler)
        self.pit = Pit(clock)
        self.pcspk = PcSpeaker(self.pit)
        self.rtc = MC146818Rtc(clock)
        #: the HPET (None with hpet=off), wired as pc_basic_device_init wires it
        self.hpet: Hpet | None = None
        if hpet:
            self.hpet = Hpet(clock)
            for n in range(GSI_NUM_PINS):
                self.hpet.irqs[n].connect_to(self.gsi[n])
            self.pit.irq.connect_to(self.hpet.legacy[HPET_LEGACY_PIT_INT])
            self.rtc.irq.connect_to(self.hpet.legacy[HPET_LEGACY_RTC_INT])
            self.hpet.pit_enabled.connect_to(self.pit.irq_control)
            map_mmio(HPET_BASE, self.hpet.region)
        else:
            self.pit.irq.connect_to(self.gsi[PIT_ISA_IRQ])
            self.rtc.irq.connect_to(self.gsi[RTC_ISA_IRQ])
        self.pic.map(map_port)
        map_port(PIT_BASE, self.pit.region)
        map_port(PCSPK_PORT, self.pcspk.region)
        map_port(RTC_BASE, self.rtc.region)
        map_mmio(IOAPIC_BASE, self.ioapic.region)
        map_mmio(APIC_DEFAULT_ADDRESS, self.apic.region)
        self.qom_gpios: dict[str, Gpios] = {
            QOM_PATHS["pic-master"]: self.pic.master.gpios,
            QOM_PATHS["pic-slave"]: self.pic.slave.gpios,
            QOM_PATHS["rtc"]: self.rtc.gpios,
            QOM_PATHS["pit"]: self.pit.gpios,
            QOM_PATHS["ioapic"]: self.ioapic.gpios,
        }
        if self.hpet is not None:
            self.qom_gpios[QOM_PATHS["hpet"]] = self.hpet.gpios

    def init_cmos(self, config: MachineConfig, below_4g: int, above_4g: int) -> None:
        """Fill the NVRAM for ``config`` (:func:`pc_cmos_init`). ``-boot once=`` holds for the
        first boot only: QEMU's ``restore_boot_order`` puts the normal order back at the
        first reset after the machine's creation."""
        once = config.boot_once
        if once is not None:
            boot_nibbles(config.boot_order)  # checked now, used from that reset on
            self._restore_boot = (config.boot_order, config.fd_bootchk)
        pc_cmos_init(self.rtc, below_4g, above_4g, config.smp,
                     config.boot_order if once is None else once, config.fd_bootchk)

    def _ioapic_message(self, message: ApicMessage) -> None:
        """The IOAPIC's ``stl_le_phys(ioapic_as, addr, data)``: an MSI write."""
        self.apic_bus.send_msi(message.address, message.data)

    def _pic_irq_request(self, level: int) -> None:
        """``pic_irq_request`` (hw/i386/x86.c): the master 8259's output goes to the local
        APIC's LINT0 when the APIC accepts 8259 interrupts, else nowhere."""
        if tracing.ON:
            trace("x86_pic_interrupt", irqn=0, level=level)
        if self.apic.accept_pic_intr():
            self.apic.deliver_pic_intr(level)

    def get_interrupt(self) -> int:
        """The CPU takes an external interrupt (QEMU's ``x86_cpu_exec_interrupt`` for
        ``CPU_INTERRUPT_HARD``): the request is cleared, then ``cpu_get_pic_interrupt`` gives
        the vector: the local APIC's first, then the 8259s' acknowledge cycle if the APIC
        accepts 8259 interrupts. Both may raise ``intr`` again (another interrupt waits).
        -1: nothing to take (QEMU goes on with vector -1; the caller should not)."""
        self.intr.lower()
        intno = self.apic.get_interrupt()
        if intno >= 0:
            return intno
        if not self.apic.accept_pic_intr():
            return -1
        return self.pic.acknowledge()

    def firmware_apic_setup(self) -> None:
        """What firmware leaves in the BSP's local APIC before it starts a kernel (SeaBIOS
        1.16 ``smp_scan``, emu's pc firmware alike): software-enabled (SVR bit 8), LINT0 in
        ExtINT mode (the 8259s reach the CPU: virtual wire mode), LINT1 in NMI mode.
        ``--direct-boot`` calls it in place of the firmware."""
        apic = self.apic
        apic.spurious_vec |= APIC_SV_ENABLE
        apic.update_irq()
        apic.lvt[APIC_LVT_LINT0] = FIRMWARE_LINT0
        if apic.check_pic():
            apic.update_irq()
        apic.lvt[APIC_LVT_LINT1] = FIRMWARE_LINT1

    def inject_nmi(self) -> None:
        """QEMU's ``x86_nmi`` (``inject-nmi``, the NMI button): an NMI on the APIC's LINT1,
        which passes it on as its LVT entry says (unmasked NMI mode after firmware)."""
        self.apic.external_nmi()

    def _gsi_handler(self, n: int, level: int) -> None:
        if tracing.ON:
            trace("x86_gsi_interrupt", irqn=n, level=level)
        if n < ISA_NUM_IRQS:
            self.pic.irqs[n].set_level(level)
        self.ioapic_inputs[n].set_level(level)

    def reset(self) -> None:
        """Device reset: the CPU's local APIC (with the CPU, as the BSP), then QEMU's order of
        creation: IOAPIC, PICs, RTC, PIT; from the second reset on, the normal boot order
        after a ``-boot once=``."""
        self.apic.designate_bsp(True)
        self.apic.reset()
        self.ioapic.reset()
        self.pic.reset()
        self.rtc.reset()
        if self.hpet is not None:
            self.hpet.reset()
        self.pit.reset()
        if self._resets == 1 and self._restore_boot is not None:
            set_boot_dev(self.rtc, *self._restore_boot)
        self._resets += 1
