"""Stage 2, models.

The paper's models as data (`specs`), built from it (`builders`) out of custom layers (`layers`); multi-view learning
(`multiview`); UA and WA (`metrics`). Importing this package loads no TensorFlow (`specs` never does; the others do).
"""
