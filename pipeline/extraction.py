"""Per-tracklet pose extraction (SPEC §4): decode frames one at a time → MediaPipe pose in video
mode (estimator reset per tracklet) → world33 / image33 / visibility / present → 33 → 14 joints →
gaps filled (linear, edges copied; `present` kept) → normalised (`skeleton.normalise` modes).
`extract_groundtruth` is the positive control's source: a synthetic set's rendered joints;
`extract_sequence` a skeleton dataset's (real people's joints from files, no frames).

`extract_tracklet` is the unit of work the preprocess workers run and the benchmark times;
`extract_batch` is one worker's task; `search` extracts a query through it too, so a query's
skeleton is made exactly as the cache's are. `extract_in_workers` runs the batches in the worker
pool (`pipeline.workers`) and hands them back as they finish, to the cache's single writer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from pipeline import skeleton
from pipeline.groundtruth import groundtruth_arrays, read_groundtruth
from pipeline.layouts import Failure, FrameReadError, Tracklet, iter_frames, read_sequence
from pipeline.layouts.skeletons import SequenceError
from pipeline.pose import PoseEstimator
from pipeline.transforms import Transform, apply_transform
from pipeline.workers import exit_with_parent, make_batches, stream_unordered

# Skeleton files have no frames, so Eq. 1 has no (h, w) to divide by: a nominal (1, 1) is
# recorded, which makes `paper` the same as `none` (hip-centred metres). Any fixed scale would do
# as much: the model standardises its joints with the training split's statistics (ARCHITECTURE
# "Joint scale"), and the probe's cues are scale-free.
NOMINAL_FRAME_SIZE = (1, 1)


@dataclass
class Extraction:
    """What one tracklet produced: cache arrays and attributes, or None and the failure(s)."""

    key: str
    arrays: dict[str, np.ndarray] | None
    attrs: dict[str, Any] | None
    failures: list[Failure] = field(default_factory=list)
    frames: int = 0
    detected: int = 0


def image_joints_2d(
    image33: np.ndarray, present: np.ndarray, frame_size: tuple[int, int]
) -> np.ndarray:
    """(T,33,3) MediaPipe image landmarks → (T,14,2) for the 2D-pose ablation.

    MediaPipe gives x in units of frame width and y in units of frame height; x is multiplied by
    w / h so both axes are in units of frame height (body proportions kept, independent of the
    frame size), then the joints are mapped, gaps filled like the 3D ones, and hip-centred.
    """
    h, w = frame_size
    joints = skeleton.map_33_to_14(image33[..., :2])
    joints[..., 0] *= w / h
    return skeleton.normalise(skeleton.fill_missing(joints, present), frame_size, mode="none")


def tracklet_attrs(
    tracklet: Tracklet,
    frames: int,
    detected: int,
    frame_size: tuple[int, int],
    unreadable: list[int],
) -> dict[str, Any]:
    """The cache's per-tracklet attributes (schema of pipeline/cache.py), whatever the pose source."""
    return {
        "pid": tracklet.pid,
        "clothes": tracklet.clothes,
        "camera": int(tracklet.camera),
        "split": tracklet.split,
        "source": tracklet.source,
        "frames": frames,
        "detection_rate": detected / frames,
        "frame_size": np.array(frame_size, dtype=np.int64),
        "unreadable": np.array(unreadable, dtype=np.int64),
    }


def extract_tracklet(tracklet: Tracklet, estimator, normalisation: str = "paper") -> Extraction:
    """One tracklet through a given `PoseEstimator` (reset here) → `Extraction`. Pure apart from
    reading the frames; the unit of work the workers run and the benchmark times."""
    failures: list[Failure] = []
    frame_size: list[tuple[int, int]] = []
    unreadable: list[int] = []

    def frames() -> Iterator[np.ndarray | None]:
        for index, (where, frame) in enumerate(iter_frames(tracklet)):
            if frame is None:
                unreadable.append(index)
                failures.append(Failure("unreadable frame", where, tracklet.key))
            elif not frame_size:
                frame_size.append(frame.shape[:2])
            yield frame

    try:
        pose = estimator.process_sequence(frames())
    except FrameReadError:
        failure = Failure("unreadable video", tracklet.source, tracklet.key)
        return Extraction(tracklet.key, None, None, [failure])
    present = pose["present"]
    count, detected = len(present), int(present.sum())
    if not frame_size:  # one row for the tracklet rather than one per frame
        failure = Failure("no readable frame", tracklet.source, tracklet.key)
        return Extraction(tracklet.key, None, None, [failure], count, 0)
    if detected == 0:
        failures.append(Failure("no person detected", tracklet.source, tracklet.key))
        return Extraction(tracklet.key, None, None, failures, count, 0)

    size = (int(frame_size[0][0]), int(frame_size[0][1]))
    joints = skeleton.fill_missing(skeleton.map_33_to_14(pose["world33"]), present)
    arrays = {
        **pose,
        "joints14": skeleton.normalise(joints, size, mode=normalisation),
        "joints14_2d": image_joints_2d(pose["image33"], present, size),
    }
    attrs = tracklet_attrs(tracklet, count, detected, size, unreadable)
    return Extraction(tracklet.key, arrays, attrs, failures, count, detected)


def extract_groundtruth(tracklet: Tracklet, normalisation: str = "paper") -> Extraction:
    """One synthetic tracklet's ground-truth joints (pipeline/groundtruth.py) → `Extraction`, in
    the cache schema of MediaPipe's; the first frame is read for the frame size."""
    try:
        gt, gt_pixels = read_groundtruth(tracklet.source)
    except (OSError, ValueError):
        failure = Failure("no ground-truth joints", tracklet.source, tracklet.key)
        return Extraction(tracklet.key, None, None, [failure])
    first = next((frame for _, frame in iter_frames(tracklet) if frame is not None), None)
    count = len(gt)
    if (
        first is None
        or gt_pixels.shape[:1] != gt.shape[:1]
        or (tracklet.frames and len(tracklet.frames) != count)
    ):
        failure = Failure("ground truth does not match the frames", tracklet.source, tracklet.key)
        return Extraction(tracklet.key, None, None, [failure], count, 0)
    size = (int(first.shape[0]), int(first.shape[1]))
    attrs = tracklet_attrs(tracklet, count, count, size, [])
    arrays = groundtruth_arrays(gt, size, normalisation, image_joints=gt_pixels)
    return Extraction(tracklet.key, arrays, attrs, [], count, count)


def extract_sequence(
    tracklet: Tracklet,
    dataset: str,
    normalisation: str = "paper",
    transform: Transform | None = None,
) -> Extraction:
    """One skeleton-dataset sequence (`layouts.read_sequence`) → `Extraction` in the cache
    schema: gaps filled as MediaPipe's are, hip-centred, `transform` applied, normalised."""
    try:
        sequence = read_sequence(dataset, tracklet)
    except SequenceError as error:
        failure = Failure(str(error), tracklet.source, tracklet.key)
        return Extraction(tracklet.key, None, None, [failure])
    unreadable = [int(i) for i in sequence.unreadable]
    failures = [
        Failure("unreadable frame", f"{tracklet.source}#{i}", tracklet.key) for i in unreadable
    ]
    joints = skeleton.fill_missing(sequence.joints, sequence.present)
    joints = joints - skeleton.hip_centre(joints)
    if transform is not None:
        joints = apply_transform(transform, joints, tracklet.key)
    count, detected = len(joints), int(sequence.present.sum())
    attrs = {
        **tracklet_attrs(tracklet, count, detected, NOMINAL_FRAME_SIZE, unreadable),
        "first_frame": int(sequence.first_frame),  # of the file; earlier frames were trimmed
    }
    arrays = groundtruth_arrays(joints, NOMINAL_FRAME_SIZE, normalisation, sequence.present)
    return Extraction(tracklet.key, arrays, attrs, failures, count, detected)


def sequence_batch(
    tracklets: list[Tracklet], dataset: str, normalisation: str, transform: Transform | None
) -> list[Extraction]:
    """A batch of skeleton-dataset sequences, read in this process (milliseconds each)."""
    return [extract_sequence(t, dataset, normalisation, transform) for t in tracklets]


def extract_batch(
    tracklets: list[Tracklet],
    normalisation: str,
    model_complexity: int,
    pose_source: str = "mediapipe",
    verbose: bool = False,
    parent_pid: int | None = None,
) -> list[Extraction]:
    """A worker's task: one estimator for the batch, reset per tracklet (or the synthetic set's
    ground truth with `pose_source = "groundtruth"`); MediaPipe's own log lines only when
    `verbose`. A local worker ends when `parent_pid` (the process that started it) dies."""
    exit_with_parent(parent_pid)
    cv2.setNumThreads(1)  # the workers are the parallelism; no decode threads competing with them
    if pose_source == "groundtruth":
        return [extract_groundtruth(t, normalisation) for t in tracklets]
    with PoseEstimator(model_complexity=model_complexity, verbose=verbose) as estimator:
        return [extract_tracklet(t, estimator, normalisation) for t in tracklets]


def extract_in_workers(
    tracklets: Sequence[Tracklet], sizes: Sequence[int], settings, workers: int
) -> Iterator[list[Extraction]]:
    """Every tracklet extracted by `extract_batch` in `workers` local processes, or on the Dask
    cluster at `settings.scheduler` when `settings.backend == "dask"` (`settings`: the
    preprocess section of the configuration; `sizes`: frames per tracklet, for batching); one
    batch's extractions at a time, in the order the batches finish."""
    return stream_unordered(
        extract_batch,
        lambda slots: make_batches(tracklets, sizes, slots),
        (settings.normalisation, settings.model_complexity, settings.pose_source, settings.verbose),
        workers=workers,
        backend=settings.backend,
        scheduler=settings.scheduler,
    )
