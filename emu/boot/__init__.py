"""Boot protocols: ELF loading, PVH on x86_64, bare ELF entry on aarch64."""
