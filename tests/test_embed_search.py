"""embed → search on the tiny synthetic set: the embeddings file, the model fingerprint, ranking,
the end-to-end commands, and the bad inputs (no person, no checkpoint, another model's gallery)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from damage import truncate

from pipeline.cache import SkeletonCache
from pipeline.config import load_config, save_config
from pipeline.embeddings import EmbeddingSet, read_embeddings, write_embeddings
from pipeline.errors import StageError
from pipeline.extraction import extract_groundtruth
from pipeline.layouts import load_tracklets
from pipeline.runs import ModelFingerprint, RunFolder
from pipeline.search import query_skeleton, query_tracklet, rank
from stages.cli import main

# Small enough to build, run and trace in well under a second per clip on one core.
TINY_MODEL = {
    "backbone_depth": 18,
    "refine_widths": (8, 16, 32),
    "gat_channels": 16,
    "gat_heads": 1,
    "stgat_channels": (8, 16),
    "stgat_heads": 1,
    "fusion_dim": 16,
}
TINY_INPUT = {"height": 64, "width": 32}


def make_untrained_run(folder: Path, seed: int = 0, **model) -> Path:
    """A run folder laid out as `train` writes it (config.toml + checkpoints/last.pt) holding a
    randomly initialised tiny model: enough for checks that do not need a trained model."""
    import torch

    from pipeline.models import build_model

    config = load_config(
        "demo",
        overrides={"model": {**TINY_MODEL, **model}, "train": {**TINY_INPUT, "run": folder.name}},
    )
    torch.manual_seed(seed)
    network = build_model(config.model, num_classes=2)
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save({"model": network.state_dict(), "epoch": 1}, folder / "checkpoints" / "last.pt")
    save_config(config, folder / "config.toml")
    return folder


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def split_tracklets(root: Path, split: str):
    tracklets, _ = load_tracklets("ccvid", root)
    return [t for t in tracklets if t.split == split]


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory) -> Path:
    return make_untrained_run(tmp_path_factory.mktemp("runs") / "untrained")


@pytest.fixture(scope="module")
def own_footage(synthetic_root, tmp_path_factory) -> Path:
    """A `folder` dataset as a user brings one: a manifest naming frame folders by absolute
    path (the synthetic gallery tracklets), with the user's own labels."""
    root = tmp_path_factory.mktemp("own_footage")
    rows = ["path,pid,clothes,camera,split"]
    for tracklet in split_tracklets(synthetic_root, "gallery"):
        label = tracklet.clothes.split("/", 1)[1]
        rows.append(f"{tracklet.source},person{tracklet.pid},{label},{tracklet.camera},gallery")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def untrained_gallery(untrained_run, own_footage) -> Path:
    """The own-footage set embedded by the untrained run: pose extracted on the way, into a
    skeleton cache beside the output."""
    out = own_footage / "embeddings" / "gallery.npz"
    result = cli(
        "embed",
        "--run",
        untrained_run,
        "--dataset",
        "folder",
        "--root",
        own_footage,
        "--out",
        out,
        "--workers",
        1,
    )
    assert result.exit_code == 0, result.output
    return out


# -- the embeddings file -------------------------------------------------------------------------


def fingerprint(run: str = "r", checkpoint: str = "a" * 64) -> ModelFingerprint:
    return ModelFingerprint(run, f"/runs/{run}", checkpoint, "b" * 64)


def test_embeddings_file_round_trip(tmp_path):
    features = np.eye(3, 4, dtype=np.float32)
    written = EmbeddingSet(
        features,
        ["s1/001_01", "s1/002_01", "s3/001_02"],
        ["001", "002", "001"],
        ["001/a", "002/a", "001/b"],
        [1, 1, 14],
        ["/d/x", "/d/y", "/d/z.mp4"],
        fingerprint(),
        {"dataset": "folder", "root": "/d", "manifest": "/d/m.csv"},
    )
    path = write_embeddings(tmp_path / "e.npz", written)
    assert [p.name for p in tmp_path.iterdir()] == ["e.npz"]  # no temporary file left behind
    read = read_embeddings(path)
    np.testing.assert_array_equal(read.features, features)
    assert (read.keys, read.pids, read.clothes, read.cameras, read.paths) == (
        written.keys,
        written.pids,
        written.clothes,
        written.cameras,
        written.paths,
    )
    assert read.model == written.model and read.data["manifest"] == "/d/m.csv"


@pytest.mark.parametrize("content", ["missing", "text", "other npz"])
def test_a_file_that_is_not_an_embeddings_file_is_refused(tmp_path, content):
    path = tmp_path / "g.npz"
    if content == "text":
        path.write_text("hello")
    elif content == "other npz":
        np.savez(path, features=np.zeros((2, 3)))
    with pytest.raises(StageError, match="does not exist|not an embeddings file|not a NumPy .npz"):
        read_embeddings(path)


@pytest.mark.parametrize("damage", ["truncated", "scrambled"])
def test_a_damaged_embeddings_file_is_one_clear_error(tmp_path, damage):
    # zipfile's BadZipFile ("Bad CRC-32", "File is not a zip file") used to be a traceback.
    written = EmbeddingSet(
        np.eye(3, 4, dtype=np.float32),
        ["a", "b", "c"],
        ["1", "2", "3"],
        ["1/a", "2/a", "3/a"],
        [1, 1, 2],
        ["/a", "/b", "/c"],
        fingerprint(),
    )
    path = write_embeddings(tmp_path / "e.npz", written)
    if damage == "truncated":
        truncate(path, 0.6)
    else:  # bytes inside the features array: only its CRC tells
        data = bytearray(path.read_bytes())
        start = data.index(b"\x93NUMPY", data.index(b"features.npy")) + 130
        data[start : start + 8] = b"\x13" * 8
        path.write_bytes(bytes(data))
    with pytest.raises(StageError, match=f"embeddings file {path} cannot be read: it is damaged"):
        read_embeddings(path)


def test_model_fingerprint_follows_checkpoint_and_config(tmp_path):
    run = make_untrained_run(tmp_path / "r")
    before = RunFolder(run).fingerprint().fingerprint
    assert RunFolder(run).fingerprint().fingerprint == before  # deterministic
    with open(run / "config.toml", "a") as handle:
        handle.write("\n")
    after_config = RunFolder(run).fingerprint().fingerprint
    make_untrained_run(run, seed=1)  # "re-trained": other weights, same config
    assert len({before, after_config, RunFolder(run).fingerprint().fingerprint}) == 3


# -- ranking -------------------------------------------------------------------------------------


def test_rank_orders_by_negative_cosine_and_excludes_the_query_camera():
    angles = np.deg2rad([0, 80, 30, 10, 50])
    gallery = EmbeddingSet(
        np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32),
        ["a", "b", "c", "d", "e"],
        ["1", "2", "1", "3", "2"],
        [""] * 5,
        [1, 2, 2, 1, 3],
        ["pa", "pb", "pc", "pd", "pe"],
        fingerprint(),
    )
    query = np.array([1.0, 0.0])
    matches, excluded = rank(gallery, query, top=10)
    assert [m.key for m in matches] == ["a", "d", "c", "e", "b"] and excluded == 0
    assert matches[0].distance == pytest.approx(-1.0)
    assert [m.rank for m in matches] == [1, 2, 3, 4, 5]
    matches, excluded = rank(gallery, query, top=2, exclude_camera=1)
    assert [m.key for m in matches] == ["c", "e"] and excluded == 2


# -- bad input -----------------------------------------------------------------------------------


def test_a_run_without_a_checkpoint_is_a_clear_error_before_any_work(tmp_path, synthetic_root):
    run = tmp_path / "runs" / "half"
    run.mkdir(parents=True)
    save_config(load_config("demo"), run / "config.toml")
    result = cli("embed", "--run", run, "--root", synthetic_root, "--out", tmp_path / "e.npz")
    assert result.exit_code == 1
    assert "has no checkpoint checkpoints/last.pt" in result.output and "train" in result.output
    assert not (tmp_path / "e.npz").exists() and not (tmp_path / "e.skeletons.h5").exists()


def test_query_paths_that_cannot_be_a_tracklet_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    for path, message in [
        (tmp_path / "nope.mp4", "does not exist"),
        (tmp_path / "notes.txt", "neither a video file"),
        (tmp_path / "empty", "holds no frame images"),
    ]:
        with pytest.raises(StageError, match=message):
            query_tracklet(path, None)


def test_a_query_with_no_person_is_a_clear_error(untrained_gallery, tmp_path):
    blank = tmp_path / "empty_street"
    blank.mkdir()
    for i in range(4):
        cv2.imwrite(str(blank / f"{i:03d}.jpg"), np.full((192, 96, 3), 128, np.uint8))
    result = cli("search", "--gallery", untrained_gallery, "--query", blank)
    assert result.exit_code == 1
    assert "no person detected" in result.output and "Traceback" not in result.output


def test_a_ground_truth_run_queries_with_ground_truth_skeletons(synthetic_root, tmp_path):
    config = load_config("demo", overrides={"preprocess": {"pose_source": "groundtruth"}})
    trained = SimpleNamespace(config=config)
    query = split_tracklets(synthetic_root, "query")[0]
    expected = extract_groundtruth(query, config.preprocess.normalisation).arrays["joints14"]
    np.testing.assert_array_equal(query_skeleton(query, trained), expected)
    blank = tmp_path / "street"
    blank.mkdir()
    cv2.imwrite(str(blank / "000.jpg"), np.full((192, 96, 3), 128, np.uint8))
    with pytest.raises(StageError, match="only synthetic tracklets have"):
        query_skeleton(query_tracklet(blank, None), trained)


def test_a_gallery_from_another_model_is_refused(untrained_gallery, synthetic_root, tmp_path):
    other = make_untrained_run(tmp_path / "other", seed=7)
    query = split_tracklets(synthetic_root, "query")[0].source
    result = cli("search", "--gallery", untrained_gallery, "--query", query, "--run", other)
    assert result.exit_code == 1
    assert "embeddings of different models cannot be compared" in result.output
    assert "run 'untrained'" in result.output and "run 'other'" in result.output


def test_exclude_same_camera_needs_the_query_camera(untrained_gallery, synthetic_root):
    query = split_tracklets(synthetic_root, "query")[0].source
    result = cli(
        "search", "--gallery", untrained_gallery, "--query", query, "--exclude-same-camera"
    )
    assert result.exit_code == 1 and "--query-camera" in result.output


# -- embed and search end to end -----------------------------------------------------------------


def test_embed_writes_one_unit_embedding_per_tracklet_with_its_labels(
    untrained_gallery, untrained_run, own_footage
):
    embeddings = read_embeddings(untrained_gallery)
    cache = untrained_gallery.with_name("gallery.skeletons.h5")
    tracklets, _ = load_tracklets("folder", own_footage)
    with SkeletonCache(cache) as skeletons:
        assert skeletons.keys() and sorted(embeddings.keys) == skeletons.keys()
    np.testing.assert_allclose(np.linalg.norm(embeddings.features, axis=1), 1.0, atol=1e-5)
    assert embeddings.features.shape[1] == TINY_MODEL["fusion_dim"]
    assert len({row.tobytes() for row in embeddings.features}) == len(embeddings)  # not constant
    by_key = {t.key: t for t in tracklets}
    for key, pid, clothes, camera, path in zip(
        embeddings.keys, embeddings.pids, embeddings.clothes, embeddings.cameras, embeddings.paths
    ):
        expected = by_key[key]
        assert (pid, clothes, camera, path) == (
            expected.pid,
            expected.clothes,
            expected.camera,
            expected.source,
        )
        assert pid.startswith("person")
    assert embeddings.model == RunFolder(untrained_run).fingerprint()
    assert embeddings.data["dataset"] == "folder"


def test_search_embeds_the_query_exactly_as_embed_did(untrained_gallery, synthetic_root, tmp_path):
    """A gallery tracklet used as the query comes back first at distance -1: the query went
    through the same pose extraction, clips and model as the gallery."""
    target = next(
        t
        for t in split_tracklets(synthetic_root, "gallery")
        if t.source in read_embeddings(untrained_gallery).paths
    )
    image = tmp_path / "ranks.png"
    result = cli(
        "search",
        "--gallery",
        untrained_gallery,
        "--query",
        target.source,
        "--top",
        3,
        "--image",
        image,
    )
    assert result.exit_code == 0, result.output
    first = next(line for line in result.output.splitlines() if line.strip().startswith("1 "))
    assert target.source in first and float(first.split()[-1]) == pytest.approx(-1.0, abs=1e-4)
    picture = cv2.imread(str(image))
    assert picture is not None and picture.shape[0] > 100 and picture.shape[1] > 4 * 90


# -- with a trained model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(synthetic_root, skeleton_cache, tmp_path_factory) -> Path:
    """A tiny skeleton-only model trained by the train stage on the synthetic train split (the
    appearance branch costs minutes to train on CPU; these checks are about embed and search)."""
    from stages import train

    runs = tmp_path_factory.mktemp("trained")
    config = load_config(
        "demo",
        overrides={
            "data": {"dataset": "ccvid", "root": str(synthetic_root), "cache": str(skeleton_cache)},
            "model": {**TINY_MODEL, "use_appearance": False},
            "train": {
                **TINY_INPUT,
                "run": "tiny",
                "epochs": 10,
                "lr": 1e-3,
                "ids_per_batch": 2,
                "clips_per_id": 2,
                "num_workers": 0,
                "seed": 0,
            },
            "paths": {"runs_dir": str(runs)},
        },
    )
    train.run(config, log=lambda _line: None, progress=False)
    return runs / "tiny"


def test_embed_and_search_reproduce_the_evaluation_of_a_trained_run(
    trained_run, synthetic_root, skeleton_cache, tmp_path, capsys
):
    """embed gives the features evaluation computed; search re-extracts each query's pose from
    its frames and ranks the gallery as those features do — checked against a ranking computed
    here (negative cosine, stable order, other cameras only), down to the rank of the query's
    identity. How often that identity comes first is not asserted: 2 training identities and
    8-frame tracklets do not make a discriminative model."""
    from stages import search

    gallery = tmp_path / "synthetic.npz"
    result = cli(
        "embed",
        "--run",
        trained_run,
        "--root",
        synthetic_root,
        "--cache",
        skeleton_cache,
        "--out",
        gallery,
    )
    assert result.exit_code == 0, result.output
    embeddings = read_embeddings(gallery)
    row = {key: i for i, key in enumerate(embeddings.keys)}
    with np.load(trained_run / "features.npz") as evaluation:
        for split in ("query", "gallery"):
            for key, feature in zip(evaluation[f"{split}_keys"], evaluation[f"{split}_features"]):
                np.testing.assert_allclose(embeddings.features[row[str(key)]], feature, atol=1e-5)
        query_features = dict(
            zip(evaluation["query_keys"].astype(str), evaluation["query_features"])
        )

    config = load_config("demo", overrides={"train": {"device": "cpu"}})
    queries = [t for t in split_tracklets(synthetic_root, "query") if t.key in query_features]
    assert len(queries) >= 2  # those with a cached skeleton
    for query in queries:
        found = search.run(
            config,
            gallery=gallery,
            query=query.source,
            top=len(embeddings),
            exclude_same_camera=True,
            query_camera=query.camera,
            image=tmp_path / "ranks.png",
        )
        # unit features, so negative cosine = negative dot product (float64: this tiny model's
        # features differ by ~1e-6, below float32's resolution near -1)
        distances = -(embeddings.features.astype(float) @ query_features[query.key].astype(float))
        order = [
            j for j in np.argsort(distances, kind="stable") if embeddings.cameras[j] != query.camera
        ]
        assert [m.key for m in found.matches] == [embeddings.keys[j] for j in order]
        np.testing.assert_allclose([m.distance for m in found.matches], distances[order], atol=1e-4)
        assert [m.rank for m in found.matches] == list(range(1, len(order) + 1))
        identity_rank = 1 + next(i for i, j in enumerate(order) if embeddings.pids[j] == query.pid)
        assert next(m.rank for m in found.matches if m.pid == query.pid) == identity_rank
