"""One LSTM direction's training step: how close do the kernels come to the matmul peak?

Prints figures; asserts nothing. One direction, [64, 300, 130] → 128 units,
forward + backward (3× forward FLOPs), best of 5 steps, for:

- `keras.layers.LSTM` (its CPU path multiplies the input by the kernel at every step);
- the same with a padding mask, forwards and backwards (as in emokeras' BLSTMs);
- a hand-written LSTM whose input projection is one GEMM before a `tf.scan`.

    python benchmarks/lstm_step.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from timing import best_seconds

BATCH, STEPS, FEATURES, UNITS = 64, 300, 130, 128


def projected_lstm(kernel, recurrent_kernel, bias):
    """An LSTM with `x·W + b` computed for all steps at once; only `h·R` stays in the loop."""
    def call(inputs):
        projected = tf.reshape(tf.matmul(tf.reshape(inputs, (-1, FEATURES)), kernel) + bias,
                               (BATCH, STEPS, 4 * UNITS))

        def step(carry, projected_step):
            hidden, cell = carry
            gate_input, gate_forget, candidate, gate_output = tf.split(
                projected_step + tf.matmul(hidden, recurrent_kernel), 4, axis=-1)
            cell = tf.sigmoid(gate_forget) * cell + tf.sigmoid(gate_input) * tf.tanh(candidate)
            return tf.sigmoid(gate_output) * tf.tanh(cell), cell

        zeros = tf.zeros((BATCH, UNITS))
        hidden, _ = tf.scan(step, tf.transpose(projected, (1, 0, 2)), initializer=(zeros, zeros))
        return tf.transpose(hidden, (1, 0, 2))
    return call


def step_seconds(forward, variables, inputs) -> float:
    @tf.function
    def train_step(inputs):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(forward(inputs))
        return tape.gradient(loss, variables)

    return best_seconds(train_step, [(inputs,)], repeats=5)


def main():
    inputs = tf.random.normal((BATCH, STEPS, FEATURES))
    mask = tf.sequence_mask(tf.random.uniform((BATCH,), STEPS // 2, STEPS + 1, dtype=tf.int32, seed=0), STEPS)
    forwards = keras.layers.LSTM(UNITS, return_sequences=True)
    backwards = keras.layers.LSTM(UNITS, return_sequences=True, go_backwards=True)
    for layer in (forwards, backwards):
        layer.build((BATCH, STEPS, FEATURES))
    kernel = tf.Variable(tf.random.normal((FEATURES, 4 * UNITS)) * 0.05)
    recurrent_kernel = tf.Variable(tf.random.normal((UNITS, 4 * UNITS)) * 0.05)
    bias = tf.Variable(tf.zeros(4 * UNITS))
    flops = 3 * 2 * 4 * UNITS * (FEATURES + UNITS) * BATCH * STEPS
    cases = [
        ("keras.layers.LSTM", forwards, forwards.trainable_variables),
        ("keras.layers.LSTM, masked", lambda x: forwards(x, mask=mask), forwards.trainable_variables),
        ("keras.layers.LSTM, go_backwards, masked", lambda x: backwards(x, mask=mask), backwards.trainable_variables),
        ("input projection before tf.scan", projected_lstm(kernel, recurrent_kernel, bias),
         [kernel, recurrent_kernel, bias]),
    ]
    for name, forward, variables in cases:
        seconds = step_seconds(forward, variables, inputs)
        print(f"{name}: {seconds * 1000:.0f} ms per step, {flops / seconds / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
