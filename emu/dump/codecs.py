"""The page compressions of the kdump-compressed format (makedumpfile diskdump_mod.h
``DUMP_DH_COMPRESSED_*``; QEMU dump/dump.c write_dump_pages()).

Each page is compressed on its own, as QEMU and makedumpfile do: a zlib stream (RFC 1950)
at the fastest level, LZO's ``lzo1x_1_compress`` (no header), Snappy's raw block format
(``snappy_compress``), zstd's ``ZSTD_compressCCtx`` at level 1 (a frame with its content
size; makedumpfile, not QEMU, writes this one). The others come from PyPI (python-lzo,
python-snappy, zstandard) and release the GIL while they compress, so threads compress pages
in parallel (emu.dump.kdump).

The zlib streams come from ISA-L's deflate (python-isal's ``isal_zlib``, level 1), not from
zlib's ``compress2`` at ``Z_BEST_SPEED`` as QEMU's: Python's zlib sets up and frees its
deflate state for every page with the GIL held, so its threads hardly run in parallel, where
ISA-L's compressor does the whole page without the GIL, and faster. The bytes differ from
QEMU's; readers decompress both with zlib's ``uncompress`` alike.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from isal import isal_zlib  # type: ignore[import-untyped]

DUMP_DH_COMPRESSED_ZLIB = 0x1
DUMP_DH_COMPRESSED_LZO = 0x2
DUMP_DH_COMPRESSED_SNAPPY = 0x4
DUMP_DH_COMPRESSED_ZSTD = 0x20


@dataclass(frozen=True)
class Codec:
    """One compression: its page-descriptor and header flag, the module it needs, and its
    functions (``compress(page) -> bytes``, ``decompress(data, page_size) -> bytes``)."""

    name: str
    flag: int
    module: str | None
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes, int], bytes]

    def available(self) -> bool:
        """Whether its Python binding can be imported."""
        if self.module is None:
            return True
        try:
            importlib.import_module(self.module)
        except ImportError:
            return False
        return True


def _lzo_compress(page: bytes) -> bytes:
    import lzo  # type: ignore[import-not-found]

    # (level 1: lzo1x_1_compress; python-lzo takes bytes only, not a view of memory)
    return lzo.compress(bytes(page), 1, False)


def _lzo_decompress(data: bytes, page_size: int) -> bytes:
    import lzo  # type: ignore[import-not-found]

    return lzo.decompress(data, False, page_size)


def _snappy_compress(page: bytes) -> bytes:
    import snappy  # type: ignore[import-not-found]

    return snappy.compress(page)  # the raw block format, as snappy_compress()


def _snappy_decompress(data: bytes, page_size: int) -> bytes:
    import snappy  # type: ignore[import-not-found]

    return snappy.decompress(data)


_zstd = threading.local()  # a ZstdCompressor is not to be shared between threads


def _zstd_compress(page: bytes) -> bytes:
    compressor = getattr(_zstd, "c", None)
    if compressor is None:
        import zstandard  # type: ignore[import-not-found]

        compressor = _zstd.c = zstandard.ZstdCompressor(level=1, write_content_size=True)
    return compressor.compress(page)


def _zstd_decompress(data: bytes, page_size: int) -> bytes:
    import zstandard  # type: ignore[import-not-found]

    return zstandard.ZstdDecompressor().decompress(data, max_output_size=page_size)


def _zlib_compress(page: bytes) -> bytes:
    return isal_zlib.compress(page, 1)


CODECS: dict[str, Codec] = {
    "zlib": Codec("zlib", DUMP_DH_COMPRESSED_ZLIB, None, _zlib_compress,
                  lambda data, _size: zlib.decompress(data)),
    "lzo": Codec("lzo", DUMP_DH_COMPRESSED_LZO, "lzo", _lzo_compress, _lzo_decompress),
    "snappy": Codec("snappy", DUMP_DH_COMPRESSED_SNAPPY, "snappy", _snappy_compress,
                    _snappy_decompress),
    "zstd": Codec("zstd", DUMP_DH_COMPRESSED_ZSTD, "zstandard", _zstd_compress,
                  _zstd_decompress),
}


#: glibc's mallopt() parameters, and the values emu sets for kdump dumps
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
TRIM_THRESHOLD, MMAP_THRESHOLD = 32 << 20, 4 << 20
_tuned = False


def keep_freed_memory() -> None:
    """Have glibc keep up to 32 MiB of freed heap memory instead of giving it back to the
    system at once (mallopt M_TRIM_THRESHOLD; once per process, glibc only).

    Compressing a page allocates and frees a compressor's state, about 256 KiB for zlib
    (deflateInit: window, hash chains, pending buffer) and 64 KiB for LZO. With glibc's
    default threshold that memory goes back to the kernel at each free and comes back as
    fresh pages at the next allocation: the page faults cost about 40 µs a page, five times
    the compression, and serialise the threads on the process's memory map. Keeping it makes
    zlib cost about 8 µs a page and lets the threads run in parallel. Setting it stops glibc
    from adjusting its mmap threshold as it goes, so that is set too, to 4 MiB (glibc's own
    adjustment would have raised it to the size of the 1 MiB chunks the dumps copy, which
    would otherwise be mapped and unmapped one by one)."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def codec_for_flags(flags: int) -> Codec | None:
    """The codec a page descriptor's flags name (None: stored raw)."""
    for codec in CODECS.values():
        if flags & codec.flag:
            return codec
    return None
