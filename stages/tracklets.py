"""`asgl-pipeline tracklets VIDEO_OR_FOLDER... --out DIR`: cut raw multi-person footage into
person tracklets that `embed` and `search` read with `--dataset folder --root DIR`; the detect →
track → crop writer and the output layout are `pipeline/footage/tracklets.py`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Config
from pipeline.footage.detect import DETECTORS
from pipeline.footage.inputs import find_footage
from pipeline.footage.tracklets import (
    FAILURES,
    MANIFEST,
    VideoRecord,
    claim_output,
    load_record,
    process_video,
    run_settings,
    write_manifest,
)
from pipeline.layouts import Failure, estimated_frame_count, write_failures
from stages import StageError


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
    claim_output(
        out, {"inputs": [f.source for f in footage], "settings": run_settings(config)}, t.overwrite
    )
    failures = [Failure("missing input", problem) for problem in problems]
    cameras = [t.camera or number for number, _ in enumerate(footage, start=1)]
    records, todo = [], []
    for item, camera in zip(footage, cameras):
        done = load_record(out / item.name)
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
        fresh = [process_video(item, camera, config, out, bar) for item, camera in todo]
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
    write_manifest(out / MANIFEST, records)
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
