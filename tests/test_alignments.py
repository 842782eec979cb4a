"""emokeras.data.alignments.

Every word timing format read from files the tests write in each tool's real layout (MFA's long and short TextGrids,
UTF-16, several speakers; CTM with comments and many utterances; WhisperX with a numeral left untimed; emokeras' JSON;
IEMOCAP's .wdseg), to the same words and frame spans; bad files named by line.
"""

import json

import pytest

from emokeras.data import alignments
from emokeras.data.alignments import AlignmentError, Word

LONG_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.6
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 1.6
        intervals: size = 5
        intervals [1]:
            xmin = 0
            xmax = 0.12
            text = ""
        intervals [2]:
            xmin = 0.12
            xmax = 0.35
            text = "Oh"
        intervals [3]:
            xmin = 0.35
            xmax = 0.5
            text = "sil"
        intervals [4]:
            xmin = 0.5
            xmax = 1.03
            text = "don't"
        intervals [5]:
            xmin = 1.03
            xmax = 1.6
            text = "say ""that"""
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1.6
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 1.6
            text = "OW"
'''

SHORT_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

0
1.6
<exists>
1
"IntervalTier"
"spk1 - words"
0
1.6
5
0
0.12
""
0.12
0.35
"Oh"
0.35
0.5
"<eps>"
0.5
1.03
"don't"
1.03
1.6
"say ""that"""
'''

EXPECTED = (("oh", "don't", 'say "that"'), ((12, 35), (50, 103), (103, 160)))


def spans_of(words):
    return alignments.frame_spans(words)


def test_textgrid_long_short_and_utf16_give_the_same_words(tmp_path):
    long_path, short_path, wide_path = tmp_path / "a.TextGrid", tmp_path / "b.TextGrid", tmp_path / "c.TextGrid"
    long_path.write_text(LONG_TEXTGRID)
    short_path.write_text(SHORT_TEXTGRID)
    wide_path.write_bytes(LONG_TEXTGRID.encode("utf-16"))  # Praat writes UTF-16 where a text is not ASCII
    for path in (long_path, short_path, wide_path):
        words = alignments.read_alignment(str(path))
        assert spans_of(words) == EXPECTED, path
    assert alignments.read_alignment(str(long_path))[0] == Word("oh", 0.12, 0.35, 20)


def test_textgrid_of_several_speakers_reads_the_speakers_tier(tmp_path):
    two = SHORT_TEXTGRID.replace("\n1\n\"IntervalTier\"", "\n2\n\"IntervalTier\"", 1) + '''"IntervalTier"
"spk2 - words"
0
1.6
1
0
1.6
"hello"
'''
    path = tmp_path / "two.TextGrid"
    path.write_text(two)
    assert [w.text for w in alignments.read_textgrid(str(path), speaker="spk2")] == ["hello"]
    assert [w.text for w in alignments.read_textgrid(str(path), speaker="spk1")] == list(EXPECTED[0])
    with pytest.raises(AlignmentError, match="several speakers' word tiers and none named 'spk3'"):
        alignments.read_textgrid(str(path), speaker="spk3")


def test_a_bad_textgrid_is_named_with_its_line(tmp_path):
    path = tmp_path / "bad.TextGrid"
    path.write_text(LONG_TEXTGRID.replace("xmax = 1.03\n            text = \"don't\"",
                                          "xmax = 0.4\n            text = \"don't\""))
    with pytest.raises(AlignmentError, match=r"bad\.TextGrid:28: .don't. ends at 0\.4 s, before its start at 0\.5 s"):
        alignments.read_alignment(str(path))
    cut = tmp_path / "cut.TextGrid"
    cut.write_text(LONG_TEXTGRID[: len(LONG_TEXTGRID) // 2])
    with pytest.raises(AlignmentError, match=r"cut\.TextGrid: ends where .* was expected"):
        alignments.read_alignment(str(cut))
    other = tmp_path / "other.TextGrid"
    other.write_text("hello")
    with pytest.raises(AlignmentError, match="not a Praat TextGrid"):
        alignments.read_alignment(str(other))
    phones = tmp_path / "phones.TextGrid"
    phones.write_text(LONG_TEXTGRID.replace('name = "words"', 'name = "syllables"'))
    with pytest.raises(AlignmentError, match="no 'words' tier to read .*'syllables', 'phones'"):
        alignments.read_alignment(str(phones))


CTM = """;; Kaldi's CTM, two recordings
rec1 1 0.12 0.23 Oh 0.98
rec1 1 0.35 0.15 <eps>
rec2 A 0.10 0.40 hello
rec1 1 1.03 0.57 say 1.00
rec1 1 0.50 0.53 don't
"""


def test_ctm_holds_many_utterances_in_time_order(tmp_path):
    path = tmp_path / "all.ctm"
    path.write_text(CTM)
    utterances = alignments.read_ctm(str(path))
    assert sorted(utterances) == ["rec1", "rec2"]
    assert [w.text for w in utterances["rec1"]] == ["oh", "don't", "say"]
    assert spans_of(utterances["rec1"])[1] == EXPECTED[1]
    assert [w.text for w in alignments.read_alignment(str(path), utterance=["missing", "rec2"])] == ["hello"]
    with pytest.raises(AlignmentError, match=r"all\.ctm: no line for 'nobody' \(it holds 2 other utterances\)"):
        alignments.read_alignment(str(path), utterance="nobody")
    bad = tmp_path / "bad.ctm"
    bad.write_text("rec1 1 0.12 0.23 Oh\nrec1 1 zero 0.1 yes\n")
    with pytest.raises(AlignmentError, match=r"bad\.ctm:2: start and duration must be numbers"):
        alignments.read_alignment(str(bad))


def test_whisperx_keeps_an_untimed_numeral_between_its_neighbours(tmp_path):
    result = {"segments": [
        {"start": 0.1, "end": 1.6, "text": " Oh, in 1990 it rained.", "words": [
            {"word": "Oh,", "start": 0.12, "end": 0.35, "score": 0.9},
            {"word": "in", "start": 0.4, "end": 0.5, "score": 0.8},
            {"word": "1990"},  # WhisperX cannot align numerals: no start, no end
            {"word": "it", "start": 0.9, "end": 1.0, "score": 0.7},
        ]},
        {"start": 1.1, "end": 1.6, "words": [{"word": "rained.", "start": 1.1, "end": 1.6}]},
    ], "word_segments": []}
    path = tmp_path / "x.json"
    path.write_text(json.dumps(result))
    words = alignments.read_alignment(str(path))
    assert [w.text for w in words] == ["oh,", "in", "1990", "it", "rained."]
    assert words[2] == Word("1990", None, None, "segments[0].words[2]")
    texts, spans = spans_of(words)
    assert spans == ((12, 35), (40, 50), (50, 90), (90, 100), (110, 160))  # 1990: between "in" and "it"


def test_emokeras_json_and_its_errors(tmp_path):
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"words": [{"word": "oh", "start": 0.12, "end": 0.35},
                                          {"word": "<sil>", "start": 0.35, "end": 0.5},
                                          {"word": "Don't", "start": 0.5, "end": 1.03}]}))
    assert spans_of(alignments.read_alignment(str(path))) == (("oh", "don't"), ((12, 35), (50, 103)))
    path.write_text(json.dumps({"words": [{"word": "oh", "start": 0.5, "end": 0.2}]}))
    with pytest.raises(AlignmentError, match=r"e\.json:words\[0\]: 'oh' ends at 0\.2 s, before its start"):
        alignments.read_alignment(str(path))
    path.write_text(json.dumps({"words": [{"word": "oh"}]}))
    with pytest.raises(AlignmentError, match=r"words\[0\] \('oh'\) needs 'start' and 'end'"):
        alignments.read_alignment(str(path))
    path.write_text("{not json")
    with pytest.raises(AlignmentError, match="not readable JSON"):
        alignments.read_alignment(str(path))


def test_wdseg_gives_iemocaps_frames_exactly(tmp_path):
    path = tmp_path / "a.wdseg"
    path.write_text("\tSFrm\tEFrm\tSegAScr\tWord\n\t 0\t 11\t -1\t<s>\n\t 12\t 34\t -1\tOH\n"
                    "\t 35\t 49\t -1\t++BREATH++\n\t 50\t 102\t -1\tDON'T(2)\n\t 103\t 159\t -1\tSAY\n"
                    " Total score: -1234\n")
    assert spans_of(alignments.read_alignment(str(path))) == (("oh", "don't", "say"), ((12, 35), (50, 103),
                                                                                       (103, 160)))
    # Seconds that are not exact in binary still give their frame: 0.03 s is frame 3, 0.29 s ends at frame 29.
    assert spans_of([Word("a", 0.03, 0.29)]) == (("a",), ((3, 29),))


def test_a_segment_of_a_recording_keeps_its_words_timed_from_its_start():
    words = [Word("a", 0.5, 1.0), Word("b", 2.0, 2.5), Word("1990", None, None), Word("c", 3.0, 3.5),
             Word("d", 6.0, 6.5)]
    kept = alignments.segment(words, 1.8, 4.0)
    assert [(w.text, w.start, w.end) for w in kept] == [("b", pytest.approx(0.2), pytest.approx(0.7)),
                                                        ("1990", None, None),
                                                        ("c", pytest.approx(1.2), pytest.approx(1.7))]


def test_transcript_words_strip_punctuation_around_words_only():
    assert alignments.transcript_words("I'm on my way -- to the meeting!  <sil> ") == (
        "i'm", "on", "my", "way", "to", "the", "meeting")


def test_an_unknown_format_is_named(tmp_path):
    path = tmp_path / "a.srt"
    path.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    with pytest.raises(AlignmentError, match=r"unknown word timing format '\.srt'"):
        alignments.read_alignment(str(path))
    with pytest.raises(FileNotFoundError, match="no such word timing file"):
        alignments.read_alignment(str(tmp_path / "missing.TextGrid"))
