"""The paper's four classes: the default of models built without a prepared corpus (a prepared corpus's classes are
in its manifest, `emokeras.tfrecords.class_names`)."""

CLASS_NAMES = ("anger", "happiness", "neutral", "sadness")
NUM_CLASSES = len(CLASS_NAMES)
