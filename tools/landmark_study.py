"""How MediaPipe's landmarks go wrong on a synthetic set, measurements beyond `pose-error`
(docs/MEDIAPIPE.md, "What MediaPipe keeps" and "The 2D error budget"):

    .venv/bin/python tools/landmark_study.py image-error --root cache/synthetic-benchmark \
        --cache cache/skeletons/synthetic-benchmark.h5
    .venv/bin/python tools/landmark_study.py bias-stability --root cache/synthetic-benchmark \
        [--tracklets 30]
    .venv/bin/python tools/landmark_study.py control-2d --root cache/synthetic-benchmark \
        --cache cache/skeletons/synthetic-benchmark.h5 \
        --truth cache/skeletons/synthetic-benchmark-groundtruth.h5 \
        --component bias --scale 0.25 --out cache/skeletons/control-2d-bias-0.25.h5

`image-error`: the image landmarks (`image33` mapped to the 14 joints, pixels) against the true
joints in the frames as the synth stage saved them (`gt_joints14_2d.npy`: each frame's own
camera's projection), split per tracklet into bias, drift and jitter as `pose-error` splits the
3D error; the bias also around the population's mean and around the mean of the tracklets seen
from the same side and yaw (20° bins).

`bias-stability`: is the 3D per-tracklet bias a property of the person in the image (body,
outfit, view) or of incidental image content? Training tracklets are rendered again with one
thing changed — the noise seed (sensor noise and framing jitter), the yaw by +10° / +25°, the
scene (wall, floor, light), the outfit (the person's other one) — and run through MediaPipe;
the bias of each is compared with the original's (the set's plan re-created from its
config.toml: the same random streams as the render).

`control-2d`: the ground-truth cache with a random 2D error of MediaPipe's measured size (its
constant part or its jitter, × `--scale`) added to the image joints, for `train --pose 2d`.

Research code, not a stage; tests/test_landmark_study.py checks it.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from pipeline.cache import ARRAY_FIELDS, CacheWriter, SkeletonCache, file_attributes
from pipeline.config import load_config
from pipeline.pose import PoseEstimator
from pipeline.pose_error import FACING_BIN, Pair, split_error
from pipeline.skeleton import JOINT_NAMES, hip_centre, map_33_to_14
from pipeline.synth.layout import GT_IMAGE_FILE, _rng, plan_from_settings, tracklet_person
from pipeline.synth.render import render_tracklet
from pipeline.transforms import gaussian_at_rms

CHANGES = ("noise", "yaw+10", "yaw+25", "scene", "outfit")


def set_plan(root: str):
    """The plan `asgl-pipeline synth` rendered `root` from (its saved config.toml)."""
    return plan_from_settings(load_config("demo", Path(root) / "config.toml").synth)


def _rms(x: np.ndarray) -> np.ndarray:
    """RMS length over all leading axes of (..., 14, C) → (14,)."""
    return np.sqrt((x**2).sum(-1).reshape(-1, x.shape[-2]).mean(0))


def image_error_columns(root: str, cache: str) -> tuple[dict[str, np.ndarray], float, int]:
    """Per joint, pixels: MediaPipe's image error split as `pose-error` splits the 3D one (bias;
    bias around the population's mean and around the same facing's mean; drift; jitter); the
    median body height in pixels; the number of tracklets."""
    plan = set_plan(root)
    parts, facing, heights = [], [], []
    with SkeletonCache(cache) as estimate:
        for spec in plan.tracklets:
            arrays = estimate.read(spec.key, ("image33", "present"))
            h, w = estimate.meta(spec.key)["frame_size"]
            pixels = map_33_to_14(arrays["image33"])[..., :2] * np.array([w, h])
            truth = np.load(Path(root) / spec.key / GT_IMAGE_FILE)  # pixels, as rendered
            pair = Pair(
                spec.key, spec.pid, spec.clothes, spec.camera, pixels, truth, arrays["present"]
            )
            parts.append(split_error(pair))
            heights.append(np.median(truth[:, 12:14, 1].mean(1) - truth[:, 0, 1]))
            facing.append(spec.view.side * spec.view.yaw)  # degrees, signed as the camera sees it
    bias = np.stack([p.bias for p in parts])
    bins = ((np.array(facing) + 180) // FACING_BIN).astype(int)
    facing_mean = np.stack([bias[bins == b].mean(0) for b in bins])
    columns = {
        "bias": _rms(bias),
        "~mean": _rms(bias - bias.mean(0)),
        "~facing": _rms(bias - facing_mean),
        "drift": _rms(np.concatenate([p.drift for p in parts])),
        "jitter": _rms(np.concatenate([p.jitter for p in parts])),
    }
    return columns, float(np.median(heights)), len(parts)


def image_error(root: str, cache: str) -> None:
    columns, height, count = image_error_columns(root, cache)
    print(f"{count} tracklets; body height (head to feet) median {height:.0f} px")
    print(f"{'joint (px)':<14}" + "".join(f"{c:>9}" for c in columns))
    for j, name in enumerate(JOINT_NAMES):
        print(f"{name:<14}" + "".join(f"{v[j]:>9.1f}" for v in columns.values()))


def control_2d(
    root: str, cache: str, truth: str, out: str, component: str, scale: float, seed: int = 0
) -> int:
    """The ground-truth cache `truth` with a random 2D error of MediaPipe's measured size added to
    its image joints (`joints14_2d`): `bias`, one constant offset per tracklet, or `jitter`, fresh
    noise every frame, Gaussian per joint and axis at `scale` × the RMS `image_error` measures
    with `cache`; then hip-centred again. What `pose-error`'s `offset` controls do in 3D (the
    2D error budget in docs/MEDIAPIPE.md). Returns the number of tracklets written."""
    if component not in ("bias", "jitter"):
        raise ValueError(f"component must be bias or jitter, got {component!r}")
    rms_px = image_error_columns(root, cache)[0][component]
    rng = np.random.default_rng(seed)
    with SkeletonCache(truth) as source:
        attrs = dict(source.attrs)
        file_attrs = file_attributes(
            str(attrs["dataset"]),
            str(attrs["root"]),
            str(attrs["normalisation"]),
            int(attrs.get("model_complexity", 1)),
            f"{attrs['pose_source']}+2d-{component}-{scale:g}",
            "",
            str(attrs.get("groundtruth_2d", "")),
        )
        with CacheWriter(Path(out), file_attrs, overwrite=True) as writer:
            for key in source.keys():
                arrays, meta = source.read(key, ARRAY_FIELDS), source.meta(key)
                frames = len(arrays["joints14_2d"]) if component == "jitter" else 1
                height = float(meta["frame_size"][0])  # image joints are in frame heights
                noise = gaussian_at_rms(rng, frames, scale * rms_px / height, axes=2)
                noisy = (arrays["joints14_2d"] + noise).astype(np.float32)
                arrays["joints14_2d"] = noisy - hip_centre(noisy)
                writer.write(key, arrays, meta)
    return len(source.keys())


def _bias_3d(plan, spec, estimator, change: str | None) -> np.ndarray:
    """(14, 3) MediaPipe's mean 3D error over the tracklet rendered with `change`."""
    person, rng = tracklet_person(plan, spec)
    view, scene = spec.view, plan.scenes[spec.camera]
    if change == "noise":
        rng = _rng(plan.seed, 3, spec.identity, spec.index + 1000)
    elif change and change.startswith("yaw"):
        turn = float(change.removeprefix("yaw")) * (1 if view.yaw < 90 else -1)
        view = dataclasses.replace(view, yaw=float(np.clip(view.yaw + turn, 0, 180)))
    elif change == "scene":
        cameras = sorted(plan.scenes)
        scene = plan.scenes[cameras[(cameras.index(spec.camera) + 1) % len(cameras)]]
    wardrobe = plan.outfits[spec.identity]
    outfit = wardrobe[(spec.outfit + (change == "outfit")) % len(wardrobe)]
    images, truth, _ = render_tracklet(person, outfit, scene, view, plan.frames, plan.size, rng)
    found = estimator.process_sequence(images)
    world = map_33_to_14(found["world33"])
    return (world - hip_centre(world) - truth)[found["present"]].mean(0)


def bias_stability(root: str, tracklets: int) -> None:
    plan = set_plan(root)
    specs = [s for s in plan.tracklets if s.split == "train"][::10][:tracklets]
    with PoseEstimator() as estimator:
        biases = {
            change: np.stack([_bias_3d(plan, s, estimator, change) for s in specs]).reshape(
                len(specs), -1
            )
            for change in (None, *CHANGES)
        }
    original = biases[None]
    centred = original - original.mean(0)

    def cm(x: np.ndarray) -> float:
        return 100 * float(np.sqrt((x**2).sum() / (len(x) * 14)))

    print(f"{len(specs)} training tracklets; 3D bias RMS around its mean {cm(centred):.1f} cm")
    for change in CHANGES:
        other = biases[change]
        corr = np.corrcoef(centred.ravel(), (other - other.mean(0)).ravel())[0, 1]
        print(
            f"  {change:<8} changes it by {cm(other - original):.1f} cm RMS; "
            f"correlation with the original's {corr:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=("image-error", "bias-stability", "control-2d"))
    parser.add_argument("--root", required=True, help="a set made by `asgl-pipeline synth`")
    parser.add_argument("--cache", help="its MediaPipe skeleton cache (image-error, control-2d)")
    parser.add_argument("--tracklets", type=int, default=30)
    parser.add_argument("--truth", help="control-2d: its ground-truth skeleton cache")
    parser.add_argument("--out", help="control-2d: the control cache to write")
    parser.add_argument("--component", choices=("bias", "jitter"), default="bias")
    parser.add_argument("--scale", type=float, default=1.0, help="× MediaPipe's measured RMS")
    args = parser.parse_args()
    if args.study == "image-error":
        image_error(args.root, args.cache)
    elif args.study == "control-2d":
        count = control_2d(args.root, args.cache, args.truth, args.out, args.component, args.scale)
        print(f"control-2d: {count} tracklets → {args.out}")
    else:
        bias_stability(args.root, args.tracklets)


if __name__ == "__main__":
    main()
