import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from damage import damage_chunk

from pipeline.cache import ARRAY_FIELDS, CacheWriter, SkeletonCache, failures_path
from pipeline.config import load_config
from pipeline.data import (
    ClipSource,
    DistributedIdentitySampler,
    EvalClips,
    IdentitySampler,
    TrainClips,
    clips,
    load_splits,
)
from pipeline.errors import StageError
from pipeline.layouts import Tracklet
from pipeline.skeleton import flip_joints

# --------------------------------------------------------------------------- training items


def test_train_items_are_dense_chunks_and_crops_stay_inside_them():
    def frame_numbers(n):  # joints whose value is the frame index: a clip shows where it came from
        return np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None], (n, 14, 3)).copy()

    sources = [
        ClipSource(
            Tracklet(f"t{n}", (), f"t{n}.mp4", f"p{i % 2}", "c", 1, "train"),
            n,
            frame_numbers(n),
            pid_index=i % 2,
            camera=1,
            clothes_index=0,
        )
        for i, n in enumerate((10, 64, 65, 130, 200))
    ]
    dense = TrainClips(sources, 8, 4, 8, 4, flip=False, load_frames=False, sampling_step=64)
    whole = TrainClips(sources, 8, 4, 8, 4, flip=False, load_frames=False, sampling_step=0)
    assert len(whole) == 5 and len(dense) == 1 + 1 + 1 + 2 + 3
    assert dense.item_pids == [0, 1, 0, 1, 1, 0, 0, 0]
    assert [(s, (c.start, c.stop)) for s, c in dense.items[-3:]] == [
        (4, (0, 64)),
        (4, (64, 128)),
        (4, (128, 200)),
    ]
    for item, (low, high) in ((4, (64, 130)), (7, (128, 200))):
        starts = []
        for seed in range(40):
            frames = dense[(item, seed)][1][:, 0, 0].numpy()
            assert ((low <= frames) & (frames < high)).all() and len(frames) == 8
            starts.append(frames[0])
        assert max(starts) > low + 64 - 32  # crops reach into the remainder the chunk kept
    short = dense[(0, 3)][1][:, 0, 0].numpy()  # 10 frames: one whole item, loop-padded crop
    assert short.tolist() == [0, 4, 8, 0, 4, 8, 0, 4]


# --------------------------------------------------------------------------- samplers

PIDS = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 3, 4, 4, 4]  # identity 3 has one tracklet


def test_identity_batches_have_p_identities_times_k_clips():
    sampler = IdentitySampler(PIDS, ids_per_batch=2, clips_per_id=2, seed=5)
    batches = sampler.batches(0)
    assert batches
    for batch in batches:
        pids = [PIDS[index] for index, _ in batch]
        assert len(batch) == 4 and len(set(pids)) == 2
        assert all(pids.count(p) == 2 for p in set(pids))
    assert len(sampler) == sum(len(b) for b in batches)
    assert [item for b in batches for item in b] == list(sampler)
    # identity 3 (one tracklet) appears with its only tracklet repeated when it is drawn
    threes = [[index for index, _ in b if PIDS[index] == 3] for b in batches]
    assert all(t in ([], [12, 12]) for t in threes)


def test_identity_sampler_is_a_pure_function_of_seed_and_epoch():
    a = IdentitySampler(PIDS, 2, 2, seed=1)
    b = IdentitySampler(PIDS, 2, 2, seed=1)
    b.set_epoch(4)
    list(b)  # iterating other epochs first changes nothing
    assert a.batches(3) == b.batches(3)
    assert a.batches(3) != a.batches(4)
    assert a.batches(3) != IdentitySampler(PIDS, 2, 2, seed=2).batches(3)
    restored = IdentitySampler(PIDS, 2, 2, seed=0)
    restored.load_state_dict(b.state_dict())
    assert list(restored) == list(b) and restored.epoch == 4


def test_distributed_sampler_splits_the_same_batches_between_processes():
    single = IdentitySampler(PIDS, 2, 2, seed=7).batches(2)
    ranks = [DistributedIdentitySampler(PIDS, 2, 2, num_replicas=2, rank=r, seed=7) for r in (0, 1)]
    for sampler in ranks:
        sampler.set_epoch(2)
    mine = [sampler._my_batches() for sampler in ranks]
    assert len(mine[0]) == len(mine[1]) == len(single) // 2
    assert (
        mine[0] == single[0 : 2 * len(mine[0]) : 2] and mine[1] == single[1 : 2 * len(mine[1]) : 2]
    )


def test_too_few_identities_is_an_error():
    with pytest.raises(ValueError, match="identities"):
        IdentitySampler([0, 0, 1], ids_per_batch=3, clips_per_id=2)


# --------------------------------------------------------------------------- datasets on the cache


def data_config(root, cache, **train):
    return load_config(
        "demo",
        overrides={
            "data": {"dataset": "ccvid", "root": str(root), "cache": str(cache)},
            "train": {"height": 32, "width": 16, "seq_len": 4, **train},
        },
    )


def test_train_clips_shapes_and_labels(synthetic_root, skeleton_cache):
    splits = load_splits(
        data_config(synthetic_root, skeleton_cache), needs_joints=True, log=lambda m: None
    )
    assert splits.train and splits.query and splits.gallery
    assert {s.tracklet.split for s in splits.train} == {"train"}
    assert [s.pid_index for s in splits.train] == [
        splits.class_pids.index(s.tracklet.pid) for s in splits.train
    ]
    dataset = TrainClips(
        splits.train, seq_len=4, stride=2, height=32, width=16, flip=True, load_frames=True
    )
    frames, joints, pid, camera, clothes = dataset[(0, 123)]
    assert frames.shape == (4, 3, 32, 16) and frames.dtype == torch.float32
    assert joints.shape == (4, 14, 3)
    assert pid == splits.train[0].pid_index and camera == splits.train[0].camera
    assert torch.equal(dataset[(0, 123)][0], frames)  # the clip seed decides everything


def test_flip_mirrors_frames_and_joints_together(synthetic_root, skeleton_cache):
    splits = load_splits(
        data_config(synthetic_root, skeleton_cache), needs_joints=True, log=lambda m: None
    )
    dataset = TrainClips(splits.train, 4, 2, 32, 16, flip=True, load_frames=True)
    source = splits.train[0]
    plain_frames, plain_joints = dataset.clip(source, [0, 1, 2, 3], flip=False)
    flipped_frames, flipped_joints = dataset.clip(source, [0, 1, 2, 3], flip=True)
    assert torch.equal(flipped_frames, plain_frames.flip(-1))
    assert torch.equal(flipped_joints, torch.from_numpy(flip_joints(plain_joints.numpy())))
    assert not torch.equal(flipped_joints, plain_joints)


def test_load_frames_gives_rgb_in_imagenet_units(tmp_path):
    import cv2

    from pipeline.data import load_frames

    # Frame 0 is pure red, frame 1 blue with half green (OpenCV writes BGR); 20×10 resized to 8×4.
    paths = []
    for name, bgr in (("0.png", (0, 0, 255)), ("1.png", (255, 128, 0))):
        cv2.imwrite(str(tmp_path / name), np.full((20, 10, 3), bgr, np.uint8))
        paths.append(str(tmp_path / name))
    tracklet = Tracklet("t", tuple(paths), "", "1", "1/a", 1, "query")
    frames = load_frames(tracklet, [1, 0, 1], height=8, width=4)
    assert frames.shape == (3, 3, 8, 4) and frames.dtype == np.float32
    # (value / 255 − mean) / std per RGB channel, mean (0.485, 0.456, 0.406), std (0.229, 0.224,
    # 0.225): red 255 → 2.2489, red 0 → −2.1179; green 128 → 0.2052, 0 → −2.0357; blue 255 →
    # 2.6400, 0 → −1.8044.
    red = [2.2489083, -2.0357141, -1.8044444]
    blue = [-2.1179039, 0.2051821, 2.64]
    for frame, expected in zip(frames, (blue, red, blue), strict=True):
        for channel, value in enumerate(expected):
            np.testing.assert_allclose(frame[channel], value, rtol=1e-5)


def test_eval_clips_cover_every_frame_once_per_clip(synthetic_root, skeleton_cache):
    splits = load_splits(
        data_config(synthetic_root, skeleton_cache), needs_joints=False, log=lambda m: None
    )
    dataset = EvalClips(splits.query, seq_len=3, stride=2, height=32, width=16, load_frames=False)
    expected = sum(len(clips.test_clip_indices(s.num_frames, 3, 2)) for s in splits.query)
    assert len(dataset) == expected
    frames, joints, index = dataset[0]
    # nothing is read for branches the model lacks
    assert frames.numel() == 0 and joints.numel() == 0 and index == 0


# --------------------------------------------------------------------------- bad input


def clone_cache(source: Path, target: Path, drop=(), **attrs) -> Path:
    """Copy a skeleton cache, leaving out `drop` keys and changing file attributes."""
    with SkeletonCache(source) as cache:
        file_attrs = {k: v for k, v in cache.attrs.items() if k != "fingerprint"}
        file_attrs.update(attrs)
        with CacheWriter(target, file_attrs) as writer:
            for key in cache.keys():
                if key not in drop:
                    writer.write(key, cache.read(key, ARRAY_FIELDS), cache.meta(key))
    return target


def test_missing_cache_is_one_clear_error(synthetic_root, tmp_path):
    with pytest.raises(StageError, match="no skeleton cache .* preprocess"):
        load_splits(data_config(synthetic_root, tmp_path / "none.h5"), True)


def test_cache_from_another_dataset_is_refused(synthetic_root, skeleton_cache, tmp_path):
    other = clone_cache(skeleton_cache, tmp_path / "vccr.h5", dataset="vccr")
    with pytest.raises(StageError, match="built from a 'vccr' dataset"):
        load_splits(data_config(synthetic_root, other), True)


def test_cache_from_another_root_is_refused(synthetic_root, skeleton_cache, tmp_path):
    other = clone_cache(skeleton_cache, tmp_path / "other.h5", root=str(tmp_path / "elsewhere"))
    with pytest.raises(StageError, match="built from the frames at .*elsewhere"):
        load_splits(data_config(synthetic_root, other), True)


def test_split_tracklets_missing_from_the_cache(synthetic_root, skeleton_cache, tmp_path):
    with SkeletonCache(skeleton_cache) as cache:
        query_key = next(k for k in cache.keys() if cache.meta(k)["split"] == "query")
    partial = clone_cache(skeleton_cache, tmp_path / "partial.h5", drop=(query_key,))
    with pytest.raises(StageError, match=f"query split names 1 tracklet.*{query_key}"):
        load_splits(data_config(synthetic_root, partial), True)
    # The same gap recorded by preprocess as a failure is a warning, and the tracklet is left out.
    failures_path(partial).write_text(f"reason,path,key\nno person detected,x,{query_key}\n")
    messages = []
    splits = load_splits(data_config(synthetic_root, partial), True, log=messages.append)
    assert query_key not in [s.key for s in splits.query] and splits.excluded["query"] == 1
    assert any("1 failed in preprocess" in m for m in messages)


def test_damaged_tracklets_are_listed_with_what_to_do(synthetic_root, skeleton_cache, tmp_path):
    cache = tmp_path / "damaged.h5"
    shutil.copy(skeleton_cache, cache)
    keys = SkeletonCache(cache).keys()
    for key in (keys[2], keys[5]):
        damage_chunk(cache, key)
    with pytest.raises(StageError) as caught:
        load_splits(data_config(synthetic_root, cache), True)
    message = str(caught.value)
    assert f"skeleton cache {cache} is damaged: 2 of " in message
    assert keys[2] in message and keys[5] in message and "asgl-pipeline preprocess" in message


def test_moved_frames_folder_is_one_clear_error(synthetic_root, skeleton_cache, tmp_path):
    root = tmp_path / "frames"
    shutil.copytree(synthetic_root, root)
    cache = clone_cache(skeleton_cache, tmp_path / "moved.h5", root=str(root))
    shutil.move(root, tmp_path / "moved-away")
    with pytest.raises(StageError, match="frames folder .* does not exist"):
        load_splits(data_config(root, cache), True)


def test_validation_identities_are_carved_from_train(synthetic_root, skeleton_cache):
    config = data_config(synthetic_root, skeleton_cache, select="val", val_ids=1)
    splits = load_splits(config, True, log=lambda m: None)
    assert len(splits.val_pids) == 1 and splits.val
    assert {s.tracklet.pid for s in splits.val} == set(splits.val_pids)
    assert not set(splits.val_pids) & set(splits.class_pids)
    assert not {s.key for s in splits.val} & {s.key for s in splits.query + splits.gallery}
    with pytest.raises(StageError, match="val_ids"):
        load_splits(data_config(synthetic_root, skeleton_cache, select="val", val_ids=0), True)


def test_fusion_calibration_carves_validation_identities_too(synthetic_root, skeleton_cache):
    calibrated = data_config(synthetic_root, skeleton_cache, fusion_calibration="val", val_ids=1)
    splits = load_splits(calibrated, True, log=lambda m: None)
    assert len(splits.val_pids) == 1 and not set(splits.val_pids) & set(splits.class_pids)
    plain = load_splits(data_config(synthetic_root, skeleton_cache, val_ids=1), True)
    assert plain.val_pids == [] and not plain.val  # select = last, no calibration: all train
    with pytest.raises(StageError, match="fusion_calibration = 'val' need"):
        load_splits(data_config(synthetic_root, skeleton_cache, fusion_calibration="val"), True)


def test_a_joined_pose_input_is_read_whole_and_mirrored_in_both_parts(
    synthetic_root, skeleton_cache
):
    config = data_config(synthetic_root, skeleton_cache)
    config.model.pose = "3d+2d"
    splits = load_splits(config, needs_joints=True, log=lambda m: None)
    source = splits.train[0]
    assert source.joints.shape[-1] == 5
    with SkeletonCache(skeleton_cache) as cache:
        arrays = cache.read(source.key, ("joints14", "joints14_2d"))
    np.testing.assert_array_equal(source.joints[..., :3], arrays["joints14"])
    np.testing.assert_array_equal(source.joints[..., 3:], arrays["joints14_2d"])
    dataset = TrainClips(
        splits.train, 4, 2, 32, 16, flip=True, load_frames=False, x_channels=(0, 3)
    )
    _, plain = dataset.clip(source, [0, 1, 2, 3], flip=False)
    _, mirrored = dataset.clip(source, [0, 1, 2, 3], flip=True)
    torch.testing.assert_close(mirrored[:, 3, 0], -plain[:, 2, 0])  # world x of l → r shoulder
    torch.testing.assert_close(mirrored[:, 3, 3], -plain[:, 2, 3])  # image x too
