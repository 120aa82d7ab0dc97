"""A pinhole camera: world (x left, y up, z forward) → camera (x right, y down, z into the
scene, OpenCV convention) → pixels."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

WORLD_UP = np.array([0.0, 1.0, 0.0])


# Per-pixel products are written out instead of using `@`: BLAS rounds differently with
# different thread counts, and the same seed must give the same bytes in any process.
def rotate(vectors: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """`vectors @ matrix.T` for (..., 3) vectors and a (3, 3) matrix, without BLAS."""
    return (
        vectors[..., 0:1] * matrix[:, 0]
        + vectors[..., 1:2] * matrix[:, 1]
        + vectors[..., 2:3] * matrix[:, 2]
    )


def dot(vectors: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """`vectors @ vector` for (..., 3) vectors, without BLAS."""
    return vectors[..., 0] * vector[0] + vectors[..., 1] * vector[1] + vectors[..., 2] * vector[2]


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation whose rows are the camera's right, down and forward axes in world coordinates."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, WORLD_UP)
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


@dataclass(frozen=True)
class Camera:
    rotation: np.ndarray  # (3, 3) rows: right, down, forward
    eye: np.ndarray  # (3,) world position
    focal: float  # pixels
    cx: float
    cy: float

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) → camera coordinates (..., 3)."""
        return rotate(np.asarray(points) - self.eye, self.rotation)

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera points (..., 3) → pixel coordinates (..., 2)."""
        z = points_cam[..., 2:3]
        return self.focal * points_cam[..., :2] / z + np.array([self.cx, self.cy])

    def scaled(self, factor: float) -> Camera:
        """The same view on an image `factor` times larger (for supersampling)."""
        return replace(
            self,
            focal=self.focal * factor,
            cx=(self.cx + 0.5) * factor - 0.5,
            cy=(self.cy + 0.5) * factor - 0.5,
        )
