"""Every setting, defined once (no TensorFlow here).

Typed dataclasses holding the paper's defaults, each field declared with `setting(default, help, ...)` so that its help
text, flag name and allowed values live beside it.

The machinery that turns these fields into flags, command lines, hyper-parameters and a run's identity is
`emokeras.settings`; each run writes its resolved configuration (`dataclasses.asdict`) into its folder.
"""

from __future__ import annotations

import dataclasses
import os
import re

from emokeras.models.specs import ACOUSTIC_ONLY, MODEL_NAMES
from emokeras.settings import NONE, _get, setting, settings

MULTIVIEW_MODES = ("joint", "frozen", "teacher")
NEGATIVE_RULES = ("random", "similar")
# The multi-view settings each mode's loss and views use (Eq. 3-5), besides the student.
MODE_SETTINGS = {"joint": ("view", "beta_a", "beta_m", "beta_decay", "margin", "negatives"),
                 "frozen": ("teacher", "beta_a", "beta_decay", "margin", "negatives"),
                 "teacher": ("teacher", "margin", "negatives")}
MIXED_PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass
class DataConfig:
    """How the pipeline reads a prepared folder (`emokeras.data.pipelines`): the paper's truncation, and batching."""

    max_frames: int = setting(700, "Frames read per utterance (10 ms each; the paper: 700, 7 s).", lower=1)
    max_words: int = setting(30, "Words read per utterance (the paper: 30).", lower=1)
    bucket_boundaries: tuple[int, ...] = setting(
        (100, 200, 300, 400, 500, 600), "Frame-length bucket edges: a batch holds utterances of one bucket, so "
        "little padding is computed.")
    shuffle_buffer: int = setting(4096, "Training utterances shuffled together (reshuffled every epoch).", lower=1)


@dataclasses.dataclass
class ModelConfig:
    """Model sizes; defaults are the paper's (§4.2, Appendix B).

    `hidden_units` is the output size of each BLSTM layer, both directions
    together (each direction has half). The paper's "BLSTM layers of 256
    dimensions" give "word representations ... with 256 dimensions" (§4.2),
    so 256 is the concatenated size. The GMU and the attention use the same
    size.
    """

    hidden_units: int = setting(256, "BLSTM output size (both directions), GMU and attention size.", lower=2)
    blstm_layers: int = setting(2, "BLSTM layers in each stack (the paper: two).", lower=1)
    dropout: float = setting(0.5, "Dropout after each BLSTM and before the softmax (the paper: 0.4-0.5).",
                             lower=0.0, upper=1.0)
    l2: float = setting(1e-5, "L2 coefficient on every kernel.", lower=0.0)


@dataclasses.dataclass
class MultiViewConfig:
    """Multi-view learning (paper §3.4, Appendix B); `mode=None` trains one model alone."""

    mode: str | None = setting(
        None, "Multi-view learning (paper §3.4): joint (both views learn: Lc + βa·La + βm·Lm), frozen (--teacher's "
        "model fixed: Lc + βa·La), teacher (--teacher as teacher: Lc + LKL). Runs are named "
        "<student>.<mode>.<second view>; only the student is exported.", flag="multiview", choices=MULTIVIEW_MODES)
    student: str = setting("B-ACO-1", "The acoustic view.", choices=ACOUSTIC_ONLY)
    view: str = setting("H-MM-4", "joint: the second view, trained alongside.", choices=MODEL_NAMES)
    teacher: str | None = setting(None, "frozen, teacher: a finished run of the same fold, e.g. runs/H-MM-4/fold-3; "
                                  "'{fold}' stands for the fold and '{seed}' for the seed "
                                  "(runs/H-MM-4/seed-{seed}/fold-{fold}).")
    beta_a: float = setting(1.0, "Weight of the acoustic view's cross-entropy (Eq. 3).", lower=0.0)
    beta_m: float = setting(0.3, "joint: weight of the second view's cross-entropy (Eq. 4).", lower=0.0)
    beta_decay: float = setting(0.0, "ρ of β = β0 / (1 + ρ·epoch); 0 keeps β constant.", lower=0.0)
    margin: float = setting(0.5, "Contrastive margin m (Eq. 2).", lower=0.0)
    negatives: str = setting("random", "Negative samples: any other class, or the acoustically similar one "
                             "(anger <-> happiness, neutral <-> sadness).", choices=NEGATIVE_RULES)

    def teacher_dir(self, fold: int, seed: int) -> str | None:
        """`teacher` for `fold` and `seed`.

        `{fold}` and `{seed}` in it are replaced, so one flag serves every run of a sweep.
        """
        return self.teacher.replace("{fold}", str(fold)).replace("{seed}", str(seed)) if self.teacher else None

    def teacher_name(self) -> str:
        """The teacher's experiment: the folder above its `fold-<k>` (and `seed-<s>`) folders."""
        parts = [part for part in os.path.normpath(self.teacher).split(os.sep) if part]
        while parts and re.fullmatch(r"(fold|seed)-(\d+|\{fold\}|\{seed\})", parts[-1]):
            parts.pop()
        return parts[-1] if parts else self.teacher


@dataclasses.dataclass
class TrainConfig:
    """One training run; the defaults are the paper's settings (Appendix B) on fold 3 of the demo corpus.

    With a multi-view mode, `model` is ignored and the run is named
    `<student>.<mode>.<second view>`.
    """

    model: str = setting("H-MM-4", "The model, by its name in the paper's Table 2.", choices=MODEL_NAMES)
    fold: int = setting(3, "The corpus's fold: 0..9 for IEMOCAP and the demo (fold f holds out session f//2+1), 0 "
                        "for a corpus with a partition (MSP-Podcast, a manifest with split), 0..K-1 for K speaker "
                        "folds.", lower=0)
    epochs: int = setting(30, "Training epochs.", lower=1)
    batch_size: int = setting(64, "Utterances per (global) batch.", lower=1)
    learning_rate: float = setting(1e-4, "Adam's learning rate.", lower=0.0)
    clipnorm: float = setting(5.0, "Clip the global gradient norm to this.", lower=0.0)
    seed: int = setting(0, "Seed for weights, dropout, shuffling and negatives.")
    seed_folder: bool = setting(False, "Put the run in <output>/<model>/seed-<seed>/fold-<k>/ (and its export "
                                "likewise), as crossval --seeds does.", identity=False)
    mixed_precision: str | None = setting(
        None, "Compute in 16 bits, keep variables in float32: mixed_float16 for GPUs, mixed_bfloat16 for CPUs "
        "and TPUs.", choices=MIXED_PRECISION_POLICIES)
    data: str | None = setting(None, "A prepared TFRecord folder (tfrecords/<corpus>/<encoder>). Default: the demo "
                               "corpus, prepared first if needed.")
    output: str = setting("runs", "Runs go to <output>/<model>/fold-<k>/.", identity=False)
    saved_models: str = setting("saved_models", "The best model is exported to <saved_models>/<model>/fold-<k>/.",
                                identity=False)
    class_weights: str | None = setting(None, "balanced: weigh each class's loss by the inverse of its frequency "
                                        "in the training split (n / (classes · n_class)), for corpora one class "
                                        "dominates (MSP-Podcast's neutral).", choices=("balanced",))
    overwrite: bool = setting(False, "Train again, replacing the run folder, even if it holds another "
                              "configuration or finished results.", identity=False)
    onnx: bool = setting(True, "Export models that read audio alone also as model.onnx (served without "
                         "TensorFlow).", identity=False)
    data_config: DataConfig = dataclasses.field(default_factory=DataConfig)
    model_config: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    multiview: MultiViewConfig = dataclasses.field(default_factory=MultiViewConfig)

    def experiment(self) -> str:
        """The run's name: the model, or `<student>.<mode>.<second view>` for multi-view learning."""
        views = self.multiview
        if views.mode is None:
            return self.model
        if views.mode == "joint":
            second = views.view
        elif views.teacher:
            second = views.teacher_name()
        else:
            raise ValueError(f"multi-view mode {views.mode!r} needs --teacher, a finished run folder "
                             "such as runs/H-MM-4/fold-3")
        return f"{views.student}.{views.mode}.{second}"

    def deployable(self) -> str:
        """The model the run exports: `model`, or the multi-view student."""
        return self.multiview.student if self.multiview.mode else self.model

    def unused_settings(self) -> set[str]:
        """The settings this run ignores.

        The multi-view ones without a mode, `model` and those its mode's loss does not use with one. They are not part
        of the run's identity, its command line or its HParams.
        """
        views = {"student", *{name for names in MODE_SETTINGS.values() for name in names}}
        if self.multiview.mode is None:
            return views
        return {"model"} | views - {"student", *MODE_SETTINGS[self.multiview.mode]}

    def hyperparameters(self) -> dict:
        """What shapes the result, flat, for TensorBoard's HParams dashboard.

        Every identity setting but the data folder (None as "none", several values as one string).
        """
        values = {}
        for item in settings(type(self)):
            if item.identity and item.name != "data" and item.name not in self.unused_settings():
                value = _get(self, item.path)
                values[item.name] = (NONE if value is None else ",".join(map(str, value))
                                     if isinstance(value, tuple) else value)
        return values

    def _run_path(self) -> str:
        return os.path.join(self.experiment(), *([f"seed-{self.seed}"] if self.seed_folder else []),
                            f"fold-{self.fold}")

    def run_dir(self) -> str:
        """The run's folder: `<output>/<experiment>[/seed-<s>]/fold-<k>`."""
        return os.path.join(self.output, self._run_path())

    def export_dir(self) -> str:
        """The run's export folder: `<saved_models>/<experiment>[/seed-<s>]/fold-<k>`."""
        return os.path.join(self.saved_models, self._run_path())


DEFAULT_ENCODER_NAME = "char-ngram-256"  # emokeras' offline text encoder (`emokeras.data.features.lexical`)
CORPORA = ("demo", "iemocap", "msp-podcast", "crema-d", "ravdess", "manifest")
DEFAULT_SPEAKER_FOLDS = 5


@dataclasses.dataclass
class PrepareConfig:
    """What to prepare; the defaults prepare the demo corpus with the default encoder."""

    corpus: str = setting("demo", "Which corpus: the offline demo corpus; iemocap, msp-podcast, crema-d or ravdess "
                          "as released (--root: the release's folder); or manifest, your own CSV (--root: the CSV).",
                          choices=CORPORA)
    root: str | None = setting(None, "The corpus: demo: where to write it (default data/demo); iemocap: the "
                               "IEMOCAP_full_release folder; msp-podcast, crema-d: the release folder; ravdess: a "
                               "folder holding the Actor_XX folders; manifest: the CSV file.")
    classes: tuple[str, ...] = setting((), "The classes to keep, in label order: class names, or the corpus's codes "
                                       "(msp-podcast: A,S,H,U,F,D,C,N). Default: the corpus's usual set (IEMOCAP, "
                                       "MSP-Podcast: anger, happiness, neutral, sadness; CREMA-D, RAVDESS: all; "
                                       "manifest: every emo value, sorted).")
    speaker_folds: int = setting(DEFAULT_SPEAKER_FOLDS, "Speaker-exclusive folds for a corpus without partitions "
                                 "(crema-d, ravdess, a manifest without split): fold k tests on one group of "
                                 "speakers, validates on the next and trains on the rest.", lower=3)
    word_timings: bool = setting(True, "Read word timings where the corpus ships them (msp-podcast's ForceAligned, "
                                 "a manifest's alignment column); an utterance without them is then skipped. "
                                 "--noword_timings keeps every utterance, for models that read frames or words "
                                 "alone.")
    text_encoder: str | None = setting(
        None, "A handle tensorflow_hub.load opens (TF Hub URL, SavedModel folder, .tgz); ELMo's 'tokens' signature is "
        "supported. Default: emokeras' offline char-ngram encoder, built under data/encoders/.")
    out: str = setting("tfrecords", "TFRecords root; shards go to <out>/<corpus>/<encoder>/.")
    workers: int = setting(2, "openSMILE worker processes.", lower=1)
    overwrite: bool = setting(False, "Prepare again even if a manifest exists, replacing the folder.")
    demo_seed: int = setting(0, "Seed of the demo corpus.")
    demo_utterances_per_speaker: int = setting(80, "Demo corpus size: 4-class utterances per speaker (10 speakers).",
                                               lower=4)
    encoder_dir: str = setting(os.path.join("data", "encoders"), "Where the default encoder is written.",
                               exposed=False)

    def corpus_root(self) -> str:
        """The release's folder (or the manifest CSV) to read; the demo's is made where `root` says."""
        if self.corpus == "demo":
            return os.path.join(self.root or os.path.join("data", "demo"), "IEMOCAP_full_release")
        if self.corpus not in CORPORA:
            raise ValueError(f"--corpus must be one of {', '.join(CORPORA)}, got {self.corpus!r}")
        if not self.root:
            what = "the manifest CSV" if self.corpus == "manifest" else "the release's folder"
            raise ValueError(f"--corpus {self.corpus} needs --root, {what}")
        return self.root

    def options(self) -> dict:
        """The reading options that differ from their defaults (part of what a prepared folder was made from)."""
        options = {}
        if self.classes:
            options["classes"] = list(self.classes)
        if self.speaker_folds != DEFAULT_SPEAKER_FOLDS and self.corpus in ("crema-d", "ravdess", "manifest"):
            options["speaker_folds"] = self.speaker_folds
        if not self.word_timings and self.corpus in ("msp-podcast", "manifest"):
            options["word_timings"] = False
        return options

    def encoder_handle(self) -> str:
        """The text encoder to use: `text_encoder`, else emokeras' own offline encoder."""
        return self.text_encoder or os.path.join(self.encoder_dir, DEFAULT_ENCODER_NAME)

    def data_dir(self) -> str:
        """`<out>/<corpus>/<encoder>`.

        A manifest's corpus is named after its CSV, and chosen classes or fold counts are part of the name, so that
        preparations of other options do not meet.
        """
        name = self.corpus
        if self.corpus == "manifest":
            name = f"manifest-{os.path.splitext(os.path.basename(os.path.normpath(self.root or 'manifest')))[0]}"
        options = self.options()
        if "classes" in options:
            name += "-" + "-".join(options["classes"])
        if "speaker_folds" in options:
            name += f"-{options['speaker_folds']}-folds"
        if "word_timings" in options:
            name += "-untimed"
        return os.path.join(self.out, re.sub(r"[^A-Za-z0-9._-]+", "-", name), encoder_name(self.encoder_handle()))


def encoder_name(handle: str) -> str:
    """A folder name for an encoder handle: `https://tfhub.dev/google/elmo/3` → `elmo-3`."""
    handle = handle.rstrip("/")
    for suffix in (".tar.gz", ".tgz"):
        if handle.endswith(suffix):
            handle = handle[: -len(suffix)]
    parts = [p for p in re.split(r"[/\\]", handle) if p]
    name = parts[-1] if parts else "encoder"
    if name.isdigit() and len(parts) > 1:  # hub versions: .../elmo/3
        name = f"{parts[-2]}-{name}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


@dataclasses.dataclass
class TuneConfig:
    """A Keras Tuner search over multi-view learning's settings (Appendix B's values by default).

    Only the settings the mode uses are searched: `joint` searches all four,
    `frozen` all but βm, `teacher` (Lc + LKL) the margin and the negatives.
    """

    tuner: str = setting("random", "Keras Tuner's search algorithm.", choices=("grid", "random", "bayesian"))
    max_trials: int = setting(10, "Trials in all, counting those already done.", lower=1)
    directory: str = setting("tuning", "The tuner's state: <tuning>/<experiment>.fold-<k>/.", flag="tuning")
    beta_a: tuple[float, ...] = setting((1.0, 1.2), "βa values searched.", exposed=False)
    beta_m: tuple[float, ...] = setting((0.3, 0.5, 1.0), "βm values searched.", exposed=False)
    margin: tuple[float, ...] = setting((0.3, 0.5, 0.7), "Margins searched.", exposed=False)
    negatives: tuple[str, ...] = setting(NEGATIVE_RULES, "Negative rules searched.", exposed=False)
    tuner_id: str | None = setting(None, "Take part in a distributed search as this Keras Tuner id: 'chief' serves the "
                                   "trials, any other id (without 'chief') trains them. Default: "
                                   "$KERASTUNER_TUNER_ID.")
    oracle_address: str | None = setting(None, "The chief's host:port in a distributed search. Default: "
                                         "$KERASTUNER_ORACLE_IP:$KERASTUNER_ORACLE_PORT.")
    oracle_timeout: float = setting(300.0, "Seconds a worker waits for its chief (to start, or to answer) before "
                                    "giving up.", lower=1.0)
    workers: int = setting(0, "Run the search here as a chief and this many workers, one per GPU or the cores shared "
                           "out, restarting a worker that dies.", lower=0)
    worker_retries: int = setting(3, "How often a dead worker is started again (tune --workers).", lower=0)
