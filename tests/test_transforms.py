"""The built-in joints transform: MediaPipe-sized error on real joints, measured back."""

import numpy as np

from pipeline import transforms


def joints(frames: int = 4000) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(frames, 14, 3)).astype(np.float64) * 0.1


def test_mediapipe_noise_is_a_constant_offset_plus_fresh_noise_at_the_measured_sizes():
    clean = joints()
    noisy = transforms.mediapipe_noise(clean, np.random.default_rng(1))
    error = noisy - clean
    offset = error.mean(0)  # the constant part, one draw per sequence
    frames = error - offset
    # fresh noise every frame at MediaPipe's jitter RMS per joint (3D), within sampling error
    np.testing.assert_allclose(
        np.sqrt((frames**2).sum(-1).mean(0)), transforms.MEDIAPIPE_JITTER_RMS, rtol=0.05
    )
    # the offset is one draw, so only its size over many sequences can match the bias RMS
    draws = np.stack(
        [
            transforms.mediapipe_noise(clean[:2], np.random.default_rng(s), jitter=0.0) - clean[:2]
            for s in range(2000)
        ]
    )
    assert np.ptp(draws, axis=1).max() < 1e-12  # the same offset on every frame
    np.testing.assert_allclose(
        np.sqrt((draws[:, 0] ** 2).sum(-1).mean(0)), transforms.MEDIAPIPE_BIAS_RMS, rtol=0.06
    )


def test_mediapipe_noise_scales_switch_off_and_load_by_name():
    clean = joints(50)
    np.testing.assert_array_equal(
        transforms.mediapipe_noise(clean, np.random.default_rng(0), bias=0.0, jitter=0.0), clean
    )
    loaded = transforms.load_transform("pipeline.transforms:mediapipe_noise", "bias=0.5,jitter=0")
    half = loaded(clean, np.random.default_rng(3)) - clean
    full = transforms.mediapipe_noise(clean, np.random.default_rng(3), jitter=0.0) - clean
    np.testing.assert_allclose(half, 0.5 * full)
