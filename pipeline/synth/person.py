"""Draw one person in one frame: shaded limbs, a torso with shoulders and hips, neck, a head
with a face (eyes, brows, nose, mouth, ears) and hair, hands, shoes, garments, hats and bags.

Everything is built from capsules in camera coordinates (see `raster.Canvas`); garment
patterns are computed in the body's own frame so stripes and checks wrap around the body."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.synth.body import POINT_INDEX, BodyShape, Motion
from pipeline.synth.camera import rotate
from pipeline.synth.outfit import IdentityLook, Outfit
from pipeline.synth.raster import Canvas, Clipped, Material, Solid


class Fabric(Material):
    """A garment colour with a pattern laid out in body coordinates (x left, y up, z forward,
    metres from the pelvis)."""

    specular = 0.03

    def __init__(
        self,
        colour,
        second,
        pattern: str,
        period: float,
        to_body,
        offset,
        print_box=None,
        neckline=None,
    ):
        self.colour = np.asarray(colour, dtype=np.float32)
        self.second = np.asarray(second, dtype=np.float32)
        self.pattern, self.period = pattern, period
        self.to_body, self.offset = to_body, offset
        self.print_box = print_box  # (y_low, y_high) of a chest print
        self.neckline = neckline  # (neck height, skin colour): a round neck opening at the front

    def albedo(self, points, normals):
        if self.pattern == "plain" and self.neckline is None:
            return np.broadcast_to(self.colour, (len(points), 3))
        body = rotate(points, self.to_body) + self.offset
        x, y, z = body[:, 0], body[:, 1], body[:, 2]
        horizontal = np.mod(y / self.period, 1.0) < 0.5
        around = np.arctan2(x, z) * 0.16
        vertical = np.mod(around / self.period, 1.0) < 0.5
        if self.pattern == "hstripes":
            mask = horizontal
        elif self.pattern == "vstripes":
            mask = vertical
        elif self.pattern == "checks":
            mask = horizontal ^ vertical
        elif self.pattern == "print":  # a block on the chest
            low, high = self.print_box
            mask = (z > 0.02) & (np.abs(x) < 0.085) & (y > low) & (y < high)
        else:
            mask = np.zeros(len(points), dtype=bool)
        out = np.where(mask[:, None], self.second, self.colour)
        if self.neckline is not None:
            # Front/back cue: skin shows in a round neck opening at the front only.
            neck_y, skin = self.neckline
            opening = (z > 0.0) & ((x / 0.08) ** 2 + ((y - neck_y) / 0.09) ** 2 < 1)
            out[opening] = skin
        return out


def hair_streaks(left: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """Brightness of hair strands running down from the crown (unit head-frame directions)."""
    return 1.0 + 0.14 * np.sin(np.arctan2(left, fwd) * 36.0)


class Hair(Material):
    """Hair colour with strands, laid out around the head centre."""

    specular = 0.12

    def __init__(self, colour, centre, axes):
        self.colour = np.asarray(colour, dtype=np.float32)
        self.centre, self.axes = centre, axes

    def albedo(self, points, normals):
        v = rotate(points - self.centre, self.axes.T)
        return self.colour * hair_streaks(v[:, 0], v[:, 2])[:, None].astype(np.float32)


class Face(Material):
    """Skin with eyes, brows, mouth and hair placed by direction from the head centre, in the
    head's frame, so they sit where they should from any viewpoint."""

    specular = 0.08

    def __init__(self, skin, hair, hair_style: str, centre, axes, radius: float):
        self.skin = np.asarray(skin, dtype=np.float32)
        self.hair = np.asarray(hair, dtype=np.float32)
        self.lips = self.skin * np.array([0.6, 0.32, 0.32], dtype=np.float32)
        self.style = hair_style
        self.centre, self.axes, self.radius = centre, axes, radius  # axes columns: left, up, fwd

    def albedo(self, points, normals):
        v = rotate(points - self.centre, self.axes.T)
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)
        left, up, fwd = v[:, 0], v[:, 1], v[:, 2]
        out = np.broadcast_to(self.skin, (len(points), 3)).copy()
        side = np.abs(left)
        front = fwd > 0.55
        # Features are drawn larger and darker than life: at re-ID resolution a face is ~20 px
        # wide, and its dark eye sockets, brows and mouth are what tell front from back.
        socket = (((side - 0.33) / 0.2) ** 2 + ((up - 0.14) / 0.13) ** 2 < 1) & front
        out[socket] *= 0.82
        mouth = ((left / 0.19) ** 2 + ((up + 0.52) / 0.06) ** 2 < 1) & front
        out[mouth] = self.lips
        brow = (((side - 0.33) / 0.15) ** 2 + ((up - 0.33) / 0.05) ** 2 < 1) & front
        out[brow] = self.hair * 0.6 + 0.02
        eye_dx, eye_dy = (side - 0.33), (up - 0.13)
        sclera = ((eye_dx / 0.13) ** 2 + (eye_dy / 0.065) ** 2 < 1) & front
        out[sclera] = (0.88, 0.86, 0.83)
        iris = (eye_dx**2 + eye_dy**2 < 0.06**2) & front
        out[iris] = (0.1, 0.07, 0.05)
        if self.style == "cropped":
            hair = (up > 0.55) | ((fwd < -0.35) & (up > -0.15))
        elif self.style == "short":
            hair = (up > 0.45) | ((fwd < -0.2) & (up > -0.25)) | ((fwd < 0.3) & (up > 0.25))
        else:
            hair = (up > 0.4) | ((fwd < 0.0) & (up > -0.5)) | ((fwd < 0.45) & (up > 0.15))
        out[hair] = self.hair * hair_streaks(left[hair], fwd[hair])[:, None]
        return out


@dataclass(frozen=True)
class Figure:
    """One frame of one person as every body part is drawn from it: the body's points and axes
    in camera coordinates, its measures and the materials it wears."""

    points: np.ndarray  # (P, 3) `POINT_INDEX` points in camera coordinates
    body: BodyShape
    look: IdentityLook
    outfit: Outfit
    left: np.ndarray  # the body's axes in camera coordinates
    up: np.ndarray
    fwd: np.ndarray
    head_axes: np.ndarray  # columns left, up, forward in camera coordinates
    sole_up: np.ndarray  # world up in camera coordinates
    skin: Solid
    upper: Fabric
    lower: Fabric
    depth: float  # half the torso's depth
    hip_half: float  # half the hips' width, garments included

    def p(self, name: str) -> np.ndarray:
        return self.points[POINT_INDEX[name]]

    @property
    def pelvis(self) -> np.ndarray:
        return self.p("pelvis")

    @property
    def waist(self) -> np.ndarray:
        return self.pelvis + self.up * (0.33 * self.body.trunk)

    @property
    def upper_chest(self) -> np.ndarray:
        return self.p("neck") - self.up * 0.07


def figure(
    camera, motion: Motion, frame: int, body: BodyShape, look: IdentityLook, outfit: Outfit
) -> Figure:
    """The person of `motion` at `frame` as `camera` sees it."""
    rot = camera.rotation
    points = camera.to_camera(motion.points[frame])
    body_axes = rot @ motion.body_axes[frame]  # columns left, up, forward in camera coordinates
    to_body = motion.body_axes[frame].T @ rot.T  # camera → body frame (rotation part)
    offset = -to_body @ points[POINT_INDEX["pelvis"]]
    trunk = body.trunk
    upper = Fabric(
        outfit.upper,
        outfit.upper_second,
        outfit.upper_pattern,
        outfit.pattern_period,
        to_body,
        offset,
        print_box=(0.42 * trunk, 0.72 * trunk),
        neckline=(trunk, np.asarray(look.skin, dtype=np.float32)),
    )
    lower = Fabric(
        outfit.lower,
        outfit.lower_second,
        outfit.lower_pattern,
        outfit.pattern_period * 1.3,
        to_body,
        offset,
    )
    left, up, fwd = body_axes.T
    return Figure(
        points,
        body,
        look,
        outfit,
        left,
        up,
        fwd,
        rot @ motion.head_axes[frame],
        rot @ np.array([0.0, 1.0, 0.0]),
        Solid(look.skin, 0.08),
        upper,
        lower,
        body.torso_depth / 2,
        body.hip_width / 2 + 0.07 * body.build,
    )


def draw_person(
    canvas: Canvas,
    motion: Motion,
    frame: int,
    body: BodyShape,
    look: IdentityLook,
    outfit: Outfit,
) -> None:
    """Rasterise the person of `motion` at `frame` onto `canvas` (the parts in this order: the
    depth test keeps the nearest surface, and equal depths keep the first drawn)."""
    person = figure(canvas.camera, motion, frame, body, look, outfit)
    for part in (draw_torso, draw_arms, draw_legs, draw_head, draw_headwear, draw_bag):
        part(canvas, person)


def draw_torso(canvas: Canvas, person: Figure) -> None:
    """Rings at shoulders, chest, waist and hips joined at the sides and centre."""
    draw, build, depth = canvas.capsule, person.body.build, person.depth
    sw = person.body.shoulder_width
    chest_half = 0.42 * sw * (0.92 + 0.08 * build)
    waist_half = 0.37 * sw * build
    neck, pelvis = person.p("neck"), person.pelvis
    rings = (
        (person.upper_chest, sw / 2 - 0.05, 0.075 * build, person.upper),
        (person.p("chest"), chest_half - depth * 0.8, depth, person.upper),
        (person.waist, waist_half - depth * 0.8, depth * 0.95, person.upper),
        (pelvis + person.up * 0.03, person.hip_half - depth * 0.8, depth * 0.95, person.lower),
    )
    for centre, half, radius, material in rings:
        draw(centre + person.left * half, centre - person.left * half, radius, radius, material)
    for (c0, h0, r0, m0), (c1, h1, r1, _) in zip(rings[:-1], rings[1:]):
        for sign in (1.0, -1.0):
            draw(c0 + sign * person.left * h0, c1 + sign * person.left * h1, r0, r1, m0)
    draw(neck - person.up * 0.05, pelvis + person.up * 0.1, depth * 1.05, depth, person.upper)
    draw(person.p("l_shoulder"), person.p("r_shoulder"), 0.06 * build, 0.06 * build, person.upper)


def draw_arms(canvas: Canvas, person: Figure) -> None:
    """Sleeves (long, or short with the forearm's skin) and hands."""
    draw, build, upper, skin = canvas.capsule, person.body.build, person.upper, person.skin
    sleeve_ease = 0.012
    for side in "lr":
        shoulder, elbow, wrist = (
            person.p(f"{side}_shoulder"),
            person.p(f"{side}_elbow"),
            person.p(f"{side}_wrist"),
        )
        fingers = person.p(f"{side}_fingers")
        r_sh, r_el, r_wr = 0.05 * build, 0.038 * build, 0.028 * build
        if person.outfit.sleeve == "long":
            draw(shoulder, elbow, r_sh + sleeve_ease, r_el + sleeve_ease, upper)
            draw(elbow, wrist, r_el + sleeve_ease, r_wr + sleeve_ease, upper)
        else:
            mid = shoulder + 0.5 * (elbow - shoulder)
            draw(shoulder, mid, r_sh + sleeve_ease, (r_sh + r_el) / 2 + sleeve_ease, upper)
            draw(mid, elbow, (r_sh + r_el) / 2, r_el, skin)
            draw(elbow, wrist, r_el, r_wr, skin)
        palm = wrist + 0.45 * (fingers - wrist)
        draw(wrist, palm, 0.027, 0.037, skin)
        draw(palm, fingers, 0.035, 0.02, skin)


def draw_legs(canvas: Canvas, person: Figure) -> None:
    """Legs, the garment over them (trousers, shorts, skirt) and shoes."""
    draw, build, lower, skin, sole_up = (
        canvas.capsule,
        person.body.build,
        person.lower,
        person.skin,
        person.sole_up,
    )
    shoes = Solid(person.outfit.shoes, 0.12)
    kind = person.outfit.lower_kind
    for side in "lr":
        hip, knee, ankle = (
            person.p(f"{side}_hip"),
            person.p(f"{side}_knee"),
            person.p(f"{side}_ankle"),
        )
        r_hip, r_knee, r_ankle = 0.085 * build, 0.052 * build, 0.036 * build
        if kind == "trousers":
            draw(hip, knee, r_hip + 0.015, r_knee + 0.015, lower)
            draw(knee, ankle, r_knee + 0.015, r_ankle + 0.022, lower)
        else:
            cut = 0.7 if kind == "shorts" else 0.0
            mid = hip + cut * (knee - hip)
            if cut > 0:
                draw(hip, mid, r_hip + 0.015, r_hip + cut * (r_knee - r_hip) + 0.018, lower)
            draw(mid, knee, r_hip + cut * (r_knee - r_hip), r_knee, skin)
            draw(knee, ankle, r_knee, r_ankle, skin)
        heel, toe = person.p(f"{side}_heel"), person.p(f"{side}_toe")
        foot_dir = (toe - heel) / max(np.linalg.norm(toe - heel), 1e-6)
        draw(
            heel + sole_up * 0.045 + foot_dir * 0.04,
            toe + sole_up * 0.035 - foot_dir * 0.035,
            0.045,
            0.037,
            shoes,
        )
        draw(ankle - sole_up * 0.01, heel + sole_up * 0.05 + foot_dir * 0.05, 0.042, 0.045, shoes)
    if kind == "skirt":
        # A flared tube cut flat at the hem (the capsule's round end is clipped away), so the
        # legs show below it.
        pelvis, hip_half = person.pelvis, person.hip_half
        hem = pelvis - person.up * (0.62 * person.body.thigh)
        skirt = Clipped(lower, hem, person.up)
        draw(
            pelvis + person.up * 0.05,
            hem - person.up * 0.2,
            hip_half * 0.95,
            hip_half + 0.06,
            skirt,
        )


def draw_head(canvas: Canvas, person: Figure) -> None:
    """Neck, head with face, jaw, nose and ears, and hair (a volume, and a sheet when long)."""
    draw, skin, build, r_head = (
        canvas.capsule,
        person.skin,
        person.body.build,
        person.body.head_radius,
    )
    h_left, h_up, h_fwd = person.head_axes.T
    head, look = person.p("head"), person.look
    draw(
        person.p("neck") - person.up * 0.02,
        head - h_up * 0.55 * r_head,
        0.052 * build,
        0.048 * build,
        skin,
    )
    face = Face(look.skin, look.hair, look.hair_style, head, person.head_axes, r_head)
    canvas.sphere(head, r_head, face)
    canvas.sphere(head + r_head * (-0.42 * h_up + 0.16 * h_fwd), 0.74 * r_head, face)
    draw(
        head + r_head * (0.02 * h_up + 0.9 * h_fwd),
        head + r_head * (-0.3 * h_up + 1.08 * h_fwd),
        0.1 * r_head,
        0.16 * r_head,
        skin,
    )
    for sign in (1.0, -1.0):
        canvas.sphere(
            head + r_head * (sign * 0.95 * h_left - 0.15 * h_up - 0.05 * h_fwd), 0.22 * r_head, skin
        )
    hair = Hair(look.hair, head, person.head_axes)
    if look.hair_style != "cropped":
        volume = 1.04 if look.hair_style == "short" else 1.09
        clip_origin = head + r_head * 0.3 * h_fwd
        canvas.sphere(
            head + r_head * (0.08 * h_up - 0.1 * h_fwd),
            volume * r_head,
            Clipped(hair, clip_origin, -h_fwd),
        )
    if look.hair_style == "long":
        # A sheet as wide as the head over the nape and upper back (strands side by side).
        back = person.upper_chest - person.fwd * (person.depth + 0.035) - person.up * 0.03
        for sign in (-1.0, -0.5, 0.0, 0.5, 1.0):
            top = head + r_head * (0.6 * sign * h_left - 0.15 * h_up - 0.62 * h_fwd)
            draw(top, back + sign * person.left * 0.085, 0.48 * r_head, 0.4 * r_head, hair)


def draw_headwear(canvas: Canvas, person: Figure) -> None:
    """Over the hair volume, cut level with the brows (beanie) or higher (cap, with a peak)."""
    if person.outfit.hat == "none":
        return
    r_head, head = person.body.head_radius, person.p("head")
    _, h_up, h_fwd = person.head_axes.T
    hat = Solid(person.outfit.hat_colour, 0.06)
    cut = 0.38 if person.outfit.hat == "beanie" else 0.45
    canvas.sphere(
        head + r_head * (0.08 * h_up - 0.1 * h_fwd),
        1.16 * r_head,
        Clipped(hat, head + r_head * cut * h_up, h_up),
    )
    if person.outfit.hat == "cap":
        canvas.capsule(
            head + r_head * (0.48 * h_up + 0.8 * h_fwd),
            head + r_head * (0.42 * h_up + 1.5 * h_fwd),
            0.13 * r_head,
            0.1 * r_head,
            hat,
        )


def draw_bag(canvas: Canvas, person: Figure) -> None:
    """A backpack (two straps over the shoulders) or a shoulder bag (one strap across)."""
    if person.outfit.bag == "none":
        return
    draw, depth, chest = canvas.capsule, person.depth, person.p("chest")
    bag = Solid(person.outfit.bag_colour, 0.06)
    if person.outfit.bag == "backpack":
        top = chest - person.fwd * (depth + 0.09) + person.up * 0.05
        bottom = person.waist - person.fwd * (depth + 0.1)
        for sign in (1.0, -1.0):
            draw(
                top + sign * person.left * 0.07, bottom + sign * person.left * 0.07, 0.1, 0.11, bag
            )
        for sign in (1.0, -1.0):
            front = chest + sign * person.left * 0.11 + person.fwd * (depth + 0.004)
            shoulder = person.p("l_shoulder" if sign > 0 else "r_shoulder")
            draw(shoulder + person.up * 0.06, front, 0.02, 0.018, bag)
            draw(front, front - person.up * 0.18, 0.018, 0.018, bag)
    elif person.outfit.bag == "shoulder":
        centre = person.pelvis - person.left * (person.hip_half + 0.1) + person.up * 0.08
        draw(centre - person.fwd * 0.1, centre + person.fwd * 0.1, 0.09, 0.09, bag)
        front = chest + person.fwd * (depth + 0.006)
        draw(person.p("l_shoulder") + person.up * 0.06, front, 0.018, 0.018, bag)
        draw(front, centre + person.up * 0.06, 0.018, 0.018, bag)
