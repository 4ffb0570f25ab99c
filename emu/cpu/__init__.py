"""Per-architecture CPU support: model names, reset state, stop reasons, register access.

Everything that knows Unicorn's register constants lives here, so the machine, the boot
code and (later) dumps and debuggers work through :class:`Cpu` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from emu.errors import ConfigError

if TYPE_CHECKING:
    from unicorn import Uc


@dataclass(frozen=True)
class Stop:
    """Why the CPU stopped on its own (not by timeout or by request)."""

    kind: str  # "halt" (HLT/WFI: wait for an interrupt), "fatal"
    reason: str = ""


class Cpu:
    """One emulated CPU: the Unicorn instance and what emu needs to know about it."""

    arch: str = ""
    #: QEMU -cpu name -> Unicorn model constant
    models: dict[str, int] = {}
    default_model: str = ""

    def __init__(self, model: str | None) -> None:
        self.model = model or self.default_model
        if self.model == "help":
            raise ConfigError("-cpu help: available models: " + ", ".join(sorted(self.models)))
        if self.model not in self.models:
            raise ConfigError(f"-cpu {self.model}: unable to find CPU model '{self.model}'")
        self.uc: Uc = self._create(self.models[self.model])
        #: set by exception hooks when the guest did something emu cannot continue from
        self.fatal: str | None = None

    def _create(self, model: int) -> Uc:
        raise NotImplementedError

    @property
    def pc(self) -> int:
        """The program counter."""
        raise NotImplementedError

    @pc.setter
    def pc(self, value: int) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Put the CPU into its architectural reset state."""
        raise NotImplementedError

    def is_halted(self) -> bool:
        """After a run ended by itself: was it a halt/wait-for-interrupt instruction?"""
        raise NotImplementedError

    def translate(self, vaddr: int) -> int | None:
        """Virtual to physical with the CPU's current translation regime (None: unmapped)."""
        raise NotImplementedError

    def read_virt(self, vaddr: int, size: int) -> bytes | None:
        """Read guest-virtual memory byte range within one page, or None."""
        paddr = self.translate(vaddr)
        if paddr is None:
            return None
        try:
            return bytes(self.uc.mem_read(paddr, size))
        except Exception:
            return None


def create_cpu(arch: str, model: str | None) -> Cpu:
    """The CPU for ``arch`` ("x86_64" or "aarch64") with QEMU model name ``model``."""
    if arch == "x86_64":
        from emu.cpu.x86 import X86Cpu

        return X86Cpu(model)
    from emu.cpu.arm64 import Arm64Cpu

    return Arm64Cpu(model)
