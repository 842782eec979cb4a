"""Small demo corpora and small training runs, for the tests that prepare or train."""

from emokeras.config import DataConfig, ModelConfig, PrepareConfig, TrainConfig

SMALL = ModelConfig(hidden_units=8, blstm_layers=1, dropout=0.1)
# The first second of each utterance, for runs that test what happens between epochs: their steps take a fraction
# of the time. Runs whose exports are read as a user's read the paper's 7 s.
FIRST_SECOND = DataConfig(max_frames=100)


def small_config(tmp_path, demo_data, **overrides):
    """A fast `TrainConfig` (B-ACO-1 at 8 units, 2 epochs, no ONNX export) writing under `tmp_path`.

    Batches of the default size (64 utterances): a small model's step costs about as much for 64 as for 32, and an
    epoch of the test corpus's 160 training utterances takes 3 steps instead of 5.

    `overrides` replace fields.
    """
    settings = dict(model="B-ACO-1", fold=3, epochs=2, learning_rate=3e-3, data=demo_data,
                    output=str(tmp_path / "runs"), saved_models=str(tmp_path / "saved_models"), model_config=SMALL,
                    onnx=False)
    settings.update(overrides)
    return TrainConfig(**settings)


def small_demo_config(path, **overrides):
    """A 40-utterance demo corpus under `path`: fast to prepare, for tests that alter it.

    One openSMILE worker: starting a second (about 1 s of CPU) costs more than it saves on 40 short files.
    """
    settings = dict(root=str(path / "corpus"), out=str(path / "tfrecords"), encoder_dir=str(path / "encoders"),
                    demo_utterances_per_speaker=4, workers=1)
    settings.update(overrides)
    return PrepareConfig(**settings)
