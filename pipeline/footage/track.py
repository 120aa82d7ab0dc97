"""Multi-object tracking with norfair (Tryolabs; a maintained tracker from the package index).

Why norfair: of the trackers on the index it is the one that installs into this environment as
it is. supervision's ByteTrack (up to 0.27) and the `trackers` package both require the
`opencv-python` distribution, a second cv2 beside the `opencv-contrib-python` that MediaPipe
needs, and `trackers` also requires numpy ≥ 2, which MediaPipe 0.10.21 forbids; supervision from
0.28 no longer ships ByteTrack; boxmot pulls torchvision (whose wheels do not import on the CPU
torch build used here) and opencv-python. norfair needs only numpy, scipy, filterpy and rich.

Each box is tracked as its two corners with norfair's Kalman filter and matched by IoU
(`distance_threshold` is 1 − the smallest IoU accepted). A track survives `max_age` frames
without a detection, which carries it through a crossing in which a nearer person hides it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.footage.detect import Detections


@dataclass(frozen=True)
class TrackerSettings:
    min_iou: float = 0.3  # smallest IoU between a track's prediction and a detection it takes
    max_age: int = 15  # frames a track is kept alive without a detection (1 s at 15 frames/s)
    init_frames: int = 2  # consecutive detections before a track is confirmed


@dataclass(frozen=True)
class Observation:
    track: int  # track id, from 1
    box: np.ndarray  # (4,) the detection's box x0, y0, x1, y1 this frame
    score: float


class PersonTracker:
    """`update(detections) -> [Observation]`: confirmed tracks that a detection of this frame
    was assigned to (frames in which a track only coasts on its prediction give no crop)."""

    def __init__(self, settings: TrackerSettings = TrackerSettings()):
        from norfair import Tracker

        self.settings = settings
        # norfair's hit counter counts down from hit_counter_max; init delay must stay below it.
        self.tracker = Tracker(
            distance_function="iou",
            distance_threshold=1.0 - settings.min_iou,
            hit_counter_max=settings.max_age,
            initialization_delay=min(settings.init_frames, settings.max_age - 1),
        )

    def update(self, detections: Detections) -> list[Observation]:
        from norfair import Detection

        found = [
            Detection(
                points=box.reshape(2, 2).astype(np.float64),
                scores=np.full(2, max(float(score), 1e-3)),
                data=k,
            )
            for k, (box, score) in enumerate(zip(detections.boxes, detections.scores))
        ]
        tracked = self.tracker.update(detections=found)
        this_frame = {id(d) for d in found}
        out = []
        for obj in tracked:
            if (
                obj.id is None
                or obj.last_detection is None
                or id(obj.last_detection) not in this_frame
            ):
                continue
            k = obj.last_detection.data
            out.append(
                Observation(int(obj.id), detections.boxes[k].copy(), float(detections.scores[k]))
            )
        return sorted(out, key=lambda o: o.track)


def follow(frames, detector, tracker: PersonTracker):
    """Detect and track frame by frame: yields `(index, frame, detections, observations)`;
    `frames` may be any iterable of BGR images (a video is streamed, never held whole)."""
    for index, frame in enumerate(frames):
        detections = detector.detect(frame)
        yield index, frame, detections, tracker.update(detections)
