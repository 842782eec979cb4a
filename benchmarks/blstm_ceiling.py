"""How close can B-ACO-1's 2xBLSTM(256) stack come to the matmul peak on this machine?

Prints figures; asserts nothing. Training steps (forward + backward) of the
stack alone, masked as in emokeras, with two implementations:

- `keras`: `Bidirectional(LSTM(128))` twice, as the models use it;
- `hand-written`: each direction's recurrence in a `tf.while_loop` with its own
  gradient, so only `h·R` stays in the loops; the input projection and the
  weight gradients are single GEMMs over all steps. A masked step keeps the
  state, as in Keras; the script first checks that outputs and gradients match
  Keras on a small masked batch.

Two measurements:

1. uniform, unpadded batches `[B, steps]` for several batch sizes B: the most
   any batching of the data could reach (no padding, every batch full);
2. one epoch of fold 3's bucketed training batches, as `fit` sees them.

FLOPs count the matrix products as `train_throughput.py` does (training = 3x
forward).

    python benchmarks/blstm_ceiling.py [--data_dir DIR] [--steps 200] [--batch_sizes 1,8,32,64,128]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from emokeras.config import PrepareConfig
from emokeras.data import pipelines
from emokeras.data.preparation import prepare_corpus

from timing import best_seconds, blstm_training_flops_per_frame, matmul_peak

FEATURES, UNITS = 130, 128


@tf.custom_gradient
def recurrence(projected, mask, recurrent_kernel):
    """One LSTM direction over time-major `projected` ([T, B, 4U], gate columns i, f, o, c) and `mask` ([T, B, 1]).

    Returns the hidden states [T, B, U], zero at masked steps, where the state is kept.
    """
    steps, batch = tf.shape(projected)[0], tf.shape(projected)[1]
    units = tf.shape(recurrent_kernel)[0]
    zeros = tf.zeros([batch, units], projected.dtype)

    def body(k, hidden, cell, gates_array, cells_array, hiddens_array, outputs_array):
        z = projected[k] + tf.matmul(hidden, recurrent_kernel)
        sigmoids, candidate = tf.sigmoid(z[:, :3 * units]), tf.tanh(z[:, 3 * units:])
        input_gate, forget_gate, output_gate = tf.split(sigmoids, 3, axis=-1)
        new_cell = forget_gate * cell + input_gate * candidate
        new_hidden = output_gate * tf.tanh(new_cell)
        m = mask[k]
        gates_array = gates_array.write(k, tf.concat([sigmoids, candidate], -1))
        cells_array, hiddens_array = cells_array.write(k, cell), hiddens_array.write(k, hidden)
        outputs_array = outputs_array.write(k, m * new_hidden)
        return (k + 1, hidden + m * (new_hidden - hidden), cell + m * (new_cell - cell),
                gates_array, cells_array, hiddens_array, outputs_array)

    arrays = [tf.TensorArray(projected.dtype, size=steps) for _ in range(4)]
    _, _, _, gates_array, cells_array, hiddens_array, outputs_array = tf.while_loop(
        lambda k, *_: k < steps, body, [0, zeros, zeros, *arrays])
    gates, previous_cells, previous_hiddens = gates_array.stack(), cells_array.stack(), hiddens_array.stack()

    def gradient(d_outputs):
        def back_body(k, d_hidden, d_cell, d_z_array):
            m = mask[k]
            input_gate, forget_gate, output_gate, candidate = tf.split(gates[k], 4, axis=-1)
            previous_cell = previous_cells[k]
            tanh_cell = tf.tanh(forget_gate * previous_cell + input_gate * candidate)
            d_new_hidden = m * (d_outputs[k] + d_hidden)
            d_new_cell = m * d_cell + d_new_hidden * output_gate * (1 - tanh_cell * tanh_cell)
            d_z = tf.concat([d_new_cell * candidate * input_gate * (1 - input_gate),
                             d_new_cell * previous_cell * forget_gate * (1 - forget_gate),
                             d_new_hidden * tanh_cell * output_gate * (1 - output_gate),
                             d_new_cell * input_gate * (1 - candidate * candidate)], -1)
            d_hidden = (1 - m) * d_hidden + tf.matmul(d_z, recurrent_kernel, transpose_b=True)
            d_cell = (1 - m) * d_cell + d_new_cell * forget_gate
            return k - 1, d_hidden, d_cell, d_z_array.write(k, d_z)

        _, _, _, d_z_array = tf.while_loop(lambda k, *_: k >= 0, back_body,
                                           [steps - 1, zeros, zeros, tf.TensorArray(projected.dtype, size=steps)])
        d_z = d_z_array.stack()
        d_recurrent = tf.matmul(tf.reshape(previous_hiddens, [-1, units]), tf.reshape(d_z, [-1, 4 * units]),
                                transpose_a=True)
        return d_z, tf.zeros_like(mask), d_recurrent

    return outputs_array.stack(), gradient


def hand_written_blstm(inputs, mask, kernel, recurrent_kernels, bias):
    """`kernel` [F, 8U] and `bias` [8U]: forward then backward columns; `recurrent_kernels` [2, U, 4U]."""
    projected = tf.transpose(tf.matmul(inputs, kernel) + bias, (1, 0, 2))  # one GEMM for both directions
    forward_projected, backward_projected = tf.split(projected, 2, axis=-1)
    time_mask = tf.cast(tf.transpose(mask), inputs.dtype)[:, :, None]
    forward = recurrence(forward_projected, time_mask, recurrent_kernels[0])
    backward = tf.reverse(recurrence(tf.reverse(backward_projected, [0]), tf.reverse(time_mask, [0]),
                                     recurrent_kernels[1]), [0])
    return tf.transpose(tf.concat([forward, backward], -1), (1, 0, 2))


def keras_gate_order_to_hand_written(matrix):
    """Keras' gate columns i, f, c, o -> i, f, o, c (one sigmoid over the first three)."""
    input_gate, forget_gate, candidate, output_gate = tf.split(matrix, 4, axis=-1)
    return tf.concat([input_gate, forget_gate, output_gate, candidate], -1)


class Stacks:
    """The same two-layer weights, run by Keras' layers or by the hand-written recurrence."""

    def __init__(self, units=UNITS, features=FEATURES):
        self.layers = [keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True))
                       for _ in range(2)]
        for layer, size in zip(self.layers, (features, 2 * units)):
            layer.build((None, None, size))
        self.variables = [v for layer in self.layers for v in layer.trainable_variables]

    def keras(self, inputs, mask):
        for layer in self.layers:
            inputs = layer(inputs, mask=mask)
        return inputs

    def hand_written(self, inputs, mask):
        for layer in self.layers:
            forward, backward = layer.forward_layer.cell, layer.backward_layer.cell
            order = keras_gate_order_to_hand_written
            inputs = hand_written_blstm(
                inputs, mask, tf.concat([order(forward.kernel), order(backward.kernel)], -1),
                tf.stack([order(forward.recurrent_kernel), order(backward.recurrent_kernel)]),
                tf.concat([order(forward.bias), order(backward.bias)], -1))
        return inputs

    def training_step(self, implementation):
        forward = getattr(self, implementation)

        @tf.function(reduce_retracing=True)
        def step(frames, lengths):
            mask = tf.sequence_mask(lengths, tf.shape(frames)[1])
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(forward(frames, mask))
            return tape.gradient(loss, self.variables)

        return step


def ceiling_frames_per_second(hidden_units: int, features: int, batch_size: int = 64, steps: int = 200,
                              repeats: int = 3) -> float:
    """Training frames/s of Keras' 2xBLSTM stack alone on uniform, unpadded, full batches `[batch_size, steps]`.

    What no batching of real data can beat.
    """
    frames = tf.random.normal((batch_size, steps, features))
    lengths = tf.fill((batch_size,), steps)
    step = Stacks(hidden_units // 2, features).training_step("keras")
    return batch_size * steps / best_seconds(step, [(frames, lengths)], repeats)


def largest_difference(stacks) -> float:
    """Outputs and gradients of both implementations on a small batch with ragged lengths."""
    rng = np.random.default_rng(0)
    frames = tf.constant(rng.normal(size=(5, 17, FEATURES)).astype("float32"))
    mask = tf.sequence_mask([17, 3, 11, 16, 1], 17)
    weights = tf.constant(rng.normal(size=(5, 17, 2 * UNITS)).astype("float32"))
    results = []
    for implementation in ("keras", "hand_written"):
        with tf.GradientTape() as tape:
            tape.watch(frames)
            outputs = getattr(stacks, implementation)(frames, mask)
            loss = tf.reduce_sum(outputs * weights)
        results.append([outputs, *tape.gradient(loss, [frames] + stacks.variables)])
    return max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(*results))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="a prepared folder (default: prepare the demo corpus)")
    parser.add_argument("--fold", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200, help="length of the uniform batches")
    parser.add_argument("--batch_sizes", default="1,8,32,64,128")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (the fastest counts)")
    args = parser.parse_args()
    data_dir = args.data_dir or prepare_corpus(PrepareConfig())

    peak = matmul_peak()
    per_frame = blstm_training_flops_per_frame(FEATURES, 2 * UNITS, 2)
    print(f"matmul peak (float32, 2048x2048): {peak / 1e9:.1f} GFLOP/s")
    keras.utils.set_random_seed(0)
    stacks = Stacks()
    print(f"hand-written against keras, largest difference in outputs and gradients: {largest_difference(stacks):.1e}")
    steps = {name: stacks.training_step(name) for name in ("keras", "hand_written")}

    print(f"uniform batches [B, {args.steps}], no padding:")
    for batch_size in (int(size) for size in args.batch_sizes.split(",")):
        frames = tf.random.normal((batch_size, args.steps, FEATURES))
        lengths = tf.fill((batch_size,), args.steps)
        figures = []
        for name, step in steps.items():
            seconds = best_seconds(step, [(frames, lengths)], args.repeats)
            figures.append(f"{name} {1000 * seconds / args.steps:.3f} ms/step "
                           f"{100 * batch_size * args.steps * per_frame / seconds / peak:.0f} %")
        print(f"  B={batch_size:>3}: " + ", ".join(figures))

    batches = [(inputs["frames"], inputs["num_frames"])
               for inputs, _ in pipelines.make_dataset(data_dir, args.fold, "train")]
    useful = sum(int(tf.reduce_sum(lengths)) for _, lengths in batches)
    computed = sum(int(frames.shape[0]) * int(frames.shape[1]) for frames, _ in batches)
    print(f"fold {args.fold}'s bucketed training epoch: {len(batches)} batches, {useful} useful frames, "
          f"{computed} computed:")
    for name, step in steps.items():
        seconds = best_seconds(step, batches, args.repeats)
        print(f"  {name}: {seconds:.2f} s, {100 * useful * per_frame / seconds / peak:.0f} % of peak on useful frames, "
              f"{100 * computed * per_frame / seconds / peak:.0f} % on computed frames")


if __name__ == "__main__":
    main()
