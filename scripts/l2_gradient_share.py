"""How large the L2 penalty's gradient is against the cross-entropy's, at initialisation.

Before the fix, multi-view training added the L2 penalty to its loss value without a gradient. This prints, for
the acoustic students at the paper's sizes (l2 1e-5), the ratio of the two gradients' global norms on the first
training batches of a fold: how much the missing term could have moved each step. Prints figures; asserts nothing.

    python scripts/l2_gradient_share.py [--data_dir tfrecords/demo/char-ngram-256] [--batches 5]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from emokeras.config import PrepareConfig, TrainConfig
from emokeras.data import pipelines
from emokeras.data.preparation import prepare_corpus
from emokeras.models import builders
from emokeras.training.tasks import build_compiled_model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="a prepared folder (default: prepare the demo corpus)")
    parser.add_argument("--fold", type=int, default=3)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--models", default="B-ACO-1,B-ACO-1+attention")
    args = parser.parse_args()
    data_dir = args.data_dir or prepare_corpus(PrepareConfig())
    for name in args.models.split(","):
        keras.utils.set_random_seed(0)
        model = build_compiled_model(TrainConfig(model=name, fold=args.fold, data=data_dir), data_dir)
        ratios = []
        for inputs, labels in pipelines.make_dataset(data_dir, args.fold, "train").take(args.batches):
            inputs = builders.select_inputs(model, inputs)
            with tf.GradientTape(persistent=True) as tape:
                probabilities = model(inputs, training=True)
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, probabilities))
                penalty = tf.add_n(model.losses)
            norms = [float(tf.linalg.global_norm([g for g in tape.gradient(term, model.trainable_weights)
                                                  if g is not None])) for term in (penalty, loss)]
            ratios.append(norms[0] / norms[1])
        print(f"{name}: |grad L2| / |grad cross-entropy| on {args.batches} batches at initialisation: "
              f"{min(ratios):.2e} to {max(ratios):.2e}")


if __name__ == "__main__":
    main()
