"""The file system side of transfers: what to offer, hashing, and writing received files
safely.  Synchronous; trio code runs the slow parts in worker threads.

Received files are hostile (DESIGN §2): every directory under the download directory is
opened with O_NOFOLLOW relative to its parent's descriptor, so a symlink planted anywhere
on the way cannot redirect a write; data goes to a hidden partial file next to the target;
a verified file is linked into place under a name nobody has (never overwriting), then the
partial name is removed.  This module is the only home of `blake3`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import blake3

from p2pim.transfer.names import numbered

HASH_BLOCK = 1 << 20
WRITEBACK_BYTES = 1 << 20
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
MAX_NUMBERED = 10_000  # "name (n).ext" candidates tried before giving up


class HashMismatch(Exception):
    """The received bytes do not hash to what the offer promised."""


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file we offer: where it is, its path inside the offer, what it was when offered."""

    source: str
    path: str  # "/"-separated, relative to the offer
    size: int
    mtime_ns: int


def collect(paths: list[str]) -> list[LocalFile]:
    """The regular files of `paths` (files, or folders walked recursively).  A folder
    keeps its own name as the first component.  Symlinks and special files inside folders
    are skipped: following them could send what the user never chose."""
    found: list[LocalFile] = []
    for given in paths:
        path = Path(os.path.abspath(given))  # ".." resolved: a folder keeps its name
        info = path.stat()  # the user's own choice may be a link: follow it
        if stat.S_ISREG(info.st_mode):
            found.append(LocalFile(str(path), path.name, info.st_size, info.st_mtime_ns))
        elif stat.S_ISDIR(info.st_mode):
            found.extend(_walk(path))
        else:
            raise ValueError(f"{given} is neither a file nor a folder")
    return found


def _walk(folder: Path) -> Iterator[LocalFile]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            full = Path(root, name)
            info = full.lstat()
            if stat.S_ISREG(info.st_mode):
                relative = full.relative_to(folder.parent).as_posix()
                yield LocalFile(str(full), relative, info.st_size, info.st_mtime_ns)


class Hasher:
    """Incremental BLAKE3 (fast enough not to cap a transfer: ~3 GB/s on one core)."""

    def __init__(self) -> None:
        self._hash = blake3.blake3()

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()


def hash_file(source: str) -> bytes:
    """BLAKE3 of a whole file, using every core for large files."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    with open(source, "rb") as file:
        while block := file.read(HASH_BLOCK):
            hasher.update(block)
    return hasher.digest()


def free_space(directory: str) -> int:
    info = os.statvfs(directory)
    return info.f_bavail * info.f_frsize


def exists(directory: str, name: str) -> bool:
    return os.path.lexists(os.path.join(directory, name))


def free_name(directory: str, name: str) -> str:
    """`name`, or its first numbered variant that does not exist in `directory`."""
    for n in range(MAX_NUMBERED):
        candidate = numbered(name, n) if n else name
        if not exists(directory, candidate):
            return candidate
    raise FileExistsError(f"no free name like {name!r} in {directory}")


class IncomingFile:
    """One received file: a partial file under the download directory, then its place.

    `open` and `finish` touch the disk at length (rehashing, fsync): run them in a
    thread.  `write` is quick (the page cache) and raises OSError on a full disk."""

    def __init__(self, directory: str, path: str, partial_name: str, size: int, digest: bytes):
        self.directory = directory
        self.components = path.split("/")
        self.partial_name = partial_name
        self.size = size
        self.digest = digest
        self.done = 0
        self._written_back = 0
        self._dir_fd: int | None = None
        self._fd: int | None = None
        self._hasher = Hasher()

    def open(self, durable: int) -> int:
        """Open (creating) the partial file, keep its first `durable` bytes (what was
        synced before; anything after may be garbage) and hash them.  Returns how many
        bytes the sender must still skip."""
        self._dir_fd = _open_dirs(self.directory, self.components[:-1])
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(self.partial_name, flags, 0o600, dir_fd=self._dir_fd)
        if not stat.S_ISREG(os.fstat(self._fd).st_mode):
            raise OSError(errno.EINVAL, f"{self.partial_name} is not a regular file")
        keep = min(durable, os.fstat(self._fd).st_size, self.size)
        os.ftruncate(self._fd, keep)
        os.lseek(self._fd, 0, os.SEEK_SET)
        remaining = keep
        while remaining:
            block = os.read(self._fd, min(HASH_BLOCK, remaining))
            if not block:
                break
            self._hasher.update(block)
            remaining -= len(block)
        self.done = self._written_back = keep - remaining
        os.lseek(self._fd, self.done, os.SEEK_SET)
        return self.done

    @property
    def is_open(self) -> bool:
        """Opened, and neither finished nor discarded."""
        return self._fd is not None

    def write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._hasher.update(data)
        self.done += len(data)
        if self.done - self._written_back >= WRITEBACK_BYTES:
            # Start writing what we have to disk now, in the background, and drop it from
            # the cache once written: a checkpoint's fsync (and every other fsync on this
            # disk, the history's) then never waits behind a large backlog.
            os.posix_fadvise(self._fd, self._written_back, 0, os.POSIX_FADV_DONTNEED)
            self._written_back = self.done

    def sync(self) -> None:
        assert self._fd is not None
        os.fdatasync(self._fd)

    def finish(self) -> str:
        """Verify, sync and move into place; returns the path it was saved under
        (relative to the download directory).  Raises HashMismatch."""
        assert self._fd is not None and self._dir_fd is not None
        if self.done != self.size or self._hasher.digest() != self.digest:
            raise HashMismatch(f"{'/'.join(self.components)} does not match the offer's hash")
        os.fsync(self._fd)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(self._fd, 0o666 & ~umask)
        name = self._link_into_place(self.components[-1])
        os.unlink(self.partial_name, dir_fd=self._dir_fd)
        os.fsync(self._dir_fd)
        self.close()
        return "/".join([*self.components[:-1], name])

    def _link_into_place(self, name: str) -> str:
        """A hard link under a free name: atomic, and never replaces anything."""
        assert self._dir_fd is not None
        for n in range(MAX_NUMBERED):
            candidate = numbered(name, n) if n else name
            try:
                os.link(
                    self.partial_name,
                    candidate,
                    src_dir_fd=self._dir_fd,
                    dst_dir_fd=self._dir_fd,
                    follow_symlinks=False,
                )
            except FileExistsError:
                continue
            return candidate
        raise FileExistsError(f"no free name like {name!r}")

    def discard(self) -> None:
        """Remove the partial file (a failed or cancelled transfer keeps nothing)."""
        with contextlib.suppress(OSError):
            if self._dir_fd is None:
                self._dir_fd = _open_dirs(self.directory, self.components[:-1], create=False)
            os.unlink(self.partial_name, dir_fd=self._dir_fd)
        self.close()

    def close(self) -> None:
        for fd in (self._fd, self._dir_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._dir_fd = None


def _open_dirs(directory: str, components: list[str], *, create: bool = True) -> int:
    """A descriptor of directory/components..., each level opened without following links."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in components:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o755, dir_fd=fd)
            child = os.open(name, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


class OutgoingFile:
    """One file we send, checked against what we offered."""

    def __init__(self, source: str, size: int, mtime_ns: int) -> None:
        self.size = size
        try:
            self._fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SourceChanged("it no longer exists") from None
        except OSError as exc:
            raise SourceChanged(f"it cannot be read: {exc.strerror}") from None
        info = os.fstat(self._fd)
        if info.st_size != size or info.st_mtime_ns != mtime_ns:
            os.close(self._fd)
            raise SourceChanged("it changed since it was offered")

    def read(self, offset: int, length: int) -> bytes:
        try:
            data = os.pread(self._fd, length, offset)
        except OSError as exc:
            raise SourceChanged(f"it cannot be read: {exc.strerror}") from None
        if len(data) != length:
            raise SourceChanged("it shrank while being sent")
        return data

    def close(self) -> None:
        os.close(self._fd)


class SourceChanged(Exception):
    """A file we offered cannot be sent as offered."""
