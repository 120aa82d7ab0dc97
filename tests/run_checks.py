"""Checks on a run folder shared by the train and evaluate tests: what `metrics.json` says must be
what `pipeline.metrics.evaluate` gives on the features and labels in `features.npz`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.metrics import SETTINGS, Labels, evaluate


def features_labels(features, prefix: str) -> Labels:
    return Labels(
        features[f"{prefix}_pids"], features[f"{prefix}_cameras"], features[f"{prefix}_clothes"]
    )


def assert_metrics_are_those_of_the_features(folder: Path, splits) -> dict:
    """`metrics.json` equals the metrics recomputed from `features.npz`, whose rows follow the
    query and gallery tracklets of `splits` in order with their labels. Returns metrics.json."""
    written = json.loads((folder / "metrics.json").read_text())
    with np.load(folder / "features.npz", allow_pickle=False) as npz:
        features = dict(npz)
    for prefix, sources in (("query", splits.query), ("gallery", splits.gallery)):
        assert features[f"{prefix}_keys"].tolist() == [s.key for s in sources], prefix
        assert features[f"{prefix}_pids"].tolist() == [s.tracklet.pid for s in sources]
        assert features[f"{prefix}_cameras"].tolist() == [s.camera for s in sources]
        assert features[f"{prefix}_clothes"].tolist() == [s.tracklet.clothes for s in sources]
        assert features[f"{prefix}_paths"].tolist() == [s.tracklet.source for s in sources]
        assert written["tracklets"][prefix] == len(sources)
        norms = np.linalg.norm(features[f"{prefix}_features"], axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    query, gallery = features_labels(features, "query"), features_labels(features, "gallery")
    recomputed = evaluate(features["query_features"], features["gallery_features"], query, gallery)
    for setting in SETTINGS:
        expected = json.loads(json.dumps(recomputed[setting].summary()))
        got = {key: written["settings"][setting][key] for key in expected}
        assert got == expected, setting
    return written
