"""Cross-validation, as a library.

`cross_validate(config, folds)` trains (or reports) a configuration on the speaker-exclusive folds through
`emokeras.training.experiment.Experiment`, then writes a summary beside the folds' runs:

  runs/<experiment>/summary.csv   one row per fold, then `mean` and `std`
  runs/<experiment>/summary.md    the paper's Table 2/3 layout: UA and WA as mean ± std

(`std` is the sample standard deviation over folds, 0 for one fold). Each fold is an ordinary run, so a finished
fold is reported, an interrupted one resumes, and a fold trained with other settings is refused: a summary never
averages folds trained differently.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os

import keras
import numpy as np

from emokeras.config import TrainConfig
from emokeras.data import tfrecords
from emokeras.files import write_text
from emokeras.models.specs import model_spec
from emokeras.training.experiment import Experiment, resolve_data

logger = logging.getLogger(__name__)

SUMMARY_CSV = "summary.csv"
SUMMARY_MARKDOWN = "summary.md"
# results.json's scores, as the summary's columns.
SCORES = (("validation", "unweighted_accuracy"), ("validation", "weighted_accuracy"),
          ("test", "unweighted_accuracy"), ("test", "weighted_accuracy"))
COLUMNS = ("validation_ua", "validation_wa", "test_ua", "test_wa")


def parse_folds(text: str, count: int) -> tuple[int, ...]:
    """`"0,3,7"` → `(0, 3, 7)`; `"all"` → every fold of a corpus of `count` folds.

    Raises:
      ValueError: a fold the corpus lacks, a repeated fold, or not a number.
    """
    from emokeras.cli import parse_integers  # the commands' parser; cli imports no library module

    if text.strip() == "all":
        return tuple(range(count))
    folds = parse_integers(text, "--folds")
    bad = [fold for fold in folds if not 0 <= fold < count]
    if bad:
        have = "fold 0 only" if count == 1 else f"folds 0-{count - 1}"
        raise ValueError(f"--folds: {','.join(map(str, bad))}: this corpus has {have}")
    return folds


def modality(config: TrainConfig) -> str:
    """What the deployed model reads, as the paper's tables say it."""
    return "Acoustics" if config.multiview.mode is not None else model_spec(config.model).modality


def summary_rows(fold_results: list[dict]) -> list[dict]:
    """One row per fold, then `mean` and `std` (sample, ddof=1) of each score and of `train_seconds`.

    A fold's row holds `fold`, the four scores, `best_epoch` and `train_seconds`.
    """
    rows = [{"fold": results["fold"],
             **{column: results[split][score] for column, (split, score) in zip(COLUMNS, SCORES)},
             "best_epoch": results["best_epoch"], "train_seconds": results["train_seconds"]}
            for results in fold_results]
    # train_seconds is averaged like the scores; every summary column is then a per-fold figure.
    columns = [*COLUMNS, "train_seconds"]
    table = np.array([[row[column] for column in columns] for row in rows], dtype=np.float64)
    std = table.std(axis=0, ddof=1) if len(rows) > 1 else np.zeros(len(columns))
    rows.append({"fold": "mean", **dict(zip(columns, table.mean(axis=0).tolist())), "best_epoch": ""})
    rows.append({"fold": "std", **dict(zip(columns, std.tolist())), "best_epoch": ""})
    return rows


def markdown_table(experiment: str, modality_name: str, rows: list[dict]) -> str:
    """The paper's Table 2/3 layout, one line for `experiment`: each score as mean ± std over the folds."""
    mean, std = rows[-2], rows[-1]
    folds = ",".join(str(row["fold"]) for row in rows[:-2])
    cells = [f"{mean[column]:.4f} ± {std[column]:.4f}" for column in COLUMNS]
    return ("| Experiment | Modality | Dev UA | Dev WA | Test UA | Test WA | Folds |\n"
            "| --- | --- | --- | --- | --- | --- | --- |\n"
            f"| {experiment} | {modality_name} | {' | '.join(cells)} | {folds} |\n")


def seed_summary_rows(fold_results: list[dict]) -> list[dict]:
    """For runs over folds × seeds.

    One row per fold with each score's mean over its seeds, then `mean` (over the folds' means), `fold_sd` (sample sd of
    the folds' means) and `seed_sd` (sample sd, over seeds, of each seed's mean over the folds). Every fold must have
    run every seed.
    """
    folds = sorted({results["fold"] for results in fold_results})
    seeds = sorted({results["seed"] for results in fold_results})
    columns = [*COLUMNS, "train_seconds"]
    # cube[fold, seed, column]
    cube = np.full((len(folds), len(seeds), len(columns)), np.nan)
    for results in fold_results:
        values = [results[split][score] for split, score in SCORES] + [results["train_seconds"]]
        cube[folds.index(results["fold"]), seeds.index(results["seed"])] = values
    per_fold = cube.mean(axis=1)
    per_seed = cube.mean(axis=0)
    rows = [{"fold": fold, "seeds": len(seeds), **dict(zip(columns, values.tolist()))}
            for fold, values in zip(folds, per_fold)]

    def sd(table):
        return table.std(axis=0, ddof=1) if len(table) > 1 else np.zeros(len(columns))

    rows.append({"fold": "mean", "seeds": len(seeds), **dict(zip(columns, per_fold.mean(axis=0).tolist()))})
    rows.append({"fold": "fold_sd", "seeds": len(seeds), **dict(zip(columns, sd(per_fold).tolist()))})
    rows.append({"fold": "seed_sd", "seeds": len(seeds), **dict(zip(columns, sd(per_seed).tolist()))})
    return rows


def seed_markdown_table(experiment: str, modality_name: str, rows: list[dict], seeds) -> str:
    """Table 2/3's layout for runs over folds × seeds.

    Each score as its mean ± the sd over folds, and test UA's sd over seeds beside.
    """
    mean, fold_sd, seed_sd = rows[-3:]
    folds = ",".join(str(row["fold"]) for row in rows[:-3])
    cells = [f"{mean[column]:.4f} ± {fold_sd[column]:.4f}" for column in COLUMNS]
    return ("| Experiment | Modality | Dev UA | Dev WA | Test UA | Test WA | Test UA, sd over seeds | Folds | Seeds |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
            f"| {experiment} | {modality_name} | {' | '.join(cells)} | {seed_sd['test_ua']:.4f} | {folds} | "
            f"{','.join(map(str, seeds))} |\n")


def write_summary(config: TrainConfig, fold_results: list[dict], seeds=None) -> str:
    """Writes `summary.csv` and `summary.md` beside the runs; returns the Markdown table.

    With `seeds`, the summary is over folds × seeds (`seed_summary_rows`).
    """
    experiment_dir = os.path.join(config.output, config.experiment())
    if seeds:
        rows = seed_summary_rows(fold_results)
        names = ["fold", "seeds", *COLUMNS, "train_seconds"]
        table = seed_markdown_table(config.experiment(), modality(config), rows, seeds)
    else:
        rows = summary_rows(fold_results)
        names = ["fold", *COLUMNS, "best_epoch", "train_seconds"]
        table = markdown_table(config.experiment(), modality(config), rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(os.path.join(experiment_dir, SUMMARY_CSV), buffer.getvalue())
    write_text(os.path.join(experiment_dir, SUMMARY_MARKDOWN), table)
    return table


def cross_validate(config: TrainConfig, folds="all", seeds=None) -> str:
    """Trains (or reports) `config` on each of `folds` for each of `seeds`, then writes and returns the summary table.

    `folds` is a tuple, or text such as "0,3,7" or "all" (the prepared corpus's folds). With seeds, runs are kept in
    `<output>/<experiment>/seed-<s>/fold-<k>/`.
    """
    data_dir = resolve_data(config)
    if isinstance(folds, str):
        folds = parse_folds(folds, len(tfrecords.read_manifest(data_dir)["folds"]))
    config = dataclasses.replace(config, data=config.data or data_dir)
    fold_results = []
    for seed in seeds or (config.seed,):
        for fold in folds:
            run = dataclasses.replace(config, fold=fold, seed=seed, seed_folder=bool(seeds))
            fold_results.append(Experiment(run).run())
            keras.backend.clear_session()  # each run builds new models: free the last one's graphs
    table = write_summary(config, fold_results, seeds)
    experiment_dir = os.path.join(config.output, config.experiment())
    logger.info("%d runs → %s/%s, %s", len(fold_results), experiment_dir, SUMMARY_CSV, SUMMARY_MARKDOWN)
    logger.info("%s", table.rstrip("\n"))
    return table
