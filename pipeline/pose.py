"""MediaPipe pose (mediapipe 0.10.21, `mp.solutions.pose`, bundled `model_complexity=1` model).

One `PoseEstimator` per worker process; `reset()` between tracklets so tracking never carries
a person over from the previous clip. Frames are BGR uint8 as OpenCV reads them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import metadata

import numpy as np

NUM_LANDMARKS = 33
BUNDLED_COMPLEXITY = 1  # complexities 0 and 2 would download a model; impossible offline


def mediapipe_version() -> str:
    """The installed mediapipe's version, read without importing it (~1 s); "absent" if none."""
    try:
        return metadata.version("mediapipe")
    except metadata.PackageNotFoundError:
        return "absent"


@contextmanager
def native_stderr_silenced(silenced: bool = True) -> Iterator[None]:
    """MediaPipe's C++ side (TensorFlow Lite, absl) writes its start-up notices ("Created
    TensorFlow Lite XNNPACK delegate", "W0000 … inference_feedback_manager") to file descriptor 2
    directly, past Python's `sys.stderr` and its logging switches, once per estimator: point that
    descriptor at /dev/null meanwhile. Python exceptions are unaffected."""
    if not silenced:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class PoseEstimator:
    """Video-mode (tracking) pose estimator returning arrays ready for the cache. MediaPipe's own
    log lines are silenced unless `verbose`."""

    def __init__(
        self,
        model_complexity: int = BUNDLED_COMPLEXITY,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        verbose: bool = False,
    ):
        if model_complexity != BUNDLED_COMPLEXITY:
            raise ValueError(
                f"model_complexity={model_complexity} needs a model download; only "
                f"{BUNDLED_COMPLEXITY} is bundled with mediapipe 0.10.21"
            )
        self._options = dict(
            static_image_mode=False,
            model_complexity=model_complexity,
            smooth_landmarks=True,
            enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        self._pose = None
        self._verbose = verbose

    def _estimator(self):
        if self._pose is None:
            import mediapipe as mp  # imported lazily: ~1 s and 100+ MB, only in pose workers

            with native_stderr_silenced(not self._verbose):
                self._pose = mp.solutions.pose.Pose(**self._options)
        return self._pose

    def reset(self) -> None:
        """Forget the tracked person (call at the start of every tracklet)."""
        if self._pose is not None:
            self._pose.reset()

    def close(self) -> None:
        if self._pose is not None:
            with native_stderr_silenced(not self._verbose):
                self._pose.close()
            self._pose = None

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def process_frame(self, frame_bgr: np.ndarray) -> dict[str, np.ndarray] | None:
        """One frame → {world33 (33,3), image33 (33,3), visibility (33,)} or None (no person)."""
        import cv2  # third-party and ~0.2 s: only where frames are read

        estimator = self._estimator()
        with native_stderr_silenced(not self._verbose):  # the graph logs on its first frames
            result = estimator.process(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
        if result.pose_world_landmarks is None or result.pose_landmarks is None:
            return None
        world = result.pose_world_landmarks.landmark
        image = result.pose_landmarks.landmark
        return {
            "world33": np.array([(p.x, p.y, p.z) for p in world], dtype=np.float32),
            "image33": np.array([(p.x, p.y, p.z) for p in image], dtype=np.float32),
            "visibility": np.array([p.visibility for p in image], dtype=np.float32),
        }

    def process_sequence(self, frames: Iterable[np.ndarray]) -> dict[str, np.ndarray]:
        """A tracklet's frames → world33 (T,33,3), image33 (T,33,3), visibility (T,33), present (T,).

        Frames without a detection are zero rows with present=False; filling them is the
        caller's decision (see `pipeline.skeleton.fill_missing`). A `None` frame (one that could
        not be decoded) is not shown to the tracker and counts as not present."""
        self.reset()
        rows = [None if frame is None else self.process_frame(frame) for frame in frames]
        count = len(rows)
        out = {
            "world33": np.zeros((count, NUM_LANDMARKS, 3), dtype=np.float32),
            "image33": np.zeros((count, NUM_LANDMARKS, 3), dtype=np.float32),
            "visibility": np.zeros((count, NUM_LANDMARKS), dtype=np.float32),
            "present": np.zeros(count, dtype=bool),
        }
        for t, row in enumerate(rows):
            if row is not None:
                for name, value in row.items():
                    out[name][t] = value
                out["present"][t] = True
        return out
