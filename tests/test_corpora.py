"""The corpus readers on releases the tests write in their real layouts, quirks included.

MSP-Podcast (a labelled file without audio, a 44.1 kHz stereo file, Test3 without labels, Unknown speakers, the older
release's names), CREMA-D (a clip without samples), RAVDESS (songs and audio-visual files beside the speech, 48 kHz),
and manifests (every required column, split and segment, and each error named before any work).
"""

import collections
import logging
import os

import pytest

from emokeras.data.corpus import count_table, crema_d, manifest, msp_podcast, ravdess
from emokeras.data.corpus.records import Utterance, assign_speaker_folds

from helpers.corpora import (
    CREMA_EMPTY,
    MSP_STEREO,
    write_crema_d,
    write_csv,
    write_manifest_corpus,
    write_msp_podcast,
    write_ravdess,
)


@pytest.fixture(scope="module")
def msp_root(tmp_path_factory):
    return write_msp_podcast(tmp_path_factory.mktemp("msp"))


def test_msp_podcast_keeps_four_classes_its_splits_and_counts_the_rest(msp_root, caplog):
    with caplog.at_level(logging.WARNING):
        corpus = msp_podcast.read_msp_podcast(msp_root)
    assert corpus.classes == ("anger", "happiness", "neutral", "sadness")
    assert [fold.splits for fold in corpus.folds] == [{"train": ("Train",), "validation": ("Development",),
                                                        "test": ("Test1",), "test2": ("Test2",)}]
    groups = collections.Counter(u.group for u in corpus)
    assert groups == {"Train": 8, "Development": 4, "Test1": 4, "Test2": 4}
    assert corpus.skipped["other label"] == ["MSP-PODCAST_0001_0004", "MSP-PODCAST_0001_0005"]  # U and X
    assert corpus.skipped["no audio"] == ["MSP-PODCAST_0009_0001"]
    assert "MSP-PODCAST_0009_0001" in caplog.text
    assert corpus.skipped["Test3 (no labels)"] == ["MSP-PODCAST_0007_0000", "MSP-PODCAST_0007_0001"]
    by_id = {u.id: u for u in corpus}
    assert by_id["MSP-PODCAST_0004_0001"].speaker == "Unknown"
    assert os.path.splitext(os.path.basename(by_id[os.path.splitext(MSP_STEREO)[0]].audio))[0] \
        == os.path.splitext(MSP_STEREO)[0]  # a 44.1 kHz stereo file is kept: preparation resamples it
    assert by_id["MSP-PODCAST_0001_0000"].words == ("hello", "there")
    assert by_id["MSP-PODCAST_0001_0000"].spans == ((0.2, 0.5), (0.6, 1.0))
    assert corpus.has_timings
    table = count_table(corpus).splitlines()
    assert table[0].split() == ["split", "speakers", "utterances", "anger", "happiness", "neutral", "sadness"]
    assert table[2].split() == ["Train", "2", "8", "2", "2", "2", "2"]


def test_msp_podcast_takes_the_odyssey_classes_by_code(msp_root):
    corpus = msp_podcast.read_msp_podcast(msp_root, classes=list("ASHUFDCN"))
    assert corpus.classes == ("anger", "sadness", "happiness", "surprise", "fear", "disgust", "contempt", "neutral")
    assert {u.id: u.label for u in corpus}["MSP-PODCAST_0001_0004"] == "surprise"
    assert corpus.skipped["other label"] == ["MSP-PODCAST_0001_0005"]  # X: no agreement, never a class
    with pytest.raises(ValueError, match=r"--classes: 'Z' is not a class of MSP-Podcast; it has A \(anger\)"):
        msp_podcast.read_msp_podcast(msp_root, classes=["Z"])


def test_msp_podcast_older_release_and_transcripts_without_timings(tmp_path):
    root = write_msp_podcast(tmp_path / "old", older=True)
    corpus = msp_podcast.read_msp_podcast(root)
    assert collections.Counter(u.group for u in corpus)["Development"] == 4  # "Validation" in older releases
    untimed = msp_podcast.read_msp_podcast(root, word_timings=False)
    assert untimed.has_words and not untimed.has_timings
    assert {u.id: u.words for u in untimed}["MSP-PODCAST_0001_0000"] == ("hello", "there")
    os.remove(os.path.join(root, "ForceAligned", "MSP-PODCAST_0003_0000.TextGrid"))
    with open(os.path.join(root, "ForceAligned", "MSP-PODCAST_0003_0001.TextGrid"), "w") as handle:
        handle.write("File type = \"ooTextFile\"\nObject class = \"TextGrid\"\n0\n")
    corpus = msp_podcast.read_msp_podcast(root)
    assert corpus.skipped["no alignment"] == ["MSP-PODCAST_0003_0000"]
    assert corpus.skipped["unreadable alignment"] == ["MSP-PODCAST_0003_0001"]


def test_crema_d_six_classes_speaker_folds_and_transcripts(tmp_path):
    corpus = crema_d.read_crema_d(write_crema_d(tmp_path), speaker_folds=3)
    assert corpus.classes == ("anger", "disgust", "fear", "happiness", "neutral", "sadness")
    assert len(corpus) == 18  # the empty clip is read here, and skipped by preparation when it has no samples
    assert corpus.has_words and not corpus.has_timings
    assert {u.id: u.words for u in corpus}["1001_DFA_ANG_HI"] == ("don't", "forget", "a", "jacket")
    assert {u.speaker for u in corpus} == {"1001", "1002", "1003"}
    assert corpus.release_size == (18, 7442)
    speakers = corpus.speakers()
    assert sorted(map(len, speakers.values())) == [1, 1, 1]
    for fold in corpus.folds:
        test, validation, train = (set(s for g in fold.splits[k] for s in speakers[g])
                                   for k in ("test", "validation", "train"))
        assert test and validation and train and not (test & validation) and not ((test | validation) & train)
    assert CREMA_EMPTY in {u.id for u in corpus}


def test_ravdess_keeps_audio_only_speech_anywhere_under_the_root(tmp_path):
    corpus = ravdess.read_ravdess(write_ravdess(tmp_path), speaker_folds=3)
    assert corpus.classes == ("neutral", "calm", "happiness", "sadness", "anger", "fear", "disgust", "surprise")
    assert len(corpus) == 24 and {u.speaker for u in corpus} == {"Actor_01", "Actor_02", "Actor_03"}
    assert corpus.skipped["song"] == ["03-02-03-01-01-01-01"]
    assert corpus.skipped["not audio-only"] == ["01-01-03-01-01-01-01"]
    assert {u.id: u.words for u in corpus}["03-01-05-01-01-01-01"] == ("kids", "are", "talking", "by", "the", "door")
    assert corpus.release_size == (24, 1440)
    two = ravdess.read_ravdess(tmp_path, classes=["anger", "calm"], speaker_folds=3)
    assert two.classes == ("anger", "calm") and len(two) == 6


def test_speaker_folds_are_balanced_deterministic_and_exclusive():
    utterances = [Utterance(f"{s}-{k}", "a.wav", f"spk{s:02d}", "", "x") for s in range(11) for k in range(s + 1)]
    regrouped, folds, shards = assign_speaker_folds(utterances, 4)
    again = assign_speaker_folds(list(reversed(utterances)), 4)
    assert {u.id: u.group for u in regrouped} == {u.id: u.group for u in again[0]}
    sizes = collections.Counter(u.group for u in regrouped)
    assert max(sizes.values()) - min(sizes.values()) <= 3  # 66 utterances in 4 groups
    assert [fold.splits["test"] for fold in folds] == [("speakers-0",), ("speakers-1",), ("speakers-2",),
                                                        ("speakers-3",)]
    assert folds[3].splits["validation"] == ("speakers-0",) and len(folds[3].splits["train"]) == 2
    with pytest.raises(ValueError, match="11 speakers cannot make 12 speaker-exclusive folds"):
        assign_speaker_folds(utterances, 12)


@pytest.fixture(scope="module")
def manifest_csv(tmp_path_factory):
    return write_manifest_corpus(tmp_path_factory.mktemp("mine"))


def test_a_manifest_reads_paths_splits_segments_and_every_timing_format(manifest_csv, caplog):
    with caplog.at_level(logging.WARNING):
        corpus = manifest.read_manifest(manifest_csv)
    assert corpus.classes == ("angry", "calm", "happy")  # the distinct emo values, sorted
    assert [fold.splits for fold in corpus.folds] == [{"train": ("train",), "validation": ("validation",),
                                                        "test": ("test",)}]
    assert collections.Counter(u.group for u in corpus) == {"train": 12, "validation": 6, "test": 6}
    assert corpus.skipped == {"no audio": ["s1_99"]} and "s1_99" in caplog.text
    by_id = {u.id: u for u in corpus}
    assert by_id["s1_00"].spans == ((0.2, 0.5), (0.6, 1.0))  # TextGrid
    assert by_id["s2_03"].spans == ((0.2, 0.5), (0.6, 1.0))  # its lines of the CTM
    assert by_id["s3_00"].words == ("hello", "2", "there") and by_id["s3_00"].spans[1] is None  # WhisperX
    segment = by_id["s4_02"]  # 2.6 s to 3.8 s of session.wav, its words timed from the segment's start
    assert (segment.start, segment.end) == (2.6, 3.8)
    assert segment.spans == (pytest.approx((0.2, 0.5)), pytest.approx((0.6, 1.0)))
    assert os.path.isabs(by_id["s2_00"].audio) and os.path.isfile(by_id["s1_00"].audio)  # $data_root resolved
    assert corpus.has_timings


@pytest.mark.parametrize("change, message", [
    (lambda h, r: (["file_name" if c == "wav" else c for c in h], r), None),
    (lambda h, r: ([c for c in h if c != "spk_id"], [x[:2] + x[3:] for x in r]),
     r"manifest\.csv: no column spk_id; a manifest needs ID, wav \(or file_name\), spk_id and emo"),
    (lambda h, r: (h, [r[0], [*r[1][:5], "dev", *r[1][6:]], *r[2:]]),
     r"manifest\.csv:3: split 'dev' is not one of train, validation, test"),
    (lambda h, r: (h, [*r, r[4]]), r"manifest\.csv:\d+: ID 's1_04' is also on line 6; IDs must be unique"),
    (lambda h, r: (h, [[*x[:8], "3.0", "1.0"] if k == 2 else x for k, x in enumerate(r)]),
     r"manifest\.csv:4: the segment ends at 1\.0 s, not after its start at 3\.0 s"),
])
def test_a_bad_manifest_is_one_error_naming_the_column_or_row(manifest_csv, tmp_path, change, message):
    import csv

    with open(manifest_csv) as handle:
        header, *rows = list(csv.reader(handle))
    header, rows = change(header, rows)
    path = write_csv(tmp_path / "manifest.csv", header, rows)
    # The paths stay those of the written corpus.
    os.symlink(os.path.join(os.path.dirname(manifest_csv), "audio"), tmp_path / "audio")
    os.symlink(os.path.join(os.path.dirname(manifest_csv), "align"), tmp_path / "align")
    if message is None:
        assert len(manifest.read_manifest(path)) == 24  # file_name is accepted instead of wav
        return
    with pytest.raises(ValueError, match=message):
        manifest.read_manifest(path)


def test_a_listed_class_without_utterances_is_named(manifest_csv):
    with pytest.raises(ValueError, match=r"--classes: no utterance of sad in .*manifest\.csv \(its emo values: "
                                         r"angry, calm, happy\)"):
        manifest.read_manifest(manifest_csv, classes=["happy", "sad"])
    corpus = manifest.read_manifest(manifest_csv, classes=["happy", "angry"])
    assert corpus.classes == ("happy", "angry") and corpus.skipped["other label"]
