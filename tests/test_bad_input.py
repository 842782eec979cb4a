"""Bad input at the door, as users gave it.

Inputs that are not regular files, silence only after mixing, caller-given segments, repeated paths, wrong argument
types and shapes, damaged exports, a model that answers NaN, closed or full output streams, Ctrl-C and --help. Each gets
one line naming the input and the problem, the rest is answered, and the exit status says what happened (1 bad input,
130 Ctrl-C, 0 help).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import pytest
import soundfile

from emokeras.serving.recognizer import PredictionError, Recognizer

from helpers.commands import TF_LOG_LINE, ctrl_c_as_at_a_terminal, read_until, user_environment, without_tensorflow
from helpers.corpora import speech

FOLD = 3


@pytest.fixture(scope="module")
def export(b_aco_1_run):
    """The session's small B-ACO-1 export (SavedModel and model.onnx)."""
    return b_aco_1_run[1]["saved_model"]


@pytest.fixture(scope="module")
def recognizer(export):
    return Recognizer.load(export)


@pytest.fixture(scope="module")
def eleven_seconds(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "eleven.wav"
    soundfile.write(str(path), speech(11.0), 16000, subtype="PCM_16")
    return str(path)


def predict(*args, timeout=120, **options):
    return subprocess.run([sys.executable, "-m", "emokeras.predict", *args], capture_output=True, text=True,
                          timeout=timeout, **options)


def one_line(stderr):
    lines = [line for line in stderr.strip().splitlines() if line]
    assert "Traceback" not in stderr, stderr[-3000:]
    return lines


# ------------------------------------------------------------------------------------------------------- inputs

def test_a_fifo_is_refused_without_opening_it_and_the_next_file_answered(export, eleven_seconds, tmp_path):
    fifo = tmp_path / "x.wav"
    os.mkfifo(fifo)
    done = predict("--model", export, "--format", "json", str(fifo), eleven_seconds, timeout=120)
    assert done.returncode == 1
    fifo_answer, good = json.loads(done.stdout)
    assert fifo_answer["error"] == f"{fifo}: not an audio file (a FIFO); give a regular file"
    assert good["emotion"]


def test_devices_and_pipes_are_not_audio_files(recognizer, tmp_path):
    read, write = os.pipe()
    try:
        answers = recognizer.predict_files(["/dev/null", f"/dev/fd/{read}"])
    finally:
        os.close(read)
        os.close(write)
    assert list(answers["error"]) == ["/dev/null: not an audio file (a character device); give a regular file",
                                      f"/dev/fd/{read}: not an audio file (a FIFO); give a regular file"]
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n")
    [error] = recognizer.predict_files([str(text)])["error"]
    assert error.startswith(f"{text}: not an audio file soundfile can read") and "mediainfo" not in error


def test_stereo_whose_channels_cancel_is_silence(recognizer, tmp_path):
    voice = speech(2.0)
    path = tmp_path / "antiphase.wav"
    soundfile.write(str(path), np.stack([voice, -voice], axis=1), 16000, subtype="PCM_16")
    with pytest.raises(PredictionError, match=r"antiphase\.wav: all silence once its channels are mixed"):
        recognizer.predict_file(str(path))


def test_the_same_path_given_twice_is_answered_once(recognizer, eleven_seconds, caplog):
    answers = recognizer.predict_files([eleven_seconds, eleven_seconds])
    assert list(answers.index.get_level_values("file")) == [eleven_seconds] * 2  # two windows, once
    assert Recognizer.summarize(answers).loc[eleven_seconds, "answered_seconds"] == pytest.approx(14.0)
    assert f"{eleven_seconds} is given twice: answered once" in caplog.text


# ----------------------------------------------------------------------------------------------------- segments

@pytest.mark.parametrize("segment, reason", [
    ((3.0, 1.0), "its end is not after its start"),
    ((-1.0, 2.0), "a negative start"),
    ((float("nan"), 2.0), "not a finite number"),
    ((0.0, float("inf")), "not a finite number"),
    ((11.5, 12.0), "starts after the file's end (11.00 s)"),
])
def test_a_bad_segment_is_an_error_row_and_the_others_are_answered(recognizer, eleven_seconds, segment, reason):
    answers = recognizer.predict_file(eleven_seconds, segments=[segment, (0.0, 2.0)])
    bad, good = answers["error"].tolist()
    assert bad == f"{eleven_seconds}: segment {segment[0]!r} to {segment[1]!r} s: {reason}"
    assert pd.isna(good) and answers["emotion"].tolist()[1] is not None
    summary = Recognizer.summarize(answers)
    assert summary.loc[eleven_seconds, "answered_seconds"] == pytest.approx(2.0)
    with pytest.raises(PredictionError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        recognizer.predict_file(eleven_seconds, segments=[segment])


def test_a_segment_past_the_end_is_clipped_and_weighs_what_was_read(recognizer, eleven_seconds, caplog):
    answers = recognizer.predict_file(eleven_seconds, segments=[(8.0, 30.0)])
    assert list(answers.index) == [(eleven_seconds, 8.0, 11.0)]
    assert Recognizer.summarize(answers).loc[eleven_seconds, "answered_seconds"] == pytest.approx(3.0)
    assert f"{eleven_seconds}: segment 8.0 to 30.0 s ends past the file's end (11.00 s): answered to 11.00 s" \
        in caplog.text


def test_a_segment_longer_than_the_window_is_answered_in_parts(recognizer, eleven_seconds):
    answers = recognizer.predict_file(eleven_seconds, segments=[(0.0, 10.0)])
    assert [(start, end) for _, start, end in answers.index] == [(0.0, 5.0), (5.0, 10.0)]
    assert answers["error"].isna().all()
    with pytest.raises(PredictionError, match="no segment given"):
        recognizer.predict_file(eleven_seconds, segments=[])


# ---------------------------------------------------------------------------------------------------- arguments

@pytest.mark.parametrize("options, message", [
    ({"batch_size": -1}, "batch_size must be a positive integer, got -1"),
    ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    ({"batch_size": 2.5}, "batch_size must be a positive integer, got 2.5"),
    ({"threads": 0}, "threads must be a positive integer or None, got 0"),
    ({"workers": "2"}, "workers must be a positive integer, got '2'"),
    ({"runtime": "tflite"}, "runtime 'tflite': choose one of auto, onnx, savedmodel"),
    ({"window_seconds": float("nan")}, "window_seconds must be a finite number of seconds, got nan"),
    ({"hop_seconds": 0}, r"hop_seconds 0: choose a hop in \(0, 7\]"),
    ({"segmentation": "vad"}, "segmentation 'vad': choose one of window, speech"),
])
def test_the_recognizers_arguments_are_checked_where_they_enter(export, options, message):
    with pytest.raises((ValueError, TypeError), match=f"^{message}"):
        Recognizer.load(export, **options)


def test_a_string_is_not_a_list_of_paths(recognizer, eleven_seconds):
    with pytest.raises(TypeError, match="predict_files takes a list of paths, not one path; for one file use "
                                        "predict_file"):
        recognizer.predict_files(eleven_seconds)


def test_predict_signal_takes_each_layout_and_refuses_the_rest(recognizer):
    voice = speech(2.0)
    mono = recognizer.predict_signal(voice, 16000)
    stereo = np.stack([voice, voice])
    for layout in (stereo, stereo.T):  # (channels, samples) and soundfile's (samples, channels)
        np.testing.assert_allclose(recognizer.predict_signal(layout, 16000)[recognizer.class_names].to_numpy(float),
                                   mono[recognizer.class_names].to_numpy(float), atol=1e-5)
    for samples, message in ((np.float32(0.5), "a 0-d array: a signal needs samples"),
                            (np.zeros((2, 2, 100)), r"a 3-d array \(2, 2, 100\)"),
                            (np.zeros((300, 300)), r"\(300, 300\): cannot tell its channels from its samples")):
        with pytest.raises(PredictionError, match=message):
            recognizer.predict_signal(samples, 16000)
    for rate in (None, "16000", 0, -16000, 16000.5):
        with pytest.raises(PredictionError, match=f"sampling_rate must be a positive whole number of Hz, got "
                                                  f"{rate!r}".replace("(", r"\(").replace(")", r"\)")):
            recognizer.predict_signal(voice, rate)


# ------------------------------------------------------------------------------------------------------ exports

def copied(export, tmp_path):
    return shutil.copytree(export, tmp_path / "export")


def test_a_damaged_onnx_model_is_named_with_what_still_works(export, eleven_seconds, tmp_path):
    broken = copied(export, tmp_path)
    with open(broken / "model.onnx", "r+b") as handle:
        handle.truncate(os.path.getsize(broken / "model.onnx") // 3)
    with pytest.raises(ValueError, match=rf"^{broken}/model.onnx is damaged \(.*\); the SavedModel beside it still "
                                         r"answers: --runtime savedmodel$"):
        Recognizer.load(str(broken))
    assert Recognizer.load(str(broken), runtime="savedmodel").predict_file(eleven_seconds)["error"].isna().all()
    os.remove(broken / "model.onnx")
    with pytest.raises(FileNotFoundError, match=rf"^{broken}: its metadata names model.onnx, which is missing; the "
                                                r"SavedModel beside it still answers: --runtime savedmodel$"):
        Recognizer.load(str(broken), runtime="onnx")
    done = predict("--model", str(broken), eleven_seconds)
    assert done.returncode == 1 and len(one_line(done.stderr)) == 1


def test_damaged_variables_are_named_with_what_still_works(export, eleven_seconds, tmp_path):
    broken = copied(export, tmp_path)
    for name in os.listdir(broken / "variables"):
        if name.startswith("variables.data"):
            with open(broken / "variables" / name, "r+b") as handle:
                handle.truncate(16)
    with pytest.raises(ValueError, match=rf"^{broken}: the SavedModel cannot be loaded \(its variables are missing "
                                         r"or damaged: .*\); model.onnx beside it still answers: --runtime onnx$"):
        Recognizer.load(str(broken), runtime="savedmodel")
    shutil.rmtree(broken / "variables")
    with pytest.raises(ValueError, match=rf"^{broken}: the SavedModel cannot be loaded"):
        Recognizer.load(str(broken), runtime="savedmodel")
    assert Recognizer.load(str(broken)).predict_file(eleven_seconds)["error"].isna().all()  # ONNX still answers


def test_metadata_whose_classes_do_not_fit_the_model_is_refused(export, tmp_path):
    broken = copied(export, tmp_path)
    path = broken / "assets.extra" / "emokeras.json"
    metadata = json.loads(path.read_text())
    metadata["class_names"] = metadata["class_names"] + ["surprise"]
    path.write_text(json.dumps(metadata))
    for runtime in ("onnx", "savedmodel"):
        with pytest.raises(ValueError, match=rf"^{broken}: its metadata names 5 classes \(.*surprise\), the model "
                                             r"answers 4; export it again"):
            Recognizer.load(str(broken), runtime=runtime)


def test_an_export_is_replaced_in_one_step(export, tmp_path, monkeypatch):
    """The new folder is renamed in before the old one is removed: a reader never finds a half-deleted export."""
    from emokeras import files

    target = copied(export, tmp_path)
    new = shutil.copytree(export, tmp_path / "new")
    (new / "marker").write_text("new")
    seen = []
    real_rmtree = shutil.rmtree

    def watching(path, *args, **kwargs):
        seen.append((str(path), os.path.isfile(target / "marker"), os.path.isfile(target / "saved_model.pb")))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(files.shutil, "rmtree", watching)
    files.replace_folder(str(new), str(target))
    assert seen and all(marker and whole for _, marker, whole in seen)  # the new export was in place first
    assert not os.path.exists(new)


# ----------------------------------------------------------------------------------------------- a NaN model

@pytest.fixture(scope="module")
def nan_export(tmp_path_factory, demo_data):
    """A B-ACO-1 whose weights are NaN, exported with its model.onnx (what a NaN loss would have left)."""
    import keras

    from emokeras.serving.export import export_saved_model
    from emokeras.training.experiment import preparation_facts
    from emokeras.training.tasks import build_model_for

    from helpers.runs import small_config

    config = small_config(tmp_path_factory.mktemp("nan"), demo_data)
    model = build_model_for("B-ACO-1", config, demo_data)
    for weight in model.weights:
        if "kernel" in weight.path:
            weight.assign(keras.ops.full(weight.shape, np.nan))
    path = str(tmp_path_factory.mktemp("nan-export") / "fold-3")
    return export_saved_model(model, path, {"model": "B-ACO-1", "fold": FOLD, "max_frames": 700,
                                            **preparation_facts(demo_data)})


def test_a_model_that_answers_nan_gives_error_rows_never_a_crash(nan_export, eleven_seconds):
    for runtime in ("onnx", "savedmodel"):
        answers = Recognizer.load(nan_export, runtime=runtime).predict_files([eleven_seconds])
        assert answers["emotion"].isna().all()
        assert set(answers["error"]) == {f"{eleven_seconds} [0.00 s, 7.00 s): the model answered NaN (was it "
                                         "trained to a non-finite loss?)",
                                         f"{eleven_seconds} [4.00 s, 11.00 s): the model answered NaN (was it "
                                         "trained to a non-finite loss?)"}
    for output in ("table", "json"):
        done = predict("--model", nan_export, "--format", output, eleven_seconds)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert "the model answered NaN" in done.stdout
    assert "1 of 1 files could not be answered" in done.stderr


# -------------------------------------------------------------------------------------------- output streams

def test_a_closed_reader_ends_quietly(export, eleven_seconds):
    done = subprocess.run(f"{sys.executable} -m emokeras.predict --model {export} {eleven_seconds} "
                          f"{eleven_seconds} {eleven_seconds} | true", shell=True, capture_output=True, text=True,
                          timeout=120)
    assert done.stderr.strip() == "" or "Traceback" not in done.stderr
    assert "BrokenPipeError" not in done.stderr and "Exception ignored" not in done.stderr


def test_a_closed_or_full_standard_output_is_one_line(export, eleven_seconds):
    closed = subprocess.run(f"{sys.executable} -m emokeras.predict --model {export} {eleven_seconds} >&-",
                            shell=True, capture_output=False, stderr=subprocess.PIPE, text=True, timeout=120)
    assert closed.returncode == 1
    assert one_line(closed.stderr)[-1] == "ERROR: standard output is closed: nowhere to write the answers"
    full = subprocess.run(f"{sys.executable} -m emokeras.predict --model {export} {eleven_seconds} >/dev/full",
                          shell=True, stderr=subprocess.PIPE, text=True, timeout=120)
    assert full.returncode == 1
    assert one_line(full.stderr)[-1] == "ERROR: cannot write to standard output: No space left on device"


def test_a_multi_line_error_stays_on_its_row(recognizer, eleven_seconds):
    from emokeras.predict import format_table

    answers = recognizer.predict_files([eleven_seconds]).iloc[:1].copy()
    answers["emotion"] = None
    answers[recognizer.class_names] = np.nan
    answers["error"] = f"{eleven_seconds}: first line\nsecond line"
    lines = format_table(answers).splitlines()
    assert len(lines) == 2 and lines[1].endswith("error: first line / second line")


# --------------------------------------------------------------------------------------------- commands

@pytest.mark.parametrize("command", ["train", "predict"])  # one place (cli.run_command) answers --help for all
def test_help_exits_0(command):
    done = subprocess.run([sys.executable, "-m", f"emokeras.{command}", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--" in done.stdout


@pytest.mark.parametrize("command, message", [
    ("prepare --corpus=iemocap", "--corpus iemocap needs --root, the release's folder"),
    ("train --learning_rate=nan", "--learning_rate must be a finite number, got nan"),
    ("crossval --seeds=1,1", "--seeds repeats 1: '1,1'"),
    ("tune --workers=2 --tuner_id=w", "--workers starts its own chief and workers; give it no --tuner_id or "
                                      "--oracle_address"),
])
def test_a_mistake_in_the_flags_is_named_before_tensorflow_loads(command, message, tmp_path):
    """In one line, at once: TensorFlow is blocked in the command's process, and the command never reaches it."""
    module, *flags = command.split()
    done = subprocess.run(without_tensorflow(f"emokeras.{module}", *flags), cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and done.stderr == f"ERROR: {message}\n", done.stderr[-2000:]
    assert os.listdir(tmp_path) == []  # nothing written


@pytest.mark.large
def test_ctrl_c_in_training_is_one_line_and_exit_130(tmp_path, demo_data):
    """Interrupted in its second epoch; the rerun then resumes (exactly: tests/test_train.py checks that)."""
    command = [sys.executable, "-m", "emokeras.train", "--model", "B-ACO-1", "--fold", "3", "--epochs", "20",
               "--hidden_units", "8", "--blstm_layers", "1", "--data", demo_data,
               "--output", str(tmp_path / "runs"), "--saved_models", str(tmp_path / "saved"), "--noonnx",
               "--max_frames", "100"]
    with tempfile.TemporaryFile("w+") as errors:
        with ctrl_c_as_at_a_terminal():
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True,
                                       env=user_environment())
        assert read_until(process, "Epoch 2/", errors).splitlines()[-1].startswith("Epoch 2/")
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
        errors.seek(0)
        stderr = errors.read()
    assert process.returncode == 130
    lines = one_line(stderr)
    assert lines[-1].startswith("ERROR: interrupted") and "run the same command again to resume" in lines[-1]
    assert "KeyboardInterrupt" not in stderr
    assert os.path.isdir(tmp_path / "runs" / "B-ACO-1" / "fold-3" / "state")
    assert not re.search(TF_LOG_LINE, stderr, re.M), stderr  # a quiet start, and no line per epoch
