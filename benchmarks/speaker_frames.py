"""Speaker frames compacted against masked in place: epoch times of B-ACO-2 and H-MM-4, in one run.

Prints figures; asserts nothing. The masked implementation (`tests/helpers/masked_reference.py`: the silences masked
inside each row, as emokeras did before) computes every frame; the compacted one (`SpeakerFrameCompaction`)
computes only the speaker frames. Both start from the same weights and train on fold 3's training split, one
epoch each in turn for `--rounds` rounds after a warm-up round (`timing.interleaved_epochs`): this machine's speed
drifts over minutes by more than the effect, so each round's ratio compares epochs run back to back, and the
median and range of those ratios are printed. Goal: H-MM-4 at least 1.3x faster per epoch.

It also counts the work itself, which does not depend on the machine's speed: the row-steps (rows x steps) and
the sequential steps the first frame-level BLSTM runs over one training epoch, masked (each batch's padded length)
against compacted (each batch's largest speaker-frame count). `--count_only` prints just that.

    python benchmarks/speaker_frames.py [--data_dir DIR] [--rounds 5] [--models B-ACO-2,H-MM-4] [--count_only]
"""

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))

import keras
import tensorflow as tf

from emokeras.config import ModelConfig, PrepareConfig, TrainConfig
from emokeras.data import pipelines, tfrecords
from emokeras.data.preparation import prepare_corpus
from emokeras.models import builders
from emokeras.models.layers.spans import covered_frames
from emokeras.models.metrics import UnweightedAccuracy, WeightedAccuracy
from emokeras.training.tasks import build_compiled_model

from helpers.masked_reference import build_masked_reference
from timing import interleaved_epochs, round_ratios
from train_throughput import frames_read


def blstm_work(data_dir: str, fold: int) -> dict:
    """Row-steps and sequential steps of the first frame-level BLSTM over one training epoch, masked and compacted."""
    work = {"masked": [0, 0], "compacted": [0, 0]}
    for inputs, _ in pipelines.make_dataset(data_dir, fold, "train"):
        rows, steps = int(inputs["frames"].shape[0]), int(inputs["frames"].shape[1])
        covered = covered_frames(inputs["word_spans"], rows, steps, tf.sequence_mask(inputs["num_frames"], steps))
        longest = int(tf.reduce_max(tf.reduce_sum(tf.cast(covered, tf.int32), axis=1)))
        for kind, length in (("masked", steps), ("compacted", longest)):
            work[kind][0] += rows * length
            work[kind][1] += length
    return work


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="a prepared folder (default: prepare the demo corpus)")
    parser.add_argument("--fold", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per model, interleaved")
    parser.add_argument("--models", default="B-ACO-2,H-MM-4")
    parser.add_argument("--count_only", action="store_true", help="print the work counts, time nothing")
    args = parser.parse_args()
    data_dir = args.data_dir or prepare_corpus(PrepareConfig())
    read = {kind: sum(values) for kind, values in frames_read(data_dir, args.fold).items()}
    print(f"fold {args.fold} training split: {read['all']} frames, {read['speaker']} speaker frames "
          f"({100 * read['speaker'] / read['all']:.0f} %)")
    work = blstm_work(data_dir, args.fold)
    print(f"first BLSTM over one training epoch: masked {work['masked'][0]:,} row-steps in {work['masked'][1]:,} "
          f"steps, compacted {work['compacted'][0]:,} in {work['compacted'][1]:,} "
          f"({work['masked'][0] / work['compacted'][0]:.2f}x and {work['masked'][1] / work['compacted'][1]:.2f}x "
          "fewer)")
    if args.count_only:
        return
    manifest = tfrecords.read_manifest(data_dir)
    mean, variance = pipelines.frame_statistics(data_dir, args.fold)
    for name in args.models.split(","):
        config = TrainConfig(model=name, fold=args.fold, model_config=ModelConfig())
        keras.utils.set_random_seed(0)
        compacted = build_compiled_model(config, data_dir)
        masked = build_masked_reference(name, config.model_config, num_features=manifest["num_features"],
                                        word_dimension=manifest["encoder_dimension"], frame_mean=mean,
                                        frame_variance=variance)
        masked.set_weights(compacted.get_weights())
        masked.compile(optimizer=keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clipnorm),
                       loss=compacted.loss, metrics=[UnweightedAccuracy(), WeightedAccuracy()])
        graphs = {"masked": masked, "compacted": compacted}
        datasets = {label: pipelines.make_dataset(data_dir, args.fold, "train").map(
            lambda inputs, labels, model=model: (builders.select_inputs(model, inputs), labels))
            for label, model in graphs.items()}
        seconds = interleaved_epochs(graphs, datasets, args.rounds)
        median, lowest, highest = round_ratios(seconds["masked"], seconds["compacted"])
        print(f"  {name}: masked {statistics.median(seconds['masked']):.2f} s/epoch, compacted "
              f"{statistics.median(seconds['compacted']):.2f} s/epoch (medians of {args.rounds}): compacted "
              f"{median:.2f}x faster (median of the rounds' ratios; range {lowest:.2f}-{highest:.2f})")
        for label, values in seconds.items():
            print(f"    {label} epochs in round order: {', '.join(f'{value:.2f}' for value in values)} s")


if __name__ == "__main__":
    main()
