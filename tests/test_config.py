"""emokeras.config and emokeras.cli.

Each setting defined once, its flag made from it, a configuration's command line read back into the same configuration,
and what makes two runs different.
"""

import dataclasses
import shlex
import subprocess
import sys

import pytest
from absl import flags

from emokeras import cli, config, settings
from emokeras.config import DataConfig, ModelConfig, MultiViewConfig, TrainConfig, TuneConfig
from emokeras.models.specs import ACOUSTIC_ONLY, MODEL_NAMES


def parse(config_class, argv, **define):
    values = flags.FlagValues()
    cli.define_flags(config_class, flag_values=values, **define)
    values(["command", *argv])
    return values


def test_every_setting_has_a_flag_a_help_text_and_the_library_vocabulary():
    names = [item.name for item in settings.settings(TrainConfig)]
    assert len(names) == len(set(names))
    assert {"max_frames", "max_words", "bucket_boundaries", "shuffle_buffer", "blstm_layers", "mixed_precision",
            "multiview"} <= set(names)
    assert all(item.help for item in settings.settings(TrainConfig))
    choices = {item.name: item.choices for item in settings.settings(TrainConfig)}
    assert choices["model"] == MODEL_NAMES and choices["view"] == MODEL_NAMES and choices["student"] == ACOUSTIC_ONLY
    assert choices["multiview"] == config.MULTIVIEW_MODES and choices["negatives"] == config.NEGATIVE_RULES
    values = parse(TrainConfig, [])
    assert cli.config_from_flags(TrainConfig, values) == TrainConfig()  # the flags' defaults are the dataclasses'


def test_a_command_line_reads_back_into_its_configuration():
    wanted = TrainConfig(
        fold=7, epochs=3, mixed_precision="mixed_bfloat16", data="tfrecords/x", output="elsewhere",
        data_config=DataConfig(max_frames=300, bucket_boundaries=(50, 150)),
        model_config=ModelConfig(hidden_units=8, blstm_layers=1, dropout=0.25),
        multiview=MultiViewConfig(mode="teacher", student="B-ACO-1+attention", teacher="runs/H-MM-4/fold-{fold}",
                                  margin=0.7, negatives="similar"))
    command = settings.command_line(wanted)
    assert command.startswith("python -m emokeras.train --fold 7 --epochs 3 --mixed_precision mixed_bfloat16")
    assert "--bucket_boundaries 50,150" in command and "--model" not in command and "--seed" not in command
    argv = shlex.split(command)[3:]
    assert cli.config_from_flags(TrainConfig, parse(TrainConfig, argv)) == wanted


def test_commands_exclude_and_redefault_flags():
    values = parse(TrainConfig, [], exclude=("fold",), defaults={"multiview": "joint"})
    assert "fold" not in values
    built = cli.config_from_flags(TrainConfig, values, exclude=("fold",), fold=4)
    assert (built.fold, built.multiview.mode) == (4, "joint")
    tuning = cli.config_from_flags(TuneConfig, parse(TuneConfig, ["--tuning", "t", "--tuner", "grid"]))
    assert tuning == dataclasses.replace(TuneConfig(), directory="t", tuner="grid")


def test_bad_values_name_their_flag():
    with pytest.raises(ValueError, match=r"--bucket_boundaries takes comma-separated ints, got '100,two'"):
        cli.config_from_flags(TrainConfig, parse(TrainConfig, ["--bucket_boundaries", "100,two"]))
    with pytest.raises(ValueError, match=r"--model must be one of B-ACO-1, .*got 'H-MM-5'"):
        settings.from_flat(TrainConfig, {"model": "H-MM-5"})
    with pytest.raises(ValueError, match=r"--fold must be at least 0, got -1"):
        settings.from_flat(TrainConfig, {"fold": -1})  # a fold past the corpus's is named by the corpus's folds
    with pytest.raises(flags.IllegalFlagValueError):
        parse(TrainConfig, ["--mixed_precision", "float8"])


def test_identity_differences_name_each_setting_that_shapes_a_result():
    recorded = dataclasses.asdict(TrainConfig(model="B-ACO-1"))
    recorded["data_config"]["bucket_boundaries"] = list(recorded["data_config"]["bucket_boundaries"])  # as JSON
    del recorded["mixed_precision"]  # recorded by an older emokeras: the default
    same = TrainConfig(model="B-ACO-1", output="other", overwrite=True)  # where outputs go is not identity
    assert settings.identity_differences(recorded, same) == []
    other = TrainConfig(model="B-ACO-1", epochs=5, model_config=ModelConfig(hidden_units=64),
                        data_config=DataConfig(max_frames=600))
    assert settings.identity_differences(recorded, other) == [
        "--epochs: recorded 30, asked for 5", "--max_frames: recorded 700, asked for 600",
        "--hidden_units: recorded 256, asked for 64"]


def test_settings_a_run_ignores_are_not_part_of_it():
    single = TrainConfig(model="B-ACO-1")
    recorded = dataclasses.asdict(single)
    ignored = dataclasses.replace(single, multiview=MultiViewConfig(beta_a=2))
    assert settings.identity_differences(recorded, ignored) == []
    assert "--beta_a" not in settings.command_line(dataclasses.replace(single, multiview=MultiViewConfig(beta_a=2)))
    teacher = TrainConfig(multiview=MultiViewConfig(mode="teacher", teacher="runs/H-MM-4/fold-3"))
    assert teacher.unused_settings() == {"model", "view", "beta_a", "beta_m", "beta_decay"}
    assert settings.command_line(dataclasses.replace(teacher, model="B-LEX")) == (
        "python -m emokeras.train --fold 3 --multiview teacher --teacher runs/H-MM-4/fold-3")


def test_hyperparameters_are_the_identity_settings_in_tensorboard_types():
    values = TrainConfig(multiview=MultiViewConfig(mode="joint")).hyperparameters()
    assert values["multiview"] == "joint" and values["mixed_precision"] == "none" and "teacher" not in values
    assert "model" not in values and values["student"] == "B-ACO-1"
    assert "beta_a" not in TrainConfig().hyperparameters() and TrainConfig().hyperparameters()["multiview"] == "none"
    assert values["bucket_boundaries"] == "100,200,300,400,500,600"
    assert "output" not in values and "data" not in values and "overwrite" not in values
    assert all(isinstance(value, (bool, int, float, str)) for value in values.values())


# A command whose main ends as asked; an exit handler registered first runs last and prints the frozen objects.
_ENDING = """
import atexit, gc, sys
atexit.register(lambda: print("frozen", gc.get_freeze_count()))
from emokeras import cli

ending = sys.argv.pop(1)

def main(argv):
    if ending == "error":
        raise ValueError("a bad input")
    return int(ending)

cli.run_command(main, lambda: None)
"""


@pytest.mark.parametrize("ending,status,skipped", [("0", 0, True), ("3", 3, True), ("error", 1, False)])
def test_a_command_whose_main_returned_skips_the_collection_at_exit(ending, status, skipped):
    """A finished command's exit does not walk its objects for cycles (cli.skip_the_collection_at_exit).

    One stopped by an error keeps the collection, which closes what it left open.
    """
    done = subprocess.run([sys.executable, "-c", _ENDING, ending], capture_output=True, text=True, timeout=60)
    assert done.returncode == status, done.stderr[-2000:]
    frozen = int(done.stdout.split("frozen")[-1])
    assert (frozen > 0) == skipped, done.stdout
