"""A person crop for re-ID: the detection box grown by a margin, then widened or heightened
around its centre to the model's input aspect, cut from the frame (parts outside the frame are
filled by repeating the border) and resized to the model's input size."""

from __future__ import annotations

import cv2
import numpy as np


def crop_box(box: np.ndarray, margin: float, aspect: float) -> np.ndarray:
    """(x0, y0, x1, y1) grown by `margin` × the box size on every side, then grown in one
    direction to height / width = `aspect`."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    w, h = w * (1 + 2 * margin), h * (1 + 2 * margin)
    if h / w > aspect:
        w = h / aspect
    else:
        h = w * aspect
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def person_crop(
    frame: np.ndarray, box: np.ndarray, size: tuple[int, int], margin: float = 0.1
) -> np.ndarray:
    """`size` = (width, height) of the output, e.g. the model's (128, 256)."""
    width, height = size
    x0, y0, x1, y1 = np.round(crop_box(box, margin, height / width)).astype(int)
    frame_h, frame_w = frame.shape[:2]
    pad = max(0, -x0, -y0, x1 - frame_w, y1 - frame_h)
    if pad:
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    patch = frame[y0:y1, x0:x1]
    shrink = patch.shape[0] > height
    return cv2.resize(
        patch, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
