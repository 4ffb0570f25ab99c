"""gzip-compressed kernels, unpacked as QEMU 7.2 unpacks them (hw/core/loader.c gunzip and
load_image_gzipped_buffer): on virt an arm64 ``Image.gz`` (and Debian's arm64 ``vmlinuz``,
which is one) boots as the Image inside it, both when firmware reads the kernel through
fw_cfg (hw/nvram/fw_cfg.c load_image_to_fw_cfg with try_decompress) and when QEMU loads it
itself (hw/arm/boot.c load_aarch64_image).

QEMU's gunzip skips the gzip header by hand (FEXTRA, FNAME, FCOMMENT, FHCRC), inflates the
raw deflate stream after it into a buffer of at most 256 MiB and keeps what came out; it
checks neither the CRC nor the length in the trailer, and reads only the first member.
"""

from __future__ import annotations

import sys
import zlib

from emu.memory import Buffer

#: include/hw/loader.h LOAD_IMAGE_MAX_GUNZIP_BYTES
MAX_GUNZIP_BYTES = 256 << 20
DEFLATED = 8
HEAD_CRC, EXTRA_FIELD, ORIG_NAME, COMMENT, RESERVED = 0x02, 0x04, 0x08, 0x10, 0xE0


def is_gzip(data: Buffer) -> bool:
    return len(data) >= 2 and data[0] == 0x1F and data[1] == 0x8B


def gunzip(data: Buffer, max_size: int = MAX_GUNZIP_BYTES) -> bytes | None:
    """The inflated contents, or None where QEMU's gunzip fails."""
    if len(data) < 4:
        return None
    flags = data[3]
    if data[2] != DEFLATED or flags & RESERVED:
        return None
    i = 10
    if flags & EXTRA_FIELD:
        if len(data) < 12:
            return None
        i = 12 + data[10] + (data[11] << 8)
    for flag in (ORIG_NAME, COMMENT):
        if flags & flag:
            while i < len(data):
                i += 1
                if data[i - 1] == 0:
                    break
    if flags & HEAD_CRC:
        i += 2
    if i >= len(data):
        return None
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:  # inflate(Z_FINISH) into max_size bytes: a longer output is cut there
        return inflater.decompress(bytes(data[i:]), max_size)
    except zlib.error:
        return None


def maybe_gunzip(path: str, data: Buffer) -> Buffer:
    """load_image_gzipped_buffer's use: a gzip file's contents, or the file as it is (with
    QEMU's message when the gzip data is bad)."""
    if not is_gzip(data):
        return data
    out = gunzip(data)
    if out is None:
        print(f"{path}: unable to decompress gzipped kernel file", file=sys.stderr, flush=True)
        return data
    return out
