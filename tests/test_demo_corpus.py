"""The demo corpus: deterministic, IEMOCAP-shaped, and a fair stand-in for the paper's problem."""

import hashlib
import os

import numpy as np

from emokeras.data import alignments, pipelines
from emokeras.data.corpus import demo
from emokeras.data.corpus.iemocap import read_iemocap


def _digest(root):
    digest = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            digest.update(os.path.relpath(os.path.join(folder, name), root).encode())
            with open(os.path.join(folder, name), "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def test_same_seed_same_bytes_other_seed_other_corpus(tmp_path):
    first = _digest(demo.write_demo_corpus(str(tmp_path / "a"), seed=7, utterances_per_speaker=4))
    assert _digest(demo.write_demo_corpus(str(tmp_path / "b"), seed=7, utterances_per_speaker=4)) == first
    assert _digest(demo.write_demo_corpus(str(tmp_path / "c"), seed=8, utterances_per_speaker=4)) != first


def test_alignments_are_exact_word_boundaries(tmp_path):
    root = demo.write_demo_corpus(str(tmp_path), seed=0, utterances_per_speaker=4)
    corpus = read_iemocap(root)
    assert len(corpus) == 40
    import wave

    for utterance in corpus:
        with wave.open(utterance.audio) as handle:
            assert handle.getframerate() == 16000 and handle.getnchannels() == 1
            samples = np.frombuffer(handle.readframes(handle.getnframes()), "<i2").astype(np.float64)
        frame_energy = np.sqrt(np.mean(samples[: len(samples) // 160 * 160].reshape(-1, 160) ** 2, axis=1))
        _, spans = alignments.frame_spans([alignments.Word(w, *span) for w, span in zip(utterance.words,
                                                                                          utterance.spans)])
        inside = np.concatenate([frame_energy[s:e] for s, e in spans])
        outside = np.delete(frame_energy, np.concatenate([np.arange(s, e) for s, e in spans]))
        assert np.median(inside) > 10 * np.median(outside)  # speech inside spans, silence between


def test_voices_differ_by_speaker_gender(demo_data):
    pitch = {"F": [], "M": []}
    for example in pipelines.parsed_split(demo_data, 0, "train").as_numpy_iterator():
        voiced = example["frames"][:, 0]  # F0final_sma, 0 when unvoiced
        pitch[example["utterance_id"].decode().split("_")[-1][0]].append(np.median(voiced[voiced > 0]))
    assert np.median(pitch["F"]) > 1.4 * np.median(pitch["M"])


def _logistic_regression(train_x, train_y, test_x, l2=1e-2, steps=500, rate=0.5):
    mean, scale = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    train_x, test_x = (train_x - mean) / scale, (test_x - mean) / scale
    weights, bias, targets = np.zeros((train_x.shape[1], 4)), np.zeros(4), np.eye(4)[train_y]
    for _ in range(steps):
        logits = train_x @ weights + bias
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        gradient = (probabilities - targets) / len(train_x)
        weights -= rate * (train_x.T @ gradient + l2 * weights)
        bias -= rate * gradient.sum(axis=0)
    return (test_x @ weights + bias).argmax(axis=1)


def _unweighted_accuracy(labels, predictions):
    return np.mean([np.mean(predictions[labels == c] == c) for c in range(4)])


def test_each_modality_alone_is_informative_but_insufficient(demo_data, demo_config):
    """Speaker-exclusive: each session held out in turn; UA averaged over the five."""
    corpus = {u.id: u for u in read_iemocap(demo_config.corpus_root())}
    vocabulary = {w: i for i, w in enumerate(sorted({w for u in corpus.values() for w in u.words}))}

    def features(fold, split):
        acoustic, lexical, labels = [], [], []
        for example in pipelines.parsed_split(demo_data, fold, split).as_numpy_iterator():
            frames = example["frames"]
            acoustic.append(np.concatenate([frames.mean(axis=0), frames.std(axis=0)]))
            bag = np.zeros(len(vocabulary))
            bag[[vocabulary[w] for w in corpus[example["utterance_id"].decode()].words]] = 1
            lexical.append(bag)
            labels.append(example["label"])
        return np.array(acoustic), np.array(lexical), np.array(labels)

    scores = []
    for fold in (0, 2, 4, 6, 8):
        train_a, train_l, train_y = features(fold, "train")
        held_out = [features(fold, split) for split in ("validation", "test")]
        test_a, test_l, test_y = (np.concatenate(parts) for parts in zip(*held_out))
        scores.append([_unweighted_accuracy(test_y, _logistic_regression(train, train_y, test))
                       for train, test in ((train_a, test_a), (train_l, test_l),
                                           (np.hstack([train_a, train_l]), np.hstack([test_a, test_l])))])
    acoustic, lexical, both = np.mean(scores, axis=0)
    print(f"UA acoustic {acoustic:.3f}, lexical {lexical:.3f}, both {both:.3f}")
    assert 0.38 < acoustic < 0.75 and 0.38 < lexical < 0.75  # chance is 0.25
    assert both > max(acoustic, lexical) + 0.1
