"""emokeras.predict: wav → openSMILE in a worker → exported model; the same answer as the prepared TFRecord
gives; transcripts (.wdseg, JSON) for models that read words; a clear error per bad file, answers for the rest."""

import glob
import json
import os
import shutil
import subprocess
import sys
import wave

import numpy as np
import pytest
import tensorflow as tf

from emokeras import data, export, predict

from conftest import tone

FOLD = 3  # test speaker Ses02_F


@pytest.fixture(scope="module")
def exported(b_aco_1_run, h_mm_4_run):
    """The session's small B-ACO-1 and H-MM-4 runs' exports: {name: saved model folder}."""
    return {"B-ACO-1": b_aco_1_run[1]["saved_model"], "H-MM-4": h_mm_4_run[1]["saved_model"]}


@pytest.fixture(scope="module")
def prepared_examples(demo_data):
    """{utterance id: the parsed TFRecord example} for fold 3's test speaker."""
    return {example["utterance_id"].numpy().decode(): example
            for example in data.parsed_split(demo_data, FOLD, "test")}


def demo_wavs(demo_config, count):
    pattern = os.path.join(demo_config.corpus_root(), "Session2", "sentences", "wav", "*", "Ses02F_*_F*.wav")
    return sorted(glob.glob(pattern))[:count]


def wdseg_of(wav_path):
    dialog = os.path.basename(os.path.dirname(wav_path))
    session_dir = os.path.dirname(os.path.dirname(os.path.dirname(wav_path)))
    return os.path.join(session_dir, "ForcedAlignment", dialog,
                        os.path.splitext(os.path.basename(wav_path))[0] + ".wdseg")


def expected_probabilities(model_dir, example):
    """The exported model's answer on the prepared example: what predict must reproduce from the wav."""
    metadata = predict.read_metadata(model_dir)
    inputs = {name: tf.cast(example[name], spec["dtype"])[tf.newaxis] for name, spec in metadata["inputs"].items()}
    return export.load_serving(model_dir)(**inputs)["probabilities"].numpy()[0]


def write_wav(path, samples, rate):
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.asarray(samples) * 10000).astype("<i2").tobytes())
    return str(path)


def test_acoustic_model_answers_from_audio_alone_and_reports_bad_files(exported, prepared_examples, demo_config,
                                                                        tmp_path):
    model_dir = exported["B-ACO-1"]
    good = demo_wavs(demo_config, 2)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really a wav file")
    short = write_wav(tmp_path / "short.wav", np.random.default_rng(0).normal(size=480), 16000)  # 30 ms
    narrow = write_wav(tmp_path / "narrow.wav", np.random.default_rng(0).normal(size=8000), 8000)
    paths = [good[0], str(corrupt), short, narrow, good[1]]
    answers = predict.Predictor(model_dir).predict(paths)

    assert [answer.file for answer in answers] == paths
    for answer in (answers[0], answers[4]):
        assert answer.error is None
        utterance_id = os.path.splitext(os.path.basename(answer.file))[0]
        expected = expected_probabilities(model_dir, prepared_examples[utterance_id])
        got = np.array([answer.probabilities[name] for name in ("anger", "happiness", "neutral", "sadness")])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        assert answer.emotion == ("anger", "happiness", "neutral", "sadness")[int(np.argmax(expected))]
    assert answers[1].error.startswith(f"{corrupt}: unreadable audio")
    assert answers[2].error == f"{short}: 30 ms of audio is shorter than one 60 ms analysis window"
    assert answers[3].error.startswith(f"{narrow}: sample rate 8000 Hz is below 16000 Hz")

    table = predict.format_table(answers)
    assert table.splitlines()[0].split() == ["file", "emotion", "anger", "happiness", "neutral", "sadness"]
    [row] = [line for line in table.splitlines() if line.startswith(short)]
    assert row.split(maxsplit=1)[1] == "error: 30 ms of audio is shorter than one 60 ms analysis window"
    listed = json.loads(predict.format_json(answers))
    assert listed[0]["emotion"] == answers[0].emotion and set(listed[1]) == {"file", "error"}


def test_multimodal_model_reads_wdseg_or_json_transcripts(exported, prepared_examples, demo_config, tmp_path):
    model_dir = exported["H-MM-4"]
    source = demo_wavs(demo_config, 1)[0]
    utterance_id = os.path.splitext(os.path.basename(source))[0]
    expected = expected_probabilities(model_dir, prepared_examples[utterance_id])
    predictor = predict.Predictor(model_dir)

    # No transcript: that file fails, clearly.
    alone = shutil.copy(source, tmp_path / "alone.wav")
    [answer] = predictor.predict([alone])
    assert answer.error.startswith(f"{alone}: the model H-MM-4 reads words, and no transcript was found")

    # IEMOCAP's .wdseg beside the wav.
    with_wdseg = shutil.copy(source, tmp_path / f"{utterance_id}.wav")
    shutil.copy(wdseg_of(source), tmp_path / f"{utterance_id}.wdseg")
    [answer] = predictor.predict([with_wdseg])
    assert answer.error is None
    np.testing.assert_allclose(list(answer.probabilities.values()), expected, rtol=1e-5, atol=1e-6)

    # The same timings as JSON, in seconds, found through --transcripts.
    from emokeras.corpus.iemocap import read_wdseg

    words, spans = read_wdseg(wdseg_of(source))
    transcripts = tmp_path / "transcripts"
    transcripts.mkdir()
    entries = [{"word": "<sil>", "start": 0.0, "end": spans[0][0] / 100}] if spans[0][0] > 0 else []
    entries += [{"word": word.upper(), "start": start / 100, "end": end / 100}
                for word, (start, end) in zip(words, spans)]
    (transcripts / "json_timed.json").write_text(json.dumps({"words": entries}))
    json_timed = shutil.copy(source, tmp_path / "json_timed.wav")
    [answer] = predict.Predictor(model_dir, transcripts_dir=str(transcripts)).predict([json_timed])
    assert answer.error is None
    np.testing.assert_allclose(list(answer.probabilities.values()), expected, rtol=1e-5, atol=1e-6)


def test_bad_json_transcript_names_the_file_and_word(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"words": [{"word": "oh", "start": 0.5, "end": 0.2}]}))
    with pytest.raises(predict.PredictionError, match=r"bad.json: word 0 \('oh'\) ends at 0.2 s"):
        predict.read_transcript(str(path))
    path.write_text("[1, 2]")
    with pytest.raises(predict.PredictionError, match="bad.json: not a transcript"):
        predict.read_transcript(str(path))


def test_command_line_prints_json_and_fails_for_the_bad_file(exported, demo_config, tmp_path):
    good = demo_wavs(demo_config, 1)[0]
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"garbage")
    command = [sys.executable, "-m", "emokeras.predict", "--model", exported["B-ACO-1"], "--format", "json",
               good, str(corrupt)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    good_answer, bad_answer = json.loads(result.stdout)
    assert good_answer["file"] == good and good_answer["emotion"] in good_answer["probabilities"]
    assert abs(sum(good_answer["probabilities"].values()) - 1) < 1e-5
    assert bad_answer["error"].startswith(f"{corrupt}: unreadable audio")
    assert "1 of 2 files could not be answered" in result.stderr


def test_a_transcript_with_no_word_in_the_frames_read_is_refused(exported, tmp_path):
    """The models read 7 s: a word starting at 7.2 s leaves a transcript-reading model nothing to read."""
    wav = write_wav(tmp_path / "late.wav", tone(8.0) * 3, 16000)
    (tmp_path / "late.json").write_text(json.dumps({"words": [{"word": "late", "start": 7.2, "end": 7.6}]}))
    [answer] = predict.Predictor(exported["H-MM-4"]).predict([wav])
    assert answer.error == f"{wav}: no word starts inside its first 700 frames (or it has no frame), so the models " \
                           "cannot read it"


def test_a_folder_that_is_not_an_export_or_a_damaged_one_is_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved_model.pb"):
        predict.read_metadata(str(tmp_path))
    (tmp_path / "saved_model.pb").write_bytes(b"")
    metadata = tmp_path / "assets.extra" / "emokeras.json"
    metadata.parent.mkdir()
    metadata.write_text("")
    with pytest.raises(ValueError, match=rf"{metadata}: not readable JSON \(.*\); export the model again"):
        predict.read_metadata(str(tmp_path))
    metadata.write_text("{}")
    with pytest.raises(ValueError, match=rf"{metadata}: no inputs, class_names; export the model again"):
        predict.read_metadata(str(tmp_path))
