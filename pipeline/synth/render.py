"""Render one tracklet: a walking person seen by a tracking camera (the way re-ID crops follow a
person), in front of a textured wall and floor, lit, optionally occluded, with sensor noise."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.synth.body import POINT_INDEX, BodyShape, Gait, joints14, walk
from pipeline.synth.camera import Camera, look_at, rotate
from pipeline.synth.outfit import IdentityLook, Outfit
from pipeline.synth.person import draw_person
from pipeline.synth.raster import Canvas, Light, Solid
from pipeline.synth.scene import (
    FLOOR_SIZE_M,
    PIXELS_PER_METRE,
    WALL_SIZE_M,
    Scene,
    SceneTextures,
    View,
)

FPS = 15.0  # frame rate of the rendered clips (a gait cycle spans ~15–19 frames)
SUPERSAMPLE = 2  # the person is drawn at 2× and averaged down: anti-aliased edges


@dataclass(frozen=True)
class Identity:
    body: BodyShape
    gait: Gait
    look: IdentityLook


def supersampled_canvas(background: np.ndarray, camera: Camera, light: Light) -> Canvas:
    """A canvas over `background` enlarged SUPERSAMPLE times, for a `camera` scaled as much: the
    person is drawn at that size and the frame resolved back down (anti-aliased edges)."""
    height, width = background.shape[:2]
    size = (width * SUPERSAMPLE, height * SUPERSAMPLE)
    return Canvas(cv2.resize(background, size, interpolation=cv2.INTER_LINEAR), camera, light)


def _cameras(motion, body: BodyShape, view: View, size: tuple[int, int], rng) -> list[Camera]:
    """One camera per frame, following the walker and framing them like a detector crop."""
    width, height = size
    frames = len(motion.points)
    yaw = np.radians(view.yaw)
    to_camera = np.array([view.side * np.sin(yaw), 0.0, np.cos(yaw)])
    lift = view.distance * np.tan(np.radians(view.elevation))
    progress = motion.speed * np.arange(frames) / FPS
    targets = np.stack([np.zeros(frames), np.full(frames, 0.55 * body.stature), progress], -1)
    eyes = targets + to_camera * view.distance + np.array([0.0, lift, 0.0])
    rotation = look_at(eyes[0], targets[0])

    # Extent of the person per frame in normalised image coordinates (focal 1, centre 0).
    head_top = (
        motion.points[:, POINT_INDEX["head"]] + motion.head_axes[:, :, 1] * 1.3 * body.head_radius
    )
    extremes = np.concatenate([motion.points, head_top[:, None]], axis=1)
    cam = rotate(extremes - eyes[:, None], rotation)
    norm = cam[..., :2] / cam[..., 2:3]
    top, bottom = norm[..., 1].min(1), norm[..., 1].max(1) + 0.04 / cam[..., 2].mean(1)
    left, right = norm[..., 0].min(1), norm[..., 0].max(1)
    focal = view.fill * height / float(np.median(bottom - top))
    cy = height / 2 - focal * float(np.median((top + bottom) / 2)) + view.shift_y * height
    jitter = rng.normal(0, 0.006 * width, frames)
    cxs = width / 2 - focal * (left + right) / 2 + view.shift_x * width + jitter
    return [Camera(rotation, eyes[t], focal, float(cxs[t]), cy) for t in range(frames)]


class Backdrop:
    """Wall and floor planes fixed in the world, ray-cast per frame with a contact shadow."""

    def __init__(
        self,
        scene: Scene,
        to_camera: np.ndarray,
        wall_point: np.ndarray,
        textures: SceneTextures | None = None,
    ):
        textures = textures or SceneTextures.of(scene)
        self.wall, self.floor = textures.wall, textures.floor
        self.normal = to_camera  # the wall faces the camera
        self.axis = np.cross(np.array([0.0, 1.0, 0.0]), to_camera)
        self.point = wall_point

    def render(self, camera: Camera, size: tuple[int, int], footprint: np.ndarray) -> np.ndarray:
        width, height = size
        # Ray directions in world coordinates, one component at a time (broadcast row x column).
        across = ((np.arange(width, dtype=np.float32) - camera.cx) / camera.focal)[None, :]
        down = ((np.arange(height, dtype=np.float32) - camera.cy) / camera.focal)[:, None]
        rot = camera.rotation.astype(np.float32)
        rays = [across * rot[0, k] + down * rot[1, k] + rot[2, k] for k in range(3)]
        eye = camera.eye.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_floor = np.where(rays[1] < -1e-6, -eye[1] / rays[1], np.inf)
            denom = sum(r * np.float32(n) for r, n in zip(rays, self.normal))
            reach = np.float32((self.point - camera.eye) @ self.normal)
            t_wall = np.where(denom < -1e-6, reach / denom, np.inf)
        on_floor = t_floor < t_wall
        t_hit = np.minimum(np.where(on_floor, t_floor, t_wall), 1e3)
        hit_x, hit_y, hit_z = (eye[k] + rays[k] * t_hit for k in range(3))
        ppm = np.float32(PIXELS_PER_METRE)
        offset = self.point.astype(np.float32)
        along = (hit_x - offset[0]) * self.axis[0] + (hit_z - offset[2]) * self.axis[2]
        wall_x = (along * ppm).astype(np.float32)
        wall_y = ((WALL_SIZE_M[0] - np.clip(hit_y, 0, WALL_SIZE_M[0] - 0.01)) * ppm).astype(
            np.float32
        )
        wall = cv2.remap(self.wall, wall_x, wall_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        span = FLOOR_SIZE_M * ppm
        floor_x = np.mod(hit_x * ppm, span).astype(np.float32)
        floor_y = np.mod(hit_z * ppm, span).astype(np.float32)
        floor = cv2.remap(
            self.floor, floor_x, floor_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP
        )
        # Soft contact shadow on the floor under the walker.
        d2 = (hit_x - np.float32(footprint[0])) ** 2 + (hit_z - np.float32(footprint[2])) ** 2
        floor *= (1 - 0.45 * np.exp(-d2 / np.float32(2 * 0.32**2)))[..., None]
        return np.where(on_floor[..., None], floor, wall)


def _occluder(canvas: Canvas, view: View, camera: Camera, world_point, to_camera, axis, stature):
    material = Solid(view.occluder_colour, 0.1)
    if view.occluder == "pole":
        base = world_point + to_camera * 1.6 + axis * 0.15
        top = base + np.array([0.0, 2.8, 0.0])
        canvas.capsule(camera.to_camera(base), camera.to_camera(top), 0.08, 0.07, material)
    elif view.occluder == "low_wall":
        centre = world_point + to_camera * 1.2 + np.array([0.0, 0.3 * stature * 0.8, 0.0])
        a, b = camera.to_camera(centre - axis * 4), camera.to_camera(centre + axis * 4)
        canvas.capsule(a, b, 0.3, 0.3, material)


def render_tracklet(
    identity: Identity,
    outfit: Outfit,
    scene: Scene,
    view: View,
    frames: int,
    size: tuple[int, int],
    rng: np.random.Generator,
    textures: SceneTextures | None = None,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """→ (BGR uint8 frames, ground-truth joints (T, 14, 3) in metres, the same joints in the
    frames' pixels (T, 14, 2)); `textures`: the scene's, when the caller already has them.

    The 3D truth is expressed like MediaPipe's world landmarks: camera axes (x right, y down,
    z away from the camera), origin at the hip centre of each frame. The pixels are each frame's
    own projection (perspective, the framing's jitter): what a perfect 2D estimator would give."""
    width, height = size
    motion = walk(identity.body, identity.gait, frames, FPS, view.phase)
    cameras = _cameras(motion, identity.body, view, size, rng)
    yaw = np.radians(view.yaw)
    to_camera = np.array([view.side * np.sin(yaw), 0.0, np.cos(yaw)])
    mid_path = np.array([0.0, 0.0, motion.speed * frames / FPS / 2])
    backdrop = Backdrop(scene, to_camera, mid_path - to_camera * scene.wall_distance, textures)
    azimuth, elevation = np.radians(scene.light_azimuth), np.radians(scene.light_elevation)
    light_world = np.array(
        [
            np.cos(elevation) * np.sin(azimuth),
            np.sin(elevation),
            np.cos(elevation) * np.cos(azimuth),
        ]
    )
    tint = np.asarray(scene.tint, dtype=np.float32)
    occluder_point = np.array([0.0, 0.0, motion.speed * frames / FPS * view.occluder_at])

    images = []
    for t, camera in enumerate(cameras):
        background = backdrop.render(camera, size, motion.points[t, POINT_INDEX["pelvis"]])
        background *= tint * (scene.ambient + 0.6 * scene.diffuse)
        big = camera.scaled(SUPERSAMPLE)
        light = Light(camera.rotation @ light_world, scene.ambient, scene.diffuse, tint)
        canvas = supersampled_canvas(background, big, light)
        draw_person(canvas, motion, t, identity.body, identity.look, outfit)
        if view.occluder != "none":
            _occluder(
                canvas, view, big, occluder_point, to_camera, backdrop.axis, identity.body.stature
            )
        image = cv2.resize(canvas.resolve(), (width, height), interpolation=cv2.INTER_AREA)
        if view.blur > 0:
            image = cv2.GaussianBlur(image, (0, 0), view.blur)
        image = image * (view.exposure * 255.0) + view.noise * rng.standard_normal(
            image.shape, dtype=np.float32
        )
        images.append(cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))

    gt = joints14(motion)
    pixels = np.stack([camera.project(camera.to_camera(gt[t])) for t, camera in enumerate(cameras)])
    gt_cam = rotate(gt, cameras[0].rotation)
    hips = (gt_cam[:, 8:9] + gt_cam[:, 9:10]) / 2
    return images, (gt_cam - hips).astype(np.float32), pixels.astype(np.float32)
