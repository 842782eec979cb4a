"""emokeras.Recognizer and emokeras.predict.

Wav → openSMILE → exported model (SavedModel or ONNX); the same answer as the prepared TFRecord gives; whole recordings
in segments; batches that do not change answers; transcripts (.wdseg, JSON) for models that read words; a clear error
per bad file, answers for the rest.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import wave

import numpy as np
import onnx
import pandas as pd
import pytest
import soundfile
import tensorflow as tf

from emokeras.data import alignments, pipelines
from emokeras.models.specs import CLASS_NAMES
from emokeras.predict import format_json, format_table
from emokeras.serving import export
from emokeras.serving.inputs import TranscriptError, read_transcript
from emokeras.serving.recognizer import PredictionError, Recognizer
from emokeras.serving.runtimes import OnnxRuntime, SavedModelRuntime, read_metadata

from helpers.audio import tone

FOLD = 3  # test speaker Ses02_F


@pytest.fixture(scope="module")
def exported(b_aco_1_run, h_mm_4_run):
    """The session's small B-ACO-1 and H-MM-4 runs' exports: {name: saved model folder}."""
    return {"B-ACO-1": b_aco_1_run[1]["saved_model"], "H-MM-4": h_mm_4_run[1]["saved_model"]}


@pytest.fixture(scope="module")
def prepared_examples(demo_data):
    """{utterance id: the parsed TFRecord example} for fold 3's test speaker."""
    return {example["utterance_id"].numpy().decode(): example
            for example in pipelines.parsed_split(demo_data, FOLD, "test")}


def demo_wavs(demo_config, count, longest=7.0, speaker="Ses02F_*_F"):
    """`count` of fold 3's test wavs (or `speaker`'s), each no longer than `longest` seconds (one window: one row)."""
    pattern = os.path.join(demo_config.corpus_root(), "Session2", "sentences", "wav", "*", f"{speaker}*.wav")
    return [path for path in sorted(glob.glob(pattern)) if soundfile.info(path).duration <= longest][:count]


def wdseg_of(wav_path):
    dialog = os.path.basename(os.path.dirname(wav_path))
    session_dir = os.path.dirname(os.path.dirname(os.path.dirname(wav_path)))
    return os.path.join(session_dir, "ForcedAlignment", dialog,
                        os.path.splitext(os.path.basename(wav_path))[0] + ".wdseg")


def expected_probabilities(model_dir, example):
    """The exported model's answer on the prepared example: what predict must reproduce from the wav."""
    metadata = read_metadata(model_dir)
    inputs = {name: tf.cast(example[name], spec["dtype"])[tf.newaxis] for name, spec in metadata["inputs"].items()}
    return export.load_serving(model_dir)(**inputs)["probabilities"].numpy()[0]


def write_wav(path, samples, rate):
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.asarray(samples) * 10000).astype("<i2").tobytes())
    return str(path)


def probabilities_of(answers):
    return answers[list(CLASS_NAMES)].to_numpy(float)


def test_acoustic_model_answers_from_audio_alone_and_reports_bad_files(exported, prepared_examples, demo_config,
                                                                        tmp_path):
    model_dir = exported["B-ACO-1"]
    good = demo_wavs(demo_config, 2)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really a wav file")
    short = write_wav(tmp_path / "short.wav", np.random.default_rng(0).normal(size=480), 16000)  # 30 ms
    narrow = write_wav(tmp_path / "narrow.wav", np.random.default_rng(0).normal(size=8000), 8000)
    paths = [good[0], str(corrupt), short, narrow, good[1]]
    answers = Recognizer.load(model_dir, runtime="savedmodel").predict_files(paths)

    assert list(answers.index.names) == ["file", "start", "end"]
    assert list(answers.index.get_level_values("file")) == paths  # one row each: short files are one segment
    for path in (good[0], good[1]):
        row = answers.xs(path, level="file")
        assert row.index[0] == (0.0, pytest.approx(soundfile.info(path).duration))
        utterance_id = os.path.splitext(os.path.basename(path))[0]
        expected = expected_probabilities(model_dir, prepared_examples[utterance_id])
        np.testing.assert_allclose(probabilities_of(row)[0], expected, rtol=1e-5, atol=1e-6)
        assert row["emotion"].iloc[0] == CLASS_NAMES[int(np.argmax(expected))]
        assert pd.isna(row["error"].iloc[0])
    errors = answers["error"].tolist()
    assert errors[1].startswith(f"{corrupt}: not an audio file soundfile can read")
    assert errors[2] == f"{short}: 30 ms of audio is shorter than one 60 ms analysis window"
    assert errors[3].startswith(f"{narrow}: sample rate 8000 Hz is below 16000 Hz")
    assert np.isnan(probabilities_of(answers)[1:4]).all()

    table = format_table(answers)
    assert table.splitlines()[0].split() == ["file", "start", "end", "emotion", *CLASS_NAMES]
    [row] = [line for line in table.splitlines() if line.startswith(short)]
    assert row.split(maxsplit=3)[3] == "error: 30 ms of audio is shorter than one 60 ms analysis window"
    listed = json.loads(format_json(answers))
    assert listed[0]["emotion"] == answers["emotion"].iloc[0] and set(listed[1]) == {"file", "error"}
    with pytest.raises(PredictionError, match=f"{short}.*shorter than one 60 ms analysis window"):
        Recognizer.load(model_dir, runtime="savedmodel").predict_file(short)


def test_a_long_recording_is_answered_window_by_window_and_summarised(exported, demo_config, tmp_path):
    """20 s of audio: windows 0-7, 7-14 and 13-20 s, each answered as that stretch alone.

    The summary is the duration-weighted mean; silence inside a window is answered, a silent window reported.
    """
    pieces = [soundfile.read(path, dtype="float32")[0] for path in demo_wavs(demo_config, 25, speaker="Ses02")]
    signal = np.concatenate(pieces)[:20 * 16000]
    assert signal.shape[0] == 20 * 16000
    path = str(tmp_path / "long.wav")
    soundfile.write(path, signal, 16000, subtype="FLOAT")
    recognizer = Recognizer.load(exported["B-ACO-1"])
    answers = recognizer.predict_file(path)
    assert list(answers.index) == [(path, 0.0, 7.0), (path, 7.0, 14.0), (path, 13.0, 20.0)]
    for (_, start, end), row in answers.iterrows():
        alone = recognizer.predict_signal(signal[int(start * 16000):int(end * 16000)], 16000)
        np.testing.assert_allclose(row[list(CLASS_NAMES)].to_numpy(float), probabilities_of(alone)[0], atol=1e-5)
    # From memory: the same windows, the same answers.
    np.testing.assert_allclose(probabilities_of(recognizer.predict_signal(signal, 16000, name="long")),
                               probabilities_of(answers), atol=1e-5)
    summary = Recognizer.summarize(answers)
    weighted = (7 * probabilities_of(answers)).sum(axis=0) / 21  # three 7 s windows weigh alike
    np.testing.assert_allclose(summary.loc[path, list(CLASS_NAMES)].to_numpy(float), weighted, atol=1e-6)
    assert summary.loc[path, "emotion"] == CLASS_NAMES[int(np.argmax(weighted))]
    assert "per file (duration-weighted mean of its segments):" in format_table(answers)

    quiet = np.concatenate([signal[:7 * 16000], np.zeros(7 * 16000, np.float32)])
    with_silence = str(tmp_path / "quiet_end.wav")
    soundfile.write(with_silence, quiet, 16000, subtype="FLOAT")
    answers = recognizer.predict_file(with_silence)
    assert answers["error"].tolist()[0] is None or pd.isna(answers["error"].tolist()[0])
    assert answers["error"].tolist()[1] == f"{with_silence} [7.00 s, 14.00 s): all silence (no sample above -90 dBFS)"
    summary = Recognizer.summarize(answers)
    np.testing.assert_allclose(summary.loc[with_silence, list(CLASS_NAMES)].to_numpy(float),
                               probabilities_of(answers)[0], atol=1e-6)  # the silent window weighs nothing

    speech = Recognizer.load(exported["B-ACO-1"], segmentation="speech").predict_file(with_silence)
    assert speech.index[-1][2] <= 7.2  # nothing after the speech ends (7 s, plus 0.1 s of padding)


def test_batches_do_not_change_answers_and_onnx_equals_the_saved_model(exported, demo_config, tmp_path):
    """32 files of mixed lengths: alone (batch 1) and in one batch of 32, on the SavedModel and on ONNX."""
    paths = demo_wavs(demo_config, 32, speaker="Ses02")  # both of session 2's speakers
    lengths = {round(soundfile.info(path).duration, 2) for path in paths}
    assert len(paths) == 32 and len(lengths) > 10
    alone = Recognizer.load(exported["B-ACO-1"], runtime="savedmodel", batch_size=1).predict_files(paths)
    batched = Recognizer.load(exported["B-ACO-1"], runtime="savedmodel", batch_size=32).predict_files(paths)
    on_onnx = Recognizer.load(exported["B-ACO-1"], batch_size=32)
    assert on_onnx.runtime == "onnx"  # the default where the export has model.onnx
    np.testing.assert_allclose(probabilities_of(batched), probabilities_of(alone), atol=1e-5)
    np.testing.assert_allclose(probabilities_of(on_onnx.predict_files(paths)), probabilities_of(alone), atol=1e-5)


def test_onnx_export_holds_its_metadata_and_matches_the_saved_model(exported, prepared_examples):
    """Batches of mixed lengths, padded as the pipeline pads them, and one 700-frame utterance."""
    model_dir = exported["B-ACO-1"]
    metadata = read_metadata(model_dir)
    assert metadata["onnx"] == "model.onnx" and metadata["max_frames"] == 700
    model = onnx.load(os.path.join(model_dir, "model.onnx"))
    assert model.opset_import[0].version >= 17
    props = {prop.key: json.loads(prop.value) for prop in model.metadata_props}
    assert props["class_names"] == list(CLASS_NAMES) and props["model"] == "B-ACO-1"
    assert props["feature_set"] == metadata["feature_set"] and props["max_frames"] == 700
    assert not os.path.exists(os.path.join(exported["H-MM-4"], "model.onnx"))  # it reads words
    with pytest.raises(FileNotFoundError, match="no model.onnx: it reads transcripts"):
        Recognizer.load(exported["H-MM-4"], runtime="onnx")

    rng = np.random.default_rng(0)
    frames = [example["frames"].numpy() for example in list(prepared_examples.values())[:6]]
    frames.append(rng.normal(size=(700, 130)).astype(np.float32) * 3)
    lengths = np.array([f.shape[0] for f in frames], np.int32)
    batch = np.zeros((len(frames), lengths.max(), 130), np.float32)
    for row, features in enumerate(frames):
        batch[row, :len(features)] = features
    inputs = {"frames": batch, "num_frames": lengths}
    onnx_runner, saved_runner = OnnxRuntime(os.path.join(model_dir, "model.onnx")), SavedModelRuntime(model_dir)
    np.testing.assert_allclose(onnx_runner(inputs), saved_runner(inputs), atol=1e-5)
    one = {"frames": batch[-1:], "num_frames": lengths[-1:]}
    assert lengths[-1] == 700
    np.testing.assert_allclose(onnx_runner(one), saved_runner(one), atol=1e-5)


def test_onnx_recogniser_never_imports_tensorflow_and_runs_opensmile_in_process(exported, demo_config):
    """A process where `import tensorflow` fails: the ONNX recogniser and the predict command still answer."""
    wav = demo_wavs(demo_config, 1)[0]
    expected = probabilities_of(Recognizer.load(exported["B-ACO-1"], runtime="savedmodel").predict_file(wav))
    blocker = ("import sys\n"
               "class Refuse:\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name.split('.')[0] in ('tensorflow', 'keras', 'tensorflow_hub'):\n"
               "            raise ImportError(f'{name} is blocked in this test')\n"
               "sys.meta_path.insert(0, Refuse())\n")
    script = blocker + (
        "import json\n"
        "from emokeras import Recognizer\n"
        "from emokeras.data.features import acoustic\n"
        f"answers = Recognizer.load({exported['B-ACO-1']!r}).predict_file({wav!r})\n"
        "assert acoustic._smile is not None  # openSMILE ran here, not in a worker\n"
        "print(json.dumps(answers[['anger', 'happiness', 'neutral', 'sadness']].to_numpy().tolist()))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(json.loads(result.stdout), expected, atol=1e-5)

    command = blocker + ("import sys\nfrom emokeras.predict import main, define_flags\nfrom emokeras.cli import "
                         "run_command\nsys.argv = ['predict', '--model', sys.argv[1], '--format', 'csv', sys.argv[2]]\n"
                         "run_command(main, define_flags)\n")
    result = subprocess.run([sys.executable, "-c", command, exported["B-ACO-1"], wav], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[0] == "file,start,end,emotion,anger,happiness,neutral,sadness,error"


def test_multimodal_model_reads_wdseg_or_json_transcripts(exported, prepared_examples, demo_config, tmp_path):
    model_dir = exported["H-MM-4"]
    source = demo_wavs(demo_config, 1)[0]
    utterance_id = os.path.splitext(os.path.basename(source))[0]
    expected = expected_probabilities(model_dir, prepared_examples[utterance_id])
    recognizer = Recognizer.load(model_dir)
    assert recognizer.runtime == "savedmodel"

    # No transcript: that file fails, clearly.
    alone = shutil.copy(source, tmp_path / "alone.wav")
    [error] = recognizer.predict_files([alone])["error"]
    assert error.startswith(f"{alone}: the model H-MM-4 reads words, and no transcript was found")

    # IEMOCAP's .wdseg beside the wav.
    with_wdseg = shutil.copy(source, tmp_path / f"{utterance_id}.wav")
    shutil.copy(wdseg_of(source), tmp_path / f"{utterance_id}.wdseg")
    np.testing.assert_allclose(probabilities_of(recognizer.predict_file(with_wdseg))[0], expected, rtol=1e-5,
                               atol=1e-6)

    # The same timings as JSON, in seconds, found through --transcripts.
    words, spans = alignments.frame_spans(alignments.read_wdseg(wdseg_of(source)))
    transcripts = tmp_path / "transcripts"
    transcripts.mkdir()
    entries = [{"word": "<sil>", "start": 0.0, "end": spans[0][0] / 100}] if spans[0][0] > 0 else []
    entries += [{"word": word.upper(), "start": start / 100, "end": end / 100}
                for word, (start, end) in zip(words, spans)]
    (transcripts / "json_timed.json").write_text(json.dumps({"words": entries}))
    json_timed = shutil.copy(source, tmp_path / "json_timed.wav")
    answers = Recognizer.load(model_dir, transcripts_dir=str(transcripts)).predict_file(json_timed)
    np.testing.assert_allclose(probabilities_of(answers)[0], expected, rtol=1e-5, atol=1e-6)


def test_bad_json_transcript_names_the_file_and_word(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"words": [{"word": "oh", "start": 0.5, "end": 0.2}]}))
    with pytest.raises(TranscriptError, match=r"bad.json:words\[0\]: 'oh' ends at 0.2 s"):
        read_transcript(str(path))
    path.write_text("[1, 2]")
    with pytest.raises(TranscriptError, match=r"bad.json: neither WhisperX's"):
        read_transcript(str(path))


def test_a_folder_that_is_not_an_export_or_a_damaged_one_is_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved_model.pb"):
        read_metadata(str(tmp_path))
    (tmp_path / "saved_model.pb").write_bytes(b"")
    metadata = tmp_path / "assets.extra" / "emokeras.json"
    metadata.parent.mkdir()
    metadata.write_text("")
    with pytest.raises(ValueError, match=rf"{metadata}: not readable JSON \(.*\); export the model again"):
        read_metadata(str(tmp_path))
    metadata.write_text("{}")
    with pytest.raises(ValueError, match=rf"{metadata}: no inputs, class_names; export the model again"):
        read_metadata(str(tmp_path))


def test_bad_options_are_refused_with_the_limit(exported):
    with pytest.raises(ValueError, match=r"window_seconds 10: the model reads at most 7 s \(700 frames\)"):
        Recognizer.load(exported["B-ACO-1"], window_seconds=10)
    with pytest.raises(ValueError, match=r"hop_seconds 8: choose a hop in \(0, 7\]"):
        Recognizer.load(exported["B-ACO-1"], hop_seconds=8)


def test_command_line_prints_json_and_fails_for_the_bad_file(exported, demo_config, tmp_path):
    good = demo_wavs(demo_config, 1)[0]
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"garbage")
    folder = tmp_path / "a_folder"
    folder.mkdir()
    command = [sys.executable, "-m", "emokeras.predict", "--model", exported["B-ACO-1"], "--format", "json",
               good, str(corrupt), str(folder), str(tmp_path / "missing.wav")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    good_answer, bad_answer, folder_answer, missing_answer = json.loads(result.stdout)
    assert good_answer["file"] == good and good_answer["emotion"] in good_answer["probabilities"]
    assert abs(sum(good_answer["probabilities"].values()) - 1) < 1e-5
    assert [segment["start"] for segment in good_answer["segments"]] == [0.0]
    assert bad_answer["error"].startswith(f"{corrupt}: not an audio file soundfile can read")
    assert folder_answer["error"] == f"{folder}: a folder, not an audio file"
    assert missing_answer["error"] == f"{tmp_path / 'missing.wav'}: no such file"
    assert "3 of 4 files could not be answered" in result.stderr


def test_a_transcript_with_no_word_in_the_frames_read_is_refused(exported, tmp_path):
    """The models read 7 s: a word starting at 7.2 s leaves a transcript-reading model nothing to read."""
    wav = write_wav(tmp_path / "late.wav", tone(8.0) * 3, 16000)
    (tmp_path / "late.json").write_text(json.dumps({"words": [{"word": "late", "start": 7.2, "end": 7.6}]}))
    [error] = Recognizer.load(exported["H-MM-4"]).predict_files([wav])["error"]
    assert error == f"{wav}: no word starts inside its first 700 frames (or it has no frame), so the models " \
                    "cannot read it"
