"""A joints transform applied to skeleton-sequence datasets before they are cached
(`preprocess.joints_transform = "package.module:function"`, `preprocess.transform_args` its
keyword arguments as `sigma=0.02,bias=0.01` or a JSON object; values are read as JSON, else kept
as text): e.g. MediaPipe-like noise added to real bodies, to see its effect with the same protocol.

    def transform(joints, rng, **args) -> joints

`joints` is (T, 14, 3) float32, metres, hip-centred, in our order and axes (those of MediaPipe's
world landmarks), every frame (gaps already filled; the cache's `present` still marks them);
`rng` is a `numpy.random.Generator` seeded from the sequence's key, so each sequence gets its own
draw and a re-run the same one. The result is hip-centred again and normalised, so moving the
whole body (every joint by the same offset) has no effect.
Both settings enter the cache fingerprint; a changed function body does not (rebuild with
`--overwrite`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from functools import partial

import numpy as np

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def load_transform(spec: str, args: str = "") -> Transform | None:
    """`"module:function"` (+ its keyword arguments, `parse_args`) → a callable, or None when
    `spec` is empty. ValueError with what to fix for a malformed spec, a missing module or
    function, or malformed arguments."""
    if not spec:
        if args:
            raise ValueError(
                "preprocess.transform_args is set but preprocess.joints_transform is not"
            )
        return None
    module_name, colon, name = spec.partition(":")
    if not colon or not module_name or not name:
        raise ValueError(
            f"preprocess.joints_transform = {spec!r}: expected 'package.module:function'"
        )
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise ValueError(
            f"preprocess.joints_transform = {spec!r} cannot be loaded ({error})"
        ) from None
    kwargs = parse_args(args)
    return partial(function, **kwargs)


def parse_args(args: str) -> dict:
    """`"a=1,b=x"` or `'{"a": 1}'` → keyword arguments; ValueError for anything else."""
    if not args.strip():
        return {}
    if args.lstrip().startswith("{"):
        try:
            kwargs = json.loads(args)
        except json.JSONDecodeError as error:
            raise ValueError(f"preprocess.transform_args is not JSON ({error})") from None
        if not isinstance(kwargs, dict):
            raise ValueError("preprocess.transform_args must be a JSON object")
        return kwargs
    kwargs = {}
    for item in args.split(","):
        name, equals, value = (part.strip() for part in item.partition("="))
        if not equals or not name.isidentifier():
            raise ValueError(
                f"preprocess.transform_args = {args!r}: expected name=value[,name=value…] "
                "or a JSON object"
            )
        kwargs[name] = _value(value)
    return kwargs


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def sequence_rng(key: str) -> np.random.Generator:
    """The generator a sequence's transform draws from: seeded by its key, stable across runs."""
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def apply_transform(transform: Transform, joints: np.ndarray, key: str) -> np.ndarray:
    """`transform` on (T, 14, 3) joints; ValueError when it returns another shape or NaNs."""
    out = np.asarray(transform(joints.copy(), sequence_rng(key)), dtype=np.float32)
    if out.shape != joints.shape or not np.isfinite(out).all():
        raise ValueError(
            f"the joints transform returned shape {out.shape} (finite: {np.isfinite(out).all()}),"
            f" expected finite joints of shape {joints.shape}"
        )
    return out


# MediaPipe's error on the benchmark set, per joint (our order), 3D RMS in metres: its
# per-tracklet constant bias and its frame-to-frame jitter, as `make pose-error` measured them
# (docs/MEDIAPIPE.md, 2026-12-06).
MEDIAPIPE_BIAS_RMS = (
    np.array([12.6, 9.6, 11.6, 12.2, 13.8, 13.8, 20.0, 20.2, 3.9, 3.9, 8.1, 8.8, 13.4, 15.1]) / 100
)
MEDIAPIPE_JITTER_RMS = (
    np.array([4.9, 2.6, 4.1, 4.2, 6.1, 6.1, 10.8, 11.2, 1.7, 1.7, 5.6, 6.3, 10.3, 11.5]) / 100
)


def gaussian_at_rms(
    rng: np.random.Generator, frames: int, rms: np.ndarray, axes: int = 3
) -> np.ndarray:
    """(frames, 14, axes) Gaussian noise whose RMS length per joint is `rms` ((14,), spread
    evenly over the axes); `frames` = 1 for one constant offset."""
    return rng.normal(size=(frames, 14, axes)) * (rms / np.sqrt(axes))[None, :, None]


def mediapipe_noise(
    joints: np.ndarray, rng: np.random.Generator, bias: float = 1.0, jitter: float = 1.0
) -> np.ndarray:
    """MediaPipe-sized error on real joints (`preprocess.joints_transform =
    pipeline.transforms:mediapipe_noise`): a constant offset per sequence (what destroys the
    body's identity on the benchmark) and fresh noise every frame (what destroys the motion's),
    Gaussian per joint and axis at `bias` / `jitter` times MediaPipe's measured 3D RMS. Random
    offsets, not MediaPipe's template body: the size of its error, not its shape."""
    offset = gaussian_at_rms(rng, 1, bias * MEDIAPIPE_BIAS_RMS)
    noise = gaussian_at_rms(rng, len(joints), jitter * MEDIAPIPE_JITTER_RMS)
    return joints + offset + noise
