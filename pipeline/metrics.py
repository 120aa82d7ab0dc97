"""CMC and mAP for the Standard, cloth-changing (CC) and same-clothes (SC) settings (SPEC §7,
CAL's rules).

For a query with pid p, camera c and clothes k, over the gallery (P = same pid, C = same camera,
K = same clothes):

    setting    counted as correct    removed from the ranking
    standard   P \\ C                 P ∩ C
    cc         P \\ C \\ K             (P ∩ C) ∪ (P ∩ K)
    sc         (P \\ C) ∩ K           (P ∩ C) ∪ (P \\ K)

Other-pid entries are never removed. After removal, CMC rank-k = 1 if the first correct entry
sits at 0-based position < k; AP = (1/n) Σ_i (i+1)/(r_i+1) over the correct entries' positions
r_0 < r_1 < … (uninterpolated). A query with no correct entry is skipped and counted.

Tie rule (both implementations): the ranking is a stable sort by distance, then gallery index —
of two equally distant entries the one earlier in the gallery ranks first. -0.0 equals 0.0.
Non-finite distances are rejected.

Two implementations that give bit-identical results:
- `evaluate_reference`: the straightforward per-query loop (one stable argsort per query and
  setting), kept for tests and the benchmark;
- `evaluate` / `evaluate_distances`: vectorised over chunks of queries, without sorting rows.
  Every same-pid entry is either correct or removed in every setting, so a correct entry's
  position after removal is (other-pid entries ranked before it) + (correct entries of its query
  ranked before it). Each same-pid entry's unfiltered position comes from a per-row histogram of
  monotone distance bins plus an exact (distance, index) ordering inside its own bin; memory is
  bounded by `chunk_size` × gallery size.
AP and mAP are summed with `math.fsum` (exactly rounded, order independent) in both, so the
numbers agree to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

SETTINGS: tuple[str, ...] = ("standard", "cc", "sc")
DEFAULT_RANKS: tuple[int, ...] = (1, 5, 10, 20)


@dataclass(frozen=True)
class Labels:
    """Per-tracklet identity labels of a query or gallery set (any comparable values)."""

    pids: np.ndarray
    cameras: np.ndarray
    clothes: np.ndarray

    def __post_init__(self):
        sizes = {len(self.pids), len(self.cameras), len(self.clothes)}
        if len(sizes) != 1:
            raise ValueError(f"pids, cameras and clothes differ in length: {sorted(sizes)}")

    def __len__(self) -> int:
        return len(self.pids)


@dataclass(frozen=True)
class QueryScores:
    """Each query's outcome in one setting, in query order — what the bootstrap resamples, the
    paired comparison pairs and per-branch evaluation reuses (pipeline/confidence.py)."""

    first: (
        np.ndarray
    )  # (nq,) int64: filtered 0-based position of the first correct entry; -1 = none
    ap: np.ndarray  # (nq,) float64: average precision; NaN when the query has no correct entry

    @property
    def valid(self) -> np.ndarray:
        """Queries with at least one correct entry (the ones the metrics average)."""
        return self.first >= 0

    def values(self, metric: str) -> np.ndarray:
        """Per-query value of `metric` ("R-k" hit as 0/1, or "mAP" → AP) over the valid queries."""
        if metric == "mAP":
            return self.ap[self.valid]
        if metric.startswith("R-") and metric[2:].isdigit() and int(metric[2:]) >= 1:
            return (self.first[self.valid] < int(metric[2:])).astype(np.float64)
        raise ValueError(f"unknown metric {metric!r} (expected R-k or mAP)")


@dataclass(frozen=True)
class SettingResult:
    """One setting's scores as fractions in [0, 1]; `cmc[k-1]` is rank-k accuracy."""

    cmc: np.ndarray  # (max_rank,) float64
    mAP: float
    queries: int  # queries with at least one correct entry (the ones averaged)
    skipped: int  # queries with no correct entry
    per_query: QueryScores | None = field(default=None, compare=False, repr=False)

    def summary(self, ranks: tuple[int, ...] = DEFAULT_RANKS) -> dict:
        """Percentages, as in the paper's tables and `metrics.json`."""
        result = {f"R-{r}": 100.0 * float(self.cmc[r - 1]) for r in ranks}
        result.update(
            {
                "mAP": 100.0 * self.mAP,
                "queries": self.queries,
                "skipped": self.skipped,
                "cmc": [100.0 * float(v) for v in self.cmc],
            }
        )
        return result

    def same_as(self, other: SettingResult) -> bool:
        """Bit-identical scores (what the reference-equality tests and the benchmark check)."""
        return (
            self.queries == other.queries
            and self.skipped == other.skipped
            and self.mAP == other.mAP
            and np.array_equal(self.cmc, other.cmc)
            and (self.per_query is None) == (other.per_query is None)
            and (
                self.per_query is None
                or (
                    np.array_equal(self.per_query.first, other.per_query.first)
                    and np.array_equal(self.per_query.ap, other.per_query.ap, equal_nan=True)
                )
            )
        )


def setting_masks(setting: str, same_pid, same_camera, same_clothes):
    """(correct, removed) boolean masks for one setting — the table above, in one place."""
    different_camera = same_pid & ~same_camera
    if setting == "standard":
        return different_camera, same_pid & same_camera
    if setting == "cc":
        return different_camera & ~same_clothes, same_pid & (same_camera | same_clothes)
    if setting == "sc":
        return different_camera & same_clothes, same_pid & (same_camera | ~same_clothes)
    raise ValueError(f"unknown setting {setting!r} (known: {', '.join(SETTINGS)})")


def l2_normalise(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def cosine_distances(query_features: np.ndarray, gallery_features: np.ndarray) -> np.ndarray:
    """(nq, ng) float32 negative cosine similarity of L2-normalised features."""
    gallery_t = l2_normalise(gallery_features).T.copy()
    return _negative_cosine(l2_normalise(query_features), gallery_t)


def _negative_cosine(query_normalised: np.ndarray, gallery_t: np.ndarray) -> np.ndarray:
    # One expression for the full matrix and for chunks, so both round the same way.
    return -(query_normalised @ gallery_t)


def _encode(query_values, gallery_values) -> tuple[np.ndarray, np.ndarray]:
    """Map labels of any type to shared integer codes so comparisons are cheap."""
    values = np.concatenate([np.asarray(query_values), np.asarray(gallery_values)])
    _, codes = np.unique(values, return_inverse=True)
    codes = codes.reshape(-1)
    return codes[: len(query_values)], codes[len(query_values) :]


def _precision_terms(positions: np.ndarray, rank_in_query: np.ndarray) -> list[float]:
    """(i+1)/(r_i+1) for the i-th correct entry (0-based) at filtered position r_i."""
    return ((rank_in_query + 1) / (positions + 1)).tolist()


def _average_precision(terms: list[float]) -> float:
    return math.fsum(terms) / len(terms)


def _result(first: np.ndarray, ap: np.ndarray, max_rank: int) -> SettingResult:
    """Scores from per-query outcomes (`QueryScores` fields); skipped queries have first = -1."""
    per_query = QueryScores(np.asarray(first, dtype=np.int64), np.asarray(ap, dtype=np.float64))
    valid_mask = per_query.valid
    valid, skipped = int(valid_mask.sum()), int((~valid_mask).sum())
    if valid == 0:
        return SettingResult(np.zeros(max_rank), 0.0, 0, skipped, per_query)
    firsts = per_query.first[valid_mask]
    hits = np.bincount(firsts[firsts < max_rank], minlength=max_rank)
    cmc = np.cumsum(hits) / valid
    mean_ap = math.fsum(per_query.ap[valid_mask].tolist()) / valid
    return SettingResult(cmc, mean_ap, valid, skipped, per_query)


def result_from_scores(scores: QueryScores, max_rank: int = max(DEFAULT_RANKS)) -> SettingResult:
    """A setting's scores rebuilt from its per-query outcomes (e.g. a probe's, read from JSON)."""
    return _result(scores.first, scores.ap, max_rank)


def _check_distances(distances: np.ndarray) -> np.ndarray:
    """Distances are ranked as float32 in both implementations; + 0.0 turns -0.0 into 0.0."""
    distances = np.asarray(distances, dtype=np.float32)
    if not np.isfinite(distances).all():
        raise ValueError("distances contain NaN or inf; check the features")
    return distances + np.float32(0.0)


def evaluate_reference(
    distances: np.ndarray,
    query: Labels,
    gallery: Labels,
    settings: tuple[str, ...] = SETTINGS,
    max_rank: int = 20,
) -> dict[str, SettingResult]:
    """The straightforward per-query loop over a full (nq, ng) distance matrix."""
    distances = _check_distances(distances)
    q_pid, g_pid = _encode(query.pids, gallery.pids)
    q_cam, g_cam = _encode(query.cameras, gallery.cameras)
    q_clo, g_clo = _encode(query.clothes, gallery.clothes)
    results = {}
    for setting in settings:
        first = np.full(len(query), -1, dtype=np.int64)
        ap = np.full(len(query), np.nan)
        for i in range(len(query)):
            order = np.argsort(distances[i], kind="stable")
            correct, removed = setting_masks(
                setting, g_pid == q_pid[i], g_cam == q_cam[i], g_clo == q_clo[i]
            )
            hits = correct[order][~removed[order]]
            positions = np.flatnonzero(hits)
            if positions.size == 0:
                continue
            first[i] = int(positions[0])
            ap[i] = _average_precision(_precision_terms(positions, np.arange(len(positions))))
        results[setting] = _result(first, ap, max_rank)
    return results


def _row_starts(rows: np.ndarray, num_rows: int) -> np.ndarray:
    """Index where each row's run starts in an array grouped by row."""
    counts = np.bincount(rows, minlength=num_rows)
    return np.cumsum(counts) - counts


def _rank_within_rows(rows: np.ndarray, positions: np.ndarray, num_rows: int, num_cols: int):
    """Sort entries by (row, position) — positions are distinct within a row — and return the
    order and each sorted entry's rank within its row."""
    order = np.argsort(rows.astype(np.int64) * num_cols + positions)
    sorted_rows = rows[order]
    return order, np.arange(len(order)) - _row_starts(sorted_rows, num_rows)[sorted_rows]


def _stable_positions(distances: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """0-based position of entry (rows[e], cols[e]) in its row's stable sort by distance — without
    sorting the rows. Values are bucketed into monotone bins; an entry's position is the count of
    its row's values in lower bins (a histogram) plus its rank among the few values sharing its
    bin, ordered by (distance, column)."""
    num_rows, num_cols = distances.shape
    lowest, highest = distances.min(), distances.max()
    if not (np.isfinite(lowest) and np.isfinite(highest)):
        raise ValueError("distances contain NaN or inf; check the features")
    bins_per_row = max(1, num_cols // 2)
    span = float(highest) - float(lowest)
    scale = np.float32((bins_per_row - 1) / span) if span > 0 else np.float32(0.0)
    # (d - lowest) * scale is monotone in d under rounding, so d1 < d2 ⇒ bin1 ≤ bin2.
    with np.errstate(over="ignore"):  # only for spans beyond float32; handled just below
        scaled = np.subtract(distances, lowest, dtype=np.float32)
        np.multiply(scaled, scale, out=scaled)
    if span > float(np.finfo(np.float32).max):  # d - lowest overflowed: cap the infinities
        np.clip(scaled, 0, bins_per_row - 1, out=scaled)
    # Otherwise 0 ≤ scaled < bins_per_row: rounding moves the top value by ulps, not a whole bin.
    keys = scaled.astype(np.intp)  # intp: what bincount and indexing use without a copy
    keys += (np.arange(num_rows, dtype=np.intp) * bins_per_row)[:, None]
    keys = keys.ravel()

    histogram = np.bincount(keys, minlength=num_rows * bins_per_row)
    below = np.cumsum(histogram) - histogram  # values in lower bins, counted from row 0
    row_base = below[np.arange(num_rows) * bins_per_row]

    targets = rows * num_cols + cols
    target_keys = keys[targets]
    wanted = np.zeros(num_rows * bins_per_row, dtype=bool)
    wanted[target_keys] = True
    shared = np.flatnonzero(wanted[keys])  # every value in a bin that holds a target (ascending)
    order = _order_by_row_distance_column(shared, distances.ravel()[shared], num_rows, num_cols)
    # Bins are monotone within a row, so in (row, distance, column) order each bin is one run.
    sorted_keys = keys[shared][order]
    run_start = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
    run_of = np.cumsum(np.concatenate([[False], sorted_keys[1:] != sorted_keys[:-1]]))
    rank_in_bin = np.empty(len(shared), dtype=np.int64)
    rank_in_bin[order] = np.arange(len(shared)) - run_start[run_of]
    target_rank = rank_in_bin[np.searchsorted(shared, targets)]
    return below[target_keys] - row_base[rows] + target_rank


def _order_by_row_distance_column(flat_index, values, num_rows, num_cols) -> np.ndarray:
    """Argsort of entries (row, column) = divmod(flat_index, num_cols) by (row, value, column).
    One int64 argsort of packed keys when they fit in 63 bits, a lexsort otherwise."""
    rows, cols = np.divmod(flat_index, num_cols)
    values = np.asarray(values, dtype=np.float32) + np.float32(0.0)  # -0.0 → 0.0
    bits = values.view(np.int32).astype(np.int64)
    monotone = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits) + 2**31  # float order, in [0, 2^32)
    row_bits = max(1, int(num_rows - 1).bit_length())
    col_bits = max(1, int(num_cols - 1).bit_length())
    if row_bits + 32 + col_bits > 63:
        return np.lexsort((cols, values, rows))
    return np.argsort((rows << (32 + col_bits)) | (monotone << col_bits) | cols)


def _score_chunk(distances, rows, cols, same_cam, same_clo, settings, collect):
    """Filtered ranking positions of every correct entry for a chunk of queries.

    `rows, cols` are the chunk's same-pid entries, grouped by row. Every same-pid entry is either
    correct or removed in each setting, so a correct entry's position after removal is the number
    of other-pid entries before it plus the number of correct entries of its query before it."""
    num_rows, num_cols = distances.shape
    position = _stable_positions(distances, rows, cols)
    order, pid_rank = _rank_within_rows(rows, position, num_rows, num_cols)
    others_before = np.empty(len(rows), dtype=np.int64)
    others_before[order] = position[order] - pid_rank

    for setting in settings:
        correct, _ = setting_masks(setting, np.True_, same_cam, same_clo)
        c_rows = rows[correct]
        order, correct_rank = _rank_within_rows(c_rows, position[correct], num_rows, num_cols)
        positions = others_before[correct][order] + correct_rank
        collect[setting].append(
            (
                np.bincount(c_rows, minlength=num_rows),
                positions.tolist(),
                _precision_terms(positions, correct_rank),
            )
        )


def _finish(collected, num_queries: int, max_rank: int) -> SettingResult:
    first = np.full(num_queries, -1, dtype=np.int64)
    ap = np.full(num_queries, np.nan)
    query = 0
    for counts, positions, terms in collected:  # chunks in query order
        stop = 0
        for n in counts.tolist():
            start, stop = stop, stop + n
            if n:
                first[query] = positions[start]
                ap[query] = _average_precision(terms[start:stop])
            query += 1
    return _result(first, ap, max_rank)


def evaluate_blocks(
    blocks: Iterator[np.ndarray],
    query: Labels,
    gallery: Labels,
    settings: tuple[str, ...],
    chunk_size: int,
    max_rank: int,
) -> dict[str, SettingResult]:
    q_pid, g_pid = _encode(query.pids, gallery.pids)
    q_cam, g_cam = _encode(query.cameras, gallery.cameras)
    q_clo, g_clo = _encode(query.clothes, gallery.clothes)
    for setting in settings:
        setting_masks(setting, np.False_, np.False_, np.False_)  # fail early on a typo
    # Gallery columns grouped by pid (ascending within a pid): a query's same-pid entries are one
    # slice, so the (chunk × gallery) pid comparison is never built.
    by_pid = np.argsort(g_pid, kind="stable")
    pid_count = np.bincount(g_pid, minlength=int(q_pid.max(initial=0)) + 1)
    pid_start = np.cumsum(pid_count) - pid_count
    if len(gallery) == 0:  # nothing can match: every query is skipped
        none = np.full(len(query), -1)
        return {
            setting: _result(none, np.full(len(query), np.nan), max_rank) for setting in settings
        }
    collect = {setting: [] for setting in settings}
    for start, block in zip(range(0, len(query), chunk_size), blocks, strict=True):
        chunk_pids = q_pid[start : start + len(block)]
        n = pid_count[chunk_pids]
        rows = np.repeat(np.arange(len(block)), n)
        offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        cols = by_pid[np.repeat(pid_start[chunk_pids], n) + offset]
        q_rows = rows + start
        _score_chunk(
            np.asarray(block, dtype=np.float32),
            rows,
            cols,
            q_cam[q_rows] == g_cam[cols],
            q_clo[q_rows] == g_clo[cols],
            settings,
            collect,
        )
    return {setting: _finish(collect[setting], len(query), max_rank) for setting in settings}


def evaluate_distances(
    distances: np.ndarray,
    query: Labels,
    gallery: Labels,
    settings: tuple[str, ...] = SETTINGS,
    chunk_size: int = 256,
    max_rank: int = 20,
) -> dict[str, SettingResult]:
    """Vectorised, chunked scoring of a precomputed (nq, ng) distance matrix."""
    distances = np.asarray(distances)
    if distances.shape != (len(query), len(gallery)):
        raise ValueError(f"distances {distances.shape} do not match {len(query)} × {len(gallery)}")
    chunk_size = max(1, int(chunk_size))
    blocks = (distances[s : s + chunk_size] for s in range(0, len(query), chunk_size))
    return evaluate_blocks(blocks, query, gallery, settings, chunk_size, max_rank)


def evaluate(
    query_features: np.ndarray,
    gallery_features: np.ndarray,
    query: Labels,
    gallery: Labels,
    settings: tuple[str, ...] = SETTINGS,
    chunk_size: int = 256,
    max_rank: int = 20,
) -> dict[str, SettingResult]:
    """Score features: negative cosine distances computed one chunk of queries at a time, so the
    full distance matrix never exists (memory ∝ chunk_size × gallery size)."""
    if len(query_features) != len(query) or len(gallery_features) != len(gallery):
        raise ValueError("features and labels differ in length")
    chunk_size = max(1, int(chunk_size))
    query_features = l2_normalise(query_features)
    gallery_t = l2_normalise(gallery_features).T.copy()
    blocks = (
        _negative_cosine(query_features[s : s + chunk_size], gallery_t)
        for s in range(0, len(query_features), chunk_size)
    )
    return evaluate_blocks(blocks, query, gallery, settings, chunk_size, max_rank)


def validation_map(features: np.ndarray, labels: Labels, chunk_size: int = 256) -> float:
    """mAP (%) of a validation set, every tracklet a query against all the others: cloth-changing
    when any query has a cloth-changing match, else standard (model selection, fusion
    calibration)."""
    results = evaluate(features, features, labels, labels, chunk_size=chunk_size)
    chosen = results["cc"] if results["cc"].queries else results["standard"]
    return 100.0 * float(chosen.mAP)
