import errno
import os
import tempfile

import pytest

from pipeline.errors import FileSystemError
from pipeline.io import (
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    filesystem_error,
)


def test_atomic_write_replaces_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text().strip().startswith("{") and '"a": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_written_file_has_the_usual_permissions(tmp_path):
    target = atomic_write_text(tmp_path / "f.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_full_disk_is_one_clear_error_naming_the_target(tmp_path):
    target = tmp_path / "sub" / "last.pt"

    def no_space(tmp):
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    with pytest.raises(FileSystemError) as caught:
        atomic_write(target, no_space)
    message = str(caught.value)
    assert f"cannot write {target}: no space left" in message and ".tmp" not in message
    assert list(target.parent.iterdir()) == []  # the temporary is gone


@pytest.mark.parametrize(
    ("code", "reason"),
    [(errno.EROFS, "read-only"), (errno.EACCES, "permission denied"), (errno.EDQUOT, "quota")],
)
def test_read_only_and_forbidden_folders_are_clear_errors(tmp_path, monkeypatch, code, reason):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(FileSystemError, match=f"cannot write {tmp_path / 'out.txt'}: .*{reason}"):
        atomic_write_text(tmp_path / "out.txt", "x")


def test_other_os_errors_are_not_dressed_up():
    assert filesystem_error(FileNotFoundError(errno.ENOENT, "missing", "x")) is None
    assert filesystem_error(ValueError("x")) is None
    error = filesystem_error(OSError(errno.EROFS, "Read-only file system", "/ro/f"))
    assert str(error) == (
        "cannot write /ro/f: the file system is read-only — choose a writable location, then re-run"
    )


def test_a_writer_that_hides_the_full_disk_is_still_reported_as_one(small_disk):
    # torch.save on a full disk raises "RuntimeError: [enforce fail …] unexpected pos", not ENOSPC.
    disk = small_disk("64k")

    def cryptic(tmp):
        with open(tmp, "wb") as handle:
            try:
                while True:
                    handle.write(b"\0" * 4096)
                    handle.flush()
            except OSError:
                pass
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1 vs 2")

    with pytest.raises(FileSystemError, match="last.pt: no space left on the device"):
        atomic_write(disk.path / "last.pt", cryptic)
    assert list(disk.path.iterdir()) == []
    atomic_write_text(disk.path / "small.txt", "fits")  # the space came back with the temporary


def test_a_refused_permission_outside_a_write_does_not_claim_it_was_one():
    error = filesystem_error(PermissionError(errno.EACCES, "Permission denied", "/data/m.csv"))
    assert str(error).startswith("cannot access /data/m.csv: permission denied")
