"""Where a tracklet is filmed: each camera has its own surroundings (a textured wall behind the
walkway, a textured floor, its lighting), and each tracklet its own viewpoint (yaw 0° = walking
towards the camera … 180° = walking away), distance, framing, exposure and optional occluder."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WALL_KINDS = ("bricks", "panels", "plaster", "boards", "shops")
FLOOR_KINDS = ("tiles", "asphalt", "pavers", "planks")
PIXELS_PER_METRE = 40
WALL_SIZE_M = (8.0, 24.0)  # height, width (the texture wraps horizontally)
FLOOR_SIZE_M = 8.0  # square tile that wraps
OCCLUDERS = ("pole", "low_wall")


@dataclass(frozen=True)
class Scene:
    """One camera's surroundings and lighting."""

    camera: int
    seed: int
    wall_kind: str
    floor_kind: str
    wall_colour: tuple[float, float, float]
    floor_colour: tuple[float, float, float]
    wall_distance: float  # metres behind the walker's path
    base_yaw: float  # degrees; tracklets scatter around it (or its mirror, walking away)
    light_azimuth: float  # degrees, world
    light_elevation: float
    ambient: float
    diffuse: float
    tint: tuple[float, float, float]


@dataclass(frozen=True)
class View:
    """One tracklet's viewpoint and capture conditions."""

    yaw: float  # degrees in [0, 180]: 0 frontal, 90 side, 180 back
    side: int  # +1: camera on the walker's left, -1: right
    distance: float  # metres from the walker's path
    elevation: float  # degrees the camera looks down
    fill: float  # person height / frame height
    shift_x: float  # framing offset, fraction of frame width
    shift_y: float
    exposure: float
    noise: float  # sensor noise, grey levels
    blur: float  # Gaussian sigma in output pixels (0 = sharp)
    phase: float  # gait phase at the first frame, radians
    occluder: str  # "none" | one of OCCLUDERS
    occluder_at: float  # where along the path it stands (fraction of the clip)
    occluder_colour: tuple[float, float, float]


def _colour(rng: np.random.Generator, low: float, high: float) -> tuple[float, float, float]:
    base = rng.uniform(low, high)
    return tuple(float(np.clip(base + rng.uniform(-0.12, 0.12), 0.05, 0.95)) for _ in range(3))


def sample_scene(camera: int, base_yaw: float, seed: int, rng: np.random.Generator) -> Scene:
    return Scene(
        camera=camera,
        seed=seed,
        wall_kind=WALL_KINDS[int(rng.integers(len(WALL_KINDS)))],
        floor_kind=FLOOR_KINDS[int(rng.integers(len(FLOOR_KINDS)))],
        wall_colour=_colour(rng, 0.3, 0.8),
        floor_colour=_colour(rng, 0.25, 0.65),
        wall_distance=float(rng.uniform(2.0, 6.0)),
        base_yaw=base_yaw,
        light_azimuth=float(rng.uniform(0, 360)),
        light_elevation=float(rng.uniform(25, 65)),
        ambient=float(rng.uniform(0.4, 0.55)),
        diffuse=float(rng.uniform(0.45, 0.7)),
        tint=tuple(float(v) for v in rng.uniform(0.92, 1.08, 3)),
    )


def sample_view(scene: Scene, occlusion: float, rng: np.random.Generator) -> View:
    yaw = scene.base_yaw + rng.normal(0, 12)
    if rng.random() < 0.5:
        yaw = 180 - yaw  # the same camera sees people walking towards it and away from it
    occluded = rng.random() < occlusion
    return View(
        yaw=float(np.clip(yaw, 0, 180)),
        side=1 if rng.random() < 0.5 else -1,
        distance=float(rng.uniform(4.0, 9.0)),
        elevation=float(rng.uniform(2, 16)),
        fill=float(rng.uniform(0.74, 0.9)),
        shift_x=float(rng.uniform(-0.04, 0.04)),
        shift_y=float(rng.uniform(-0.02, 0.02)),
        exposure=float(rng.uniform(0.85, 1.15)),
        noise=float(rng.uniform(1.0, 4.0)),
        blur=float(rng.choice([0.0, 0.0, 0.4, 0.7])),
        phase=float(rng.uniform(0, 2 * np.pi)),
        occluder=OCCLUDERS[int(rng.integers(len(OCCLUDERS)))] if occluded else "none",
        occluder_at=float(rng.uniform(0.3, 0.7)),
        occluder_colour=_colour(rng, 0.2, 0.7),
    )


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] of the given shape."""
    grid = rng.uniform(-1, 1, (max(shape[0] // cells, 2), max(shape[1] // cells, 2)))
    return cv2.resize(grid.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _shade(colour, amount: float, rng: np.random.Generator) -> tuple[float, float, float]:
    factor = 1.0 + rng.uniform(-amount, amount)
    return tuple(float(np.clip(c * factor, 0, 1)) for c in colour)


def wall_texture(scene: Scene) -> np.ndarray:
    """(H, W, 3) float32 RGB texture of the wall, 40 px per metre, y = 0 at the top (8 m)."""
    rng = np.random.default_rng([scene.seed, 1])
    ppm = PIXELS_PER_METRE
    height, width = int(WALL_SIZE_M[0] * ppm), int(WALL_SIZE_M[1] * ppm)
    base = np.asarray(scene.wall_colour, dtype=np.float32)
    img = np.empty((height, width, 3), dtype=np.float32)
    img[:] = base
    kind = scene.wall_kind
    if kind == "bricks":
        img[:] = base * 0.6 + 0.35  # mortar
        brick_h, brick_w = int(0.075 * ppm), int(0.23 * ppm)
        for row, y in enumerate(range(0, height, brick_h)):
            shift = (row % 2) * brick_w // 2
            for x in range(-shift, width, brick_w):
                colour = _shade(base, 0.15, rng)
                cv2.rectangle(img, (x + 1, y + 1), (x + brick_w - 2, y + brick_h - 2), colour, -1)
    elif kind == "panels":
        panel = int(rng.uniform(1.0, 2.0) * ppm)
        glass = np.array([0.35, 0.42, 0.5], dtype=np.float32) * rng.uniform(0.6, 1.2)
        for x in range(0, width, panel):
            cv2.rectangle(img, (x, 0), (x + 3, height), tuple(float(c) for c in base * 0.6), -1)
            if rng.random() < 0.6:
                top, bottom = height - int(2.6 * ppm), height - int(0.9 * ppm)
                cv2.rectangle(
                    img, (x + 8, top), (x + panel - 8, bottom), tuple(map(float, glass)), -1
                )
    elif kind == "boards":
        board = int(rng.uniform(0.1, 0.25) * ppm)
        for x in range(0, width, board):
            colour = _shade(base, 0.12, rng)
            cv2.rectangle(img, (x, 0), (x + board - 2, height), colour, -1)
    elif kind == "shops":
        x = 0
        while x < width:
            span = int(rng.uniform(1.5, 3.5) * ppm)
            colour = _colour(rng, 0.25, 0.85)
            cv2.rectangle(img, (x, 0), (x + span, height), colour, -1)
            door_w, door_h = int(1.0 * ppm), int(2.2 * ppm)
            door_x = x + int(rng.uniform(0.1, 0.5) * span)
            cv2.rectangle(
                img,
                (door_x, height - door_h),
                (door_x + door_w, height),
                tuple(float(c) * 0.35 for c in colour),
                -1,
            )
            x += span
    # plaster and every other kind: large-scale blotches, plus a darker plinth at the bottom
    img *= 1.0 + 0.12 * _smooth_noise(rng, (height, width), 24)[..., None]
    img[height - int(0.25 * ppm) :] *= 0.75
    return np.clip(img, 0, 1)


def floor_texture(scene: Scene) -> np.ndarray:
    """(N, N, 3) float32 RGB texture of the floor (8 m square, wraps), 40 px per metre."""
    rng = np.random.default_rng([scene.seed, 2])
    ppm = PIXELS_PER_METRE
    size = int(FLOOR_SIZE_M * ppm)
    base = np.asarray(scene.floor_colour, dtype=np.float32)
    img = np.empty((size, size, 3), dtype=np.float32)
    img[:] = base
    kind = scene.floor_kind
    if kind in ("tiles", "pavers"):
        tile = int((0.5 if kind == "tiles" else 0.2) * ppm)
        img[:] = base * 0.7
        for row, y in enumerate(range(0, size, tile)):
            shift = (row % 2) * tile // 2 if kind == "pavers" else 0
            for x in range(-shift, size, tile):
                cv2.rectangle(
                    img, (x + 1, y + 1), (x + tile - 2, y + tile - 2), _shade(base, 0.1, rng), -1
                )
    elif kind == "planks":
        plank = int(0.2 * ppm)
        for y in range(0, size, plank):
            cv2.rectangle(img, (0, y), (size, y + plank - 2), _shade(base, 0.12, rng), -1)
    img *= 1.0 + 0.1 * _smooth_noise(rng, (size, size), 16)[..., None]
    grain = rng.normal(0, 0.03, (size, size, 1)).astype(np.float32)
    return np.clip(img + grain, 0, 1)


@dataclass(frozen=True)
class SceneTextures:
    """A scene's wall and floor textures: pure functions of the scene, so one camera's tracklets
    can share them (they cost about a tenth of rendering a 32-frame tracklet)."""

    wall: np.ndarray
    floor: np.ndarray

    @classmethod
    def of(cls, scene: Scene) -> SceneTextures:
        return cls(wall_texture(scene), floor_texture(scene))
