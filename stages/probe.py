"""`asgl-pipeline probe --cache FILE`: how much identity a skeleton cache holds, without learning
(pipeline/probe.py): hand-made scale-free cues of every query and gallery tracklet ranked by
nearest neighbour under the SPEC §7 protocol, the measured chance level beside them. Works on any
cache `preprocess` wrote (synthetic, CCVID, VCCR, own footage): labels and splits come from the
tracklet attributes. Writes `<paths.reports_dir>/probe_<cache stem>.json` (the cache itself may be
read-only, and the report reads the probes from there), with each cue's per-query outcomes and
the query and gallery keys, so that `asgl-pipeline compare RUN FILE.json` pairs a run with a cue.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.cache import SkeletonCache, attribute
from pipeline.errors import StageError
from pipeline.io import atomic_write_json
from pipeline.metrics import Labels
from pipeline.probe import format_probe, metric_joints, score_cues, tracklet_cues
from pipeline.skeleton import mapping_matrix


def probe_path(cache: str | Path, reports_dir: str | Path) -> Path:
    return Path(reports_dir) / f"probe_{Path(cache).stem}.json"


def _read(cache: SkeletonCache, split: str):
    normalisation = str(cache.attrs.get("normalisation", "paper"))
    cues, pids, cameras, clothes, keys = [], [], [], [], []
    for key in cache.keys():
        meta = cache.meta(key)
        if meta.get("split") != split:
            continue
        arrays = cache.read(key, ("joints14", "joints14_2d", "visibility"))
        joints = metric_joints(arrays["joints14"], meta.get("frame_size", (1, 1)), normalisation)
        visibility14 = arrays["visibility"] @ mapping_matrix().T  # (T, 33) → (T, 14)
        cues.append(tracklet_cues(joints, arrays["joints14_2d"], visibility14))
        pids.append(str(meta["pid"]))
        cameras.append(int(meta["camera"]))
        clothes.append(str(meta["clothes"]))
        keys.append(key)
    labels = Labels(np.array(pids), np.array(cameras, dtype=np.int64), np.array(clothes))
    return cues, labels, keys


def run(config, log: Callable[[str], None] = print) -> dict:
    path = Path(config.data.cache)
    with SkeletonCache(path) as cache:  # CacheError (a StageError) when missing
        query, query_labels, query_keys = _read(cache, "query")
        gallery, gallery_labels, gallery_keys = _read(cache, "gallery")
        attrs = cache.attrs
    if not query or not gallery:
        raise StageError(
            f"{path} has {len(query)} query and {len(gallery)} gallery tracklets — the probe "
            "ranks query against gallery; preprocess a dataset with both splits"
        )
    result = score_cues(
        query, gallery, query_labels, gallery_labels, chance_repeats=config.eval.chance_repeats
    )
    record = {
        "cache": str(path),
        "pose_source": attribute(attrs, "pose_source"),
        "normalisation": attrs.get("normalisation"),
        "tracklets": result.tracklets,
        "cues": result.cues,
        "chance": result.chance,
        "query_keys": query_keys,
        "gallery_keys": gallery_keys,
        "query_pids": [str(p) for p in query_labels.pids],
        "per_query": result.per_query,
    }
    out = probe_path(path, config.paths.reports_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, record)
    log(
        f"probe: {path} ({record['pose_source']}, normalisation {record['normalisation']}), "
        f"{result.tracklets['query']} query / {result.tracklets['gallery']} gallery tracklets"
    )
    log(format_probe(result))
    log(f"probe: → {out}")
    return record
