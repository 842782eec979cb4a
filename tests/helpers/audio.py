"""Audio the tests write: wav files of any rate and channels, and tones."""

import os
import wave

import numpy as np


def write_wav(path, samples, rate=16000, channels=1):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())


def tone(seconds, rate=16000, pitch=150.0):
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    return 0.3 * np.sin(2 * np.pi * pitch * t) + 0.01 * rng.standard_normal(t.shape)
