"""`asgl-pipeline tracklets VIDEO_OR_FOLDER... --out DIR`: cut raw multi-person footage into
person tracklets that `embed` and `search` read with `--dataset folder --root DIR`.

    every frame ─ person detector (pipeline/footage/detect.py) ─ norfair tracker (track.py)
                ─ a crop per tracked person (crops.py) ─→ DIR/<video>/t<track>/<frame>.jpg

    DIR/manifest.csv       path,pid,clothes,camera,split — pid = "<video>-t<track>" (unknown
                           people), clothes "unknown", camera per video or --camera, split gallery
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
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2

from pipeline.config import Config
from pipeline.datasets import (
    Failure,
    FrameReadError,
    estimated_frame_count,
    iter_frames,
    write_failures,
)
from pipeline.footage.crops import person_crop
from pipeline.footage.detect import DETECTORS, make_detector
from pipeline.footage.inputs import Footage, find_footage
from pipeline.footage.preview import draw_tracks, preview_indices, preview_strip
from pipeline.footage.track import PersonTracker, TrackerSettings
from pipeline.io import atomic_write_json, atomic_write_text
from stages import StageError

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


@dataclass
class TrackletsSummary:
    out: str
    manifest: str
    failures_csv: str
    videos: int
    processed: int  # this run
    skipped: int  # finished by an earlier run
    failed: int  # unreadable videos
    frames: int
    detections: int
    tracks_kept: int
    tracks_dropped: int
    failures: int
    seconds: float
    frames_per_second: float  # this run's decoded frames over its detection + tracking time
    records: list[VideoRecord]


def crop_size(config: Config) -> tuple[int, int]:
    """(width, height) of the crops: the model's input aspect, at least MIN_CROP_HEIGHT tall."""
    height = max(config.train.height, MIN_CROP_HEIGHT)
    return max(1, round(height * config.train.width / config.train.height)), height


def _settings(config: Config) -> dict:
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


def _check(config: Config) -> None:
    t = config.tracklets
    problems = []
    if t.detector not in DETECTORS:
        problems.append(f"--detector must be one of {', '.join(DETECTORS)}, got {t.detector!r}")
    if t.detector_model and t.detector != "onnx":
        problems.append(f"--detector-model is for --detector onnx (got --detector {t.detector})")
    if t.detector == "onnx" and not Path(t.detector_model).is_file():
        problems.append(
            f"--detector onnx needs --detector-model FILE (got {t.detector_model!r}, not a file)"
        )
    if t.min_frames < 1 or t.max_age < 1 or not 0 < t.min_iou < 1 or t.margin < 0 or t.upscale <= 0:
        problems.append(
            "need --min-frames ≥ 1, max_age ≥ 1, 0 < min_iou < 1, margin ≥ 0, upscale > 0"
        )
    if problems:
        raise StageError("; ".join(problems))


def _claim_output(out: Path, run_info: dict, overwrite: bool) -> None:
    """Refuse a folder that holds another run's tracklets (or anything else) unless --overwrite;
    a folder of the same run is resumed."""
    record = out / RUN_FILE
    if record.is_file():
        same = json.loads(record.read_text()) == run_info
        if same and not overwrite:
            return
        if not overwrite:
            raise StageError(
                f"{out} holds tracklets of another run (other inputs or settings, see {record}) "
                "— pass --overwrite to replace them, or choose another --out"
            )
        shutil.rmtree(out)
    elif out.is_dir() and any(out.iterdir()):
        raise StageError(
            f"{out} is not empty and holds no tracklets run ({RUN_FILE} missing) — choose a new or "
            "empty folder for --out (--overwrite only replaces an earlier tracklets output)"
        )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(record, run_info)


def _detector(config: Config):
    t = config.tracklets
    try:
        return make_detector(
            t.detector, t.detector_model, None if t.min_score < 0 else t.min_score, t.upscale
        )
    except ImportError:
        raise StageError(
            "--detector onnx needs onnxruntime — pip install 'asgl-pipeline[onnx]'"
        ) from None
    except Exception as error:  # onnxruntime raises its own types for a file it cannot load
        raise StageError(
            f"cannot load the detector model {t.detector_model}: {error} — pass a "
            "YOLO-style ONNX person detector"
        ) from None


def _track_video(footage: Footage, record: VideoRecord, config: Config, folder: Path, bar) -> list:
    """Detect, track and write crops of one video into `folder` (filled in `record`); returns
    the box rows [frame, track, x0, y0, x1, y1, score] of every crop."""
    t = config.tracklets
    detector = _detector(config)
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


def _write_boxes(path: Path, rows: list, kept: dict[str, int]) -> None:
    """One row per crop of a kept track: frame number (1-based, the crop's file name), track,
    box in frame pixels and detection score — the tracks in MOT Challenge's spirit."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(BOX_COLUMNS)
    writer.writerows(row for row in rows if row[1] in kept)
    atomic_write_text(path, text.getvalue())


def _finish_tracks(record: VideoRecord, folder: Path, min_frames: int) -> None:
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


def _process(footage: Footage, camera: int, config: Config, out: Path, bar) -> VideoRecord:
    """One video, written beside its final place and renamed in when complete."""
    record = VideoRecord(footage.name, footage.source, camera)
    partial = out / f".partial-{footage.name}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    started = time.perf_counter()
    try:
        rows = _track_video(footage, record, config, partial, bar)
    except FrameReadError as error:
        shutil.rmtree(partial)
        record.failures.append(["unreadable video", f"{footage.source} ({error})"])
        return record
    record.seconds = time.perf_counter() - started
    _finish_tracks(record, partial, config.tracklets.min_frames)
    _write_boxes(partial / BOXES, rows, record.tracks)
    atomic_write_json(partial / VIDEO_FILE, asdict(record))
    final = out / footage.name
    if final.exists():
        shutil.rmtree(final)  # a stale folder without its video.json (never finished)
    partial.rename(final)
    return record


def _write_manifest(path: Path, records: list[VideoRecord]) -> None:
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


def _load_record(folder: Path) -> VideoRecord | None:
    path = folder / VIDEO_FILE
    if not path.is_file():
        return None
    return VideoRecord(**json.loads(path.read_text()))


def run(
    config: Config,
    inputs: tuple[str, ...] | list[str] = (),
    log: Callable[[str], None] = print,
) -> TrackletsSummary:
    from tqdm import tqdm

    _check(config)
    # FFmpeg's own lines for a broken file ("moov atom not found") would sit in the progress bar;
    # the failure is recorded in failures.csv with its reason instead. Read when a video opens.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    t = config.tracklets
    footage, problems = find_footage(list(inputs))
    if not inputs or not footage:
        detail = "; ".join(problems) or "no input given"
        raise StageError(
            f"nothing to read ({detail}) — pass video files, frame folders or folders of videos"
        )
    out = Path(t.out)
    _claim_output(
        out, {"inputs": [f.source for f in footage], "settings": _settings(config)}, t.overwrite
    )
    failures = [Failure("missing input", problem) for problem in problems]
    cameras = [t.camera or number for number, _ in enumerate(footage, start=1)]
    records, todo = [], []
    for item, camera in zip(footage, cameras):
        done = _load_record(out / item.name)
        records.append(done)
        if done is None:
            todo.append((item, camera))
    total = sum(estimated_frame_count(item.as_tracklet(0)) for item, _ in todo)
    log(
        f"tracklets: {len(footage)} video(s) → {out}; {len(footage) - len(todo)} already done, "
        f"{len(todo)} to do (~{total} frames), detector {t.detector}, tracker norfair"
    )
    started = time.perf_counter()
    with tqdm(total=total, unit="frame", desc="tracklets", mininterval=1.0) as bar:
        fresh = [_process(item, camera, config, out, bar) for item, camera in todo]
    done = iter(fresh)
    records = [record if record is not None else next(done) for record in records]
    summary = _summarise(out, records, fresh, time.perf_counter() - started, failures)
    _report(summary, t.strict, log)
    return summary


def _summarise(
    out: Path,
    records: list[VideoRecord],
    fresh: list[VideoRecord],
    seconds: float,
    failures: list[Failure],
) -> TrackletsSummary:
    for record in records:
        failures.extend(Failure(reason, path, record.name) for reason, path in record.failures)
    _write_manifest(out / MANIFEST, records)
    write_failures(out / FAILURES, failures)
    run_frames, run_seconds = sum(r.frames for r in fresh), sum(r.seconds for r in fresh)
    return TrackletsSummary(
        out=str(out),
        manifest=str(out / MANIFEST),
        failures_csv=str(out / FAILURES),
        videos=len(records),
        processed=len(fresh),
        skipped=len(records) - len(fresh),
        failed=sum(any(f[0] == "unreadable video" for f in r.failures) for r in records),
        frames=sum(r.frames for r in records),
        detections=sum(r.detections for r in records),
        tracks_kept=sum(len(r.tracks) for r in records),
        tracks_dropped=sum(r.dropped for r in records),
        failures=len(failures),
        seconds=seconds,
        frames_per_second=run_frames / run_seconds if run_seconds > 0 else 0.0,
        records=records,
    )


def _report(s: TrackletsSummary, strict: bool, log: Callable[[str], None]) -> None:
    for record in s.records:
        for reason, path in record.failures:
            if reason == "unreadable video" or reason.startswith("truncated video"):
                log(f"tracklets: {reason}: {path} — the other videos go on")
        if any(reason == "no person" for reason, _ in record.failures):
            log(
                f"tracklets: no person found in {record.source} ({record.frames} frames, "
                f"{record.detections} detections, {record.dropped} track(s) shorter than "
                "--min-frames) — nothing written for it"
            )
    log(
        f"tracklets: {s.videos} video(s) ({s.processed} new, {s.skipped} already done, {s.failed} "
        f"unreadable), {s.frames} frames, {s.detections} detections, {s.tracks_kept} tracks kept, "
        f"{s.tracks_dropped} dropped (< min frames); {s.frames_per_second:.1f} frames/s "
        f"detection+tracking; {s.failures} failure(s) → {s.failures_csv}; manifest {s.manifest}"
    )
    if strict and s.failures:
        first = next(iter(f for r in s.records for f in r.failures), ["missing input", ""])
        raise StageError(
            f"{s.failures} input problem(s) with --strict (first: {first[0]}: "
            f"{first[1]}) — see {s.failures_csv}"
        )
