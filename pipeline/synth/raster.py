"""A tiny z-buffered rasteriser for tapered capsules (spheres when both ends coincide), with
per-pixel normals, Lambert + specular shading and procedural materials. numpy only.

Each capsule is evaluated on the pixels of its screen bounding box: distance to the projected
axis decides coverage, the capsule's radius gives the surface depth and normal, so overlapping
limbs, torso and head occlude each other correctly and shade like round bodies. Shading is
deferred: every visible pixel is shaded once, whatever the overdraw."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.synth.camera import Camera, dot


@dataclass(frozen=True)
class Light:
    direction: np.ndarray  # (3,) unit vector towards the light, camera coordinates
    ambient: float
    diffuse: float
    tint: np.ndarray  # (3,) RGB multiplier


class Material:
    """Albedo of a surface point; `keep` may cut away part of the primitive."""

    specular = 0.05
    clips = False  # True when `keep` cuts part of the primitive away

    def albedo(self, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def keep(self, points: np.ndarray) -> np.ndarray:
        return np.ones(len(points), dtype=bool)


class Solid(Material):
    def __init__(self, colour, specular: float = 0.05):
        self.colour = np.asarray(colour, dtype=np.float32)
        self.specular = specular

    def albedo(self, points, normals):
        return np.broadcast_to(self.colour, (len(points), 3))


class Clipped(Material):
    """Another material, kept only on the positive side of a plane (camera coordinates)."""

    clips = True

    def __init__(self, material: Material, origin: np.ndarray, normal: np.ndarray):
        self.material, self.origin, self.normal = material, origin, normal
        self.specular = material.specular

    def albedo(self, points, normals):
        return self.material.albedo(points, normals)

    def keep(self, points):
        return dot(points - self.origin, self.normal) > 0


class Canvas:
    """Colour (H, W, 3) float RGB in [0, 1] seen through one camera. Capsules fill a geometry
    buffer (depth, normal, material); `resolve()` shades each visible pixel once."""

    def __init__(self, background: np.ndarray, camera: Camera, light: Light):
        self.colour = background.astype(np.float32, copy=True)
        height, width = background.shape[:2]
        self.depth = np.full((height, width), np.inf, dtype=np.float32)
        self.normal = np.zeros((height, width, 3), dtype=np.float32)
        self.material = np.full((height, width), -1, dtype=np.int16)
        self.materials: list[Material] = []
        self._index: dict[int, int] = {}
        self._drawn = [height, 0, width, 0]  # rows and columns touched so far (y0, y1, x0, x1)
        self.camera = camera
        self.light = light

    def _material_index(self, material: Material) -> int:
        key = id(material)
        if key not in self._index:
            self._index[key] = len(self.materials)
            self.materials.append(material)
        return self._index[key]

    def _points(self, rows: np.ndarray, cols: np.ndarray, depth: np.ndarray) -> np.ndarray:
        cam = self.camera
        return np.stack(
            [(cols - cam.cx) * depth / cam.focal, (rows - cam.cy) * depth / cam.focal, depth],
            axis=1,
        )

    def capsule(self, a: np.ndarray, b: np.ndarray, ra: float, rb: float, material: Material):
        """Draw a capsule from camera point `a` (radius `ra`, metres) to `b` (radius `rb`)."""
        cam = self.camera
        za, zb = float(a[2]), float(b[2])
        if min(za, zb) < 0.1:
            return
        (ax, ay), (bx, by) = cam.project(np.stack([a, b]))
        rpa, rpb = cam.focal * ra / za, cam.focal * rb / zb
        height, width = self.depth.shape
        x0 = max(int(np.floor(min(ax - rpa, bx - rpb))), 0)
        x1 = min(int(np.ceil(max(ax + rpa, bx + rpb))) + 1, width)
        y0 = max(int(np.floor(min(ay - rpa, by - rpb))), 0)
        y1 = min(int(np.ceil(max(ay + rpa, by + rpb))) + 1, height)
        if x0 >= x1 or y0 >= y1:
            return
        px = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(ax)
        py = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(ay)
        abx, aby = np.float32(bx - ax), np.float32(by - ay)
        length2 = abx * abx + aby * aby
        if length2 > 1e-6:
            t = np.clip((px * abx + py * aby) / length2, 0.0, 1.0)
        else:
            t = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
        ox, oy = px - t * abx, py - t * aby
        radius = np.float32(rpa) + t * np.float32(rpb - rpa)
        inside = ox * ox + oy * oy < radius * radius
        rows, cols = np.nonzero(inside)
        if len(rows) == 0:
            return
        t, ox, oy, radius = t[rows, cols], ox[rows, cols], oy[rows, cols], radius[rows, cols]
        h = np.sqrt(np.maximum(radius * radius - ox * ox - oy * oy, 0.0))
        z_axis = np.float32(za) + t * np.float32(zb - za)
        depth = z_axis - h * z_axis / np.float32(cam.focal)
        rows, cols = rows + y0, cols + x0
        closer = depth < self.depth[rows, cols]
        if material.clips:
            closer &= material.keep(self._points(rows, cols, depth))
        if not closer.any():
            return
        rows, cols, ox, oy, h, radius, depth = (
            v[closer] for v in (rows, cols, ox, oy, h, radius, depth)
        )
        drawn = self._drawn
        drawn[:] = min(drawn[0], y0), max(drawn[1], y1), min(drawn[2], x0), max(drawn[3], x1)
        self.depth[rows, cols] = depth
        self.normal[rows, cols] = np.stack([ox, oy, -h], axis=1) / radius[:, None]
        self.material[rows, cols] = self._material_index(material)

    def sphere(self, centre: np.ndarray, radius: float, material: Material):
        self.capsule(centre, centre, radius, radius, material)

    def resolve(self) -> np.ndarray:
        """Shade every covered pixel with its material; returns the colour image."""
        y0, y1, x0, x1 = self._drawn
        if y0 >= y1:
            return self.colour
        window = self.material[y0:y1, x0:x1]
        rows, cols = np.nonzero(window >= 0)
        # Group pixels by material (stable sort keeps the result independent of timing).
        order = np.argsort(window[rows, cols], kind="stable")
        rows, cols = rows[order] + y0, cols[order] + x0
        counts = np.bincount(self.material[rows, cols], minlength=len(self.materials))
        normals = self.normal[rows, cols]
        points = self._points(
            rows.astype(np.float32), cols.astype(np.float32), self.depth[rows, cols]
        )
        albedo = np.empty((len(rows), 3), dtype=np.float32)
        specular = np.empty(len(rows), dtype=np.float32)
        start = 0
        for material, count in zip(self.materials, counts):
            if count:
                span = slice(start, start + count)
                albedo[span] = material.albedo(points[span], normals[span])
                specular[span] = material.specular
                start += count
        self.colour[rows, cols] = self._shade(albedo, normals, specular)
        return self.colour

    def _shade(self, albedo: np.ndarray, normals: np.ndarray, specular: np.ndarray) -> np.ndarray:
        light = self.light
        direction = light.direction.astype(np.float32)
        half = direction + np.array([0.0, 0.0, -1.0], dtype=np.float32)
        half /= np.linalg.norm(half)
        # Wrapped Lambert (soft terminator) plus an ambient term that darkens towards the
        # silhouette, which gives limbs the light-to-dark gradient of a round surface.
        lambert = np.clip((dot(normals, direction) + 0.3) / 1.3, 0.0, None)
        ambient = light.ambient * (0.55 - 0.45 * normals[:, 2])
        shade = (ambient + light.diffuse * lambert)[:, None] * light.tint.astype(np.float32)
        highlight = specular * np.clip(dot(normals, half), 0.0, None) ** 24
        return albedo * shade + highlight[:, None]
