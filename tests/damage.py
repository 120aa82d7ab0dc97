"""Ways to damage files the pipeline reads, for the tests of its messages about them."""

from __future__ import annotations

from pathlib import Path

import h5py

from pipeline.cache import escape_key


def damage_chunk(path, key: str, field: str = "joints14") -> None:
    """Scramble bytes inside one tracklet's compressed array (its one chunk)."""
    with h5py.File(path, "r") as handle:
        offset = handle[escape_key(key)][field].id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as handle:
        handle.seek(offset + 8)
        handle.write(b"\x13" * 32)


def damage_index(path) -> None:
    """Scramble the root group's header (just after the 48-byte superblock)."""
    with open(path, "r+b") as handle:
        handle.seek(48)
        handle.write(b"\x13" * 64)


def truncate(path: str | Path, fraction: float = 0.5) -> None:
    """Cut a file to `fraction` of its bytes, as a full disk or an interrupted copy does."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * fraction)])
