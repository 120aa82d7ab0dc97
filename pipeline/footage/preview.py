"""A preview image per video: a few frames side by side with every track's box and id drawn in
the track's own colour, so a user can check at a glance what was cut out."""

from __future__ import annotations

import cv2
import numpy as np

PREVIEW_FRAMES = 4
PREVIEW_HEIGHT = 240


def track_colour(track: int) -> tuple[int, int, int]:
    hue = (track * 47) % 180  # far-apart hues for consecutive ids
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return tuple(int(c) for c in bgr)


def draw_tracks(frame: np.ndarray, observations) -> np.ndarray:
    image = frame.copy()
    for obs in observations:
        x0, y0, x1, y1 = (int(round(v)) for v in obs.box)
        colour = track_colour(obs.track)
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, 2)
        cv2.putText(
            image,
            str(obs.track),
            (x0 + 2, max(y0 - 4, 12)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            colour,
            1,
            cv2.LINE_AA,
        )
    return image


def preview_indices(frames: int, count: int = PREVIEW_FRAMES) -> set[int]:
    """Evenly spread frame indices (from an estimated frame count)."""
    if frames <= 0:
        return {0}
    return {int(round(i)) for i in np.linspace(0, frames - 1, min(count, frames) + 2)[1:-1]} or {0}


def preview_strip(drawn: list[np.ndarray]) -> np.ndarray:
    """Drawn frames scaled to one height and placed side by side."""
    scaled = [
        cv2.resize(f, (max(1, round(f.shape[1] * PREVIEW_HEIGHT / f.shape[0])), PREVIEW_HEIGHT))
        for f in drawn
    ]
    return np.concatenate(scaled, axis=1)
