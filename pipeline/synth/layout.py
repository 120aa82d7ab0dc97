"""Plan and write the synthetic set in the CCVID layout (SPEC §3.1).

    <root>/session{1,2,3}/<pid>_<video>/<frame>.jpg  + gt_joints14.npy, gt_joints14_2d.npy
    <root>/train.txt, query.txt, gallery.txt        lines: "session1/001_03 001 u0_l0_s0_c0_a1"

The CCVID rule reads the camera as int(video), plus 12 in session3; so a tracklet filmed by
camera c of the first site lies in session1 or session2 as `<pid>_<c:02d>`, and one filmed by
camera c of the second site (ids 13…) in session3 as `<pid>_<c-12:02d>`. Each identity's outfits
rotate over the three sessions (one outfit per recording session, as in CCVID).

Every random draw comes from a generator seeded by (seed, what, which), so the output depends
only on the settings, never on ordering, processes or time.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.synth.body import sample_body_shape, sample_gait, vary_gait
from pipeline.synth.outfit import Outfit, sample_identity_look, sample_outfits
from pipeline.synth.render import Identity, render_tracklet
from pipeline.synth.scene import Scene, SceneTextures, View, sample_scene, sample_view

SESSIONS = (1, 2, 3)
SESSION3_CAMERA_OFFSET = 12  # CCVID: camera id + 12 for session3
MAX_CAMERAS = 12  # per site; more would collide with the session3 offset
JPEG_PARAMS = (
    cv2.IMWRITE_JPEG_QUALITY,
    92,
    cv2.IMWRITE_JPEG_OPTIMIZE,
    0,
    cv2.IMWRITE_JPEG_PROGRESSIVE,
    0,
)
GT_FILE = "gt_joints14.npy"
GT_IMAGE_FILE = "gt_joints14_2d.npy"  # the same joints in the frames' pixels (T, 14, 2)
SPLIT_FILES = {"train": "train.txt", "query": "query.txt", "gallery": "gallery.txt"}
_ASSIGNMENT_TRIES = 200


@dataclass(frozen=True)
class TrackletSpec:
    key: str  # "session1/001_03"
    pid: str
    identity: int
    outfit: int
    clothes: str  # clothes label, meaningful within the person
    session: int
    camera: int  # what the CCVID rule reads from `key`
    split: str  # train | query | gallery
    index: int  # position among the identity's tracklets (seeds its rendering)
    view: View


@dataclass(frozen=True)
class DatasetPlan:
    seed: int
    frames: int
    size: tuple[int, int]  # width, height
    identities: tuple[Identity, ...]
    outfits: tuple[tuple[Outfit, ...], ...]
    scenes: dict[int, Scene]  # by camera id
    tracklets: tuple[TrackletSpec, ...]
    train_pids: tuple[str, ...]
    test_pids: tuple[str, ...]


def camera_id(session: int, video: int) -> int:
    """The CCVID rule (SPEC §3.1)."""
    return video + (SESSION3_CAMERA_OFFSET if session == 3 else 0)


def camera_from_key(key: str) -> int:
    """Camera as the CCVID reader computes it from a tracklet path."""
    return int(key.split("_")[1]) + (SESSION3_CAMERA_OFFSET if key.startswith("session3") else 0)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def outfit_session(identity: int, outfit: int) -> int:
    return SESSIONS[(outfit + identity) % len(SESSIONS)]


def cameras_needed(outfits: int, tracklets_per_outfit: int) -> int:
    """Cameras per site so that one person's tracklets in one session use distinct cameras."""
    return math.ceil(outfits / len(SESSIONS)) * tracklets_per_outfit


def split_sizes(identities: int) -> tuple[int, int]:
    """(train, test) identity counts: half each, the test half gets the odd one."""
    train = identities // 2
    return train, identities - train


def _valid_protocol(tracks: list[dict]) -> bool:
    """Every query has a same-outfit and a different-outfit gallery tracklet on another camera."""
    gallery = [t for t in tracks if t["split"] == "gallery"]
    for query in (t for t in tracks if t["split"] == "query"):
        others = [g for g in gallery if g["camera"] != query["camera"]]
        if not any(g["outfit"] == query["outfit"] for g in others):
            return False
        if not any(g["outfit"] != query["outfit"] for g in others):
            return False
    return True


def _assign(
    identity: int, outfits: int, per_outfit: int, cameras: int, test: bool, rng
) -> list[dict]:
    """Session, camera and split of each of one identity's tracklets."""
    for _ in range(_ASSIGNMENT_TRIES):
        free = {s: list(rng.permutation(cameras) + 1) for s in SESSIONS}
        tracks = []
        for outfit in range(outfits):
            session = outfit_session(identity, outfit)
            query = int(rng.integers(per_outfit))
            for k in range(per_outfit):
                video = int(free[session].pop())
                split = ("query" if k == query else "gallery") if test else "train"
                tracks.append(
                    dict(
                        outfit=outfit,
                        session=session,
                        video=video,
                        camera=camera_id(session, video),
                        split=split,
                    )
                )
        if not test or _valid_protocol(tracks):
            return tracks
    raise ValueError(
        f"could not place identity {identity}'s tracklets so that every query has same- and "
        f"different-outfit matches on other cameras; use more cameras"
    )


def _site_scenes(cameras: int, seed: int) -> dict[int, Scene]:
    """Two sites, as in CCVID: cameras 1..C (sessions 1-2) and 13..12+C (session 3). Base yaws
    spread over 0-90°; each tracklet may also be the mirror view (walking away)."""
    scenes = {}
    for site, offset in enumerate((0, SESSION3_CAMERA_OFFSET)):
        for c in range(cameras):
            frac = (c + 0.5 * site) / max(cameras - 1, 1)
            base_yaw = 90.0 * min(frac, 1.0) if cameras > 1 else 45.0
            cam = offset + c + 1
            scenes[cam] = sample_scene(cam, base_yaw, seed * 1000 + cam, _rng(seed, 2, cam))
    return scenes


def plan_dataset(
    identities: int,
    outfits: int,
    cameras: int,
    tracklets_per_outfit: int,
    frames: int,
    size: tuple[int, int],
    seed: int,
    occlusion: float,
) -> DatasetPlan:
    """Decide everything that will be rendered (cheap; no pixels)."""
    if cameras_needed(outfits, tracklets_per_outfit) > cameras:
        raise ValueError(
            f"{outfits} outfits x {tracklets_per_outfit} tracklets need "
            f"{cameras_needed(outfits, tracklets_per_outfit)} cameras, got {cameras}"
        )
    n_train, _ = split_sizes(identities)
    width = max(3, len(str(identities)))
    pids = [f"{i + 1:0{width}d}" for i in range(identities)]
    people, wardrobes = [], []
    for i in range(identities):
        rng = _rng(seed, 0, i)
        people.append(Identity(sample_body_shape(rng), sample_gait(rng), sample_identity_look(rng)))
        wardrobes.append(tuple(sample_outfits(_rng(seed, 1, i), outfits)))

    scenes = _site_scenes(cameras, seed)
    tracklets = []
    for i, pid in enumerate(pids):
        tracks = _assign(i, outfits, tracklets_per_outfit, cameras, i >= n_train, _rng(seed, 4, i))
        for index, track in enumerate(tracks):
            outfit = track["outfit"]
            view = sample_view(scenes[track["camera"]], occlusion, _rng(seed, 5, i, index))
            tracklets.append(
                TrackletSpec(
                    key=f"session{track['session']}/{pid}_{track['video']:02d}",
                    pid=pid,
                    identity=i,
                    outfit=outfit,
                    clothes=wardrobes[i][outfit].label(outfit),
                    session=track["session"],
                    camera=track["camera"],
                    split=track["split"],
                    index=index,
                    view=view,
                )
            )
    return DatasetPlan(
        seed=seed,
        frames=frames,
        size=size,
        identities=tuple(people),
        outfits=tuple(wardrobes),
        scenes=scenes,
        tracklets=tuple(sorted(tracklets, key=lambda t: (t.pid, t.key))),
        train_pids=tuple(pids[:n_train]),
        test_pids=tuple(pids[n_train:]),
    )


def frame_name(index: int) -> str:
    return f"{index + 1:05d}.jpg"


def plan_from_settings(settings) -> DatasetPlan:
    """The plan a `SynthConfig` describes (what `asgl-pipeline synth` renders, and what a tool
    re-creates from a set's saved config.toml)."""
    return plan_dataset(
        settings.identities,
        settings.outfits,
        settings.cameras,
        settings.tracklets_per_outfit,
        settings.frames,
        (settings.width, settings.height),
        settings.seed,
        settings.occlusion,
    )


def tracklet_person(plan: DatasetPlan, spec: TrackletSpec) -> tuple[Identity, np.random.Generator]:
    """The identity as this tracklet shows it (its day's gait variation) and the random stream
    the render goes on to use (camera jitter, sensor noise)."""
    rng = _rng(plan.seed, 3, spec.identity, spec.index)
    person = plan.identities[spec.identity]
    return dataclasses.replace(person, gait=vary_gait(person.gait, rng)), rng


def render_to_folder(
    plan: DatasetPlan, spec: TrackletSpec, root: Path, textures: SceneTextures | None = None
) -> int:
    """Render one tracklet into `root/<key>/`; returns the number of frames written."""
    person, rng = tracklet_person(plan, spec)
    images, gt, gt_pixels = render_tracklet(
        person,
        plan.outfits[spec.identity][spec.outfit],
        plan.scenes[spec.camera],
        spec.view,
        plan.frames,
        plan.size,
        rng,
        textures,
    )
    folder = root / spec.key
    folder.mkdir(parents=True, exist_ok=True)
    for t, image in enumerate(images):
        ok, encoded = cv2.imencode(".jpg", image, list(JPEG_PARAMS))
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {folder / frame_name(t)}")
        (folder / frame_name(t)).write_bytes(encoded.tobytes())
    np.save(folder / GT_FILE, gt)
    np.save(folder / GT_IMAGE_FILE, gt_pixels)
    return len(images)


def render_batch(plan: DatasetPlan, specs: list[TrackletSpec], root: Path) -> int:
    """Render several tracklets (a worker's task); each camera's textures are made once for the
    batch, so batches of one camera's tracklets (`by_camera`) share them. Returns frames written."""
    textures: dict[int, SceneTextures] = {}
    written = 0
    for spec in specs:
        if spec.camera not in textures:
            textures[spec.camera] = SceneTextures.of(plan.scenes[spec.camera])
        written += render_to_folder(plan, spec, root, textures[spec.camera])
    return written


def by_camera(plan: DatasetPlan) -> list[TrackletSpec]:
    """The plan's tracklets ordered by camera (then key): batches then span few scenes."""
    return sorted(plan.tracklets, key=lambda t: (t.camera, t.key))


def split_lines(plan: DatasetPlan) -> dict[str, str]:
    """Contents of train.txt, query.txt and gallery.txt."""
    lines: dict[str, list[str]] = {split: [] for split in SPLIT_FILES}
    for spec in plan.tracklets:
        lines[spec.split].append(f"{spec.key} {spec.pid} {spec.clothes}")
    return {
        SPLIT_FILES[split]: "".join(f"{line}\n" for line in rows) for split, rows in lines.items()
    }


def metadata(plan: DatasetPlan) -> dict:
    """Everything the plan decided, as JSON-ready data (identity shape and gait, outfits by
    clothes label, scenes, each tracklet's camera, split and view)."""
    people = {}
    for pid, person, wardrobe in zip(
        plan.train_pids + plan.test_pids, plan.identities, plan.outfits
    ):
        people[pid] = {
            "body": dataclasses.asdict(person.body),
            "gait": dataclasses.asdict(person.gait),
            "look": dataclasses.asdict(person.look),
            "outfits": {o.label(k): dataclasses.asdict(o) for k, o in enumerate(wardrobe)},
            "split": "train" if pid in plan.train_pids else "test",
        }
    return {
        "seed": plan.seed,
        "frames": plan.frames,
        "size": list(plan.size),
        "identities": people,
        "scenes": {str(c): dataclasses.asdict(s) for c, s in sorted(plan.scenes.items())},
        "tracklets": [
            {
                "key": t.key,
                "pid": t.pid,
                "clothes": t.clothes,
                "camera": t.camera,
                "session": t.session,
                "split": t.split,
                "view": dataclasses.asdict(t.view),
            }
            for t in plan.tracklets
        ],
    }
