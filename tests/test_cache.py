"""HDF5 skeleton cache: round trip, crash safety, resume, fingerprint (no MediaPipe here)."""

import pickle

import h5py
import numpy as np
import pytest
from damage import damage_chunk, damage_index

from pipeline.cache import (
    ARRAY_FIELDS,
    CacheError,
    CacheWriter,
    SkeletonCache,
    escape_key,
    file_attributes,
    parts_dir,
    unescape_key,
)
from pipeline.errors import FileSystemError

ATTRS = file_attributes("ccvid", "/data/ccvid", "paper", 1)


def tracklet_arrays(seed: int, frames: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    present = rng.random(frames) > 0.3
    present[0] = True
    return {
        "world33": rng.normal(size=(frames, 33, 3)).astype(np.float32),
        "image33": rng.random((frames, 33, 3)).astype(np.float32),
        "visibility": rng.random((frames, 33)).astype(np.float32),
        "present": present,
        "joints14": rng.normal(size=(frames, 14, 3)).astype(np.float32),
        "joints14_2d": rng.normal(size=(frames, 14, 2)).astype(np.float32),
    }


def tracklet_attrs(seed: int) -> dict:
    return {
        "pid": f"{seed:03d}",
        "clothes": f"{seed:03d}/u0",
        "camera": seed,
        "split": "train",
        "source": f"/data/ccvid/session1/{seed:03d}_01",
        "frames": 5,
        "detection_rate": 0.8,
        "frame_size": np.array([256, 192]),
        "unreadable": np.array([], dtype=np.int64),
    }


KEYS = ["session1/001_01", "session2/002_05", "odd %2F key/with space"]


def write_all(path, keys=KEYS, attrs=ATTRS):
    with CacheWriter(path, attrs) as writer:
        for seed, key in enumerate(keys):
            writer.write(key, tracklet_arrays(seed), tracklet_attrs(seed))


def snapshot(path) -> dict:
    with SkeletonCache(path) as cache:
        return {
            "attrs": cache.attrs,
            **{key: (cache.meta(key), cache.read(key, ARRAY_FIELDS)) for key in cache.keys()},
        }


def assert_same_cache(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if key == "attrs":
            assert a[key] == b[key]
            continue
        (meta_a, arrays_a), (meta_b, arrays_b) = a[key], b[key]
        assert meta_a == meta_b
        for name in ARRAY_FIELDS:
            np.testing.assert_array_equal(arrays_a[name], arrays_b[name])


def test_key_escaping_round_trips_and_stays_flat():
    for key in KEYS + ["a/b/c", "100%", "train/0001/t01"]:
        name = escape_key(key)
        assert "/" not in name and unescape_key(name) == key


def test_round_trip_types_and_compression(tmp_path):
    path = tmp_path / "c.h5"
    write_all(path)
    with SkeletonCache(path) as cache:
        assert cache.keys() == sorted(KEYS) and len(cache) == 3 and KEYS[0] in cache
        assert (
            cache.attrs["normalisation"] == "paper"
            and cache.attrs["fingerprint"] == ATTRS["fingerprint"]
        )
        meta = cache.meta(KEYS[1])
        assert meta["pid"] == "001" and meta["camera"] == 1 and meta["frame_size"] == (256, 192)
        assert meta["unreadable"] == () and isinstance(meta["detection_rate"], float)
        arrays = cache.read(KEYS[1], ARRAY_FIELDS)
        expected = tracklet_arrays(1)
        for name in ARRAY_FIELDS:
            assert arrays[name].dtype == expected[name].dtype
            np.testing.assert_array_equal(arrays[name], expected[name])
        assert set(cache.read(KEYS[0])) == {"joints14", "present"}
        with pytest.raises(KeyError, match="unknown cache fields"):
            cache.read(KEYS[0], ("joints17",))
        with pytest.raises(KeyError, match="not in the skeleton cache"):
            cache.meta("session9/999_01")
    with h5py.File(path) as handle:
        dataset = handle[escape_key(KEYS[0])]["world33"]
        assert dataset.compression == "gzip" and dataset.chunks == dataset.shape
    assert not parts_dir(path).exists() and not list(tmp_path.glob("*.lock"))


def test_reader_survives_pickling_for_dataloader_workers(tmp_path):
    path = tmp_path / "c.h5"
    write_all(path)
    cache = SkeletonCache(path)
    cache.read(KEYS[0])
    clone = pickle.loads(pickle.dumps(cache))
    np.testing.assert_array_equal(clone.read(KEYS[0])["joints14"], tracklet_arrays(0)["joints14"])


def test_interrupted_writer_keeps_finished_batches_and_resumes(tmp_path):
    reference, path = tmp_path / "ref.h5", tmp_path / "c.h5"
    write_all(reference)
    with pytest.raises(KeyboardInterrupt):
        with CacheWriter(path, ATTRS) as writer:
            writer.write(KEYS[0], tracklet_arrays(0), tracklet_attrs(0))
            writer.flush()
            writer.write(KEYS[1], tracklet_arrays(1), tracklet_attrs(1))
            raise KeyboardInterrupt
    assert not path.exists() and len(list(parts_dir(path).glob("part-*.h5"))) == 2
    # What a SIGKILL leaves behind: temporary files that were never renamed.
    (parts_dir(path) / ".part-000009.h5.x.tmp").write_bytes(b"half")
    (tmp_path / ".c.h5.y.tmp").write_bytes(b"half")
    with pytest.raises(CacheError, match="no skeleton cache .* interrupted run"):
        SkeletonCache(path)

    with CacheWriter(path, ATTRS) as writer:
        assert writer.has(KEYS[0]) and writer.has(KEYS[1]) and not writer.has(KEYS[2])
        writer.write(KEYS[2], tracklet_arrays(2), tracklet_attrs(2))
    assert not parts_dir(path).exists() and not list(tmp_path.glob(".*.tmp"))
    assert_same_cache(snapshot(path), snapshot(reference))


def test_adding_to_a_finished_cache_keeps_its_tracklets(tmp_path):
    reference, path = tmp_path / "ref.h5", tmp_path / "c.h5"
    write_all(reference)
    write_all(path, KEYS[:1])
    with CacheWriter(path, ATTRS) as writer:
        assert writer.keys() == {KEYS[0]}
        for seed, key in enumerate(KEYS[1:], start=1):
            writer.write(key, tracklet_arrays(seed), tracklet_attrs(seed))
    assert_same_cache(snapshot(path), snapshot(reference))


def test_stale_fingerprint_is_detected_and_overwrite_rebuilds(tmp_path):
    path = tmp_path / "c.h5"
    write_all(path)
    other = file_attributes("ccvid", "/data/ccvid", "none", 1)
    assert other["fingerprint"] != ATTRS["fingerprint"]
    with pytest.raises(CacheError, match="normalisation 'paper' → 'none'.*preprocess.overwrite"):
        CacheWriter(path, other)
    # the failed attempt released its lock and left the cache alone
    assert SkeletonCache(path).keys() == sorted(KEYS)
    with CacheWriter(path, other, overwrite=True) as writer:
        assert writer.keys() == set()
        writer.write(KEYS[0], tracklet_arrays(0), tracklet_attrs(0))
    cache = SkeletonCache(path)
    assert cache.keys() == [KEYS[0]] and cache.attrs["normalisation"] == "none"


def test_stale_parts_are_detected_too(tmp_path):
    path = tmp_path / "c.h5"
    with pytest.raises(KeyboardInterrupt):
        with CacheWriter(path, ATTRS) as writer:
            writer.write(KEYS[0], tracklet_arrays(0), tracklet_attrs(0))
            raise KeyboardInterrupt
    other = file_attributes("ccvid", "/data/elsewhere", "paper", 1)
    with pytest.raises(CacheError, match="root"):
        CacheWriter(path, other)
    with CacheWriter(path, other, overwrite=True) as writer:
        assert writer.keys() == set()
        writer.write(KEYS[1], tracklet_arrays(1), tracklet_attrs(1))
    cache = SkeletonCache(path)
    assert cache.keys() == [KEYS[1]] and cache.attrs["root"] == "/data/elsewhere"


def test_second_writer_is_refused_while_one_is_open(tmp_path):
    path = tmp_path / "c.h5"
    with CacheWriter(path, ATTRS):
        with pytest.raises(CacheError, match="another process is writing"):
            CacheWriter(path, ATTRS)
    CacheWriter(path, ATTRS).close()  # free again afterwards


def test_writer_rejects_incomplete_arrays(tmp_path):
    with CacheWriter(tmp_path / "c.h5", ATTRS) as writer:
        arrays = tracklet_arrays(0)
        del arrays["joints14_2d"]
        with pytest.raises(ValueError, match="joints14_2d"):
            writer.write(KEYS[0], arrays, tracklet_attrs(0))


def test_unreadable_file_is_a_clear_error(tmp_path):
    path = tmp_path / "c.h5"
    path.write_bytes(b"not hdf5")
    with pytest.raises(CacheError, match="not a readable HDF5 .*preprocess.overwrite"):
        SkeletonCache(path)
    with pytest.raises(CacheError, match="not a readable HDF5"):
        CacheWriter(path, ATTRS)
    with CacheWriter(path, ATTRS, overwrite=True) as writer:
        writer.write(KEYS[0], tracklet_arrays(0), tracklet_attrs(0))
    assert SkeletonCache(path).keys() == [KEYS[0]]


def test_pose_source_enters_the_fingerprint_but_older_caches_keep_theirs():
    from pipeline.cache import FINGERPRINT_FIELDS, file_attributes, fingerprint

    estimated = file_attributes("ccvid", "/data", "paper", 1, "mediapipe")
    truth = file_attributes("ccvid", "/data", "paper", 1, "groundtruth")
    assert estimated["fingerprint"] != truth["fingerprint"]
    before_pose_source = {k: estimated[k] for k in FINGERPRINT_FIELDS if k != "pose_source"}
    assert fingerprint(before_pose_source) == estimated["fingerprint"]


def test_a_groundtruth_cache_from_before_the_image_truth_is_stale():
    from pipeline.cache import FINGERPRINT_FIELDS, file_attributes, fingerprint

    image = file_attributes("ccvid", "/data", "paper", 1, "groundtruth", "", "image")
    older = {k: image[k] for k in FINGERPRINT_FIELDS if k != "groundtruth_2d"}
    assert fingerprint(older) != image["fingerprint"]  # its 2D joints were orthographic
    estimated = file_attributes("ccvid", "/data", "paper", 1)
    without = {k: estimated[k] for k in FINGERPRINT_FIELDS if k != "groundtruth_2d"}
    assert fingerprint(without) == estimated["fingerprint"]  # MediaPipe caches keep theirs


def test_full_disk_is_a_clear_error_and_a_rerun_with_space_completes(small_disk, tmp_path):
    # HDF5 writing its own file reported the full disk from destructors and then segfaulted.
    disk = small_disk("100k")
    keys = [f"session1/{i:03d}_01" for i in range(8)]
    path = disk.path / "c.h5"
    with pytest.raises(FileSystemError, match=f"cannot write {disk.path}.*no space left"):
        with CacheWriter(path, ATTRS) as writer:
            for seed, key in enumerate(keys):
                writer.write(key, tracklet_arrays(seed, frames=20), tracklet_attrs(seed))
                writer.flush()
    assert not path.exists() and not list(disk.path.rglob(".*.tmp"))
    kept = len(list(parts_dir(path).glob("part-*.h5")))
    assert 0 < kept < len(keys)  # the batches sealed before the disk filled

    disk.resize("4m")
    with CacheWriter(path, ATTRS) as writer:
        assert len(writer.keys()) == kept
        for seed, key in enumerate(keys):
            if not writer.has(key):
                writer.write(key, tracklet_arrays(seed, frames=20), tracklet_attrs(seed))
    fresh = tmp_path / "fresh.h5"
    with CacheWriter(fresh, ATTRS) as writer:
        for seed, key in enumerate(keys):
            writer.write(key, tracklet_arrays(seed, frames=20), tracklet_attrs(seed))
    assert_same_cache(snapshot(path), snapshot(fresh))


def test_a_damaged_tracklet_is_named_and_the_next_run_extracts_it_again(tmp_path):
    path = tmp_path / "c.h5"
    write_all(path)
    damage_chunk(path, KEYS[1])
    with SkeletonCache(path) as cache:
        assert cache.read(KEYS[0])["joints14"].shape == (5, 14, 3)
        with pytest.raises(
            CacheError,
            match=f"{path} is damaged: tracklet {KEYS[1]} cannot be "
            r"read \(filter returned failure during read\) — re-run",
        ):
            cache.read(KEYS[1])
    with CacheWriter(path, ATTRS) as writer:
        assert writer.damaged() == [KEYS[1]] and not writer.has(KEYS[1]) and writer.has(KEYS[0])
        writer.write(KEYS[1], tracklet_arrays(1), tracklet_attrs(1))
    fresh = tmp_path / "fresh.h5"
    write_all(fresh)
    assert_same_cache(snapshot(path), snapshot(fresh))  # the damaged copy did not win the merge


def test_a_damaged_index_is_a_clear_error_and_overwrite_rebuilds(tmp_path):
    path = tmp_path / "c.h5"
    write_all(path)
    damage_index(path)
    for open_it in (SkeletonCache, lambda p: CacheWriter(p, ATTRS)):
        with pytest.raises(
            CacheError, match=f"{path} is damaged: its index cannot be read .*preprocess.overwrite"
        ):
            open_it(path)
    with CacheWriter(path, ATTRS, overwrite=True) as writer:
        writer.write(KEYS[0], tracklet_arrays(0), tracklet_attrs(0))
    assert SkeletonCache(path).keys() == [KEYS[0]]


def test_pose_inputs_join_their_fields_and_know_where_x_is():
    from pipeline.cache import pose_input, pose_x_channels

    arrays = {
        "joints14": np.ones((4, 14, 3), np.float32),
        "joints14_2d": np.full((4, 14, 2), 2.0, np.float32),
    }
    assert pose_input(arrays, "3d").shape == (4, 14, 3)
    both = pose_input(arrays, "3d+2d")
    assert both.shape == (4, 14, 5) and both.dtype == np.float32
    np.testing.assert_array_equal(both[..., 3:], arrays["joints14_2d"])
    assert pose_x_channels("3d") == (0,) and pose_x_channels("2d") == (0,)
    assert pose_x_channels("3d+2d") == (0, 3)
