"""The IEMOCAP reader against a small IEMOCAP_full_release-format tree with each quirk."""

import logging
import os
import shutil

import pytest

from emokeras.data import alignments
from emokeras.data.corpus import count_table
from emokeras.data.corpus.iemocap import parse_utterance_id, read_iemocap

from helpers.audio import tone, write_wav

WDSEG = """\tSFrm\tEFrm\tSegAScr\tWord
\t    0\t   24\t  -60000\t<s>
\t   25\t   60\t  -80000\tHELLO
\t   61\t   70\t  -20000\t<sil>
\t   71\t   79\t  -30000\t++BREATHING++
\t   80\t  119\t  -90000\tTHERE(2)
\t  120\t  149\t  -50000\t</s>
 Total score: -330000
"""
SILENT_WDSEG = "\tSFrm\tEFrm\tSegAScr\tWord\n\t 0\t 49\t -1\t<s>\n\t 50\t 99\t -1\t<sil>\n\t 100\t 149\t -1\t</s>\n"

# (session folder, dialog, utterance id, label, has wav, wdseg text or None)
TURNS = [
    (1, "Ses01F_impro01", "Ses01F_impro01_F000", "neu", True, WDSEG),
    (1, "Ses01F_impro01", "Ses01F_impro01_M000", "exc", True, WDSEG),  # exc merges into happiness
    (1, "Ses01F_impro01", "Ses01F_impro01_F001", "fru", True, WDSEG),  # dropped label
    (1, "Ses01F_impro01", "Ses01F_impro01_MXX0", "neu", False, None),  # transcript-only turn
    (1, "Ses01F_impro01", "Ses01F_impro01_F002", "foo", True, WDSEG),  # unknown label
    (1, "Ses01F_impro01", "Ses01F_impro01_M001", "ang", False, WDSEG),  # wav missing
    (3, "Ses03M_impro05a", "Ses03M_impro05a_F000", "hap", True, WDSEG),  # dialog name with a suffix
    (3, "Ses03M_impro03", "Ses03M_impro03_M001", "sad", True, None),  # no .wdseg, as in IEMOCAP
    (3, "Ses03M_impro03", "Ses03M_impro03_F002", "sad", True, SILENT_WDSEG),  # no words aligned
    (5, "Ses05M_script01_1b", "Ses05M_script01_1b_F003", "sad", True, WDSEG),  # female turn, male-led dialog
]
# EmoEvaluation lines beyond the plain ones: (session, file, line). A turn without its [V, A, D] part (its wav and
# alignment exist), a turn listed again with its label, one listed again with another, and a line with no label.
EXTRA_LINES = [
    (5, "Ses05M_script01_1b", "[10.0000 - 11.0000]\tSes05M_script01_1b_M004\tang"),
    (1, "Ses01F_impro02", "[1.0000 - 2.0000]\tSes01F_impro01_F000\tneu\t[2.5000, 3.0000, 2.0000]"),
    (1, "Ses01F_impro02", "[2.0000 - 3.0000]\tSes01F_impro01_M000\tsad\t[2.5000, 3.0000, 2.0000]"),
    (3, "Ses03M_impro05a", "[3.0000 - 4.0000]\tSes03M_impro05a_F009"),
]


@pytest.fixture(scope="module")
def iemocap_root(tmp_path_factory):
    return write_iemocap_tree(tmp_path_factory.mktemp("iemocap") / "IEMOCAP_full_release")


def write_iemocap_tree(root, sessions=(1, 2, 3, 4, 5)):
    """The quirky tree of TURNS and EXTRA_LINES, with empty folders for the sessions that have no turns."""
    for session in sessions:
        os.makedirs(root / f"Session{session}" / "dialog" / "EmoEvaluation", exist_ok=True)
    write_wav(root / "Session5" / "sentences" / "wav" / "Ses05M_script01_1b" / "Ses05M_script01_1b_M004.wav",
              tone(1.5))
    (root / "Session5" / "sentences" / "ForcedAlignment" / "Ses05M_script01_1b").mkdir(parents=True)
    (root / "Session5" / "sentences" / "ForcedAlignment" / "Ses05M_script01_1b" / "Ses05M_script01_1b_M004.wdseg"
     ).write_text(WDSEG)
    dialogs = {}
    for session, dialog, utterance_id, label, has_wav, wdseg in TURNS:
        dialogs.setdefault((session, dialog), []).append((utterance_id, label, has_wav, wdseg))
    for (session, dialog), turns in dialogs.items():
        base = root / f"Session{session}"
        emo = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        text = []
        for index, (utterance_id, label, has_wav, wdseg) in enumerate(turns):
            emo += [f"[{index + 1.0:.4f} - {index + 2.5:.4f}]\t{utterance_id}\t{label}\t[2.5000, 3.0000, 2.0000]",
                    "C-E2:\tNeutral;\t()", "A-E1:\tval 3; act 2; dom  2;\t()", ""]
            text.append(f"{utterance_id} [{index + 1.0:08.4f}-{index + 2.5:08.4f}]: Hello there.")
            if has_wav:
                write_wav(base / "sentences" / "wav" / dialog / f"{utterance_id}.wav", tone(1.5))
            if wdseg is not None:
                path = base / "sentences" / "ForcedAlignment" / dialog / f"{utterance_id}.wdseg"
                os.makedirs(path.parent, exist_ok=True)
                path.write_text(wdseg)
        text.append("M: [LAUGHTER] a line without timing")
        for sub, content in (("EmoEvaluation", emo), ("transcriptions", text)):
            path = base / "dialog" / sub / f"{dialog}.txt"
            os.makedirs(path.parent, exist_ok=True)
            path.write_text("\n".join(content) + "\n")
            (path.parent / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07 resource fork")  # macOS copy
    for session, dialog, line in EXTRA_LINES:
        with open(root / f"Session{session}" / "dialog" / "EmoEvaluation" / f"{dialog}.txt", "a") as handle:
            handle.write(line + "\n")
    return str(root)


def test_parse_utterance_id_reads_the_speaker_from_the_last_part():
    assert parse_utterance_id("Ses01F_impro01_M003") == (1, "Ses01_M", "M", "Ses01F_impro01")
    assert parse_utterance_id("Ses05M_script01_1b_F003") == (5, "Ses05_F", "F", "Ses05M_script01_1b")
    assert parse_utterance_id("Ses03M_impro05a_M012") == (3, "Ses03_M", "M", "Ses03M_impro05a")
    with pytest.raises(ValueError, match="not an IEMOCAP utterance id"):
        parse_utterance_id("impro01_M003")


def test_read_wdseg_drops_non_speech_folds_variants_and_makes_ends_exclusive(tmp_path):
    path = tmp_path / "a.wdseg"
    path.write_text(WDSEG)
    words, spans = alignments.frame_spans(alignments.read_wdseg(str(path)))
    assert words == ("hello", "there")
    assert spans == ((25, 61), (80, 120))


def test_read_wdseg_names_the_file_and_line_of_a_bad_row(tmp_path):
    path = tmp_path / "bad.wdseg"
    path.write_text("\tSFrm\tEFrm\tSegAScr\tWord\n\t 10\t five\t -1\tHELLO\n")
    with pytest.raises(alignments.AlignmentError, match=r"bad\.wdseg:2: frame numbers are not integers"):
        alignments.read_wdseg(str(path))


def test_reader_keeps_the_four_classes_and_skips_with_reasons(iemocap_root, caplog):
    with caplog.at_level(logging.WARNING):
        corpus = read_iemocap(iemocap_root)
    by_id = {u.id: u for u in corpus}
    assert sorted(by_id) == ["Ses01F_impro01_F000", "Ses03M_impro05a_F000", "Ses05M_script01_1b_F003",
                             "Ses05M_script01_1b_M004"]
    assert [by_id[i].label for i in sorted(by_id)] == ["neutral", "happiness", "sadness", "anger"]
    utterance = by_id["Ses05M_script01_1b_F003"]
    assert (utterance.speaker, utterance.group) == ("Ses05_F", "Ses05_F")
    assert utterance.words == ("hello", "there") and utterance.spans == ((0.25, 0.61), (0.8, 1.2))
    assert alignments.frame_spans([alignments.Word(w, *s) for w, s in zip(utterance.words, utterance.spans)])[1] \
        == ((25, 61), (80, 120))
    assert utterance.audio.endswith(os.path.join("Session5", "sentences", "wav", "Ses05M_script01_1b",
                                                 "Ses05M_script01_1b_F003.wav"))
    assert corpus.classes == ("anger", "happiness", "neutral", "sadness") and len(corpus.folds) == 10
    assert corpus.folds[3].splits == {"train": ("Ses01_F", "Ses01_M", "Ses03_F", "Ses03_M", "Ses04_F", "Ses04_M",
                                                "Ses05_F", "Ses05_M"),
                                      "validation": ("Ses02_M",), "test": ("Ses02_F",)}
    assert corpus.folds[0].splits["validation"] == ("Ses01_F",) and corpus.folds[0].splits["test"] == ("Ses01_M",)
    unreadable = os.path.join(iemocap_root, "Session3", "dialog", "EmoEvaluation", "Ses03M_impro05a.txt")
    assert corpus.skipped == {
        "other label": ["Ses01F_impro01_F001"],
        "no wav": ["Ses01F_impro01_MXX0", "Ses01F_impro01_M001"],
        "unknown label": ["Ses01F_impro01_F002"],
        "duplicate listing": ["Ses01F_impro01_F000"],  # listed twice with one label: kept once
        "conflicting duplicate labels": ["Ses01F_impro01_M000"],  # exc and sad: kept neither
        "no alignment": ["Ses03M_impro03_M001"],
        "no words": ["Ses03M_impro03_F002"],
        "unreadable evaluation line": [f"{unreadable}:7: '[3.0000 - 4.0000]\\tSes03M_impro05a_F009'"],
    }
    text = caplog.text
    assert "Ses03M_impro03_M001" in text and "no alignment" in text
    assert "unknown label 'foo'" in text
    assert "Ses01F_impro01_M000 is listed 2 times (Ses01F_impro01.txt, Ses01F_impro02.txt) with different labels " \
           "(exc, sad): skipped" in text
    assert f"{unreadable}:7:" in text


def test_count_table_is_the_table_1_view(iemocap_root):
    corpus = read_iemocap(iemocap_root)
    table = count_table(corpus).splitlines()
    assert table[0].split() == ["speaker", "utterances", "anger", "happiness", "neutral", "sadness"]
    rows = {line.split()[0]: line.split()[1:] for line in table[2:]}
    assert rows["Ses01_F"] == ["1", "0", "0", "1", "0"]
    assert rows["Ses05_M"] == ["1", "1", "0", "0", "0"]
    assert rows["total"] == ["4", "1", "1", "1", "1"]


def test_other_classes_can_be_chosen_by_name_or_code(iemocap_root):
    corpus = read_iemocap(iemocap_root, classes=["sad", "neutral", "frustration"])
    assert corpus.classes == ("sadness", "neutral", "frustration")
    assert sorted(u.label for u in corpus) == ["frustration", "neutral", "sadness"]
    assert corpus.skipped["other label"] == ["Ses01F_impro01_M001", "Ses03M_impro05a_F000",
                                             "Ses05M_script01_1b_M004"]
    with pytest.raises(ValueError, match="--classes: 'joy' is not a class of IEMOCAP"):
        read_iemocap(iemocap_root, classes=["joy"])


def test_reader_refuses_a_folder_without_sessions(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Session1..Session5 folders"):
        read_iemocap(str(tmp_path))


def test_reader_refuses_a_missing_session_naming_it(tmp_path):
    root = write_iemocap_tree(tmp_path / "IEMOCAP_full_release", sessions=(1, 2, 4, 5))
    shutil.rmtree(os.path.join(root, "Session3"))
    with pytest.raises(FileNotFoundError, match=r"Session3: missing; each of the ten folds holds out one session"):
        read_iemocap(root)
