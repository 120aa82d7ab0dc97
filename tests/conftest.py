"""Session-wide fixtures shared by every test module (built once per test session, kept tiny).

- `synthetic_root`: a synthetic cloth-changing set in the CCVID layout, made by `stages.synth`
  (`TINY_SYNTH`: 4 identities × 2 outfits × 2 tracklets, 8 frames of 128×256).
- `preprocess_config(root, cache, **fields)`: a demo-profile Config for `stages.preprocess.run`.
- `skeleton_cache`: that set preprocessed (paper normalisation, one in-process worker): the Path
  of the HDF5 file; read it with `pipeline.cache.SkeletonCache`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Config, load_config

# 4 identities × 2 outfits × 2 tracklets (16 tracklets), 8 frames of 128×256 (at 64×128 whole
# tracklets went undetected), rendered in-process; synth's own MediaPipe check is skipped.
TINY_SYNTH = {
    "identities": 4,
    "outfits": 2,
    "cameras": 2,
    "tracklets_per_outfit": 2,
    "frames": 8,
    "width": 128,
    "height": 256,
    "seed": 0,
    "workers": 1,
    "check_tracklets": 0,
}


def make_preprocess_config(root: str | Path, cache: str | Path, **preprocess) -> Config:
    """A `Config` for the preprocess stage on a CCVID-layout root (demo profile, 1 worker)."""
    return load_config(
        "demo",
        overrides={
            "data": {"dataset": "ccvid", "root": str(root), "cache": str(cache)},
            "preprocess": {"workers": 1, **preprocess},
        },
    )


@pytest.fixture(scope="session")
def preprocess_config():
    """`preprocess_config(root, cache, **preprocess_fields) -> Config` (demo profile, 1 worker)."""
    return make_preprocess_config


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    from stages import synth

    root = tmp_path_factory.mktemp("synthetic")
    config = load_config(
        "demo", overrides={"synth": {**TINY_SYNTH, "out": str(root), "overwrite": True}}
    )
    synth.run(config)
    return root


@pytest.fixture(scope="session")
def skeleton_cache(synthetic_root, tmp_path_factory) -> Path:
    from stages import preprocess

    cache = tmp_path_factory.mktemp("skeletons") / "synthetic.h5"
    preprocess.run(make_preprocess_config(synthetic_root, cache))
    return cache


class SmallDisk:
    """A folder on its own size-limited tmpfs: a disk that really fills up (ENOSPC)."""

    def __init__(self, path: Path):
        self.path = path

    def mount(self, size: str, options: str = "") -> None:
        import subprocess

        command = ["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "tmpfs", str(self.path)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(
                f"cannot mount a size-limited tmpfs ({done.stderr.strip() or done.returncode}; "
                "needs root) — the simulated-ENOSPC tests cover the same code without it"
            )

    def resize(self, size: str) -> None:
        """More (or less) space, keeping the files: a re-run "with space"."""
        import subprocess

        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def unmount(self) -> None:
        import subprocess

        subprocess.run(["umount", str(self.path)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """`small_disk(size, options="")` → a folder on a fresh tmpfs of that size (e.g. "64k"),
    unmounted afterwards; skips with the reason when tmpfs cannot be mounted (not root)."""
    disks = []

    def make(size: str, options: str = "") -> SmallDisk:
        disk = SmallDisk(tmp_path / f"disk{len(disks)}")
        disk.path.mkdir()
        disk.mount(size, options)
        disks.append(disk)
        return disk

    yield make
    for disk in disks:
        disk.unmount()
