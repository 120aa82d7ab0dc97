"""Detection + tracking measured on rendered crowd scenes (`pipeline.synth.crowd`), whose
ground-truth boxes are known: what the tests assert, the README reports and `bench` times.

`TruthDetector` feeds the ground truth itself (people at least half visible) to the tracker, so
the tracker's own ID switches through crossings can be told apart from the detector's misses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from pipeline.footage.detect import Detections
from pipeline.footage.mot import MotFigures, clear_mot, detection_figures, truth_frames
from pipeline.footage.track import PersonTracker, TrackerSettings, follow


class TruthDetector:
    """Replays the ground-truth boxes of people at least `min_visible` visible, frame by frame."""

    name = "truth"

    def __init__(self, boxes: np.ndarray, visible: np.ndarray, min_visible: float = 0.5):
        self.frames = truth_frames(boxes, visible, min_visible)
        self.index = 0

    def detect(self, frame) -> Detections:
        found = self.frames[self.index]
        self.index += 1
        boxes = np.array([found[i] for i in sorted(found)], np.float32).reshape(-1, 4)
        return Detections(boxes, np.ones(len(boxes), np.float32))


@dataclass(frozen=True)
class SceneScore:
    detection: MotFigures  # detector alone (per-frame matching; ID figures meaningless)
    tracking: MotFigures  # what the tracklets hold: tracked boxes with their track ids
    seconds_per_frame: float  # detection + tracking


def score_scene(
    frames, truth, detector, settings: TrackerSettings = TrackerSettings(), min_visible: float = 0.0
) -> SceneScore:
    """Run `detector` + the tracker over a scene and score both against its ground truth
    (people less than `min_visible` visible are not expected)."""
    tracker = PersonTracker(settings)
    boxes, output = [], []
    started = time.perf_counter()
    for _, _, detections, observations in follow(frames, detector, tracker):
        boxes.append(detections.boxes)
        output.append({o.track: tuple(o.box) for o in observations})
    seconds = (time.perf_counter() - started) / max(len(frames), 1)
    expected = truth_frames(truth.boxes, truth.visible, min_visible)
    return SceneScore(detection_figures(expected, boxes), clear_mot(expected, output), seconds)
