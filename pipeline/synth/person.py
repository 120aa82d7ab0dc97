"""Draw one person in one frame: shaded limbs, a torso with shoulders and hips, neck, a head
with a face (eyes, brows, nose, mouth, ears) and hair, hands, shoes, garments, hats and bags.

Everything is built from capsules in camera coordinates (see `raster.Canvas`); garment
patterns are computed in the body's own frame so stripes and checks wrap around the body."""

from __future__ import annotations

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


def draw_person(
    canvas: Canvas,
    motion: Motion,
    frame: int,
    body: BodyShape,
    look: IdentityLook,
    outfit: Outfit,
) -> None:
    """Rasterise the person of `motion` at `frame` onto `canvas`."""
    # Over a screen: one pass whose body parts share ~20 locals (projected points, axes, fabrics).
    camera = canvas.camera
    world = motion.points[frame]
    pts = camera.to_camera(world)

    def p(name: str) -> np.ndarray:
        return pts[POINT_INDEX[name]]

    rot = camera.rotation
    body_axes = rot @ motion.body_axes[frame]  # columns left, up, forward in camera coordinates
    head_axes = rot @ motion.head_axes[frame]
    b_left, b_up, b_fwd = body_axes.T
    h_left, h_up, h_fwd = head_axes.T
    build = body.build
    r_head = body.head_radius

    skin = Solid(look.skin, 0.08)
    to_body = motion.body_axes[frame].T @ rot.T  # camera → body frame (rotation part)
    pelvis_cam = p("pelvis")
    offset = -to_body @ pelvis_cam
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
    shoes = Solid(outfit.shoes, 0.12)
    draw = canvas.capsule
    sole_up = rot @ np.array([0.0, 1.0, 0.0])  # world up in camera coordinates

    # Torso: rings at shoulders, chest, waist and hips joined at the sides and centre.
    depth = body.torso_depth / 2
    sw = body.shoulder_width
    chest_half = 0.42 * sw * (0.92 + 0.08 * build)
    waist_half = 0.37 * sw * build
    hip_half = body.hip_width / 2 + 0.07 * build
    neck = p("neck")
    chest = p("chest")
    waist = pelvis_cam + b_up * (0.33 * trunk)
    upper_chest = neck - b_up * 0.07
    rings = (
        (upper_chest, sw / 2 - 0.05, 0.075 * build, upper),
        (chest, chest_half - depth * 0.8, depth, upper),
        (waist, waist_half - depth * 0.8, depth * 0.95, upper),
        (pelvis_cam + b_up * 0.03, hip_half - depth * 0.8, depth * 0.95, lower),
    )
    for centre, half, radius, material in rings:
        draw(centre + b_left * half, centre - b_left * half, radius, radius, material)
    for (c0, h0, r0, m0), (c1, h1, r1, _) in zip(rings[:-1], rings[1:]):
        for sign in (1.0, -1.0):
            draw(c0 + sign * b_left * h0, c1 + sign * b_left * h1, r0, r1, m0)
    draw(neck - b_up * 0.05, pelvis_cam + b_up * 0.1, depth * 1.05, depth, upper)
    draw(p("l_shoulder"), p("r_shoulder"), 0.06 * build, 0.06 * build, upper)

    # Arms and hands.
    sleeve_ease = 0.012
    for side in "lr":
        shoulder, elbow, wrist = p(f"{side}_shoulder"), p(f"{side}_elbow"), p(f"{side}_wrist")
        fingers = p(f"{side}_fingers")
        r_sh, r_el, r_wr = 0.05 * build, 0.038 * build, 0.028 * build
        if outfit.sleeve == "long":
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

    # Legs, garments over them, shoes.
    for side in "lr":
        hip, knee, ankle = p(f"{side}_hip"), p(f"{side}_knee"), p(f"{side}_ankle")
        r_hip, r_knee, r_ankle = 0.085 * build, 0.052 * build, 0.036 * build
        if outfit.lower_kind == "trousers":
            draw(hip, knee, r_hip + 0.015, r_knee + 0.015, lower)
            draw(knee, ankle, r_knee + 0.015, r_ankle + 0.022, lower)
        else:
            cut = 0.7 if outfit.lower_kind == "shorts" else 0.0
            mid = hip + cut * (knee - hip)
            if cut > 0:
                draw(hip, mid, r_hip + 0.015, r_hip + cut * (r_knee - r_hip) + 0.018, lower)
            draw(mid, knee, r_hip + cut * (r_knee - r_hip), r_knee, skin)
            draw(knee, ankle, r_knee, r_ankle, skin)
        heel, toe = p(f"{side}_heel"), p(f"{side}_toe")
        foot_dir = (toe - heel) / max(np.linalg.norm(toe - heel), 1e-6)
        draw(
            heel + sole_up * 0.045 + foot_dir * 0.04,
            toe + sole_up * 0.035 - foot_dir * 0.035,
            0.045,
            0.037,
            shoes,
        )
        draw(ankle - sole_up * 0.01, heel + sole_up * 0.05 + foot_dir * 0.05, 0.042, 0.045, shoes)
    if outfit.lower_kind == "skirt":
        # A flared tube cut flat at the hem (the capsule's round end is clipped away), so the
        # legs show below it.
        hem = pelvis_cam - b_up * (0.62 * body.thigh)
        skirt = Clipped(lower, hem, b_up)
        draw(pelvis_cam + b_up * 0.05, hem - b_up * 0.2, hip_half * 0.95, hip_half + 0.06, skirt)

    # Neck and head.
    head = p("head")
    draw(neck - b_up * 0.02, head - h_up * 0.55 * r_head, 0.052 * build, 0.048 * build, skin)
    face = Face(look.skin, look.hair, look.hair_style, head, head_axes, r_head)
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
    hair = Hair(look.hair, head, head_axes)
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
        back = upper_chest - b_fwd * (depth + 0.035) - b_up * 0.03
        for sign in (-1.0, -0.5, 0.0, 0.5, 1.0):
            top = head + r_head * (0.6 * sign * h_left - 0.15 * h_up - 0.62 * h_fwd)
            draw(top, back + sign * b_left * 0.085, 0.48 * r_head, 0.4 * r_head, hair)

    # Headwear: over the hair volume, cut level with the brows (beanie) or higher (cap).
    if outfit.hat != "none":
        hat = Solid(outfit.hat_colour, 0.06)
        cut = 0.38 if outfit.hat == "beanie" else 0.45
        canvas.sphere(
            head + r_head * (0.08 * h_up - 0.1 * h_fwd),
            1.16 * r_head,
            Clipped(hat, head + r_head * cut * h_up, h_up),
        )
        if outfit.hat == "cap":
            draw(
                head + r_head * (0.48 * h_up + 0.8 * h_fwd),
                head + r_head * (0.42 * h_up + 1.5 * h_fwd),
                0.13 * r_head,
                0.1 * r_head,
                hat,
            )

    # Bags.
    if outfit.bag == "backpack":
        bag = Solid(outfit.bag_colour, 0.06)
        top = chest - b_fwd * (depth + 0.09) + b_up * 0.05
        bottom = waist - b_fwd * (depth + 0.1)
        for sign in (1.0, -1.0):
            draw(top + sign * b_left * 0.07, bottom + sign * b_left * 0.07, 0.1, 0.11, bag)
        for sign in (1.0, -1.0):
            front = chest + sign * b_left * 0.11 + b_fwd * (depth + 0.004)
            draw(
                p("l_shoulder" if sign > 0 else "r_shoulder") + b_up * 0.06, front, 0.02, 0.018, bag
            )
            draw(front, front - b_up * 0.18, 0.018, 0.018, bag)
    elif outfit.bag == "shoulder":
        bag = Solid(outfit.bag_colour, 0.06)
        centre = pelvis_cam - b_left * (hip_half + 0.1) + b_up * 0.08
        draw(centre - b_fwd * 0.1, centre + b_fwd * 0.1, 0.09, 0.09, bag)
        front = chest + b_fwd * (depth + 0.006)
        draw(p("l_shoulder") + b_up * 0.06, front, 0.018, 0.018, bag)
        draw(front, centre + b_up * 0.06, 0.018, 0.018, bag)
