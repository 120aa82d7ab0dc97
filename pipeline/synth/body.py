"""Identity body shape and gait, and the walking motion they produce as 3D points over time.

World frame: x = the walker's left, y = up, z = the walking direction (right-handed), metres,
ground at y = 0. Proportions follow anthropometric tables (fractions of stature); identities
differ in stature, limb proportions, shoulder/hip width, build, and in gait (cadence, stride,
arm swing, knee flexion, posture, small left/right asymmetries).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pipeline.synth.camera import WORLD_UP

# Named points of the rendered body (more than the 14 evaluation joints: hands, heels and toes
# are needed to draw hands and shoes, and the 14 joints are derived from them).
POINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "chest",
    "neck",
    "head",
    "l_shoulder",
    "r_shoulder",
    "l_elbow",
    "r_elbow",
    "l_wrist",
    "r_wrist",
    "l_fingers",
    "r_fingers",
    "l_hip",
    "r_hip",
    "l_knee",
    "r_knee",
    "l_ankle",
    "r_ankle",
    "l_heel",
    "r_heel",
    "l_toe",
    "r_toe",
)
POINT_INDEX = {name: index for index, name in enumerate(POINT_NAMES)}


@dataclass(frozen=True)
class BodyShape:
    """Static body measurements of one identity (metres)."""

    stature: float
    leg_ratio: float  # leg length relative to the population mean proportion
    arm_ratio: float
    shoulder_width: float  # between shoulder joint centres
    hip_width: float  # between hip joint centres
    build: float  # girth multiplier for limbs and torso (slim < 1 < heavy)
    head_radius: float
    torso_depth: float  # front-to-back chest thickness

    @property
    def thigh(self) -> float:
        return 0.245 * self.stature * self.leg_ratio

    @property
    def shank(self) -> float:
        return 0.246 * self.stature * self.leg_ratio

    @property
    def ankle_height(self) -> float:
        return 0.039 * self.stature

    @property
    def foot_length(self) -> float:
        return 0.152 * self.stature

    @property
    def upper_arm(self) -> float:
        return 0.186 * self.stature * self.arm_ratio

    @property
    def forearm(self) -> float:
        return 0.146 * self.stature * self.arm_ratio

    @property
    def hand(self) -> float:
        return 0.108 * self.stature * self.arm_ratio

    @property
    def hip_height(self) -> float:
        return self.ankle_height + self.thigh + self.shank

    @property
    def neck_length(self) -> float:
        return 0.045 * self.stature

    @property
    def trunk(self) -> float:
        """Hip-centre to neck base; what is left of stature after legs, neck and head."""
        return self.stature - self.hip_height - self.neck_length - 2.15 * self.head_radius


@dataclass(frozen=True)
class Gait:
    """How one identity walks."""

    cadence: float  # strides (gait cycles) per second
    hip_swing: float  # hip flexion amplitude, radians
    knee_flex: float  # peak swing-phase knee flexion, radians
    arm_swing: float  # shoulder flexion amplitude, radians
    elbow_bend: float  # resting elbow flexion, radians
    trunk_lean: float  # forward lean, radians (negative = upright/back)
    head_pitch: float  # radians, positive = looking down
    pelvis_turn: float  # pelvic rotation amplitude about the vertical, radians
    sway: float  # lateral sway amplitude, metres
    arm_abduction: float  # how far the arms hang away from the body, radians
    asymmetry: float  # left/right amplitude difference (fraction)
    toe_out: float  # foot progression angle, radians


def sample_body_shape(rng: np.random.Generator) -> BodyShape:
    stature = float(np.clip(rng.normal(1.72, 0.09), 1.50, 1.98))
    build = float(np.clip(rng.normal(1.0, 0.12), 0.8, 1.35))
    return BodyShape(
        stature=stature,
        leg_ratio=float(rng.uniform(0.94, 1.06)),
        arm_ratio=float(rng.uniform(0.94, 1.06)),
        shoulder_width=float(0.215 * stature * rng.uniform(0.88, 1.12)),
        hip_width=float(0.115 * stature * rng.uniform(0.85, 1.18)),
        build=build,
        head_radius=float(rng.uniform(0.094, 0.108)),
        torso_depth=float(0.125 * stature * rng.uniform(0.9, 1.1) * build),
    )


def sample_gait(rng: np.random.Generator) -> Gait:
    return Gait(
        cadence=float(rng.uniform(0.78, 1.05)),
        hip_swing=float(np.radians(rng.uniform(17, 28))),
        knee_flex=float(np.radians(rng.uniform(45, 68))),
        arm_swing=float(np.radians(rng.uniform(8, 32))),
        elbow_bend=float(np.radians(rng.uniform(8, 30))),
        trunk_lean=float(np.radians(rng.uniform(-3, 9))),
        head_pitch=float(np.radians(rng.uniform(-5, 14))),
        pelvis_turn=float(np.radians(rng.uniform(2, 8))),
        sway=float(rng.uniform(0.01, 0.035)),
        arm_abduction=float(np.radians(rng.uniform(4, 12))),
        asymmetry=float(rng.uniform(-0.12, 0.12)),
        toe_out=float(np.radians(rng.uniform(0, 12))),
    )


def vary_gait(gait: Gait, rng: np.random.Generator) -> Gait:
    """The same person on another day: a few percent of variation, never a different walk."""
    return dataclasses.replace(
        gait,
        cadence=gait.cadence * float(rng.normal(1, 0.025)),
        hip_swing=gait.hip_swing * float(rng.normal(1, 0.04)),
        knee_flex=gait.knee_flex * float(rng.normal(1, 0.04)),
        arm_swing=gait.arm_swing * float(rng.normal(1, 0.08)),
        trunk_lean=gait.trunk_lean + float(np.radians(rng.normal(0, 1))),
        head_pitch=gait.head_pitch + float(np.radians(rng.normal(0, 2))),
    )


def _rot_x(angle: np.ndarray) -> np.ndarray:
    """(T,) angles → (T, 3, 3) rotations about x (positive tips +y towards +z: leaning forward)."""
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(angle), np.ones_like(angle)
    return np.stack(
        [np.stack([one, zero, zero], -1), np.stack([zero, c, -s], -1), np.stack([zero, s, c], -1)],
        -2,
    )


def _rot_y(angle: np.ndarray) -> np.ndarray:
    """(T,) angles → (T, 3, 3) rotations about the vertical (positive turns +z towards +x)."""
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(angle), np.ones_like(angle)
    return np.stack(
        [np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1), np.stack([-s, zero, c], -1)],
        -2,
    )


def _apply(rot: np.ndarray, vec: np.ndarray) -> np.ndarray:
    return np.einsum("tij,tj->ti", rot, vec)


def _sagittal(angle: np.ndarray, abduction: float = 0.0, side: float = 0.0) -> np.ndarray:
    """Unit vectors pointing down, swung forward by `angle` and outwards by `abduction`."""
    out = side * np.sin(abduction)
    down = np.cos(abduction)
    return np.stack([np.full_like(angle, out), -down * np.cos(angle), down * np.sin(angle)], -1)


@dataclass(frozen=True)
class Motion:
    """A walking sequence: `points` (T, len(POINT_NAMES), 3) in the world frame, the head's
    axes `head_axes` (T, 3, 3) with columns (left, up, forward), the trunk's `body_axes` likewise,
    and the walking speed (m/s) along +z."""

    points: np.ndarray
    head_axes: np.ndarray
    body_axes: np.ndarray
    speed: float
    head_radius: float


def walk(body: BodyShape, gait: Gait, frames: int, fps: float, phase: float = 0.0) -> Motion:
    """Forward kinematics of a sinusoidal gait model; the lowest foot point touches the ground."""
    t = np.arange(frames, dtype=np.float64) / fps
    phi = 2 * np.pi * gait.cadence * t + phase
    step = 2 * (body.thigh + body.shank) * np.sin(gait.hip_swing) * 0.9
    speed = 2 * step * gait.cadence
    points = np.zeros((frames, len(POINT_NAMES), 3))

    # Pelvis: progression, lateral sway towards the stance leg, rotation about the vertical.
    pelvis = np.stack([gait.sway * np.sin(phi), np.full_like(t, body.hip_height), speed * t], -1)
    pelvis_rot = _rot_y(gait.pelvis_turn * np.sin(phi))
    points[:, POINT_INDEX["pelvis"]] = pelvis
    _legs(points, body, gait, phi, pelvis, pelvis_rot)

    # Trunk: forward lean plus shoulder counter-rotation.
    trunk_rot = np.einsum(
        "tij,tjk->tik",
        _rot_y(-0.6 * gait.pelvis_turn * np.sin(phi)),
        _rot_x(np.full_like(t, gait.trunk_lean)),
    )
    neck = pelvis + _apply(trunk_rot, np.tile(WORLD_UP * body.trunk, (frames, 1)))
    points[:, POINT_INDEX["neck"]] = neck
    points[:, POINT_INDEX["chest"]] = pelvis + _apply(
        trunk_rot, np.tile(WORLD_UP * body.trunk * 0.68, (frames, 1))
    )
    _arms(points, body, gait, phi, neck, trunk_rot)

    # Head: on top of the neck, pitched by posture, slight nod with the steps.
    head_rot = np.einsum(
        "tij,tjk->tik",
        trunk_rot,
        _rot_x(gait.head_pitch - gait.trunk_lean + 0.03 * np.sin(2 * phi)),
    )
    points[:, POINT_INDEX["head"]] = neck + _apply(
        head_rot, np.tile(WORLD_UP * (body.neck_length + 1.05 * body.head_radius), (frames, 1))
    )
    # Ground contact: the lowest heel or toe sits on y = 0 (this also makes the pelvis bob).
    feet = points[
        :,
        [POINT_INDEX["l_heel"], POINT_INDEX["r_heel"], POINT_INDEX["l_toe"], POINT_INDEX["r_toe"]],
        1,
    ]
    points[:, :, 1] -= feet.min(axis=1, keepdims=True)
    return Motion(
        points=points,
        head_axes=head_rot,
        body_axes=trunk_rot,
        speed=float(speed),
        head_radius=body.head_radius,
    )


def _legs(points, body: BodyShape, gait: Gait, phi, pelvis, pelvis_rot) -> None:
    """Hips, knees, ankles, heels and toes of both legs into `points` (T, P, 3), the right leg
    half a cycle behind the left."""
    frames, left = len(phi), np.array([1.0, 0.0, 0.0])
    for side, sign, offset in (("l", 1.0, 0.0), ("r", -1.0, np.pi)):
        gain = 1.0 + sign * gait.asymmetry / 2
        hip = pelvis + _apply(pelvis_rot, np.tile(sign * left * body.hip_width / 2, (frames, 1)))
        leg_phase = phi + offset
        hip_angle = gain * gait.hip_swing * np.sin(leg_phase)
        # Knee flexes in swing (leg moving forward, cos > 0), a little at loading response.
        knee_angle = gain * gait.knee_flex * np.clip(
            np.cos(leg_phase - 0.45), 0, None
        ) ** 1.6 + np.radians(6) * np.clip(np.sin(leg_phase + 0.3), 0, None)
        knee = hip + body.thigh * _apply(pelvis_rot, _sagittal(hip_angle))
        ankle = knee + body.shank * _apply(pelvis_rot, _sagittal(hip_angle - knee_angle))
        # Foot pitch: toes up at heel strike, heel up at push-off.
        foot_pitch = 0.25 * np.sin(leg_phase + 0.2) * gain
        toe_dir = np.stack(
            [
                sign * np.sin(gait.toe_out) * np.ones_like(phi),
                np.sin(foot_pitch),
                np.cos(foot_pitch) * np.cos(gait.toe_out),
            ],
            -1,
        )
        heel = ankle + np.array([0.0, -body.ankle_height, 0.0]) - 0.22 * body.foot_length * toe_dir
        toe = heel + body.foot_length * toe_dir
        points[:, POINT_INDEX[f"{side}_hip"]] = hip
        points[:, POINT_INDEX[f"{side}_knee"]] = knee
        points[:, POINT_INDEX[f"{side}_ankle"]] = ankle
        points[:, POINT_INDEX[f"{side}_heel"]] = heel
        points[:, POINT_INDEX[f"{side}_toe"]] = toe


def _arms(points, body: BodyShape, gait: Gait, phi, neck, trunk_rot) -> None:
    """Shoulders, elbows, wrists and fingers of both arms into `points` (T, P, 3); each arm
    swings opposite to the leg on its side."""
    frames, left = len(phi), np.array([1.0, 0.0, 0.0])
    for side, sign, offset in (("l", 1.0, np.pi), ("r", -1.0, 0.0)):
        gain = 1.0 - sign * gait.asymmetry / 2
        shoulder = neck + _apply(
            trunk_rot, np.tile(sign * left * body.shoulder_width / 2 - WORLD_UP * 0.03, (frames, 1))
        )
        arm_phase = phi + offset
        arm_angle = gain * gait.arm_swing * np.sin(arm_phase) - 0.03
        elbow_angle = gait.elbow_bend + 0.5 * gait.arm_swing * (1 + np.sin(arm_phase)) * gain
        upper = _sagittal(arm_angle, gait.arm_abduction, sign)
        lower = _sagittal(arm_angle + elbow_angle, gait.arm_abduction * 0.5, sign)
        elbow = shoulder + body.upper_arm * _apply(trunk_rot, upper)
        wrist = elbow + body.forearm * _apply(trunk_rot, lower)
        fingers = wrist + body.hand * _apply(trunk_rot, _sagittal(arm_angle + elbow_angle * 0.8))
        points[:, POINT_INDEX[f"{side}_shoulder"]] = shoulder
        points[:, POINT_INDEX[f"{side}_elbow"]] = elbow
        points[:, POINT_INDEX[f"{side}_wrist"]] = wrist
        points[:, POINT_INDEX[f"{side}_fingers"]] = fingers


def joints14(motion: Motion) -> np.ndarray:
    """(T, 14, 3) joints in the order of `pipeline.skeleton.JOINT_NAMES`, defined the way
    MediaPipe's landmarks are averaged (SPEC §4.1): head = centre of the face landmarks (eyes,
    ears, nose, mouth), hand = mean of wrist and knuckles, foot = mean of ankle, heel and toe."""
    p = motion.points
    forward = motion.head_axes[:, :, 2]
    up = motion.head_axes[:, :, 1]
    head = p[:, POINT_INDEX["head"]] + motion.head_radius * (0.7 * forward - 0.06 * up)
    out = [head, (p[:, POINT_INDEX["l_shoulder"]] + p[:, POINT_INDEX["r_shoulder"]]) / 2]
    for name in ("shoulder", "elbow"):
        out += [p[:, POINT_INDEX[f"l_{name}"]], p[:, POINT_INDEX[f"r_{name}"]]]
    for side in "lr":
        wrist, fingers = p[:, POINT_INDEX[f"{side}_wrist"]], p[:, POINT_INDEX[f"{side}_fingers"]]
        out.append(wrist + 0.35 * (fingers - wrist))
    for name in ("hip", "knee"):
        out += [p[:, POINT_INDEX[f"l_{name}"]], p[:, POINT_INDEX[f"r_{name}"]]]
    for side in "lr":
        out.append(
            (
                p[:, POINT_INDEX[f"{side}_ankle"]]
                + p[:, POINT_INDEX[f"{side}_heel"]]
                + p[:, POINT_INDEX[f"{side}_toe"]]
            )
            / 3
        )
    return np.stack(out, axis=1)
