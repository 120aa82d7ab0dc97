"""The frame cache (pipeline/data/frames.py): the model sees exactly the pixels it saw when every
frame was decoded from its file, and a stale, damaged, half-written or oversized cache is never
used."""

from __future__ import annotations

import dataclasses
import json
import shutil

import cv2
import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.data import EvalClips, TrainClips
from pipeline.data.dataset import ClipSource
from pipeline.data.frames import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    frame_cache_folder,
    load_frames,
    open_frame_cache,
    with_pixels,
)
from pipeline.layouts import load_tracklets, read_frames

HEIGHT, WIDTH = 32, 16


def frames_before_the_cache(tracklet, indices, height, width):
    """`load_frames` as it was written before the frame cache (the reference for bit equality)."""
    frames = read_frames(tracklet, indices)
    out = np.empty((len(frames), 3, height, width), dtype=np.float32)
    for i, frame in enumerate(frames):
        rgb = cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)[..., ::-1]
        out[i] = ((rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(
            2, 0, 1
        )
    return out


@pytest.fixture
def frame_set(synthetic_root, tmp_path):
    """A private copy of the tiny synthetic set (its frames are changed by some tests)."""
    root = tmp_path / "set"
    shutil.copytree(synthetic_root, root)
    config = load_config(
        "demo",
        overrides={
            "data": {"root": str(root), "cache": str(tmp_path / "skeletons.h5")},
            "train": {"height": HEIGHT, "width": WIDTH},
        },
    )
    return root, config


def sources_of(root):
    tracklets, _ = load_tracklets("ccvid", root)
    return [ClipSource(t, len(t.frames), None, 0, t.camera, 0) for t in tracklets]


def build(config, log=None):
    lines = []
    cache = open_frame_cache(config.data, HEIGHT, WIDTH, workers=2, log=log or lines.append)
    return cache, lines


def test_decoded_frames_are_bit_identical_to_the_code_before_the_cache(frame_set):
    root, _ = frame_set
    tracklet = sources_of(root)[0].tracklet
    indices = [0, 3, 3, 7, 1]
    expected = frames_before_the_cache(tracklet, indices, HEIGHT, WIDTH)
    assert np.array_equal(load_frames(tracklet, indices, HEIGHT, WIDTH), expected)


def test_every_training_and_test_clip_is_the_same_with_the_cache(frame_set):
    root, config = frame_set
    cache, lines = build(config)
    assert cache is not None and "decoded and resized to 32x16" in lines[0]
    plain = sources_of(root)
    cached = with_pixels(plain, cache)
    assert all(s.pixels is not None for s in cached)
    for a, b in (
        (
            TrainClips(plain, 4, 2, HEIGHT, WIDTH, True, True),
            TrainClips(cached, 4, 2, HEIGHT, WIDTH, True, True),
        ),
        (EvalClips(plain, 4, 2, HEIGHT, WIDTH, True), EvalClips(cached, 4, 2, HEIGHT, WIDTH, True)),
    ):
        items = (
            [(i, seed) for i in range(len(a)) for seed in range(3)]
            if isinstance(a, TrainClips)
            else range(len(a))
        )
        for item in items:
            assert np.array_equal(a[item][0].numpy(), b[item][0].numpy())
    mirrored = TrainClips(plain, 4, 2, HEIGHT, WIDTH, True, True)
    for source, same in zip(plain, cached):
        for flip in (False, True):
            expected = mirrored.clip(source, [0, 2, 4, 6], flip)[0]
            assert np.array_equal(mirrored.clip(same, [0, 2, 4, 6], flip)[0], expected)


def test_a_second_open_reuses_the_cache_and_another_size_is_another_file(frame_set):
    _, config = frame_set
    first, _ = build(config)
    again, lines = build(config)
    assert lines == [] and again.path == first.path  # nothing rebuilt
    other = open_frame_cache(config.data, 16, 8, workers=1, log=lambda _m: None)
    assert other.path != first.path and first.path.is_file()


def test_a_changed_frame_is_detected_rebuilt_and_the_stale_files_deleted(frame_set):
    root, config = frame_set
    old, _ = build(config)
    tracklet = sources_of(root)[2].tracklet
    image = np.full((256, 128, 3), 200, dtype=np.uint8)
    cv2.imwrite(tracklet.frames[5], image)
    new, lines = build(config)
    assert new.path != old.path and lines, "a changed frame must give a new cache"
    assert not old.path.exists() and not old.path.with_suffix(".json").exists()
    assert np.array_equal(new.pixels(tracklet.key)[5], np.full((HEIGHT, WIDTH, 3), 200, np.uint8))


def test_a_killed_build_leaves_nothing_that_is_read_and_the_next_run_completes(
    frame_set, monkeypatch
):
    from pipeline.data import frames

    _, config = frame_set
    calls = {"n": 0}
    real = frames.resized_rgb

    def dies_on_the_third(frames_bgr, height, width):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # a kill, as far as this process is concerned
        return real(frames_bgr, height, width)

    monkeypatch.setattr(frames, "resized_rgb", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        open_frame_cache(config.data, HEIGHT, WIDTH, workers=1, log=lambda _m: None)
    folder = frame_cache_folder(config.data)
    assert sorted(p.name for p in folder.iterdir() if p.name != ".build.lock") == []
    monkeypatch.setattr(frames, "resized_rgb", real)
    cache, _ = build(config)
    assert cache is not None and len(cache.rows) == len(sources_of(frame_set[0]))


def test_a_damaged_index_or_pixel_file_is_built_again(frame_set):
    _, config = frame_set
    cache, _ = build(config)
    cache.path.with_suffix(".json").write_text("{not json")
    rebuilt, lines = build(config)
    assert lines and rebuilt.path == cache.path
    with open(cache.path, "r+b") as handle:
        handle.truncate(200)  # pixels cut short
    rebuilt, lines = build(config)
    assert lines and rebuilt.array.shape[0] == sum(c for _, c in rebuilt.rows.values())


def test_too_large_or_switched_off_means_frames_are_decoded(frame_set):
    _, config = frame_set
    small = dataclasses.replace(config.data, frame_cache_gb=1e-6)
    lines = []
    assert open_frame_cache(small, HEIGHT, WIDTH, log=lines.append) is None
    assert "more than data.frame_cache_gb" in lines[0]
    off = dataclasses.replace(config.data, frame_cache_gb=0)
    assert open_frame_cache(off, HEIGHT, WIDTH, log=lines.append) is None
    assert not frame_cache_folder(config.data).exists()


def test_a_tracklet_with_no_decodable_frame_is_left_to_the_decoding_path(frame_set):
    root, config = frame_set
    broken = sources_of(root)[1].tracklet
    for path in broken.frames:
        open(path, "wb").close()  # empty files: nothing decodes
    cache, _ = build(config)
    assert cache.pixels(broken.key) is None
    info = json.loads(cache.path.with_suffix(".json").read_text())
    assert info["undecodable"] == [broken.key]
