"""Multi-person scenes for testing detection and tracking: 2–3 known identities walk across a
wide frame filmed by a fixed camera, on lanes at different depths and in opposite directions, so
that they cross (the nearer one hides the farther one for a while).

    scene = plan_crowd(seed=0, people=3, frames=48)
    frames, truth = render_crowd(scene)       # BGR frames, CrowdTruth (boxes, visibility)

The ground-truth box of a person is the bounding box of their whole silhouette (occluded parts
included, as MOT benchmarks annotate), measured on the rendered pixels; `visible` is the share of
that silhouette left uncovered by nearer people. Every draw comes from generators seeded by
(seed, what, which), so a seed always gives the same scene.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.synth.body import Motion, sample_body_shape, sample_gait, walk
from pipeline.synth.camera import Camera, look_at
from pipeline.synth.outfit import Outfit, sample_identity_look, sample_outfits
from pipeline.synth.person import draw_person
from pipeline.synth.raster import Light
from pipeline.synth.render import FPS, SUPERSAMPLE, Backdrop, Identity, supersampled_canvas
from pipeline.synth.scene import Scene, sample_scene

CAMERA_HEIGHT = 2.2  # metres, a wall-mounted camera looking slightly down
HORIZONTAL_FOV = 62.0  # degrees
WALL_Z = 12.0  # the backdrop wall, metres in front of the camera
LANE_GAP = 1.4  # metres between walking lanes: people never intersect in 3D


@dataclass(frozen=True)
class Walker:
    identity: Identity
    outfit: Outfit
    lane: float  # depth of the walking line (world z, metres from the camera)
    start: float  # world x of the pelvis at frame 0
    heading: int  # +1 walks towards world +x (leftwards in the image), -1 towards -x
    phase: float


@dataclass(frozen=True)
class CrowdScene:
    seed: int
    frames: int
    size: tuple[int, int]  # width, height
    backdrop: Scene
    walkers: tuple[Walker, ...]


@dataclass(frozen=True)
class CrowdTruth:
    boxes: np.ndarray  # (T, N, 4) float x0, y0, x1, y1 in pixels; NaN where off-frame
    visible: np.ndarray  # (T, N) share of the silhouette not hidden by nearer people, 0..1


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, 90, *stream])


def plan_crowd(
    seed: int, people: int = 3, frames: int = 48, size=(640, 360), cast: int | None = None
) -> CrowdScene:
    """Place `people` walkers (2 or 3) so that neighbours walk in opposite directions and meet
    near the middle of the clip; lanes 1.4 m apart from 4.5 m away. `cast` seeds who the people
    are (identity and outfit; default `seed`): two scenes with one cast show the same people,
    as two cameras would."""
    cast = seed if cast is None else cast
    if not 1 <= people <= 4:
        raise ValueError(f"a crowd scene holds 1 to 4 people, got {people}")
    rng = _rng(seed, 0)
    walkers = []
    first_lane = float(rng.uniform(4.3, 5.0))
    for i in range(people):
        look_rng = _rng(cast, 1, i)
        identity = Identity(
            sample_body_shape(look_rng), sample_gait(look_rng), sample_identity_look(look_rng)
        )
        outfit = sample_outfits(_rng(cast, 2, i), 1)[0]
        lane = first_lane + i * LANE_GAP
        heading = 1 if i % 2 == 0 else -1
        speed = walk(identity.body, identity.gait, 2, FPS).speed
        # Meet at the image centre around mid-clip (each starts half a clip's walk away),
        # offset a little so crossings do not all happen in the same frame.
        travel = speed * frames / FPS
        meet = float(rng.uniform(-0.15, 0.15)) * travel
        start = meet - heading * travel / 2
        walkers.append(
            Walker(identity, outfit, lane, start, heading, float(rng.uniform(0, 2 * np.pi)))
        )
    backdrop = sample_scene(0, 90.0, seed, _rng(seed, 3))
    return CrowdScene(seed, frames, tuple(size), backdrop, tuple(walkers))


def _placed_motion(walker: Walker, frames: int) -> Motion:
    """The walker's motion turned to walk along world ±x on their lane."""
    motion = walk(walker.identity.body, walker.identity.gait, frames, FPS, walker.phase)
    angle = walker.heading * np.pi / 2  # local +z (walking direction) → world ±x
    c, s = np.cos(angle), np.sin(angle)
    turn = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    points = motion.points @ turn.T + np.array([walker.start, 0.0, walker.lane])
    return dataclasses.replace(
        motion,
        points=points,
        head_axes=np.einsum("ij,tjk->tik", turn, motion.head_axes),
        body_axes=np.einsum("ij,tjk->tik", turn, motion.body_axes),
    )


def _camera(size: tuple[int, int]) -> Camera:
    width, height = size
    eye = np.array([0.0, CAMERA_HEIGHT, 0.0])
    rotation = look_at(eye, np.array([0.0, 0.9, 6.5]))
    focal = width / 2 / np.tan(np.radians(HORIZONTAL_FOV / 2))
    return Camera(rotation, eye, float(focal), width / 2 - 0.5, height / 2 - 0.5)


def _silhouette_box(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Box (x0, y0, x1, y1) of a supersampled mask in output pixels, and its pixel count."""
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        return np.full(4, np.nan), 0
    box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float64)
    return box / SUPERSAMPLE, len(rows)


def render_crowd(scene: CrowdScene) -> tuple[list[np.ndarray], CrowdTruth]:
    """→ (BGR uint8 frames, ground truth). People are drawn far to near: each one then covers
    everything drawn before it, so its whole silhouette can be read off the material buffer right
    after it is drawn, and what is left of it at the end is its visible part."""
    width, height = scene.size
    camera = _camera(scene.size)
    big = camera.scaled(SUPERSAMPLE)
    motions = [_placed_motion(w, scene.frames) for w in scene.walkers]
    order = sorted(range(len(scene.walkers)), key=lambda i: -scene.walkers[i].lane)
    far = np.array([0.0, -100.0, 0.0])  # no contact shadow from the backdrop (several walkers)
    backdrop = Backdrop(scene.backdrop, np.array([0.0, 0.0, -1.0]), np.array([0.0, 0.0, WALL_Z]))
    look = scene.backdrop
    light_world = np.array([0.3, 0.8, -0.5]) / np.linalg.norm([0.3, 0.8, -0.5])
    light = Light(
        big.rotation @ light_world,
        look.ambient,
        look.diffuse,
        np.asarray(look.tint, dtype=np.float32),
    )
    noise_rng = _rng(scene.seed, 4)
    boxes = np.full((scene.frames, len(motions), 4), np.nan)
    visible = np.zeros((scene.frames, len(motions)))
    frames = []
    for t in range(scene.frames):
        background = backdrop.render(camera, scene.size, far)
        background *= np.asarray(look.tint, dtype=np.float32) * (look.ambient + 0.6 * look.diffuse)
        canvas = supersampled_canvas(background, big, light)
        spans, full = {}, {}
        for i in order:
            first = len(canvas.materials)
            walker = scene.walkers[i]
            draw_person(
                canvas, motions[i], t, walker.identity.body, walker.identity.look, walker.outfit
            )
            spans[i] = (first, len(canvas.materials))
            mine = (canvas.material >= first) & (canvas.material < spans[i][1])
            boxes[t, i], full[i] = _silhouette_box(mine)
        for i, (first, last) in spans.items():
            left = int(((canvas.material >= first) & (canvas.material < last)).sum())
            visible[t, i] = left / full[i] if full[i] else 0.0
        image = cv2.resize(canvas.resolve(), (width, height), interpolation=cv2.INTER_AREA)
        image = image * 255.0 + 2.0 * noise_rng.standard_normal(image.shape, dtype=np.float32)
        frames.append(cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    return frames, CrowdTruth(boxes, visible)


def write_video(frames: list[np.ndarray], path, fps: float = FPS) -> None:
    """Write frames as an MJPG .avi (OpenCV writes and reads it with no extra codec)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write the video {path}")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
