"""Searching an embeddings file with one query video or frame folder (`asgl-pipeline search`).

The query goes through the same pose extraction and the same model as the gallery did; distance =
negative cosine similarity, as in evaluation; ties keep the gallery's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.cache import pose_input
from pipeline.embeddings import EmbeddingSet
from pipeline.errors import StageError
from pipeline.evaluation import clip_source, embed_sources
from pipeline.extraction import extract_batch
from pipeline.layouts import Tracklet, is_video, list_frames
from pipeline.runs import TrainedModel

UNKNOWN_CAMERA = -1


@dataclass(frozen=True)
class Match:
    rank: int
    key: str
    path: str
    pid: str
    camera: int
    distance: float  # negative cosine similarity: -1 identical direction, +1 opposite


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
    return pose_input(extraction.arrays, trained.config.model.pose)


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


def format_matches(matches: list[Match]) -> str:
    width = max([len("path")] + [len(m.path) for m in matches])
    lines = [f"{'rank':>4}  {'path':<{width}}  {'pid':<8}  {'camera':>6}  {'distance':>8}"]
    for m in matches:
        lines.append(
            f"{m.rank:>4}  {m.path:<{width}}  {m.pid or '?':<8}  {m.camera:>6}  {m.distance:>8.4f}"
        )
    return "\n".join(lines)
