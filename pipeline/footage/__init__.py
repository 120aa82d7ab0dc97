"""From ordinary footage to person tracklets (SPEC §11).

detect.py    person detectors: OpenCV's bundled HOG people detector, a user's YOLO-style ONNX model
track.py     multi-object tracking with norfair (a maintained tracker from the package index)
crops.py     a person crop with a margin, at the re-ID model's input aspect
inputs.py    which videos or frame folders the command line names
mot.py       detection recall/precision and CLEAR-MOT figures against ground truth (motmetrics)
preview.py   a few frames per video with the tracks drawn
"""
