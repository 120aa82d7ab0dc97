"""`asgl-pipeline search`: rank an embeddings file's tracklets for one query video or frame folder.

The query goes through the same preprocessing (MediaPipe pose with the run's settings) and the
same model as the gallery: the run recorded in the embeddings file, whose fingerprint must still
match (a re-trained or different model makes distances meaningless, so that is an error).
Distance = negative cosine similarity, as in evaluation (`pipeline.search`). Prints a table and
writes a rank-list image (query thumbnail, then the top-k with rank, distance and pid;
`pipeline.reporting.ranklist.search_strip`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Config
from pipeline.embeddings import EmbeddingSet, read_embeddings
from pipeline.layouts import Tracklet
from pipeline.reporting.ranklist import search_strip
from pipeline.runs import RunFolder, TrainedModel
from pipeline.search import Match, embed_query, format_matches, query_tracklet, rank
from stages import StageError


@dataclass
class SearchResult:
    query: str
    matches: list[Match]
    image: str
    excluded: int  # gallery entries removed by --exclude-same-camera
    fingerprint: str
    seconds: float


def default_image(gallery: str | Path, query: Tracklet) -> Path:
    return Path(gallery).parent / "search" / f"{Path(query.key).stem or 'query'}.png"


def gallery_model(
    embeddings: EmbeddingSet, gallery, gallery_run: bool, config: Config
) -> TrainedModel:
    """The model that embeds the query: the one recorded in the gallery file (`gallery_run`) or
    the run `train.run`; refused when its fingerprint is not the gallery's."""
    folder = (
        RunFolder(Path(embeddings.model.run_dir))
        if gallery_run
        else RunFolder.resolve(config.train.run, config.paths.runs_dir)
    )
    trained = folder.load_model(config.train.device)
    if trained.fingerprint.fingerprint != embeddings.model.fingerprint:
        raise StageError(
            f"{gallery} was embedded by {embeddings.model.describe()}, but the query would be "
            f"embedded by {trained.fingerprint.describe()} — embeddings of different models "
            f"cannot be compared; re-run `asgl-pipeline embed --run {folder.path}` for this "
            "gallery, or search with the model that made it"
        )
    return trained


def run(
    config: Config,
    *,
    gallery: str | Path,
    query: str | Path,
    top: int = 10,
    exclude_same_camera: bool = False,
    query_camera: int | None = None,
    gallery_run: bool = True,
    image: str | Path = "",
    log: Callable[[str], None] = print,
) -> SearchResult:
    started = time.perf_counter()
    if top < 1:
        raise StageError(f"--top {top}: must be at least 1")
    if exclude_same_camera and query_camera is None:
        raise StageError("--exclude-same-camera needs the query's camera: add --query-camera N")
    embeddings = read_embeddings(gallery)
    tracklet = query_tracklet(query, query_camera)
    trained = gallery_model(embeddings, gallery, gallery_run, config)
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
    search_strip(tracklet, matches, image_path)
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
    log(format_matches(matches))
    log(f"search: rank list → {image_path}; {result.seconds:.1f} s")
    return result
