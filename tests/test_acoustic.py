"""openSMILE frames: shape, column order, the LLD/delta join, bad audio, and the TensorFlow hazard.

openSMILE only ever runs in worker processes here: this pytest process
imports TensorFlow, after which constructing `opensmile.Smile` aborts.
"""

import os
import pickle
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pandas as pd
import pytest
import soundfile

from emokeras.data.features import acoustic as acoustic_module
from emokeras.data.features.acoustic import (
    NUM_FEATURES,
    FeatureError,
    Worker,
    WorkerPool,
    _extractor,
    extract_frames_parallel,
    frames_from_table,
    names_in_worker,
    read_audio,
)

from helpers.audio import tone, write_wav


def expected_frames(num_samples):
    """One row per 10 ms hop whose 60 ms window fits in the audio."""
    return (num_samples - 960) // 160 + 1


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """One worker run over good and bad files; returns {name: (frames, error)}."""
    folder = tmp_path_factory.mktemp("wavs")
    write_wav(folder / "one_second.wav", tone(1.0))
    write_wav(folder / "two_seconds.wav", tone(2.0))
    write_wav(folder / "cd_rate.wav", tone(1.0, rate=44100), rate=44100)
    write_wav(folder / "stereo.wav", np.repeat(tone(1.0)[:, None], 2, axis=1).reshape(-1), channels=2)
    write_wav(folder / "telephone.wav", tone(1.0, rate=8000), rate=8000)
    write_wav(folder / "click.wav", tone(0.03))
    (folder / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)))
    signal = tone(1.0).astype("float32")
    for name, damage in (("nan", np.nan), ("infinite", np.inf), ("loud", 3.5)):
        damaged = signal.copy()
        damaged[100:110] = damage
        soundfile.write(str(folder / f"{name}.wav"), damaged, 16000, subtype="FLOAT")  # a float wav keeps them
    write_wav(folder / "silent.wav", np.zeros(16000))
    (folder / "a_folder.wav").mkdir()
    names = ["one_second", "corrupt", "two_seconds", "cd_rate", "stereo", "telephone", "click", "nan", "infinite",
             "loud", "silent", "a_folder", "missing"]
    paths = [str(folder / f"{name}.wav") for name in names]
    results = list(extract_frames_parallel(paths, workers=2, progress=False))
    assert [path for path, _, _ in results] == paths  # input order kept
    return {name: (frames, error) for name, (_, frames, error) in zip(names, results)}


def test_frames_are_130_float32_columns_at_10_ms(extracted):
    frames, error = extracted["one_second"]
    assert error is None
    assert frames.dtype == np.float32
    assert frames.shape == (expected_frames(16000), NUM_FEATURES) == (95, 130)
    assert extracted["two_seconds"][0].shape == (195, 130)
    assert np.isfinite(frames).all()


def test_column_order_is_the_65_descriptors_then_their_deltas():
    names = names_in_worker()
    assert len(names) == NUM_FEATURES
    assert names[0] == "F0final_sma" and names[65] == "F0final_sma_de"
    # Each delta is named after its descriptor: `x_sma` -> `x_sma_de`, `y_sma[3]` -> `y_sma_de[3]`.
    assert [name.replace("_sma", "_sma_de", 1) for name in names[:65]] == names[65:]
    assert "pcm_RMSenergy_sma" in names[:65] and "mfcc_sma[1]" in names[:65]


def test_other_rates_and_channels_are_resampled_and_mixed_down(extracted):
    reference = extracted["one_second"][0]
    for name in ("cd_rate", "stereo"):
        frames, error = extracted[name]
        assert error is None, error
        assert frames.shape == reference.shape
    # Mixing two identical channels gives the same signal back.
    np.testing.assert_allclose(extracted["stereo"][0], reference, rtol=1e-4, atol=1e-3)


def test_bad_audio_gets_a_clear_error_naming_the_file_and_the_rest_are_kept(extracted):
    assert extracted["corrupt"][0] is None
    assert "corrupt.wav: not an audio file soundfile can read" in extracted["corrupt"][1]
    assert extracted["telephone"][0] is None
    assert "telephone.wav: sample rate 8000 Hz is below 16000 Hz" in extracted["telephone"][1]
    assert extracted["click"][0] is None
    assert "click.wav: 30 ms of audio is shorter than one 60 ms analysis window" in extracted["click"][1]
    assert extracted["two_seconds"][1] is None  # after the corrupt file, still extracted


def test_audio_values_are_checked_before_openSMILE_reads_them(extracted):
    """NaN, infinite and over-range samples, and silence, would give features that look valid."""
    messages = {name: extracted[name][1] for name in ("nan", "infinite", "loud", "silent", "a_folder", "missing")}
    assert all(extracted[name][0] is None for name in messages)
    assert messages["nan"].endswith("nan.wav: 10 of 16000 samples are NaN or infinite")
    assert messages["infinite"].endswith("infinite.wav: 10 of 16000 samples are NaN or infinite")
    assert messages["loud"].endswith("loud.wav: samples reach 3.5, beyond the [-1, 1] of audio samples; rescale the "
                                     "file (emokeras does not clip it: that would change its energy and spectrum)")
    assert messages["silent"].endswith("silent.wav: all silence (no sample above -90 dBFS)")
    assert messages["a_folder"].endswith("a_folder.wav: a folder, not an audio file")
    assert messages["missing"].endswith("missing.wav: no such file")


def test_any_worker_failure_is_reported_and_nothing_waits_for_ever(tmp_path, monkeypatch):
    """A worker answer that cannot be read (not a RuntimeError) used to end the feeder thread.

    The reader then waited for ever. Now that file gets the error, a new worker takes the rest.
    """
    for name in ("a", "b", "c"):
        write_wav(tmp_path / f"{name}.wav", tone(0.5))
    real_call = Worker.call

    def call(self, kind, argument):
        if argument.endswith("b.wav"):
            raise pickle.UnpicklingError("pickle data was truncated")
        return real_call(self, kind, argument)

    monkeypatch.setattr(Worker, "call", call)
    results = []
    reader = threading.Thread(target=lambda: results.extend(extract_frames_parallel(
        [str(tmp_path / f"{name}.wav") for name in ("a", "b", "c")], workers=1, progress=False)))
    reader.start()
    reader.join(timeout=240)
    assert not reader.is_alive(), "extraction hung"
    (_, a, a_error), (_, b, b_error), (_, c, c_error) = results
    assert a_error is None and c_error is None and a.shape == c.shape
    assert b is None and b_error.endswith("b.wav: openSMILE worker failed (UnpicklingError: pickle data was "
                                          "truncated)")


# The feeder thread's own death is the case under test; pytest would report it as a warning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_feeder_that_dies_without_an_answer_is_not_waited_for(tmp_path, monkeypatch):
    """A feeder thread that ends by an error of its own gives its last notice while it still counts as alive.

    Here naming the file fails. The reader used to wait for ever for a notice that never came.
    """
    write_wav(tmp_path / "a.wav", tone(0.5))

    def call(self, kind, argument):
        raise pickle.UnpicklingError("truncated")

    def request_name(request):
        raise TypeError("cannot name it")

    monkeypatch.setattr(Worker, "call", call)
    monkeypatch.setattr(acoustic_module, "request_name", request_name)
    raised = []

    def read():
        try:
            list(extract_frames_parallel([str(tmp_path / "a.wav")], workers=1, progress=False))
        except TypeError as error:
            raised.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert not reader.is_alive(), "extraction hung"
    assert [str(error) for error in raised] == ["cannot name it"]  # the caller gets the error, not a hang


def test_segments_and_path_like_requests(tmp_path):
    """`(path, start, end)` reads only those seconds; a pathlib.Path is a path; errors name the segment."""
    signal = np.concatenate([tone(1.0), np.zeros(16000)])
    path = tmp_path / "half.wav"
    write_wav(path, signal)
    (_, whole, _), (_, first, _), (_, silent, error), (_, as_path, _) = extract_frames_parallel(
        [str(path), (str(path), 0.0, 1.0), (str(path), 1.0, 2.0), tmp_path / "half.wav"], workers=1,
        progress=False)
    assert abs(first.shape[0] - whole.shape[0] / 2) <= 3  # one of the two seconds
    np.testing.assert_allclose(as_path, whole)
    assert silent is None and error == f"{path} [1.00 s, 2.00 s): all silence (no sample above -90 dBFS)"
    np.testing.assert_allclose(read_audio(str(path), 0.5, 1.0), signal[8000:16000].astype(np.float32),
                               atol=1 / 32768)


def _frame_table(rows, columns=130):
    """A hand-made openSMILE-style table: (start, end) index in 10 ms steps, value = 1000 * row + column."""
    index = pd.MultiIndex.from_tuples(
        [(pd.Timedelta(milliseconds=10 * r), pd.Timedelta(milliseconds=10 * r + 60)) for r in rows],
        names=["start", "end"])
    values = np.array([[r * 1000 + c for c in range(columns)] for r in rows], dtype=np.float64)
    return pd.DataFrame(values, index=index)


def test_repeated_flush_frames_keep_their_first_occurrence():
    table = _frame_table([0, 1, 2, 2, 2])
    table.iloc[3:, :] = -1.0  # later repeats of frame 2 carry other values
    frames = frames_from_table(table)
    assert frames.shape == (3, 130) and frames.dtype == np.float32
    np.testing.assert_array_equal(frames[:, 0], [0, 1000, 2000])
    np.testing.assert_array_equal(frames[:, 129], [129, 1129, 2129])


def test_tables_with_nan_no_rows_or_other_columns_are_refused_by_name():
    table = _frame_table([0, 1])
    table.iloc[1, 3] = np.nan
    with pytest.raises(FeatureError, match=r"x\.wav: openSMILE returned NaN or infinite values \(in 1 of 2"):
        frames_from_table(table, "x.wav")
    with pytest.raises(FeatureError, match="y.wav: openSMILE returned no frames"):
        frames_from_table(_frame_table([]), "y.wav")
    with pytest.raises(FeatureError, match="z.wav: expected 130 features, openSMILE returned 65"):
        frames_from_table(_frame_table([0], columns=65), "z.wav")


_JOIN_CHECK = """
import numpy as np, opensmile
from emokeras.data.features.acoustic import frames_from_signal
rng = np.random.default_rng(0)
level = opensmile.FeatureLevel
for samples in (16000, 16037, 23999, 5000, 961):
    signal = (0.3 * np.sin(2 * np.pi * 140 * np.arange(samples) / 16000)
              + 0.01 * rng.standard_normal(samples)).astype(np.float32)
    tables = [opensmile.Smile(feature_set=opensmile.FeatureSet.ComParE_2016, feature_level=lv)
              .process_signal(signal, 16000) for lv in (level.LowLevelDescriptors, level.LowLevelDescriptors_Deltas)]
    lld, deltas = (t[~t.index.duplicated(keep="first")] for t in tables)
    joined = lld.join(deltas, how="inner").to_numpy(np.float32)  # the (start, end) join of the two outputs
    frames = frames_from_signal(signal)
    assert frames.shape == joined.shape, (samples, frames.shape, joined.shape)
    np.testing.assert_array_equal(frames[:-2], joined[:-2])
    np.testing.assert_array_equal(frames[:, :65], joined[:, :65])  # descriptors: every frame
    print(samples, frames.shape[0], "rows; LLD-delta lengths", len(tables[0]), len(tables[1]))
"""


def test_one_pass_equals_the_start_end_join_of_separate_outputs():
    """The LLD and delta outputs of openSMILE differ in length.

    The one-pass frames equal their (start, end) join, but for the deltas of the last two frames (end-of-stream
    flush). Run in a fresh process without TensorFlow, where openSMILE may be constructed directly.
    """
    result = subprocess.run([sys.executable, "-c", _JOIN_CHECK], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.stdout.splitlines()) == 5


def test_in_process_extractor_refuses_after_tensorflow_is_imported():
    import tensorflow  # noqa: F401  (already imported by the suite; made explicit)

    with pytest.raises(RuntimeError, match="must not be constructed in a process that imported TensorFlow"):
        _extractor()


def test_extraction_works_in_a_fresh_process_that_imported_tensorflow_first(tmp_path):
    """The hazard itself: `import tensorflow`, then openSMILE. Workers keep it from aborting."""
    write_wav(tmp_path / "a.wav", tone(0.5))
    script = (
        "import tensorflow as tf\n"
        "from emokeras.data.features.acoustic import extract_frames_parallel\n"
        f"[(path, frames, error)] = extract_frames_parallel([{str(tmp_path / 'a.wav')!r}], workers=1, progress=False)\n"
        "assert error is None, error\n"
        "print(tf.__version__, frames.shape)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["(45,", "130)"]


def test_a_dead_worker_is_reported_not_waited_for(tmp_path):
    write_wav(tmp_path / "a.wav", tone(0.5))
    worker = Worker()
    try:
        worker._process.kill()
        worker._process.wait()
        with pytest.raises(RuntimeError, match=r"openSMILE worker exited with code -9 while processing .*a\.wav"):
            worker.call("frames", str(tmp_path / "a.wav"))
    finally:
        worker.close()


def test_a_closed_pools_workers_serve_the_next_pool(tmp_path):
    """A worker's start costs about a second of CPU: this process's next pool takes the workers a closed one gave."""
    write_wav(tmp_path / "a.wav", tone(0.5))
    with WorkerPool(2) as pool:
        [(_, first, _)] = pool.map([str(tmp_path / "a.wav")])
        given = {worker._process.pid for worker in pool._pool}
    with WorkerPool(1) as pool:
        [(_, again, _)] = pool.map([str(tmp_path / "a.wav")])
        assert {worker._process.pid for worker in pool._pool} <= given
    np.testing.assert_array_equal(again, first)


def test_a_worker_with_an_answer_unread_is_ended_not_given_out(tmp_path, monkeypatch):
    """A call stopped between request and answer (Ctrl-C) leaves the answer in the pipe: the worker is not reused.

    Reused, it would answer the next request with the stopped one's frames.
    """
    write_wav(tmp_path / "short.wav", tone(0.5))
    write_wav(tmp_path / "long.wav", tone(1.0))
    pool = WorkerPool(1)

    def interrupted(stream):
        raise KeyboardInterrupt

    monkeypatch.setattr(acoustic_module, "pickle", types.SimpleNamespace(
        dump=pickle.dump, load=interrupted, HIGHEST_PROTOCOL=pickle.HIGHEST_PROTOCOL))
    with pytest.raises(KeyboardInterrupt):
        pool.call("frames", str(tmp_path / "short.wav"))
    monkeypatch.undo()
    [stopped] = pool._pool
    pool.close()
    assert stopped._process.wait(timeout=60) is not None  # ended
    with WorkerPool(1) as again:
        [(_, frames, error)] = again.map([str(tmp_path / "long.wav")])
        assert stopped not in again._pool
    assert error is None and frames.shape == (expected_frames(16000), NUM_FEATURES)


def test_a_worker_no_pool_takes_ends_after_idle_seconds(monkeypatch):
    acoustic_module.end_idle_workers()  # none waits (nor a timer of the 5 minutes set before)
    monkeypatch.setattr(acoustic_module, "IDLE_SECONDS", 0.5)
    monkeypatch.setattr(acoustic_module.os, "cpu_count", lambda: 1)  # at most one worker waits
    with WorkerPool(2) as pool:
        pool._start(2)
        first, second = pool._pool
    assert second._process.wait(timeout=60) is not None  # given back second: no room, ended at once
    assert first._process.wait(timeout=60) is not None  # waited half a second, then ended


def test_a_pool_closed_as_the_interpreter_ends_ends_its_workers_and_the_process_ends(tmp_path):
    """A frame source left open is closed by the interpreter's end, after the atexit handlers.

    Its workers are then ended, not given back: a timer started at that point never runs, and the interpreter waited
    for its thread for ever.
    """
    write_wav(tmp_path / "a.wav", tone(0.5))
    script = ("from emokeras.serving.frames import FrameSource\n"
              "source = FrameSource(workers=2)\n"
              f"[(_, frames, error)] = source.frames([{str(tmp_path / 'a.wav')!r}])\n"
              "print(frames.shape[0], *(worker._process.pid for worker in source._pool._pool))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    rows, *pids = map(int, done.stdout.split())
    assert rows == expected_frames(8000) and pids
    deadline = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{pid}") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids), "a worker outlived the process"
