"""Training throughput: emokeras' pipeline and models against a plain Keras baseline and the BLSTM stack's ceiling.

Prints figures; asserts nothing. For each model, one run gives:

- s/epoch over fold 3's training split, timed inside one `fit` after a warm-up epoch;
- x baseline: the baseline's s/epoch over the model's (the baseline is what a user would write first: Sequential
  BLSTMs of the same size, every utterance padded to 700 frames, `fit` on numpy arrays, batch 64);
- % of ceiling: the frames the model reads per second (every real frame for B-ACO-1, the speaker frames for
  speaker-frame models), against the 2xBLSTM stack alone on uniform, unpadded, full batches of 64 (the ceiling
  `blstm_ceiling.py` measured at 38-45 % of the matmul peak).

    python benchmarks/train_throughput.py [--data_dir DIR] [--epochs 2] [--hidden_units 256] [--models ...]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from blstm_ceiling import ceiling_frames_per_second

from emokeras.config import DataConfig, ModelConfig, PrepareConfig, TrainConfig
from emokeras.data import pipelines
from emokeras.data.preparation import prepare_corpus
from emokeras.models import builders
from emokeras.models.layers.spans import covered_frames
from emokeras.models.specs import model_spec
from emokeras.training.tasks import build_compiled_model

from timing import blstm_training_flops_per_frame, matmul_peak, timed_epochs


def frames_read(data_dir: str, fold: int) -> dict:
    """Per utterance of the fold's training split: its real frames and its speaker frames (both as read)."""
    counts = {"all": [], "speaker": []}
    for example in pipelines.parsed_split(data_dir, fold, "train").as_numpy_iterator():
        frames = example["num_frames"]
        covered = covered_frames(example["word_spans"][None], 1, frames)
        counts["all"].append(int(frames))
        counts["speaker"].append(int(covered.numpy().sum()))
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="a prepared folder (default: prepare the demo corpus)")
    parser.add_argument("--fold", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per model (the fastest counts)")
    parser.add_argument("--hidden_units", type=int, default=ModelConfig().hidden_units,
                        help="BLSTM output size, both directions (the paper's reading: 256)")
    parser.add_argument("--models", default="B-ACO-1,B-ACO-2,H-MM-4", help="emokeras models to time")
    args = parser.parse_args()
    data_dir = args.data_dir or prepare_corpus(PrepareConfig())
    config = ModelConfig(hidden_units=args.hidden_units)
    max_frames = DataConfig().max_frames

    frames, labels = [], []
    for example in pipelines.parsed_split(data_dir, args.fold, "train").as_numpy_iterator():
        frames.append(example["frames"])
        labels.append(example["label"])
    read = {kind: sum(values) for kind, values in frames_read(data_dir, args.fold).items()}
    peak = matmul_peak()
    ceiling = ceiling_frames_per_second(config.hidden_units, frames[0].shape[1])
    per_frame = blstm_training_flops_per_frame(frames[0].shape[1], config.hidden_units, config.blstm_layers)
    print(f"fold {args.fold} training split: {len(frames)} utterances, {read['all']} frames, of which "
          f"{read['speaker']} speaker frames ({100 * read['speaker'] / read['all']:.0f} %)")
    print(f"matmul peak (float32, 2048x2048): {peak / 1e9:.1f} GFLOP/s; ceiling (2xBLSTM({config.hidden_units}) "
          f"alone, uniform batches of 64): {ceiling:,.0f} frames/s = {100 * ceiling * per_frame / peak:.0f} % of peak")

    # The baseline a user would write: every utterance padded to 700 frames, numpy arrays, Sequential BLSTMs.
    padded = np.zeros((len(frames), max_frames, frames[0].shape[1]), "float32")
    for row, utterance in enumerate(frames):
        padded[row, :len(utterance)] = utterance
    keras.utils.set_random_seed(0)
    baseline = keras.Sequential([keras.Input((max_frames, frames[0].shape[1]))] + [
        keras.layers.Bidirectional(keras.layers.LSTM(config.hidden_units // 2, return_sequences=True))
        for _ in range(config.blstm_layers)] + [keras.layers.GlobalAveragePooling1D(),
                                                keras.layers.Dense(4, activation="softmax")])
    baseline.compile(optimizer=keras.optimizers.Adam(1e-4, global_clipnorm=5.0),
                     loss="sparse_categorical_crossentropy")
    baseline_seconds = timed_epochs(baseline, padded, args.epochs, y=np.array(labels), batch_size=64)

    def report(label, seconds, frames_per_epoch):
        rate = frames_per_epoch / seconds
        print(f"  {label:<18} {seconds:6.2f} s/epoch  {baseline_seconds / seconds:5.2f}x baseline  "
              f"{rate:>9,.0f} frames read/s  {100 * rate / ceiling:3.0f} % of ceiling")

    print(f"(s/epoch, epoch-time speed-up over the baseline, frames read per second, share of the ceiling; "
          f"hidden_units {config.hidden_units})")
    report("baseline", baseline_seconds, read["all"])
    for name in args.models.split(","):
        train_config = TrainConfig(model=name, fold=args.fold, model_config=config)
        keras.utils.set_random_seed(0)
        model = build_compiled_model(train_config, data_dir)
        dataset = pipelines.make_dataset(data_dir, args.fold, "train").map(
            lambda inputs, label, model=model: (builders.select_inputs(model, inputs), label))
        report(name, timed_epochs(model, dataset, args.epochs), read[model_spec(name).frames])


if __name__ == "__main__":
    main()
