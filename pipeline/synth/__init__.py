"""Procedural walking people rendered to frames: the embedded synthetic cloth-changing set.

body.py      identity body shape and gait → 3D points over time, ground-truth 14 joints
outfit.py    identity look (skin, hair) and outfits that change completely
scene.py     per-camera surroundings and per-tracklet viewpoint
camera.py    pinhole camera (world → camera → pixels)
raster.py    z-buffered capsule rasteriser with deferred shading
person.py    the person as capsules: limbs, torso, head and face, garments, hats, bags
render.py    one tracklet: tracking camera, backdrop, person, occluder, noise
dataset.py   the plan (identities, outfits, cameras, splits) and the CCVID layout on disk
accuracy.py  MediaPipe detection rate and PA-MPJPE against the ground truth
"""
