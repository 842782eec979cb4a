"""The four-class label set shared by every part of emokeras (ARCHITECTURE.md, Labels)."""

CLASS_NAMES = ("anger", "happiness", "neutral", "sadness")
NUM_CLASSES = len(CLASS_NAMES)

# IEMOCAP's categorical labels; `exc` (excitement) is merged into happiness as
# in the paper and most 4-class IEMOCAP work.
IEMOCAP_TO_CLASS = {"ang": 0, "hap": 1, "exc": 1, "neu": 2, "sad": 3}
# Labels IEMOCAP uses that the 4-class task drops without comment.
IEMOCAP_OTHER_LABELS = frozenset({"fru", "sur", "fea", "dis", "oth", "xxx"})
