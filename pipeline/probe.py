"""A no-learning check of how much identity a skeleton cache holds (`asgl-pipeline probe`):
hand-made cues per tracklet, ranked by nearest neighbour under the SPEC §7 protocol (query vs
gallery, standard / cloth-changing / same-clothes) with the measured chance level beside them.
Run it before training: a cue at chance here is unlikely to be learned from these skeletons.

Cues, all scale-free (stature and camera distance do not enter):
- `bone ratios`: each of the 14 bones' length over the sum of all, the tracklet's median frame;
- `limb proportions`: leg / torso, arm / torso, shoulder width / hip width, upper / lower leg;
- `cadence`: steps per frame, the frequency that best fits the left − right swings of the feet,
  knees and hands over the whole tracklet (the gait rhythm);
- `all`: the three together, each feature standardised over the query and gallery tracklets;
- variants of the bone ratios that might recover what pose estimation loses: after a temporal
  median filter, from visible frames only (MediaPipe's visibility), from the image landmarks.
Joints are taken in metric units: paper Eq. 1's frame-size scaling is undone with the tracklet's
recorded frame size, so the ratios are not bent by h ≠ w. Every summary carries its 95 % bootstrap
interval over query identities (as a run's metrics.json does), and each query's outcome is kept
(`per_query`), so `asgl-pipeline compare RUN probe.json` pairs a learned run with a cue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.confidence import chance_levels, summary_with_intervals
from pipeline.metrics import SETTINGS, Labels, QueryScores, evaluate_distances
from pipeline.skeleton import EDGES

L_FOOT, R_FOOT = 12, 13
# Left − right pairs that swing once a stride (feet, knees, hands): the cadence's signals.
SWING_PAIRS = ((L_FOOT, R_FOOT), (10, 11), (6, 7))
STRIDE_PERIODS = (6.0, 48.0)  # frames: 0.2–1.6 s a stride at 30 frames/s, 0.4–3.2 s at 15
FREQUENCY_STEPS = 256
SUBHARMONIC_SHARE = 0.5
ROBUST_ROUNDS = 3  # the first plain, then two down-weighting frames the fit leaves far off
HUBER = 1.5  # robust scales (1.4826 × median) a frame may be off before it is down-weighted
# (numerator bones, denominator bones) by index into EDGES
PROPORTIONS = {
    "leg/torso": ((10, 11, 12, 13), (7, 8)),
    "arm/torso": ((3, 4, 5, 6), (7, 8)),
    "shoulders/hips": ((1, 2), (9,)),
    "thigh/shin": ((10, 12), (11, 13)),
}
CUES = ("bone ratios", "limb proportions", "cadence", "all")
# What could recover identity MediaPipe's estimates lose (issue 15), each a bone-ratio variant:
VARIANT_CUES = ("bone ratios, smoothed", "bone ratios, visible frames", "bone ratios, image")
SMOOTH_FRAMES = 5  # temporal median window
VISIBLE = 0.5


def metric_joints(joints14: np.ndarray, frame_size, normalisation: str) -> np.ndarray:
    """Cached (T, 14, 3) joints back in metric units (Eq. 1 undone; other modes already are)."""
    joints = np.asarray(joints14, dtype=np.float64)
    if normalisation == "paper":
        h, w = frame_size
        joints = joints * np.array([h, w, h * w][: joints.shape[-1]], dtype=np.float64)
    return joints


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(T, 14, C) → (T, len(EDGES)) bone lengths."""
    i, j = np.array(EDGES).T
    return np.linalg.norm(joints[:, i] - joints[:, j], axis=-1)


def _swings(joints: np.ndarray) -> np.ndarray | None:
    """(T, C) left − right swings of `SWING_PAIRS`, each centred and scaled to unit RMS (so the
    arms count as much as the legs); None when nothing swings."""
    swings = [joints[:, a] - joints[:, b] for a, b in SWING_PAIRS]
    swings = [s - s.mean(axis=0) for s in swings]
    rms = [np.sqrt((s**2).sum(-1).mean()) for s in swings]
    if max(rms) == 0:
        return None
    return np.concatenate([s / r for s, r in zip(swings, rms) if r > 0], axis=1)


def _sinusoid_designs(frames: int, freqs: np.ndarray) -> np.ndarray:
    """(F, T, 4): an offset, a linear drift and a sinusoid (cos, sin) at every frequency (cycles
    per frame)."""
    t = np.arange(frames) - (frames - 1) / 2
    phase = 2 * np.pi * freqs[:, None] * t[None]
    drift = np.broadcast_to(t / frames, phase.shape)
    return np.stack([np.ones_like(phase), drift, np.cos(phase), np.sin(phase)], axis=-1)


def _sinusoid_fits(y: np.ndarray, designs: np.ndarray, weights: np.ndarray):
    """Weighted least squares of y (T, C) on every design → (explained weighted sum of squares
    (F,), coefficients (F, 4, C))."""
    weighted = designs * weights[None, :, None]
    projected = weighted.transpose(0, 2, 1) @ y  # (F, 4, C)
    coef = np.linalg.solve(weighted.transpose(0, 2, 1) @ designs + 1e-9 * np.eye(4), projected)
    return (coef * projected).sum(axis=(1, 2)), coef


def cadence(joints: np.ndarray, periods: tuple[float, float] = STRIDE_PERIODS) -> float:
    """Steps per frame (twice the stride frequency): the frequency whose sinusoid, with an offset
    and a linear drift, best explains the left − right swings of the feet, knees and hands
    together, searched over stride periods (frames, at most the tracklet's length) and refined by
    a parabola through the best three. Frames the fit leaves far off (an estimator's left/right
    swaps) are down-weighted and the search repeated. A fit over the whole tracklet averages
    frame-to-frame noise away: on the benchmark set MediaPipe's cadence is within 10 % of the
    truth for 96.5 % of the tracklets (docs/MEDIAPIPE.md, "Timing survives"); 0 when nothing
    swings."""
    frames = len(joints)
    longest = min(periods[1], frames)
    y = _swings(joints) if frames >= 8 and longest > periods[0] else None
    if y is None:
        return 0.0
    freqs = np.linspace(1 / longest, 1 / periods[0], FREQUENCY_STEPS)
    designs = _sinusoid_designs(frames, freqs)
    weights = np.ones(frames)
    for round_ in range(ROBUST_ROUNDS):
        explained, coef = _sinusoid_fits(y, designs, weights)
        best = int(np.argmax(explained))
        if round_ < ROBUST_ROUNDS - 1:
            off = np.linalg.norm(y - designs[best] @ coef[best], axis=1)
            scale = 1.4826 * np.median(off) + 1e-12
            weights = np.minimum(1.0, HUBER * scale / np.maximum(off, 1e-12))
    # A left/right swap every step folds the swing into a rhythm twice as fast: when half the
    # best frequency explains a good part as much, the stride is that half.
    half = int(np.argmin(np.abs(freqs - freqs[best] / 2)))
    if freqs[best] / 2 >= freqs[0] and explained[half] >= SUBHARMONIC_SHARE * explained[best]:
        best = half
    shift = 0.0
    if 0 < best < len(freqs) - 1:
        a, b, c = -explained[best - 1 : best + 2]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) > 0 else 0.0
    return float(2 * (freqs[best] + shift * (freqs[1] - freqs[0])))


def temporal_median(joints: np.ndarray, window: int = SMOOTH_FRAMES) -> np.ndarray:
    """Each frame replaced by the median of the `window` frames around it (edges shrink)."""
    half = window // 2
    return np.stack(
        [np.median(joints[max(0, t - half) : t + half + 1], axis=0) for t in range(len(joints))]
    )


def _ratios(lengths: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(T, bones) → (bones,) median length over frames (those with weight, when given), over the
    sum: scale-free."""
    if weights is not None:
        bones = np.array(
            [
                np.median(lengths[w, b]) if w.any() else np.median(lengths[:, b])
                for b, w in enumerate(weights.T)
            ]
        )
    else:
        bones = np.median(lengths, axis=0)
    return bones / (bones.sum() or 1.0)


def variant_cues(
    joints: np.ndarray, joints_2d: np.ndarray | None, visibility14: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The bone ratios again, after a temporal median filter, from the frames where both ends of
    each bone are visible (MediaPipe's visibility > 0.5), and from the 2D image landmarks."""
    lengths = bone_lengths(joints)
    cues = {"bone ratios, smoothed": _ratios(bone_lengths(temporal_median(joints)))}
    visible = None
    if visibility14 is not None and np.any(visibility14):
        i, j = np.array(EDGES).T
        visible = np.minimum(visibility14[:, i], visibility14[:, j]) > VISIBLE
    cues["bone ratios, visible frames"] = _ratios(lengths, visible)
    cues["bone ratios, image"] = (
        _ratios(bone_lengths(joints_2d)) if joints_2d is not None else _ratios(lengths)
    )
    return cues


def tracklet_cues(
    joints: np.ndarray, joints_2d: np.ndarray | None = None, visibility14: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """One tracklet's cues (metric joints; optional image joints and per-joint visibility for
    the variant cues), each a 1-D vector."""
    bones = np.median(bone_lengths(joints), axis=0)
    total = bones.sum() or 1.0
    proportions = [
        bones[list(num)].sum() / max(bones[list(den)].sum(), 1e-9)
        for num, den in PROPORTIONS.values()
    ]
    return {
        "bone ratios": bones / total,
        "limb proportions": np.array(proportions),
        "cadence": np.array([cadence(joints)]),
        **variant_cues(joints, joints_2d, visibility14),
    }


@dataclass
class ProbeResult:
    cues: dict[str, dict[str, dict]]  # cue → setting → summary (R-1 …, mAP, intervals, queries)
    chance: dict[str, dict[str, float]]  # setting → metric → chance level
    tracklets: dict[str, int]
    per_query: dict[str, dict[str, dict]] = field(default_factory=dict)  # cue → setting → scores


def scores_record(scores: QueryScores) -> dict[str, list]:
    """Per-query outcomes as JSON: first correct position (-1 none) and AP (null when none)."""
    return {
        "first": [int(f) for f in scores.first],
        "ap": [None if np.isnan(a) else float(a) for a in scores.ap],
    }


def scores_from_record(record: dict) -> QueryScores:
    """The inverse of `scores_record`."""
    ap = [np.nan if a is None else a for a in record["ap"]]
    return QueryScores(np.array(record["first"], dtype=np.int64), np.array(ap, dtype=np.float64))


def _standardise(query: np.ndarray, gallery: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    both = np.concatenate([query, gallery])
    mean, std = both.mean(axis=0), both.std(axis=0)
    std[std == 0] = 1.0
    return (query - mean) / std, (gallery - mean) / std


def score_cues(
    query: list[dict],
    gallery: list[dict],
    query_labels: Labels,
    gallery_labels: Labels,
    chance_repeats: int = 100,
) -> ProbeResult:
    """Nearest neighbour (Euclidean distance on standardised features) per cue."""
    cues = {}
    parts = [c for c in CUES if c != "all"]
    stacked = {}
    for cue in parts:
        stacked[cue] = _standardise(
            np.stack([q[cue] for q in query]), np.stack([g[cue] for g in gallery])
        )
    stacked["all"] = tuple(np.concatenate([stacked[c][k] for c in parts], axis=1) for k in (0, 1))
    for cue in VARIANT_CUES:
        stacked[cue] = _standardise(
            np.stack([q[cue] for q in query]), np.stack([g[cue] for g in gallery])
        )
    per_query: dict[str, dict[str, dict]] = {}
    for cue in (*CUES, *VARIANT_CUES):
        q, g = stacked[cue]
        distances = np.linalg.norm(q[:, None, :] - g[None, :, :], axis=-1)
        results = evaluate_distances(distances, query_labels, gallery_labels)
        cues[cue] = {s: summary_with_intervals(results[s], query_labels.pids) for s in SETTINGS}
        per_query[cue] = {s: scores_record(results[s].per_query) for s in SETTINGS}
    chance = chance_levels(query_labels, gallery_labels, repeats=chance_repeats)
    return ProbeResult(cues, chance, {"query": len(query), "gallery": len(gallery)}, per_query)


def format_probe(result: ProbeResult) -> str:
    """R-1 with its 95 % interval and mAP per cue and setting, then the chance level."""
    lines = [f"{'cue':<28}" + "".join(f"{s + ' R-1 [95 % CI]':>22}{'mAP':>7}" for s in SETTINGS)]
    for cue, settings in result.cues.items():
        cells = []
        for s in SETTINGS:
            low, high = settings[s].get("intervals", {}).get("R-1", (np.nan, np.nan))
            r1 = f"{settings[s]['R-1']:.1f} [{low:.1f}, {high:.1f}]"
            cells.append(f"{r1:>22}{settings[s]['mAP']:>7.1f}")
        lines.append(f"{cue:<28}" + "".join(cells))
    lines.append(
        f"{'chance':<28}"
        + "".join(
            f"{result.chance[s]['R-1']:>22.1f}{result.chance[s]['mAP']:>7.1f}" for s in SETTINGS
        )
    )
    return "\n".join(lines)
