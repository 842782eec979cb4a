r"""How close exported students are to a teacher on one split: UA, argmax agreement, KL(teacher ‖ student).

Prints one line per student; asserts nothing. Used for the README's Table 3
analysis: multi-view learning should move the acoustic student towards the
multimodal teacher, whatever it does to UA.

    python scripts/teacher_agreement.py --data tfrecords/demo/char-ngram-256 --fold 3 \
        --teacher saved_models/H-MM-4/fold-3 saved_models/B-ACO-1/fold-3 saved_models/B-ACO-1.teacher.H-MM-4/fold-3
"""

import argparse
import json
import os

import numpy as np

EPSILON = 1e-7  # keeps log(0) out of the KL divergence


def predict(model_dir, batches):
    """Class probabilities and labels of an exported model over `batches`."""
    import tensorflow as tf

    from emokeras.serving.export import METADATA, load_serving

    serve = load_serving(model_dir)
    with open(os.path.join(model_dir, METADATA), encoding="utf-8") as f:
        specs = json.load(f)["inputs"]
    probabilities, labels = [], []
    for inputs, label in batches:
        feed = {name: tf.cast(inputs[name], spec["dtype"]) for name, spec in specs.items()}
        probabilities.append(serve(**feed)["probabilities"].numpy())
        labels.append(label.numpy())
    return np.concatenate(probabilities), np.concatenate(labels)


def unweighted_accuracy(probabilities, labels) -> float:
    """UA with the metric training reports."""
    from emokeras.models.metrics import UnweightedAccuracy

    metric = UnweightedAccuracy(probabilities.shape[-1])
    metric.update_state(labels, probabilities)
    return float(metric.result())


def main():
    from emokeras.data import pipelines

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the prepared folder the models were trained on")
    parser.add_argument("--fold", type=int, default=3)
    parser.add_argument("--split", default="test", help="validation, test (or a corpus's further test split)")
    parser.add_argument("--teacher", required=True, help="the teacher's exported model folder")
    parser.add_argument("students", nargs="+", help="exported student folders")
    args = parser.parse_args()

    batches = list(pipelines.make_dataset(args.data, args.fold, args.split, batch_size=64))
    teacher, labels = predict(args.teacher, batches)
    print(f"{args.split} split of fold {args.fold}, {len(labels)} utterances; "
          f"teacher {args.teacher}: UA {unweighted_accuracy(teacher, labels):.4f}")
    for student_dir in args.students:
        student, _ = predict(student_dir, batches)
        agreement = np.mean(student.argmax(axis=1) == teacher.argmax(axis=1))
        divergence = np.mean(np.sum(teacher * (np.log(teacher + EPSILON) - np.log(student + EPSILON)), axis=1))
        print(f"{student_dir}: UA {unweighted_accuracy(student, labels):.4f}, agreement with the teacher "
              f"{agreement:.3f}, KL(teacher ‖ student) {divergence:.3f}")


if __name__ == "__main__":
    main()
