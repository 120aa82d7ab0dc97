"""UCalgary normal & abnormal gait (Kozlow et al., IEEE SSCI 2017): real people walking toward a
Kinect v2, one CSV of 18 joints a sequence, no frames. For research and scientific purposes only
(the source's terms; README "Real people's skeletons").

    <root>/subject<N>_Seq_<run>_Gen_<M|F>_GeometricPositions_<N|AR|AL|OA>.csv

Protocol (the split is fixed here, not drawn): odd-numbered subjects train, even-numbered ones
are the test identities (5 women and 9 men train, 4 and 10 test: balanced by gender, and
interleaved in recording order); a test subject's run 1 is the query and its other runs the
gallery. Camera = run number, so that the evaluator's same-camera removal never drops a run
(every run is its own recording); clothes = walking condition (N normal, AR / AL a simulated
right / left leg abnormality), so "same clothes" is the other normal run and "cloth-changing"
is a match across a change of gait. Run 7 (subjects 1-5, condition OA) is left out: the source
marks it "ignore".

Data defects handled here, each measured on the set (README):
- copies: the six files of subject 10 are byte-identical to subject 4's, and subject 22's run 2
  and subject 6's run 6 repeat runs 1 and 5 — the first by (subject, run) is kept
  (`skeletons.drop_duplicates`), so subject 10 has no sequences and the test side 13 subjects;
- other bodies: the sensor sometimes tracks a second person standing at the side, or a body
  whose legs are out of view (Kinect then guesses them): `walker_frames` keeps the walker's
  frames only, and a sequence without one is a failure.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from pipeline.layouts import DatasetLayoutError, Failure, Tracklet, clothes_id
from pipeline.layouts.skeletons import (
    Sequence,
    SequenceError,
    drop_duplicates,
    parse_rows,
)
from pipeline.skeleton import NUM_JOINTS

FILE_PATTERN = re.compile(r"subject(\d+)_Seq_(\d+)_Gen_([MF])_GeometricPositions_([A-Z]+)\.csv")
IGNORED_RUNS = (7,)  # marked "ignore" by the source
QUERY_RUN = 1
# The file's joints, in column order (x, y, z each), then 8 derived distances.
KINECT_JOINTS = (
    "foot_left",
    "ankle_left",
    "knee_left",
    "hip_left",
    "foot_right",
    "ankle_right",
    "knee_right",
    "hip_right",
    "spine_base",
    "spine_mid",
    "neck",
    "head",
    "shoulder_left",
    "shoulder_right",
    "wrist_left",
    "wrist_right",
    "elbow_left",
    "elbow_right",
)
# The header's spelling of them, lower case, letters only (e.g. "ShouldL X" → "shouldl").
HEADER_NAMES = (
    *("footleft", "ankleleft", "kneeleft", "hipleft"),
    *("footright", "ankleright", "kneeright", "hipright"),
    *("spinebase", "spinemid", "neck", "head", "shouldl", "shouldr"),
    *("wristleft", "wristright", "elbowleft", "elbowright"),
)
COLUMNS = 3 * len(KINECT_JOINTS) + 8
# Our 14 joints (pipeline.skeleton.JOINT_NAMES order) as means of Kinect joints. Neck = mid-
# shoulder as in SPEC §4.1 (Kinect's own neck joint sits higher, at the base of the skull); the
# hands are the wrists (this export has no hand joints); foot = mean of ankle and Kinect's foot
# (forefoot), nearest to SPEC's mean of ankle, heel and toe (README "Real people's skeletons").
SOURCES: tuple[tuple[str, ...], ...] = (
    ("head",),
    ("shoulder_left", "shoulder_right"),
    ("shoulder_left",),
    ("shoulder_right",),
    ("elbow_left",),
    ("elbow_right",),
    ("wrist_left",),
    ("wrist_right",),
    ("hip_left",),
    ("hip_right",),
    ("knee_left",),
    ("knee_right",),
    ("ankle_left", "foot_left"),
    ("ankle_right", "foot_right"),
)
# Kinect camera space is X to the sensor's left, Y up, Z away from the sensor (right-handed);
# ours is x right, y down, z away: a half turn about z (x, y negated; no mirror, so a person's
# left stays their left). Verified on the data: README, tests/test_ucalgary.py.
KINECT_TO_OURS = np.array([-1.0, -1.0, 1.0], dtype=np.float32)

FPS = 30.0  # Kinect v2
MIN_STATURE = 1.0  # m, head above mean ankle; less = legs out of view, guessed by the sensor
MAX_STEP = 0.3  # m a frame (a walker's hip moves ~0.05 m), + STEP_PER_GAP per frame missed
STEP_PER_GAP = 0.1
MIN_FRAMES = 30  # a walker tracked for less than 1 s is not used
MIN_SPEED = 0.25  # m/s from first to last frame; a bystander standing still moves < 0.2

EXPECTED_LAYOUT = """expected the UCalgary gait set (patrickkozlow/BT_Labs_Gait_Experiment,
"3) Database/UCalgary/Frontview"):
  <root>/subject<N>_Seq_<run>_Gen_<M|F>_GeometricPositions_<N|AR|AL|OA>.csv
  each with a header row and 120 rows of 18 joints × X, Y, Z plus 8 distances"""


def split_of(subject: int, run: int) -> str:
    """The fixed protocol: odd subjects train; an even subject's run 1 is a query, others gallery."""
    if subject % 2:
        return "train"
    return "query" if run == QUERY_RUN else "gallery"


def load(root: str | Path) -> tuple[list[Tracklet], list[Failure]]:
    root = Path(root).absolute()
    if not root.is_dir():
        raise DatasetLayoutError(f"UCalgary root {root} does not exist — {EXPECTED_LAYOUT}")
    named, failures = [], []
    for path in sorted(root.glob("*.csv")):
        match = FILE_PATTERN.fullmatch(path.name)
        if match is None:
            failures.append(Failure("not a UCalgary sequence file name", str(path)))
            continue
        subject, run, condition = int(match[1]), int(match[2]), match[4]
        if run not in IGNORED_RUNS:
            named.append((subject, run, condition, path))
    if not named:
        raise DatasetLayoutError(f"no UCalgary sequence files in {root} — {EXPECTED_LAYOUT}")
    tracklets = [
        Tracklet(
            path.name,
            (),
            "",
            f"subject{subject:02d}",
            clothes_id(f"subject{subject:02d}", condition),
            run,
            split_of(subject, run),
            str(path),
        )
        for subject, run, condition, path in sorted(named)  # (subject, run): which copy is kept
    ]
    kept, copies = drop_duplicates(tracklets)
    return kept, failures + copies


def mapping_matrix() -> np.ndarray:
    """(14, 18) averaging weights: Kinect joints → ours, one matrix product."""
    matrix = np.zeros((NUM_JOINTS, len(KINECT_JOINTS)), dtype=np.float32)
    for joint, names in enumerate(SOURCES):
        for name in names:
            matrix[joint, KINECT_JOINTS.index(name)] = 1.0 / len(names)
    return matrix


def kinect_to_joints14(kinect: np.ndarray) -> np.ndarray:
    """(T, 18, 3) Kinect camera-space joints → (T, 14, 3) ours (order, axes; metres kept)."""
    joints = np.einsum("jk,tkc->tjc", mapping_matrix(), np.asarray(kinect, dtype=np.float32))
    return (joints * KINECT_TO_OURS).astype(np.float32)


def read_kinect(path: str | Path) -> np.ndarray:
    """The file's (T, 18, 3) joints in Kinect camera space; a joint at exactly (0, 0, 0) — the
    sensor's "not tracked" — is NaN. SequenceError for a wrong header, column count or cell."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise SequenceError(f"unreadable file ({error})") from None
    lines = [(n, line) for n, line in enumerate(io.StringIO(text), start=1) if line.strip()]
    if not lines:
        raise SequenceError("empty file")
    names = [re.sub("[^a-z]", "", cell.lower())[:-1] for cell in lines[0][1].split(",")[:54:3]]
    if tuple(names) != HEADER_NAMES:
        raise SequenceError(
            f"header names the joints {names}, not UCalgary's {list(HEADER_NAMES)} (first line "
            "must be the header)"
        )
    values = parse_rows(lines[1:], COLUMNS, "18 joints × X, Y, Z, then 8 distances")
    joints = values[:, :54].reshape(len(values), len(KINECT_JOINTS), 3)
    joints[(joints == 0).all(axis=-1)] = np.nan
    return joints


def read_sequence(path: str | Path) -> Sequence:
    """A UCalgary file → the walker's joints in our order and axes, trimmed to the frames from
    the walker's first to last; frames in between that are not the walker's are not present."""
    kinect = read_kinect(path)
    if not len(kinect):
        raise SequenceError("empty sequence (a header but no frames)")
    joints = kinect_to_joints14(kinect)
    walker = walker_frames(joints)
    first, last = int(walker[0]), int(walker[-1])
    trimmed = joints[first : last + 1].copy()
    present = np.zeros(len(trimmed), dtype=bool)
    present[walker - first] = True
    trimmed[~present] = np.nan
    return Sequence(trimmed, present, first_frame=first)


def walker_frames(joints: np.ndarray) -> np.ndarray:
    """Indices of the frames that show the walker: complete, upright (stature ≥ MIN_STATURE)
    frames linked into tracks by the hip centre's continuity; the track that moves furthest
    (the subject walks toward the sensor, a bystander stands) among those of ≥ MIN_FRAMES.
    SequenceError when no track is long enough or fast enough to be a walk."""
    hips = (joints[:, 8] + joints[:, 9]) / 2
    stature = (joints[:, 12, 1] + joints[:, 13, 1]) / 2 - joints[:, 0, 1]  # y points down
    usable = np.isfinite(joints).all(axis=(1, 2)) & (np.nan_to_num(stature) >= MIN_STATURE)
    tracks = [t for t in _tracks(hips, np.flatnonzero(usable)) if len(t) >= MIN_FRAMES]
    if not tracks:
        raise SequenceError(
            f"no walking person: no body is tracked upright for {MIN_FRAMES} frames "
            f"({int(usable.sum())} of {len(joints)} frames upright)"
        )
    moved = [float(np.linalg.norm(hips[t[-1]] - hips[t[0]])) for t in tracks]
    best = int(np.argmax(moved))
    seconds = (tracks[best][-1] - tracks[best][0]) / FPS
    if moved[best] < MIN_SPEED * seconds:
        raise SequenceError(
            f"no walking person: the tracked body moves {moved[best]:.2f} m in {seconds:.1f} s "
            f"(a walk is ≥ {MIN_SPEED} m/s; the sensor tracked someone standing)"
        )
    return np.array(tracks[best])


def _tracks(hips: np.ndarray, frames: np.ndarray) -> list[list[int]]:
    """Frames linked greedily, in time order, to the track whose last hip position is nearest
    within MAX_STEP (+ STEP_PER_GAP per frame missed); otherwise they start a new track."""
    tracks: list[list[int]] = []
    for t in frames:
        near = [
            (float(np.linalg.norm(hips[t] - hips[track[-1]])), i) for i, track in enumerate(tracks)
        ]
        near = [(d, i) for d, i in near if d <= MAX_STEP + STEP_PER_GAP * (t - tracks[i][-1] - 1)]
        if near:
            tracks[min(near)[1]].append(int(t))
        else:
            tracks.append([int(t)])
    return tracks
