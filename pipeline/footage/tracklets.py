"""Raw multi-person footage → person tracklets (`asgl-pipeline tracklets`): every frame through a
person detector (detect.py) and the norfair tracker (track.py), a crop per tracked person
(crops.py), one folder per video. Output layout:

    DIR/<video>/t<track>/<frame>.jpg  the crops (frame number 1-based)
    DIR/manifest.csv       path,pid,clothes,camera,split — pid = "<video>-t<track>" (unknown
                           people), clothes "unknown", camera per video or `tracklets.camera`,
                           split gallery
    DIR/<video>/preview.jpg  a few frames with the tracks drawn
    DIR/<video>/video.json   what was found (frames, detections, tracks kept and dropped)
    DIR/<video>/boxes.csv    frame,track,x0,y0,x1,y1,score: the box of every crop kept
    DIR/failures.csv       reason,path,key — unreadable or truncated videos, videos with no person
    DIR/tracklets.json     the inputs and settings of the run that owns DIR

A video is written into DIR/.partial-<video> and renamed into place when finished, so a killed
run leaves finished videos complete and the next run (same inputs and settings) skips them.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2

from pipeline.config import Config
from pipeline.errors import StageError
from pipeline.footage.crops import person_crop
from pipeline.footage.detect import make_detector
from pipeline.footage.inputs import Footage
from pipeline.footage.preview import draw_tracks, preview_indices, preview_strip
from pipeline.footage.track import PersonTracker, TrackerSettings
from pipeline.io import atomic_write_json, atomic_write_text
from pipeline.layouts import FrameReadError, estimated_frame_count, iter_frames

RUN_FILE = "tracklets.json"
VIDEO_FILE = "video.json"
MANIFEST = "manifest.csv"
FAILURES = "failures.csv"
PREVIEW = "preview.jpg"
BOXES = "boxes.csv"
BOX_COLUMNS = ("frame", "track", "x0", "y0", "x1", "y1", "score")
JPEG = [cv2.IMWRITE_JPEG_QUALITY, 95]
# Crops keep the model's input aspect (train.height : train.width) but are never shorter than
# this: `embed` runs MediaPipe on them, which misses whole tracklets at 64x128 (synth's measure).
MIN_CROP_HEIGHT = 256


@dataclass
class VideoRecord:
    name: str
    source: str
    camera: int
    frames: int = 0  # decoded frames
    expected: int = 0  # the container's frame count (0 = unknown)
    unreadable: int = 0  # frame images that could not be decoded
    detections: int = 0
    tracks: dict[str, int] = field(default_factory=dict)  # kept track folder → crops
    dropped: int = 0  # tracks shorter than min_frames
    seconds: float = 0.0
    failures: list[list[str]] = field(default_factory=list)  # [reason, path]


def crop_size(config: Config) -> tuple[int, int]:
    """(width, height) of the crops: the model's input aspect, at least MIN_CROP_HEIGHT tall."""
    height = max(config.train.height, MIN_CROP_HEIGHT)
    return max(1, round(height * config.train.width / config.train.height)), height


def run_settings(config: Config) -> dict:
    t = config.tracklets
    model = str(Path(t.detector_model).absolute()) if t.detector_model else ""
    return {
        "detector": t.detector,
        "detector_model": model,
        "min_score": t.min_score,
        "upscale": t.upscale,
        "min_iou": t.min_iou,
        "max_age": t.max_age,
        "min_frames": t.min_frames,
        "margin": t.margin,
        "camera": t.camera,
        "crop": list(crop_size(config)),
    }


def claim_output(out: Path, run_info: dict, overwrite: bool) -> None:
    """Refuse a folder that holds another run's tracklets (or anything else) unless `overwrite`;
    a folder of the same run is resumed."""
    record = out / RUN_FILE
    if record.is_file():
        same = json.loads(record.read_text()) == run_info
        if same and not overwrite:
            return
        if not overwrite:
            raise StageError(
                f"{out} holds tracklets of another run (other inputs or settings, see {record}) "
                "— replace them (`tracklets.overwrite`), or choose another `tracklets.out`"
            )
        shutil.rmtree(out)
    elif out.is_dir() and any(out.iterdir()):
        raise StageError(
            f"{out} is not empty and holds no tracklets run ({RUN_FILE} missing) — choose a new or "
            "empty folder for `tracklets.out` (`tracklets.overwrite` only replaces an earlier "
            "tracklets output)"
        )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(record, run_info)


def make_run_detector(config: Config):
    t = config.tracklets
    try:
        return make_detector(
            t.detector, t.detector_model, None if t.min_score < 0 else t.min_score, t.upscale
        )
    except ImportError:
        raise StageError(
            "the onnx detector needs onnxruntime — pip install 'asgl-pipeline[onnx]'"
        ) from None
    except Exception as error:  # onnxruntime raises its own types for a file it cannot load
        raise StageError(
            f"cannot load the detector model {t.detector_model}: {error} — pass a "
            "YOLO-style ONNX person detector"
        ) from None


def track_video(footage: Footage, record: VideoRecord, config: Config, folder: Path, bar) -> list:
    """Detect, track and write crops of one video into `folder` (filled in `record`); returns
    the box rows [frame, track, x0, y0, x1, y1, score] of every crop."""
    t = config.tracklets
    detector = make_run_detector(config)
    tracker = PersonTracker(TrackerSettings(min_iou=t.min_iou, max_age=t.max_age))
    size = crop_size(config)
    tracklet = footage.as_tracklet(record.camera)
    record.expected = estimated_frame_count(tracklet)
    wanted, drawn, rows = preview_indices(record.expected), [], []
    for index, (where, frame) in enumerate(iter_frames(tracklet)):
        bar.update(1)
        if frame is None:
            record.unreadable += 1
            record.failures.append(["unreadable frame", where])
            continue
        record.frames += 1
        detections = detector.detect(frame)
        record.detections += len(detections)
        observations = tracker.update(detections)
        for obs in observations:
            name = f"t{obs.track:04d}"
            (folder / name).mkdir(exist_ok=True)
            crop = person_crop(frame, obs.box, size, t.margin)
            cv2.imwrite(str(folder / name / f"{index + 1:06d}.jpg"), crop, JPEG)
            record.tracks[name] = record.tracks.get(name, 0) + 1
            rows.append(
                [index + 1, name, *(round(float(v), 1) for v in obs.box), round(obs.score, 3)]
            )
        if index in wanted:
            drawn.append(draw_tracks(frame, observations))
    if drawn:
        cv2.imwrite(str(folder / PREVIEW), preview_strip(drawn), JPEG)
    return rows


def write_boxes(path: Path, rows: list, kept: dict[str, int]) -> None:
    """One row per crop of a kept track: frame number (1-based, the crop's file name), track,
    box in frame pixels and detection score — the tracks in MOT Challenge's spirit."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(BOX_COLUMNS)
    writer.writerows(row for row in rows if row[1] in kept)
    atomic_write_text(path, text.getvalue())


def finish_tracks(record: VideoRecord, folder: Path, min_frames: int) -> None:
    for name, count in sorted(record.tracks.items()):
        if count < min_frames:
            shutil.rmtree(folder / name)
            del record.tracks[name]
            record.dropped += 1
    if record.expected and record.frames + record.unreadable < record.expected:
        record.failures.append(
            [
                f"truncated video (decoded {record.frames} of {record.expected} frames)",
                record.source,
            ]
        )
    if not record.tracks:
        record.failures.append(["no person", record.source])


def process_video(footage: Footage, camera: int, config: Config, out: Path, bar) -> VideoRecord:
    """One video, written beside its final place and renamed in when complete."""
    record = VideoRecord(footage.name, footage.source, camera)
    partial = out / f".partial-{footage.name}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    started = time.perf_counter()
    try:
        rows = track_video(footage, record, config, partial, bar)
    except FrameReadError as error:
        shutil.rmtree(partial)
        record.failures.append(["unreadable video", f"{footage.source} ({error})"])
        return record
    record.seconds = time.perf_counter() - started
    finish_tracks(record, partial, config.tracklets.min_frames)
    write_boxes(partial / BOXES, rows, record.tracks)
    atomic_write_json(partial / VIDEO_FILE, asdict(record))
    final = out / footage.name
    if final.exists():
        shutil.rmtree(final)  # a stale folder without its video.json (never finished)
    partial.rename(final)
    return record


def write_manifest(path: Path, records: list[VideoRecord]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "pid", "clothes", "camera", "split"])
    for record in records:
        for name in sorted(record.tracks):
            writer.writerow(
                [
                    f"{record.name}/{name}",
                    f"{record.name}-{name}",
                    "unknown",
                    record.camera,
                    "gallery",
                ]
            )
    atomic_write_text(path, text.getvalue())


def load_record(folder: Path) -> VideoRecord | None:
    path = folder / VIDEO_FILE
    if not path.is_file():
        return None
    return VideoRecord(**json.loads(path.read_text()))
