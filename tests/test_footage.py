"""Footage building blocks: crops, YOLO output decoding (and a tiny ONNX detector), the norfair
tracker on constructed boxes, CLEAR-MOT counting on constructed cases, input discovery."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.footage.crops import crop_box, person_crop
from pipeline.footage.detect import Detections, decode_yolo, non_max_suppression
from pipeline.footage.inputs import find_footage
from pipeline.footage.mot import clear_mot, detection_figures
from pipeline.footage.track import PersonTracker, TrackerSettings


def test_crop_box_has_margin_and_aspect():
    box = crop_box(np.array([100, 50, 140, 150]), margin=0.1, aspect=2.0)
    width, height = box[2] - box[0], box[3] - box[1]
    assert height == pytest.approx(120)  # 100 px tall + 10 % each side
    assert height / width == pytest.approx(2.0)
    assert (box[0] + box[2]) / 2 == pytest.approx(120) and (box[1] + box[3]) / 2 == pytest.approx(
        100
    )
    wide = crop_box(np.array([0, 0, 100, 50]), margin=0.0, aspect=2.0)
    assert wide[2] - wide[0] == pytest.approx(100) and wide[3] - wide[1] == pytest.approx(200)


def test_person_crop_size_and_border_padding():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[:, :100] = 200  # left half bright
    crop = person_crop(frame, np.array([-20, 10, 20, 90]), (64, 128), margin=0.0)
    assert crop.shape == (128, 64, 3)
    assert crop.mean() > 150  # the part outside the frame repeats the (bright) border


def test_decode_yolo_v8_and_v5_layouts():
    # v8: (1, 4 + classes, N) channels first; one person at (50, 60) 20x40, one car.
    v8 = np.zeros((1, 6, 8), np.float32)
    v8[0, :, 0] = [50, 60, 20, 40, 0.9, 0.1]
    v8[0, :, 1] = [10, 10, 4, 4, 0.05, 0.95]
    boxes, scores = decode_yolo(v8, 0)
    assert boxes[0].tolist() == [40, 40, 60, 80] and scores[0] == pytest.approx(0.9)
    assert scores[1] == pytest.approx(0.05)
    # v5: (1, N, 5 + classes) with objectness multiplying the class score.
    v5 = np.zeros((1, 8, 7), np.float32)
    v5[0, 0] = [50, 60, 20, 40, 0.5, 0.8, 0.1]
    boxes, scores = decode_yolo(v5, 0)
    assert boxes[0].tolist() == [40, 40, 60, 80] and scores[0] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="no column for class 5"):
        decode_yolo(v5, 5)


def test_non_max_suppression_keeps_the_best_of_overlapping_boxes():
    found = Detections(
        np.array([[0, 0, 10, 20], [1, 0, 11, 20], [30, 0, 40, 20]], np.float32),
        np.array([0.5, 0.9, 0.7], np.float32),
    )
    kept = non_max_suppression(found)
    assert sorted(kept.scores.tolist()) == pytest.approx([0.7, 0.9])


def test_onnx_detector_undoes_the_letterbox(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    from pipeline.footage.detect import OnnxDetector

    # A 64x64 "detector" that always reports one person at input box (16, 24)-(48, 56)
    # plus a weak one; its output adds 0 x mean(input) so the graph uses its input.
    out = np.zeros((1, 5, 8), np.float32)
    out[0, :, 0] = [32, 40, 32, 32, 0.9]
    out[0, :, 1] = [5, 5, 2, 2, 0.1]
    const = helper.make_tensor("c", TensorProto.FLOAT, out.shape, out.ravel())
    zero = helper.make_tensor("z", TensorProto.FLOAT, [1], [0.0])
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "z"], ["m0"]),
        helper.make_node("Add", ["c", "m0"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 5, 8])],
        [const, zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, tmp_path / "tiny.onnx")
    detector = OnnxDetector(tmp_path / "tiny.onnx", min_score=0.4)
    # A 128x64 (w x h) frame is letterboxed into 64x64 at gain 0.5 with 16 px bars top and bottom.
    found = detector.detect(np.zeros((64, 128, 3), np.uint8))
    assert len(found) == 1
    assert found.boxes[0].tolist() == pytest.approx([32, 16, 96, 80 - 16])


def _walk(start: float, step: float, frames: int, y: float = 0.0):
    return [np.array([start + step * t, y, start + step * t + 40, y + 100]) for t in range(frames)]


def test_tracker_keeps_identities_through_a_short_occlusion():
    """Two people walk towards each other; the farther one is not detected for 6 frames while
    the nearer one passes in front of it. A constant-velocity filter carries its track."""
    a, b = _walk(0, 8, 40), _walk(320, -8, 40, y=5)
    tracker = PersonTracker(TrackerSettings(max_age=10))
    ids = {"a": set(), "b": set()}
    for t in range(40):
        hidden = 17 <= t < 23
        boxes = [a[t]] + ([] if hidden else [b[t]])
        observations = tracker.update(
            Detections(np.array(boxes, np.float32), np.ones(len(boxes), np.float32))
        )
        for obs in observations:
            near_a = np.abs(obs.box - a[t]).max() < 1e-3
            ids["a" if near_a else "b"].add(obs.track)
    assert len(ids["a"]) == 1 and len(ids["b"]) == 1 and ids["a"] != ids["b"]


def test_tracker_starts_a_new_track_after_a_long_gap():
    a = _walk(0, 8, 40)
    tracker = PersonTracker(TrackerSettings(max_age=3))
    seen = set()
    for t in range(40):
        boxes = [] if 10 <= t < 25 else [a[t]]
        for obs in tracker.update(
            Detections(np.array(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes), np.float32))
        ):
            seen.add(obs.track)
    assert len(seen) == 2


BOX_A, BOX_B = (0, 0, 10, 20), (50, 0, 60, 20)


def test_clear_mot_perfect_output():
    truth = [{1: BOX_A, 2: BOX_B}] * 5
    output = [{7: BOX_A, 8: BOX_B}] * 5
    figures = clear_mot(truth, output)
    assert figures.mota == pytest.approx(1.0) and figures.id_switches == 0
    assert figures.recall == pytest.approx(1.0) and figures.motp_iou == pytest.approx(1.0)


def test_clear_mot_counts_a_swap_misses_and_false_positives():
    truth = [{1: BOX_A, 2: BOX_B}] * 4
    output = [
        {7: BOX_A, 8: BOX_B},
        {7: BOX_A, 8: BOX_B},
        {8: BOX_A, 7: BOX_B},
        {8: BOX_A, 9: (100, 0, 110, 20)},
    ]
    figures = clear_mot(truth, output)
    # frame 3: both ids swap (2 switches); frame 4: gt 2 missed, id 9 is a false positive.
    assert figures.id_switches == 2
    assert figures.misses == 1 and figures.false_positives == 1
    assert figures.mota == pytest.approx(1 - (1 + 1 + 2) / 8)


def test_clear_mot_counts_a_fragmentation():
    truth = [{1: BOX_A}] * 5
    output = [{3: BOX_A}, {3: BOX_A}, {}, {3: BOX_A}, {3: BOX_A}]
    figures = clear_mot(truth, output)
    assert figures.fragmentations == 1 and figures.id_switches == 0 and figures.misses == 1


def test_clear_mot_rejects_a_box_below_half_iou():
    truth = [{1: BOX_A}]
    shifted = (6, 0, 16, 20)  # IoU 4/16 = 0.25
    figures = detection_figures(truth, [np.array([shifted])])
    assert figures.matches == 0 and figures.false_positives == 1 and figures.recall == 0


def test_find_footage(tmp_path):
    (tmp_path / "cam1.avi").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    frames = tmp_path / "walk"
    frames.mkdir()
    (frames / "0001.jpg").write_bytes(b"")
    found, problems = find_footage(
        [str(tmp_path), str(tmp_path / "cam1.avi"), str(tmp_path / "nope")]
    )
    assert [f.name for f in found] == ["cam1", "walk", "cam1-2"]
    assert found[1].frames and not found[0].frames
    assert problems == [f"{tmp_path / 'nope'} does not exist"]
