"""Where a dump is written: atomically replaced where that is safe, in place (as QEMU's
open(O_WRONLY|O_CREAT|O_TRUNC)) everywhere else: FIFOs, devices, symbolic links, hard links,
files of other users, read-only directories."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, boot_args, emu_cmd, run_emu
from elftools.elf.elffile import ELFFile

from emu.dump.elf import EM_X86_64, DumpError, MemoryRange, write_elf_core

DATA = memoryview(bytes(range(256)) * 64 + bytes(1 << 20) + b"tail" * 1024)
RANGES = [MemoryRange(0x100000, DATA)]
NOBODY = 65534


def _core(path: str) -> int:
    return write_elf_core(path, EM_X86_64, b"", RANGES)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The core written to a new regular file."""
    path = tmp_path_factory.mktemp("ref") / "ref.core"
    _core(str(path))
    return path.read_bytes()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user (nobody) can reach, for the permission cases."""
    d = Path(tempfile.mkdtemp(prefix="emu-dump-target-"))
    d.chmod(0o777)
    yield d
    shutil.rmtree(d)


def test_a_new_file_is_private_and_complete(tmp_path: Path, reference: bytes) -> None:
    path = tmp_path / "new.core"
    size = _core(str(path))
    assert path.read_bytes() == reference and size == len(reference)
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    assert os.listdir(tmp_path) == ["new.core"]


def test_a_regular_file_is_replaced_atomically_keeping_its_mode(tmp_path: Path,
                                                               reference: bytes) -> None:
    path = tmp_path / "old.core"
    path.write_bytes(b"previous")
    path.chmod(0o640)
    before = path.stat().st_ino
    _core(str(path))
    assert path.read_bytes() == reference
    assert path.stat().st_ino != before  # a new file renamed into place
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["old.core"]


def test_a_fifo_is_streamed_to_its_reader(tmp_path: Path, reference: bytes) -> None:
    fifo = tmp_path / "core.fifo"
    os.mkfifo(fifo)
    got = bytearray()
    reader_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(reader_fd, True)
    keep_open = os.open(fifo, os.O_WRONLY)  # so that the reader waits instead of seeing EOF

    def read() -> None:
        while chunk := os.read(reader_fd, 65536):
            got.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    _core(str(fifo))
    os.close(keep_open)
    reader.join(30)
    os.close(reader_fd)
    assert bytes(got) == reference
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert os.listdir(tmp_path) == ["core.fifo"]


def test_a_fifo_without_reader_is_an_error(tmp_path: Path) -> None:
    fifo = tmp_path / "lonely.fifo"
    os.mkfifo(fifo)
    with pytest.raises(DumpError, match=r"^Could not open '.*lonely.fifo': No such device "
                                        r"or address$"):
        _core(str(fifo))
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_symbolic_link_is_followed(tmp_path: Path, reference: bytes) -> None:
    target = tmp_path / "real.core"
    target.write_bytes(b"old")
    link = tmp_path / "link.core"
    link.symlink_to(target.name)
    _core(str(link))
    assert link.is_symlink() and os.readlink(link) == "real.core"
    assert target.read_bytes() == reference
    dangling = tmp_path / "dangling.core"
    dangling.symlink_to("created.core")
    _core(str(dangling))
    assert dangling.is_symlink() and (tmp_path / "created.core").read_bytes() == reference


def test_hard_links_stay_linked(tmp_path: Path, reference: bytes) -> None:
    first = tmp_path / "a.core"
    first.write_bytes(b"old")
    second = tmp_path / "b.core"
    os.link(first, second)
    _core(str(first))
    assert first.read_bytes() == second.read_bytes() == reference
    assert first.stat().st_nlink == 2 and first.stat().st_ino == second.stat().st_ino


def test_devices_are_written_not_replaced(tmp_path: Path) -> None:
    null, full = tmp_path / "null", tmp_path / "full"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # what /dev/full is
    _core(str(null))
    with pytest.raises(DumpError, match=r"^could not write '.*full': No space left on device$"):
        _core(str(full))
    for dev in (null, full):
        assert stat.S_ISCHR(dev.lstat().st_mode) and dev.lstat().st_size == 0
    assert sorted(os.listdir(tmp_path)) == ["full", "null"]


def test_a_directory_path_is_refused(tmp_path: Path) -> None:
    path = f"{tmp_path}/x.core/"
    with pytest.raises(DumpError, match=r"^Could not open '.*/x.core/': Is a directory$"):
        _core(path)
    assert os.listdir(tmp_path) == []


def test_a_name_of_255_bytes_works(tmp_path: Path, reference: bytes) -> None:
    path = tmp_path / ("c" * 250 + ".core")
    _core(str(path))
    assert path.read_bytes() == reference and os.listdir(tmp_path) == [path.name]


def _as_nobody(path: Path) -> tuple[int, str]:
    """Dump to ``path`` from a child process running as nobody (root bypasses permission
    checks): its exit status (0 written, 1 DumpError) and the error's text."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code, text = 2, "?"
        try:
            os.close(r)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            write_elf_core(str(path), EM_X86_64, b"", [MemoryRange(0, memoryview(b"x" * 8192))])
            code, text = 0, ""
        except DumpError as e:
            code, text = 1, str(e)
        except BaseException as e:
            text = repr(e)
        finally:
            os.write(w, text.encode())
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        text = f.read().decode()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), text


def test_another_users_read_only_file_is_refused(shared_dir: Path) -> None:
    path = shared_dir / "roots.core"
    path.write_bytes(b"root's file")
    path.chmod(0o644)
    assert _as_nobody(path) == (1, f"Could not open '{path}': Permission denied")
    assert path.read_bytes() == b"root's file" and path.stat().st_uid == 0
    assert os.listdir(shared_dir) == ["roots.core"]


def test_another_users_writable_file_is_written_in_place(shared_dir: Path) -> None:
    path = shared_dir / "shared.core"
    path.write_bytes(b"old")
    path.chmod(0o666)
    assert _as_nobody(path) == (0, "")
    st = path.stat()
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o666  # the same file
    assert path.read_bytes()[:4] == b"\x7fELF"


def test_a_writable_file_in_a_read_only_directory_is_written(shared_dir: Path) -> None:
    path = shared_dir / "mine.core"
    path.write_bytes(b"old")
    os.chown(path, NOBODY, NOBODY)
    shared_dir.chmod(0o755)
    assert _as_nobody(path) == (0, "")
    assert path.read_bytes()[:4] == b"\x7fELF"
    assert os.listdir(shared_dir) == ["mine.core"]
    new = shared_dir / "new.core"
    assert _as_nobody(new) == (1, f"Could not open '{new}': Permission denied")


def test_dump_on_exit_to_a_device_keeps_the_device(tmp_path: Path) -> None:
    full = tmp_path / "full"
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    result = run_emu(boot_args("virt", "hello", "--dump-on-exit", str(full)))
    assert result.returncode == 1
    assert result.stderr.decode() == (f"emu: dump failed: could not write '{full}': "
                                      "No space left on device\n")
    assert stat.S_ISCHR(full.lstat().st_mode)
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    result = run_emu(boot_args("virt", "hello", "--dump-on-exit", str(null)))
    assert result.returncode == 0
    assert result.stderr.decode() == (f"emu: dump saved to {null} (128.0 MiB, notes: "
                                      "PRSTATUS, FPREGSET)\n")
    assert stat.S_ISCHR(null.lstat().st_mode)
    assert sorted(os.listdir(tmp_path)) == ["full", "null"]


def test_sigterm_during_dump_on_exit_finishes_the_dump(tmp_path: Path,
                                                       request: pytest.FixtureRequest) -> None:
    """The dump is written under a temporary name, then renamed: a signal arriving while it
    is written lets it finish (then ends emu with 128 + the signal), leaving no temporary."""
    core = tmp_path / "exit.core"
    size = "16G"  # sparse, but about a second of writing: long enough to be caught
    for _attempt in range(3):
        args = boot_args("virt", "hello", "--dump-on-exit", str(core))
        args[args.index("128M")] = size
        proc = subprocess.Popen([*emu_cmd(), *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, cwd=ROOT,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        request.addfinalizer(proc.kill)
        while proc.poll() is None and not any(n.endswith(".tmp") for n in os.listdir(tmp_path)):
            time.sleep(0.002)
        if proc.poll() is not None:  # finished before it could be caught: again
            assert proc.returncode == 0, proc.stderr.read()
            core.unlink()
            continue
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM
        assert b"Traceback" not in proc.stderr.read()
        assert os.listdir(tmp_path) == ["exit.core"]
        with open(core, "rb") as f:
            loads = [s for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD"]
            assert sum(s["p_memsz"] for s in loads) >= int(size[:-1]) << 30
            assert core.stat().st_size == loads[-1]["p_offset"] + loads[-1]["p_filesz"]
        return
    raise AssertionError("every dump finished before a signal could be sent")
