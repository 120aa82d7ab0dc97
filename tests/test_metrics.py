import dataclasses

import numpy as np
import pytest

from pipeline.metrics import (
    SETTINGS,
    Labels,
    QueryScores,
    cosine_distances,
    evaluate,
    evaluate_distances,
    evaluate_reference,
    l2_normalise,
    setting_masks,
)


def both(distances, query, gallery, **kwargs):
    """Score with the reference loop and the vectorised path; they must agree to the bit."""
    reference = evaluate_reference(distances, query, gallery, **kwargs)
    fast = evaluate_distances(distances, query, gallery, chunk_size=2, **kwargs)
    for setting in reference:
        assert fast[setting].same_as(reference[setting]), setting
    return reference


# One query: pid A, camera 1, clothes A1. Gallery, in index order (pid, camera, clothes, distance):
#   0  A 1 A2 0.1   same camera, other cl. → removed in every setting (in cc by the camera rule only)
#   1  B 2 B1 0.2   other pid              → never removed, never correct
#   2  A 2 A2 0.3   other camera, clothes  → correct: standard, cc;  removed: sc
#   3  A 3 A1 0.4   other camera, same cl. → correct: standard, sc;  removed: cc
#   4  C 3 C1 0.5   other pid
#   5  A 2 A1 0.6   other camera, same cl. → correct: standard, sc;  removed: cc
#   6  A 1 A1 0.05  same camera, same cl.  → removed in every setting (in sc by the camera rule only)
TOY_QUERY = Labels(np.array(["A"]), np.array([1]), np.array(["A1"]))
TOY_GALLERY = Labels(
    np.array(["A", "B", "A", "A", "C", "A", "A"]),
    np.array([1, 2, 2, 3, 3, 2, 1]),
    np.array(["A2", "B1", "A2", "A1", "C1", "A1", "A1"]),
)
TOY_DISTANCES = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.05]], dtype=np.float32)


def test_standard_by_hand():
    # Ranking after removing 6, 0: [1 B, 2 A✓, 3 A✓, 4 C, 5 A✓] → correct at positions 1, 2, 4.
    result = both(TOY_DISTANCES, TOY_QUERY, TOY_GALLERY)["standard"]
    assert result.queries == 1 and result.skipped == 0
    assert result.cmc[0] == 0.0 and result.cmc[1] == 1.0 and result.cmc[19] == 1.0
    assert result.mAP == pytest.approx((1 / 2 + 2 / 3 + 3 / 5) / 3)


def test_cloth_changing_by_hand():
    # Remove 6, 0 (same camera) and 3, 5 (same clothes): [1 B, 2 A✓, 4 C] → correct at position 1.
    # Entry 0 wears other clothes, so only the camera rule removes it: were it kept, it would be a
    # correct match at position 0.
    result = both(TOY_DISTANCES, TOY_QUERY, TOY_GALLERY)["cc"]
    assert result.queries == 1 and result.skipped == 0
    assert result.cmc[0] == 0.0 and result.cmc[1] == 1.0
    assert result.mAP == pytest.approx(1 / 2)


def test_the_camera_rule_alone_removes_a_same_camera_entry_in_other_clothes():
    # Gallery: 0 = query pid, same camera, other clothes (closest); 1 = other pid; 2 = a valid
    # cloth-changing match. Only the camera rule keeps entry 0 from counting as a rank-1 hit.
    query = Labels(np.array(["A"]), np.array([1]), np.array(["A1"]))
    gallery = Labels(np.array(["A", "B", "A"]), np.array([1, 2, 2]), np.array(["A2", "B1", "A3"]))
    distances = np.array([[0.1, 0.2, 0.3]], dtype=np.float32)
    results = both(distances, query, gallery)
    for setting in ("standard", "cc"):
        assert results[setting].cmc[0] == 0.0 and results[setting].mAP == 0.5, setting
    # Moved to another camera, the same entry is the cloth-changing rank-1 match.
    moved = Labels(gallery.pids, np.array([3, 2, 2]), gallery.clothes)
    assert both(distances, query, moved)["cc"].cmc[0] == 1.0


def test_same_clothes_by_hand():
    # Remove 6, 0 (same camera) and 2 (other clothes): [1 B, 3 A✓, 4 C, 5 A✓] → positions 1, 3.
    # Entry 6 wears the query's clothes, so only the camera rule removes it.
    result = both(TOY_DISTANCES, TOY_QUERY, TOY_GALLERY)["sc"]
    assert result.cmc[0] == 0.0 and result.cmc[1] == 1.0
    assert result.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_summary_is_in_percent_with_the_cmc_curve():
    summary = both(TOY_DISTANCES, TOY_QUERY, TOY_GALLERY)["cc"].summary()
    assert summary["R-1"] == 0.0 and summary["R-5"] == 100.0 and summary["mAP"] == 50.0
    assert summary["queries"] == 1 and summary["skipped"] == 0
    assert len(summary["cmc"]) == 20 and summary["cmc"][:2] == [0.0, 100.0]


def test_a_query_without_a_valid_match_is_skipped_and_counted():
    # Query D only has same-clothes matches in other cameras: CC has nothing correct.
    query = Labels(np.array(["A", "D"]), np.array([1, 1]), np.array(["A1", "D1"]))
    gallery = Labels(
        np.append(TOY_GALLERY.pids, "D"),
        np.append(TOY_GALLERY.cameras, 2),
        np.append(TOY_GALLERY.clothes, "D1"),
    )
    distances = np.array([[*TOY_DISTANCES[0], 0.9], [0.5] * 8], dtype=np.float32)
    results = both(distances, query, gallery)
    assert results["cc"].queries == 1 and results["cc"].skipped == 1
    assert results["cc"].mAP == pytest.approx(1 / 2)  # only query A counts, not a zero for D
    assert results["standard"].queries == 2 and results["standard"].skipped == 0
    assert results["sc"].queries == 2
    per_query = results["cc"].per_query  # query order; D has no correct entry
    assert per_query.first.tolist() == [1, -1] and per_query.first.dtype == np.int64
    assert per_query.ap[0] == 0.5 and np.isnan(per_query.ap[1])
    assert per_query.valid.tolist() == [True, False]
    assert per_query.values("mAP").tolist() == [0.5]
    assert per_query.values("R-1").tolist() == [0.0] and per_query.values("R-2").tolist() == [1.0]
    with pytest.raises(ValueError, match=r"^unknown metric 'R-0' \(expected R-k or mAP\)$"):
        per_query.values("R-0")


def test_no_query_with_a_match_gives_zeros_not_a_division_error():
    query = Labels(np.array(["Z"]), np.array([1]), np.array(["Z1"]))
    result = both(TOY_DISTANCES, query, TOY_GALLERY)["standard"]
    assert result.queries == 0 and result.skipped == 1 and result.mAP == 0.0
    assert result.cmc.tolist() == [0.0] * 20
    assert result.per_query.first.tolist() == [-1] and np.isnan(result.per_query.ap).all()


def test_a_first_match_just_past_the_last_rank_is_not_counted():
    # The only correct entry sits at position 2 (after B and C): with max_rank 2 it is no hit.
    query = Labels(np.array(["A"]), np.array([1]), np.array(["A1"]))
    gallery = Labels(np.array(["B", "C", "A"]), np.array([2, 2, 2]), np.array(["B1", "C1", "A2"]))
    distances = np.array([[0.1, 0.2, 0.3]], dtype=np.float32)
    result = both(distances, query, gallery, max_rank=2)["standard"]
    assert result.cmc.tolist() == [0.0, 0.0] and result.mAP == pytest.approx(1 / 3)
    assert both(distances, query, gallery, max_rank=3)["standard"].cmc.tolist() == [0, 0, 1]


def test_same_as_compares_every_field():
    result = both(TOY_DISTANCES, TOY_QUERY, TOY_GALLERY)["standard"]
    assert result.same_as(result)
    per_query = result.per_query
    changes = {
        "queries": 2,
        "skipped": 1,
        "mAP": 0.5,
        "cmc": np.zeros(20),
        "per_query": None,
        "per_query ap": QueryScores(per_query.first, per_query.ap + 0.1),
        "per_query first": QueryScores(per_query.first + 1, per_query.ap),
    }
    for name, value in changes.items():
        other = dataclasses.replace(result, **{name.split()[0]: value})
        assert not result.same_as(other) and not other.same_as(result), name


def test_ties_rank_the_earlier_gallery_index_first():
    query = Labels(np.array(["A"]), np.array([1]), np.array(["A1"]))
    distances = np.array([[0.5, 0.5, 0.9]], dtype=np.float32)
    # Wrong pid first at the tied distance → the correct entry is second.
    gallery = Labels(np.array(["B", "A", "C"]), np.array([2, 2, 2]), np.array(["B1", "A2", "C1"]))
    assert both(distances, query, gallery)["standard"].cmc[0] == 0.0
    # Correct entry first at the tied distance → rank-1 hit.
    gallery = Labels(np.array(["A", "B", "C"]), np.array([2, 2, 2]), np.array(["A2", "B1", "C1"]))
    assert both(distances, query, gallery)["standard"].cmc[0] == 1.0


def test_negative_zero_ties_with_zero():
    query = Labels(np.array(["A"]), np.array([1]), np.array(["A1"]))
    gallery = Labels(np.array(["B", "A"]), np.array([2, 2]), np.array(["B1", "A2"]))
    distances = np.array([[0.0, -0.0]], dtype=np.float32)
    assert both(distances, query, gallery)["standard"].cmc[0] == 0.0


@pytest.mark.parametrize("bad", [np.nan, -np.inf, np.inf])
def test_non_finite_distances_are_rejected(bad):
    distances = TOY_DISTANCES.copy()
    distances[0, 2] = bad
    message = "^distances contain NaN or inf; check the features$"
    with pytest.raises(ValueError, match=message):
        evaluate_distances(distances, TOY_QUERY, TOY_GALLERY)
    with pytest.raises(ValueError, match=message):
        evaluate_reference(distances, TOY_QUERY, TOY_GALLERY)


def test_setting_table():
    same_pid = np.array([True, True, True, True, False])
    same_cam = np.array([True, True, False, False, False])
    same_clo = np.array([True, False, True, False, True])
    expected = {  # (correct, removed) per entry
        "standard": ([0, 0, 1, 1, 0], [1, 1, 0, 0, 0]),
        "cc": ([0, 0, 0, 1, 0], [1, 1, 1, 0, 0]),
        "sc": ([0, 0, 1, 0, 0], [1, 1, 0, 1, 0]),
    }
    for setting, (correct, removed) in expected.items():
        got_correct, got_removed = setting_masks(setting, same_pid, same_cam, same_clo)
        assert got_correct.tolist() == [bool(v) for v in correct], setting
        assert got_removed.tolist() == [bool(v) for v in removed], setting
    with pytest.raises(ValueError, match=r"^unknown setting 'xx' \(known: standard, cc, sc\)$"):
        setting_masks("xx", same_pid, same_cam, same_clo)


def test_bad_inputs_are_refused_with_what_is_wrong():
    with pytest.raises(ValueError, match=r"^pids, cameras and clothes differ in length: \[1, 2\]$"):
        Labels(np.array(["A"]), np.array([1, 2]), np.array(["A1", "A2"]))
    with pytest.raises(ValueError, match=r"^distances \(1, 5\) do not match 1 × 7$"):
        evaluate_distances(TOY_DISTANCES[:, :5], TOY_QUERY, TOY_GALLERY)
    for query_features, gallery_features in (
        (np.ones((2, 3)), np.ones((7, 3))),
        (np.ones((1, 3)), np.ones((6, 3))),
    ):
        with pytest.raises(ValueError, match="^features and labels differ in length$"):
            evaluate(query_features, gallery_features, TOY_QUERY, TOY_GALLERY)


def random_problem(rng, num_query, num_gallery, num_pids, dim=8, duplicates=False):
    def labels(n):
        pids = rng.integers(0, num_pids, n)
        clothes = np.array([f"{p}/{c}" for p, c in zip(pids, rng.integers(0, 3, n), strict=True)])
        return Labels(pids, rng.integers(0, 4, n), clothes)

    query_features = rng.standard_normal((num_query, dim)).astype(np.float32)
    gallery_features = rng.standard_normal((num_gallery, dim)).astype(np.float32)
    if duplicates:  # exact ties: repeated gallery vectors and a query equal to a gallery vector
        gallery_features[1::3] = gallery_features[0::3][: len(gallery_features[1::3])]
        query_features[0] = gallery_features[5]
    return query_features, gallery_features, labels(num_query), labels(num_gallery)


@pytest.mark.parametrize("duplicates", [False, True])
@pytest.mark.parametrize("num_pids", [3, 40])
def test_vectorised_equals_the_reference_loop(duplicates, num_pids):
    rng = np.random.default_rng(num_pids + duplicates)
    qf, gf, query, gallery = random_problem(rng, 57, 400, num_pids, duplicates=duplicates)
    distances = cosine_distances(qf, gf)
    if duplicates:
        distances = np.round(distances, 2)  # many more ties across pids
    reference = evaluate_reference(distances, query, gallery, max_rank=30)
    for chunk_size in (1, 7, 64, 1000):
        fast = evaluate_distances(distances, query, gallery, chunk_size=chunk_size, max_rank=30)
        for setting in SETTINGS:
            assert fast[setting].same_as(reference[setting]), (setting, chunk_size)
    assert reference["standard"].queries > 0 and reference["cc"].queries > 0


def test_feature_path_equals_the_reference_on_the_same_distances():
    rng = np.random.default_rng(7)
    qf, gf, query, gallery = random_problem(rng, 40, 300, 10, duplicates=True)
    reference = evaluate_reference(cosine_distances(qf, gf), query, gallery)
    for chunk_size in (3, 256):
        fast = evaluate(qf, gf, query, gallery, chunk_size=chunk_size)
        for setting in SETTINGS:
            assert fast[setting].same_as(reference[setting]), setting


def test_l2_normalise_gives_unit_rows_whatever_their_norms():
    features = np.array([[3.0, 4.0], [0.0, 0.5], [0.0, 0.0], [-1e-3, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(
        l2_normalise(features), [[0.6, 0.8], [0.0, 1.0], [0.0, 0.0], [-1.0, 0.0]], rtol=1e-6
    )  # a zero row stays zero instead of dividing by zero
    np.testing.assert_allclose(
        cosine_distances(features[:2], features[:2] * [[10.0], [0.1]]),
        [[-1.0, -0.8], [-0.8, -1.0]],
        rtol=1e-6,
    )


def test_features_of_different_norms_rank_by_angle():
    # The correct match is 6° off the query with norm 1; the other pid is 45° off with norm 100.
    # By angle the correct match comes first; by raw dot product it would not.
    query = Labels(np.array(["A"]), np.array([1]), np.array(["A1"]))
    gallery = Labels(np.array(["B", "A"]), np.array([2, 2]), np.array(["B1", "A2"]))
    gallery_features = np.array([[100.0, 100.0], [np.cos(0.1), np.sin(0.1)]], dtype=np.float32)
    result = evaluate(np.array([[2.0, 0.0]]), gallery_features, query, gallery)
    assert result["standard"].cmc[0] == 1.0


def test_normalised_and_distance_outputs_are_float32():
    features = np.array([[3.0, 4.0]], dtype=np.float64)
    assert l2_normalise(features).dtype == np.float32
    assert cosine_distances(features, features).dtype == np.float32


def test_scale_of_each_feature_does_not_matter():
    rng = np.random.default_rng(3)
    qf, gf, query, gallery = random_problem(rng, 20, 100, 5)
    a = evaluate(qf, gf, query, gallery)
    b = evaluate(  # every row its own scale, over six orders of magnitude
        qf * 10.0 ** rng.uniform(-3, 3, (20, 1)),
        gf * 10.0 ** rng.uniform(-3, 3, (100, 1)),
        query,
        gallery,
    )
    assert a["standard"].cmc[0] < 1.0  # random features: the scores are not trivially saturated
    for s in SETTINGS:
        assert b[s].mAP == pytest.approx(a[s].mAP, abs=1e-9) and np.allclose(b[s].cmc, a[s].cmc)


def test_perfect_features_score_one_hundred():
    # Each pid's features are identical, so every correct match outranks every other pid.
    pids = np.repeat(np.arange(6), 4)
    features = np.eye(6, dtype=np.float32)[pids]
    labels = Labels(
        pids,
        np.tile(np.arange(4), 6),
        np.array([f"{p}/{c % 2}" for p, c in zip(pids, range(24), strict=True)]),
    )
    result = evaluate(features, features, labels, labels)
    for setting in SETTINGS:
        assert result[setting].cmc[0] == 1.0 and result[setting].mAP == 1.0, setting


def test_empty_gallery_skips_every_query():
    query = Labels(np.array(["A"]), np.array([1]), np.array(["A1"]))
    empty = Labels(np.array([], dtype=str), np.array([], dtype=int), np.array([], dtype=str))
    result = evaluate(np.ones((1, 4)), np.zeros((0, 4)), query, empty)
    for setting in SETTINGS:
        scores = result[setting]
        assert scores.skipped == 1 and scores.queries == 0 and scores.cmc.tolist() == [0.0] * 20
        assert scores.per_query.first.tolist() == [-1] and np.isnan(scores.per_query.ap).all()


def test_an_empty_query_set_scores_nothing():
    empty = Labels(np.array([], dtype=str), np.array([], dtype=int), np.array([], dtype=str))
    result = evaluate(np.zeros((0, 4)), np.ones((7, 4)), empty, TOY_GALLERY)
    assert all(result[s].queries == result[s].skipped == 0 for s in SETTINGS)


def test_zero_distances_rank_before_small_positive_ones():
    # Exact zeros among tiny positive distances in the same histogram bins: the vectorised
    # ordering of float bit patterns must put +0.0 first, as the reference sort does.
    rng = np.random.default_rng(11)
    _, _, query, gallery = random_problem(rng, 30, 200, 4)
    distances = (rng.integers(0, 3, (30, 200)) * 1e-30).astype(np.float32)
    distances[:, ::7] = 0.5
    both(distances, query, gallery)


def test_float64_distances_are_ranked_as_float32_in_both_implementations():
    # Differences below float32 resolution are ties, broken by gallery index in both paths.
    rng = np.random.default_rng(5)
    _, _, query, gallery = random_problem(rng, 25, 150, 4)
    distances = 0.5 + rng.integers(0, 4, (25, 150)) * 1e-12
    both(distances, query, gallery)
    reference = evaluate_reference(distances.astype(np.float32), query, gallery)
    fast = evaluate_distances(distances, query, gallery)
    assert all(fast[s].same_as(reference[s]) for s in SETTINGS)


def test_distances_spanning_the_whole_float32_range_still_rank_exactly():
    rng = np.random.default_rng(0)
    distances = np.clip(rng.standard_normal((20, 300)) * 1e38, -3.3e38, 3.3e38).astype(np.float32)
    distances[:, :5], distances[:, 5:10] = 3.3e38, -3.3e38  # max - min overflows float32
    _, _, query, gallery = random_problem(rng, 20, 300, 5)
    with np.errstate(all="raise"):
        both(distances, query, gallery)
