"""`emokeras.prepare`: bad inputs skipped and counted, idempotence, mismatch refusal, ELMo as encoder, CLI."""

import glob
import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf

from emokeras.data import alignments, pipelines, tfrecords
from emokeras.data.corpus import demo
from emokeras.data.corpus.iemocap import parse_utterance_id, read_iemocap
from emokeras.data.features.acoustic import end_idle_workers
from emokeras.data.preparation import NO_WORD_READ, prepare_corpus
from emokeras.files import OutputError

from helpers.audio import tone, write_wav
from helpers.encoders import build_tiny_elmo, tiny_elmo_expected
from helpers.runs import small_demo_config


def test_fitting_spans_clips_small_overruns_and_refuses_large_ones():
    words, spans = alignments.fit_to_frames("u", ["a", "b", "c"], [(0, 10), (12, 96), (96, 99)], 95)
    assert words == ["a", "b"] and spans == [(0, 10), (12, 95)]
    with pytest.raises(alignments.AlignmentError, match=r"u: alignment ends at frame 400, past the audio's end "
                                                        r"\(95 frames\)"):
        alignments.fit_to_frames("u", ["a"], [(300, 400)], 95)


def _wdseg_path(utterance):
    """Session<k>/sentences/ForcedAlignment/<dialog>/<id>.wdseg: where the reader found its words."""
    return utterance.alignment


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """A small demo corpus with one of each bad input, prepared."""
    config = small_demo_config(tmp_path_factory.mktemp("damaged"))
    root = demo.write_demo_corpus(config.root, seed=0, utterances_per_speaker=4)
    # The stamp says "demo as written"; prepare must not rewrite the damage away.
    corpus = read_iemocap(root)
    victims = {reason: corpus[i] for reason, i in
               zip(["bad audio", "no alignment", "alignment past audio end", "no words", "unknown label",
                    NO_WORD_READ], [0, 5, 10, 15, 20, 25])}
    # 8 s of audio whose only word starts at 7.2 s: the models read 7 s, so no word.
    late = victims[NO_WORD_READ]
    write_wav(late.audio, tone(8.0))
    with open(_wdseg_path(late), "w") as handle:
        handle.write("\tSFrm\tEFrm\tSegAScr\tWord\n\t 0\t 719\t -1\t<sil>\n\t 720\t 760\t -1\tLATE\n")
    with open(victims["bad audio"].audio, "wb") as handle:
        handle.write(b"RIFF....WAVEfmt garbage")
    os.remove(_wdseg_path(victims["no alignment"]))
    with open(_wdseg_path(victims["alignment past audio end"]), "a") as handle:
        handle.write("\t 5000\t 5100\t -1\tLATE\n")
    with open(_wdseg_path(victims["no words"]), "w") as handle:
        handle.write("\tSFrm\tEFrm\tSegAScr\tWord\n\t 0\t 40\t -1\t<s>\n\t 41\t 80\t -1\t</s>\n")
    utterance = victims["unknown label"]
    session = parse_utterance_id(utterance.id)[0]
    for path in glob.glob(os.path.join(root, f"Session{session}", "dialog", "EmoEvaluation", "*.txt")):
        with open(path) as handle:
            text = handle.read()
        if utterance.id in text:
            lines = [re.sub(r"\t(ang|hap|exc|neu|sad)\t", "\tbored\t", line)
                     if utterance.id in line else line for line in text.splitlines()]
            with open(path, "w") as handle:
                handle.write("\n".join(lines) + "\n")
    data_dir = prepare_corpus(config)
    return data_dir, victims, len(corpus)


def test_bad_inputs_are_skipped_counted_and_named_and_the_rest_kept(damaged):
    data_dir, victims, total = damaged
    assert NO_WORD_READ == "no word in the first 700 frames"
    manifest = tfrecords.read_manifest(data_dir)
    assert manifest["num_utterances"] == total - len(victims) == 34
    for reason, utterance in victims.items():
        assert manifest["skipped"][reason] == 1, reason
        assert manifest["skipped_ids"][reason] == [utterance.id]
    written = sum(tfrecords.count_examples(path) for path in glob.glob(os.path.join(data_dir, "*.tfrecord")))
    assert written == 34
    assert not glob.glob(os.path.join(os.path.dirname(data_dir), "*.partial"))


def test_prepare_is_idempotent_and_refuses_a_mismatch(tmp_path):
    config = small_demo_config(tmp_path)
    data_dir = prepare_corpus(config)
    manifest_path = os.path.join(data_dir, "manifest.json")
    stamp = os.stat(manifest_path).st_mtime_ns
    assert prepare_corpus(config) == data_dir
    assert os.stat(manifest_path).st_mtime_ns == stamp  # nothing redone

    config.demo_utterances_per_speaker = 5  # another corpus, same output folder
    with pytest.raises(tfrecords.ManifestMismatch, match=r"corpus_stamp: found .*utterances_per_speaker=4.*"
                                                         r"asked for .*utterances_per_speaker=5.*--overwrite"):
        prepare_corpus(config)
    config.overwrite = True
    prepare_corpus(config)
    assert tfrecords.read_manifest(data_dir)["num_utterances"] == 50


def test_prepare_with_an_elmo_signature_encoder(tmp_path):
    handle = build_tiny_elmo(tmp_path / "tiny-elmo")
    config = small_demo_config(tmp_path, text_encoder=handle)
    data_dir = prepare_corpus(config)
    assert data_dir.endswith(os.path.join("demo", "tiny-elmo"))
    manifest = tfrecords.read_manifest(data_dir)
    assert (manifest["encoder_convention"], manifest["encoder_dimension"]) == ("elmo", 16)
    example = next(pipelines.parsed_split(data_dir, 0, "test").as_numpy_iterator())
    corpus = {u.id: u for u in read_iemocap(config.corpus_root())}
    words = corpus[example["utterance_id"].decode()].words
    np.testing.assert_allclose(example["word_vectors"], tiny_elmo_expected(words), rtol=1e-5, atol=1e-6)


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "emokeras.prepare", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_command_line_prepares_and_reports(tmp_path):
    result = _run("--demo_utterances_per_speaker=4", "--workers=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("writing the demo corpus to ")
    assert lines[1].split() == ["speaker", "utterances", "anger", "happiness", "neutral", "sadness"]
    assert lines[-3].split() == ["total", "40", "10", "10", "10", "10"]
    assert os.path.isfile(tmp_path / "tfrecords" / "demo" / "char-ngram-256" / "manifest.json")
    with open(tmp_path / "tfrecords" / "demo" / "char-ngram-256" / "manifest.json") as handle:
        manifest = json.load(handle)
    assert manifest["counts"]["Ses03_F"] == {"anger": 1, "happiness": 1, "neutral": 1, "sadness": 1}
    assert manifest["shards"]["session-3-00000.tfrecord"] == ["Ses03_F", "Ses03_M"]


def test_a_full_disk_stops_preparation_clearly_and_marks_nothing_complete(tmp_path, monkeypatch):
    """TensorFlow's writer raises ResourceExhaustedError on a full disk ("No space left on device", on a full tmpfs).

    The error names the folder, the openSMILE workers stop, nothing is left marked complete, and the same command
    succeeds once there is room.
    """
    config = small_demo_config(tmp_path)
    data_dir = config.data_dir()
    real_write = tfrecords.ShardWriter.write
    writes = []

    def write(self, serialized):
        writes.append(self.path)
        if len(writes) == 5:
            raise tf.errors.ResourceExhaustedError(None, None, f"{self.path}.tmp; No space left on device")
        return real_write(self, serialized)

    monkeypatch.setattr(tfrecords.ShardWriter, "write", write)
    end_idle_workers()  # the workers earlier tests gave back, and the timer that ends them
    threads = threading.active_count()
    with pytest.raises(OutputError, match=rf"^{re.escape(data_dir)}.partial: could not write the TFRecords \(the "
                                          r"disk is full\); nothing there is marked complete"):
        prepare_corpus(config)
    assert not os.path.exists(data_dir) and not os.path.exists(data_dir + ".partial")
    end_idle_workers()  # the workers given back; one the failed preparation kept would still run
    assert threading.active_count() == threads  # the feeder threads stopped
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and _is_worker_of_this_process(pid)]
    monkeypatch.undo()
    assert tfrecords.read_manifest(prepare_corpus(config))["num_utterances"] == 40


def _is_worker_of_this_process(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return parent == os.getpid() and b"emokeras.data.features.acoustic" in handle.read()
    except OSError:  # the process ended meanwhile
        return False
