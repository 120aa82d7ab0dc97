"""A joints transform applied to skeleton-sequence datasets before they are cached
(`preprocess.joints_transform = "package.module:function"`, `preprocess.transform_args` a JSON
object of keyword arguments): e.g. MediaPipe-like noise added to real bodies, to see its effect
with the same protocol.

    def transform(joints, rng, **args) -> joints

`joints` is (T, 14, 3) float32, metres, hip-centred, in our order and axes (those of MediaPipe's
world landmarks), only the frames that hold the person; `rng` is a `numpy.random.Generator`
seeded from the sequence's key, so each sequence gets its own draw and a re-run the same one.
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
    """`"module:function"` (+ JSON keyword arguments) → a callable, or None when `spec` is empty.
    ValueError with what to fix for a malformed spec, a missing module or function, bad JSON."""
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
    try:
        kwargs = json.loads(args) if args else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"preprocess.transform_args is not JSON ({error})") from None
    if not isinstance(kwargs, dict):
        raise ValueError(
            "preprocess.transform_args must be a JSON object, e.g. '{\"sigma\": 0.02}'"
        )
    return partial(function, **kwargs)


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
