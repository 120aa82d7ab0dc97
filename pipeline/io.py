"""Crash-safe file writes, and the one place that turns file-system failures into messages.

`atomic_write` writes to a temporary file beside the target, then renames: a reader sees either
the old file or the complete new one, never half of it. A write that fails because the disk is
full, read-only or not ours becomes a `FileSystemError` naming the target (never the temporary),
and `filesystem_error` gives the same one-line message for such an `OSError` raised anywhere else
(the CLI calls it), so no stage needs its own handling.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import FileSystemError

# Below this much free space after a failed write, the failure is taken to be the full disk:
# torch.save and HDF5 report a full disk with messages that do not say so ("unexpected pos").
FULL_DISK_BYTES = 1 << 20

_REASONS = {
    errno.ENOSPC: ("no space left on the device", "free some space (or choose another location)"),
    errno.EDQUOT: ("disk quota exceeded", "free some space (or choose another location)"),
    errno.EROFS: ("the file system is read-only", "choose a writable location"),
    errno.EACCES: ("permission denied", "fix the permissions or choose another location"),
    errno.EPERM: ("operation not permitted", "fix the permissions or choose another location"),
}


_WRITE_ONLY = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def filesystem_error(
    error: BaseException, path: str | Path | None = None, writing: bool = False
) -> FileSystemError | None:
    """The one-line error for a full, read-only or forbidden file system (naming `path`, else
    the file the error names), or None when `error` is something else. `writing`: the caller
    knows it was a write (a refused permission may otherwise have been a read)."""
    code = getattr(error, "errno", None)
    if not isinstance(error, OSError) or code not in _REASONS:
        return None
    where = path if path is not None else (error.filename or "a file")
    verb = "write" if writing or code in _WRITE_ONLY else "access"
    reason, advice = _REASONS[code]
    return FileSystemError(f"cannot {verb} {where}: {reason} — {advice}, then re-run")


def _disk_full(folder: Path) -> bool:
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < FULL_DISK_BYTES


def remove_stale_temporaries(folder: str | Path, name: str = "*") -> list[Path]:
    """Delete the temporaries `atomic_write` made in `folder` for targets called `name` (all by
    default) that a killed writer left behind: never renamed, so never valid, and a paper-size
    checkpoint's is hundreds of MB. Only safe under the lock that keeps other writers away."""
    folder = Path(folder)
    removed = sorted(folder.glob(f".{name}.*.tmp")) if folder.is_dir() else []
    for leftover in removed:
        leftover.unlink(missing_ok=True)
    return removed


class FileLock:
    """An exclusive, non-blocking lock on the file `path` (flock): the kernel drops it when the
    holder dies, so a killed run never leaves a stale lock behind. The holder deletes the file on
    release, so a lock taken on a file that is no longer the one at `path` does not count. The
    file names its holder (`holder`, plus the pid) for the message of the one refused."""

    def __init__(self, path: str | Path, holder: str):
        self.path = Path(path)
        self.holder = f"{holder} (pid {os.getpid()})"
        self._handle = None

    def acquire(self) -> bool:
        """True when this process now holds the lock; False when another one does."""
        try:
            handle = open(self.path, "a+")
        except OSError as error:
            raise filesystem_error(error, self.path, writing=True) or error from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if (
                not self.path.exists()
                or os.stat(self.path).st_ino != os.fstat(handle.fileno()).st_ino
            ):
                raise BlockingIOError
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(self.holder + "\n")
        handle.flush()
        self._handle = handle
        return True

    def held_by(self) -> str:
        """Who holds the lock, as its holder wrote it ("" when unknown)."""
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._handle is not None and not self._handle.closed:
            self.path.unlink(missing_ok=True)  # while still held: see the class docstring
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
        self._handle = None


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` and rename the result onto `path` only if it succeeded."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise filesystem_error(error, path, writing=True) or error from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        # mkstemp creates 0600; give the file the mode a plain open() would (0666 minus umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except Exception as error:
        full = _disk_full(path.parent)  # measured before the temporary frees its space
        tmp.unlink(missing_ok=True)
        translated = filesystem_error(error, path, writing=True)
        if translated is None and full:
            translated = filesystem_error(OSError(errno.ENOSPC, "no space"), path, writing=True)
        if translated is not None:
            raise translated from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_tensors(path: str | Path | io.BytesIO) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU (a path, or the file's bytes already read
    as a BytesIO); ValueError saying why a file cannot be used, in our words: torch's own refusal
    advises re-running with weights_only=False, which for a file holding pickled code is exactly
    what must not be done."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        blocked = re.search(r"GLOBAL (\S+)", str(error))
        if blocked:  # a class or function the file wants imported: code, not weights
            raise ValueError(
                f"it holds Python objects other than tensors and plain values "
                f"({blocked.group(1)}), which could run code when loaded, so it was refused"
            ) from None
        raise ValueError("it is damaged or not a PyTorch file") from None
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same user error
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        detail = f" ({first_line})" if first_line and "weights_only" not in first_line else ""
        raise ValueError(f"it is damaged or not a PyTorch file{detail}") from None


def read_npz(path: str | Path) -> dict[str, Any]:
    """All arrays of a `.npz` file (no pickles). ValueError saying it is damaged for a file that
    is truncated, scrambled or not a NumPy archive (zipfile's BadZipFile is none of OSError or
    ValueError, and used to reach the user as a traceback)."""
    import zipfile
    import zlib

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as error:
        if filesystem_error(error) is not None:
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"it is damaged or not a NumPy .npz file ({reason})") from None


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def atomic_write_npz(path: str | Path, arrays: dict[str, Any]) -> Path:
    """Uncompressed `.npz` of `arrays` under exactly `path` (numpy would append ".npz" to a name)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    return atomic_write(path, write)
