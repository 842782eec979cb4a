"""emokeras.serving.segments: fixed windows and energy-based speech segments, against hand-computed values."""

import numpy as np
import pytest
import soundfile

from emokeras.serving import segments


def test_fixed_windows_cover_the_recording_with_full_length_windows():
    assert segments.fixed_windows(3.2, 7.0, 7.0) == [(0.0, 3.2)]  # a short file: one row, as before
    assert segments.fixed_windows(7.0, 7.0, 7.0) == [(0.0, 7.0)]
    # 20 s, 7 s windows, no overlap: 0-7, 7-14, then the tail's window ends at 20 and starts at 13.
    assert segments.fixed_windows(20.0, 7.0, 7.0) == [(0.0, 7.0), (7.0, 14.0), (13.0, 20.0)]
    assert segments.fixed_windows(21.0, 7.0, 7.0) == [(0.0, 7.0), (7.0, 14.0), (14.0, 21.0)]
    assert segments.fixed_windows(10.0, 4.0, 2.0) == [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0)]
    with pytest.raises(ValueError, match="a hop of 8.0 s is longer than the 7.0 s window"):
        segments.fixed_windows(20.0, 7.0, 8.0)


def write(path, signal, rate=16000):
    soundfile.write(str(path), signal.astype(np.float32), rate, subtype="FLOAT")
    return str(path)


def test_speech_segments_find_the_loud_stretches_pad_them_and_cut_long_ones(tmp_path):
    rate = 16000
    rng = np.random.default_rng(0)

    def noise(seconds, level):
        return level * rng.standard_normal(int(seconds * rate))

    # 1 s quiet, 2 s speech, 0.2 s pause (bridged), 1 s speech, 2 s quiet, 0.1 s click (too short), 1.9 s quiet,
    # 9 s speech (cut in two), 1 s quiet.
    signal = np.concatenate([noise(1, 1e-3), noise(2, 0.1), noise(0.2, 1e-3), noise(1, 0.1), noise(2, 1e-3),
                             noise(0.1, 0.1), noise(1.9, 1e-3), noise(9, 0.1), noise(1, 1e-3)])
    path = write(tmp_path / "talk.wav", signal)
    found = segments.speech_segments(path, max_seconds=7.0)
    # Speech at 1-4.2 s and 8.2-17.2 s, padded by 0.1 s; the second (9.2 s) cut into two equal halves.
    expected = [(0.9, 4.3), (8.1, 12.7), (12.7, 17.3)]
    assert len(found) == len(expected)
    np.testing.assert_allclose(found, expected, atol=0.011)  # one 10 ms frame

    silent = write(tmp_path / "quiet.wav", noise(3, 1e-3))
    assert segments.speech_segments(silent, max_seconds=7.0) == []


def test_frame_levels_are_rms_in_dbfs_and_read_at_the_files_rate(tmp_path):
    rate = 48000
    t = np.arange(rate) / rate
    path = write(tmp_path / "sine.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), rate)
    levels = segments.frame_levels(path)
    assert levels.shape == (100,)
    np.testing.assert_allclose(levels, 20 * np.log10(0.5 / np.sqrt(2)), atol=0.01)  # a sine's RMS is peak / √2
    assert segments.duration(path) == pytest.approx(1.0)
