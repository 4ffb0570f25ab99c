"""Where a dump goes: the file at a path, replaced atomically when that is safe, written in
place (as QEMU's ``qemu_open(path, O_WRONLY | O_CREAT | O_TRUNC)`` does) otherwise.

Atomic replacement (write a temporary file beside the target, rename it over the target once
complete) means a failed or interrupted dump never leaves a half-written core under the
target's name. It is only safe when renaming changes nothing but the contents: the target is
new or a regular file, singly linked, owned by the user and writable by them, and the
directory is writable. Everything else is written in place, as QEMU does:

- a FIFO or a device (``/dev/null``, a terminal, a pipe someone reads) is streamed: written
  front to back, never seeked or truncated; a FIFO is opened without blocking (no reader is
  an error, where QEMU would block its monitor until one comes);
- a symbolic link is followed: its target is written, the link stays;
- a file with several hard links is written through, so every name sees the dump;
- permissions are those of ``open(2)``: a file the user may not write is refused, a
  writable file in a read-only directory is written;
- a path ending in ``/`` names a directory and is refused (``Is a directory``).

New files are created readable and writable by their owner only (0600 before the umask;
QEMU creates them 0400); a replaced file keeps its permission bits.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat

#: bytes of zeros written per call when streaming a hole to a FIFO or device
_ZEROS = bytes(1 << 20)


class DumpError(Exception):
    """A dump could not be written; the message is one line for people."""


def open_error(path: str, err: OSError | str) -> DumpError:
    """QEMU's error_setg_file_open() text."""
    reason = err if isinstance(err, str) else (err.strerror or str(err))
    return DumpError(f"Could not open '{path}': {reason}")


class DumpTarget:
    """An open dump destination. Use :func:`open_target`; then :meth:`start`, write with
    :meth:`write` / :meth:`skip`, end with :meth:`finish` or :meth:`abort`."""

    def __init__(self, path: str, fd: int, tmp: str | None, mode: int | None,
                 created: bool) -> None:
        self.path = path
        self.fd = fd
        self._tmp = tmp
        self._mode = mode
        self._created = created
        st = os.fstat(fd)
        self.seekable = stat.S_ISREG(st.st_mode)
        self._ino = (st.st_dev, st.st_ino)
        self.closed = False

    @property
    def atomic(self) -> bool:
        """Whether the dump is written beside the target and renamed into place."""
        return self._tmp is not None

    def start(self) -> None:
        """Called when writing begins: empty a regular file written in place (as O_TRUNC;
        done this late so that a dump refused before it starts leaves the file alone)."""
        try:
            if self.seekable and not self.atomic:
                os.ftruncate(self.fd, 0)
                os.lseek(self.fd, 0, os.SEEK_SET)
        except OSError as e:
            raise self._write_error(e) from None

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as e:
            raise self._write_error(e) from None

    def skip(self, n: int) -> None:
        """Advance over ``n`` zero bytes: a hole in a regular file, zeros on a stream."""
        if self.seekable:
            try:
                os.lseek(self.fd, n, os.SEEK_CUR)
            except OSError as e:
                raise self._write_error(e) from None
            return
        while n:
            step = min(n, len(_ZEROS))
            self.write(memoryview(_ZEROS)[:step])
            n -= step

    def finish(self, size: int) -> None:
        """Complete the dump of ``size`` bytes: set the size (holes at the end), flush it
        to the disk and, in atomic mode, rename it into place."""
        try:
            if self.seekable:
                os.ftruncate(self.fd, size)
                os.fsync(self.fd)
            if self._tmp is not None and self._mode is not None:
                os.fchmod(self.fd, self._mode)
            os.close(self.fd)
            self.closed = True
            if self._tmp is not None:
                os.replace(self._tmp, self.path)
                self._tmp = None
        except OSError as e:
            self.abort()
            raise self._write_error(e) from None

    def abort(self) -> None:
        """Give up: remove what this dump created (its temporary file, or the new file it
        made in place); a file that existed is left as it is."""
        if not self.closed:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.closed = True
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._tmp = None
        elif self._created:
            with contextlib.suppress(OSError):
                st = os.lstat(self.path)
                if (st.st_dev, st.st_ino) == self._ino:
                    os.unlink(self.path)
            self._created = False

    def _write_error(self, e: OSError) -> DumpError:
        return DumpError(f"could not write '{self.path}': {e.strerror or e}")


def open_target(path: str) -> DumpTarget:
    """Open ``path`` for a dump (see the module docstring). Raises DumpError with QEMU's
    ``Could not open 'PATH': REASON``."""
    if "\0" in path:
        raise open_error(path, "Invalid argument")
    try:
        st: os.stat_result | None = os.lstat(path)
    except OSError:
        st = None
    directory = os.path.dirname(path) or "."
    fresh = st is None and path != "" and os.path.isdir(directory)
    if not path.endswith("/") and os.access(directory, os.W_OK | os.X_OK) and (
            fresh or (st is not None and _replaceable(path, st))):
        return _open_atomic(path, directory, st)
    return _open_in_place(path)


def adopt_fd(name: str, fd: int) -> DumpTarget:
    """A dump into a descriptor the client passed (QMP ``getfd``, protocol ``fd:NAME``), as
    QEMU's dump.c writes to it: sequentially from its current offset, never truncated or
    renamed; the target owns the descriptor and closes it at the end."""
    target = DumpTarget(f"fd:{name}", fd, None, None, created=False)
    target.seekable = False  # written as a stream: holes become zeros, no truncation
    return target


def _replaceable(path: str, st: os.stat_result) -> bool:
    return (stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_uid == os.geteuid()
            and os.access(path, os.W_OK))


def _open_atomic(path: str, directory: str, st: os.stat_result | None) -> DumpTarget:
    # a short temporary name: the target's own name may already use all of NAME_MAX
    tmp = os.path.join(directory, f".emu-dump-{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise open_error(path, e) from None
    mode = None if st is None else stat.S_IMODE(st.st_mode)
    return DumpTarget(path, fd, tmp, mode, created=False)


def _open_in_place(path: str) -> DumpTarget:
    flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO without reader
    created = False
    try:
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            # through a dangling symbolic link, its target is created (no O_EXCL then)
            dangling = os.path.islink(path)
            fd = os.open(path, flags | os.O_CREAT | (0 if dangling else os.O_EXCL), 0o600)
            created = not dangling
    except OSError as e:
        raise open_error(path, e) from None
    try:
        os.set_blocking(fd, True)
    except OSError as e:
        os.close(fd)
        raise open_error(path, e) from None
    return DumpTarget(path, fd, None, None, created)
