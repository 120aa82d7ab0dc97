"""How well detection and tracking did against ground-truth boxes.

Per frame, ground truth is `{person id: box}` and the output `{track id: box}` (x0, y0, x1, y1).
A pair matches when IoU ≥ 0.5 (the MOT Challenge rule). CLEAR-MOT counting — matches, misses,
false positives, ID switches, fragmentations, MOTA, MOTP — and IDF1 come from `motmetrics`
(py-motmetrics, the reference implementation the MOT Challenge tooling is checked against).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IOU_MATCH = 0.5

Frame = dict[int, Sequence[float]]  # id → (x0, y0, x1, y1)


@dataclass(frozen=True)
class MotFigures:
    frames: int
    truth: int  # ground-truth boxes
    matches: int
    misses: int
    false_positives: int
    id_switches: int
    fragmentations: int
    recall: float
    precision: float
    mota: float
    motp_iou: float  # mean IoU of matched pairs (motmetrics reports 1 - IoU)
    idf1: float
    tracks: int  # distinct output ids
    people: int  # distinct ground-truth ids


def _xywh(frame: Frame) -> tuple[list[int], np.ndarray]:
    ids = sorted(frame)
    boxes = np.array([frame[i] for i in ids], dtype=np.float64).reshape(-1, 4)
    boxes[:, 2:] -= boxes[:, :2]
    return ids, boxes


def clear_mot(truth: Sequence[Frame], output: Sequence[Frame]) -> MotFigures:
    """CLEAR-MOT figures of an output sequence against ground truth, frame by frame."""
    import motmetrics

    if len(truth) != len(output):
        raise ValueError(f"{len(truth)} ground-truth frames but {len(output)} output frames")
    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    for gt_frame, out_frame in zip(truth, output):
        gt_ids, gt_boxes = _xywh(gt_frame)
        out_ids, out_boxes = _xywh(out_frame)
        distances = motmetrics.distances.iou_matrix(gt_boxes, out_boxes, max_iou=1 - IOU_MATCH)
        accumulator.update(gt_ids, out_ids, distances)
    names = [
        "num_frames",
        "num_objects",
        "num_matches",
        "num_misses",
        "num_false_positives",
        "num_switches",
        "num_fragmentations",
        "recall",
        "precision",
        "mota",
        "motp",
        "idf1",
        "num_predictions",
        "num_unique_objects",
    ]
    row = motmetrics.metrics.create().compute(accumulator, metrics=names, name="run").iloc[0]
    out_ids = {i for frame in output for i in frame}

    def number(name: str) -> float:
        value = float(row[name])
        return 0.0 if np.isnan(value) else value

    return MotFigures(
        frames=int(row["num_frames"]),
        truth=int(row["num_objects"]),
        matches=int(row["num_matches"]),
        misses=int(row["num_misses"]),
        false_positives=int(row["num_false_positives"]),
        id_switches=int(row["num_switches"]),
        fragmentations=int(row["num_fragmentations"]),
        recall=number("recall"),
        precision=number("precision"),
        mota=number("mota"),
        motp_iou=1.0 - number("motp") if row["num_matches"] else 0.0,
        idf1=number("idf1"),
        tracks=len(out_ids),
        people=int(row["num_unique_objects"]),
    )


def truth_frames(boxes: np.ndarray, visible: np.ndarray, min_visible: float = 0.0) -> list[Frame]:
    """Ground truth of a rendered scene (`CrowdTruth` arrays) as frames of `{person: box}`:
    people off-frame, or less visible than `min_visible`, are left out of that frame."""
    frames = []
    for t in range(len(boxes)):
        frames.append(
            {
                i: tuple(boxes[t, i])
                for i in range(boxes.shape[1])
                if np.isfinite(boxes[t, i]).all() and visible[t, i] > min_visible
            }
        )
    return frames


def detection_figures(truth: Sequence[Frame], boxes: Sequence[np.ndarray]) -> MotFigures:
    """Detector recall and precision alone: every detection gets its own id, so matching is per
    frame and identities play no part (ignore the ID figures of the result)."""
    output, next_id = [], 0
    for frame_boxes in boxes:
        output.append({next_id + k: tuple(box) for k, box in enumerate(frame_boxes)})
        next_id += len(frame_boxes)
    return clear_mot(truth, output)
