"""`asgl-pipeline search`: rank an embeddings file's tracklets for one query video or frame folder.

The query goes through the same preprocessing (MediaPipe pose with the run's settings) and the
same model as the gallery: the run recorded in the embeddings file, whose fingerprint must still
match (a re-trained or different model makes distances meaningless, so that is an error).
Distance = negative cosine similarity, as in evaluation. Prints a table and writes a rank-list
image (query thumbnail, then the top-k with rank, distance and pid).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.config import Config
from pipeline.data.splits import POSE_FIELDS
from pipeline.datasets import (
    Tracklet,
    estimated_frame_count,
    is_video,
    list_frames,
    read_frames,
)
from pipeline.embeddings import EmbeddingSet, read_embeddings
from pipeline.evaluation import clip_source, embed_sources
from pipeline.extraction import extract_batch
from pipeline.io import atomic_write
from pipeline.runs import RunFolder, TrainedModel
from stages import StageError

THUMB_HEIGHT = 160
CAPTION_HEIGHT = 36
UNKNOWN_CAMERA = -1


@dataclass(frozen=True)
class Match:
    rank: int
    key: str
    path: str
    pid: str
    camera: int
    distance: float  # negative cosine similarity: -1 identical direction, +1 opposite


@dataclass
class SearchResult:
    query: str
    matches: list[Match]
    image: str
    excluded: int  # gallery entries removed by --exclude-same-camera
    fingerprint: str
    seconds: float


def query_tracklet(path: str | Path, camera: int | None) -> Tracklet:
    """A video file or a folder of frame images as a one-off tracklet with unknown identity."""
    path = Path(path).absolute()
    camera_id = UNKNOWN_CAMERA if camera is None else int(camera)
    if path.is_file():
        if not is_video(path):
            raise StageError(
                f"query {path} is neither a video file (.mp4 .avi .mov …) nor a folder of frames "
                "— pass a video or a frame folder"
            )
        return Tracklet(path.name, (), str(path), "", "", camera_id, "query")
    if path.is_dir():
        frames = list_frames(path)
        if not frames:
            raise StageError(
                f"query folder {path} holds no frame images (.jpg .jpeg .png .bmp) — pass a "
                "video or a folder of frames"
            )
        return Tracklet(path.name, frames, "", "", "", camera_id, "query")
    raise StageError(f"query {path} does not exist — pass a video file or a frame folder")


def query_skeleton(tracklet: Tracklet, trained: TrainedModel, verbose: bool = False) -> np.ndarray:
    """The query's skeleton input (T, 14, C), extracted exactly as the preprocess stage does."""
    pre = trained.config.preprocess
    (extraction,) = extract_batch(
        [tracklet], pre.normalisation, pre.model_complexity, pre.pose_source, verbose=verbose
    )
    if extraction.arrays is None:
        reasons = "; ".join(f"{f.reason}: {f.path}" for f in extraction.failures) or "no skeleton"
        if pre.pose_source == "groundtruth":
            hint = (
                "the run was trained on ground-truth skeletons, which only synthetic tracklets "
                "have; search with a run trained on MediaPipe skeletons"
            )
        else:
            hint = (
                f"MediaPipe found no person in {extraction.frames} frame(s); use footage "
                "where one person is visible"
            )
        raise StageError(f"query {tracklet.source}: {reasons} — {hint}")
    return np.asarray(extraction.arrays[POSE_FIELDS[trained.config.model.pose]], dtype=np.float32)


def rank(
    gallery: EmbeddingSet, query: np.ndarray, top: int, exclude_camera: int | None = None
) -> tuple[list[Match], int]:
    """Top-`top` gallery entries by negative cosine (stable order for ties), and how many were
    excluded for sharing `exclude_camera`."""
    distances = -(gallery.features.astype(np.float64) @ query.astype(np.float64))
    cameras = np.asarray(gallery.cameras)
    kept = (
        np.arange(len(gallery))
        if exclude_camera is None
        else np.flatnonzero(cameras != exclude_camera)
    )
    order = kept[np.argsort(distances[kept], kind="stable")][:top]
    matches = [
        Match(
            r + 1,
            gallery.keys[i],
            gallery.paths[i],
            gallery.pids[i],
            gallery.cameras[i],
            float(distances[i]),
        )
        for r, i in enumerate(order)
    ]
    return matches, len(gallery) - len(kept)


def format_table(matches: list[Match]) -> str:
    width = max([len("path")] + [len(m.path) for m in matches])
    lines = [f"{'rank':>4}  {'path':<{width}}  {'pid':<8}  {'camera':>6}  {'distance':>8}"]
    for m in matches:
        lines.append(
            f"{m.rank:>4}  {m.path:<{width}}  {m.pid or '?':<8}  {m.camera:>6}  {m.distance:>8.4f}"
        )
    return "\n".join(lines)


def middle_frame(path: str) -> np.ndarray | None:
    """The middle frame (BGR) of a video file or frame folder; None if it cannot be read."""
    try:
        source = Path(path)
        if source.is_dir():
            tracklet = Tracklet("", list_frames(source), "", "", "", 0, "")
            count = len(tracklet.frames)
        elif source.is_file():
            tracklet = Tracklet("", (), str(source), "", "", 0, "")
            count = estimated_frame_count(tracklet)
        else:
            return None
        return read_frames(tracklet, [max(0, count // 2)])[0] if count else None
    except (StageError, IndexError, OSError):
        return None


def _tile(
    frame: np.ndarray | None, lines: tuple[str, ...], colour: tuple[int, int, int]
) -> np.ndarray:
    if frame is None:
        body = np.full((THUMB_HEIGHT, THUMB_HEIGHT // 2, 3), 200, np.uint8)
        cv2.putText(
            body,
            "no frame",
            (4, THUMB_HEIGHT // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35,
            (60, 60, 60),
            1,
        )
    else:
        width = max(1, round(frame.shape[1] * THUMB_HEIGHT / frame.shape[0]))
        body = cv2.resize(frame, (width, THUMB_HEIGHT), interpolation=cv2.INTER_AREA)
    width = max(body.shape[1], 96)
    tile = np.full((CAPTION_HEIGHT + THUMB_HEIGHT, width, 3), 255, np.uint8)
    tile[CAPTION_HEIGHT:, : body.shape[1]] = body
    for row, text in enumerate(lines):
        cv2.putText(
            tile, text, (3, 14 + 16 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA
        )
    cv2.rectangle(tile, (0, 0), (width - 1, tile.shape[0] - 1), colour, 2)
    return tile


def ranklist_image(query: Tracklet, matches: list[Match], path: str | Path) -> Path:
    """Query thumbnail (blue) then the top-k (grey) with rank, distance and pid, left to right."""
    tiles = [_tile(middle_frame(query.source), ("query", query.key[:14]), (200, 90, 0))]
    for m in matches:
        tiles.append(
            _tile(
                middle_frame(m.path),
                (f"#{m.rank} d={m.distance:.3f}", f"pid {m.pid or '?'}"[:16]),
                (90, 90, 90),
            )
        )
    gap = np.full((tiles[0].shape[0], 6, 3), 255, np.uint8)
    strip = np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)
    ok, encoded = cv2.imencode(".png", strip)
    if not ok:
        raise StageError(f"could not encode the rank-list image for {path}")
    return atomic_write(path, lambda tmp: tmp.write_bytes(encoded.tobytes()))


def default_image(gallery: str | Path, query: Tracklet) -> Path:
    return Path(gallery).parent / "search" / f"{Path(query.key).stem or 'query'}.png"


def gallery_model(embeddings: EmbeddingSet, gallery, run_dir, config: Config) -> RunFolder:
    """The run that embeds the query: `run_dir` (a name or a path) or the one recorded in the
    gallery file; refused when its fingerprint is not the gallery's."""
    folder = (
        RunFolder.resolve(run_dir, config.paths.runs_dir)
        if run_dir
        else RunFolder(Path(embeddings.model.run_dir))
    )
    current = folder.fingerprint()
    if current.fingerprint != embeddings.model.fingerprint:
        raise StageError(
            f"{gallery} was embedded by {embeddings.model.describe()}, but the query would be "
            f"embedded by {current.describe()} — embeddings of different models cannot be "
            f"compared; re-run `asgl-pipeline embed --run {folder.path}` for this gallery, or "
            "search with the model that made it"
        )
    return folder


def embed_query(
    tracklet: Tracklet, trained: TrainedModel, dim: int, gallery, verbose: bool = False
) -> np.ndarray:
    """The query's embedding, made as the gallery's were (same pose extraction, same model)."""
    joints = query_skeleton(tracklet, trained, verbose)
    source = clip_source(tracklet, joints if trained.model.needs_joints else None, len(joints))
    embedding = embed_sources(trained, [source])[0]
    if embedding.shape[0] != dim:
        raise StageError(
            f"query embedding has {embedding.shape[0]} dimensions, {gallery} has {dim} — re-run "
            "`asgl-pipeline embed`"
        )
    return embedding


def run(
    config: Config,
    *,
    gallery: str | Path,
    query: str | Path,
    top: int = 10,
    exclude_same_camera: bool = False,
    query_camera: int | None = None,
    run_dir: str | Path = "",
    image: str | Path = "",
    log: Callable[[str], None] = print,
) -> SearchResult:
    started = time.perf_counter()
    if top < 1:
        raise StageError(f"--top {top}: must be at least 1")
    if exclude_same_camera and query_camera is None:
        raise StageError("--exclude-same-camera needs the query's camera: add --query-camera N")
    embeddings = read_embeddings(gallery)
    folder = gallery_model(embeddings, gallery, run_dir, config)
    tracklet = query_tracklet(query, query_camera)
    trained = folder.load_model(config.train.device)
    embedding = embed_query(
        tracklet, trained, embeddings.features.shape[1], gallery, config.preprocess.verbose
    )
    matches, excluded = rank(
        embeddings, embedding, top, query_camera if exclude_same_camera else None
    )
    if not matches:
        raise StageError(
            f"all {len(embeddings)} tracklets of {gallery} are from camera {query_camera}, the "
            "query's — drop --exclude-same-camera or search a gallery with other cameras"
        )
    image_path = Path(image) if image else default_image(gallery, tracklet)
    ranklist_image(tracklet, matches, image_path)
    result = SearchResult(
        query=tracklet.source,
        matches=matches,
        image=str(image_path),
        excluded=excluded,
        fingerprint=trained.fingerprint.fingerprint,
        seconds=time.perf_counter() - started,
    )
    log(
        f"search: {tracklet.source} against {len(embeddings)} tracklets of {gallery} "
        f"({excluded} excluded as same camera), {trained.fingerprint.describe()}"
    )
    log(format_table(matches))
    log(f"search: rank list → {image_path}; {result.seconds:.1f} s")
    return result
