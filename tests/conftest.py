import os

from hypothesis import settings

# CI runs a fixed, moderate number of examples; QSNN_HYPOTHESIS_EXAMPLES scales it up.
settings.register_profile("qsnn", max_examples=int(os.environ.get("QSNN_HYPOTHESIS_EXAMPLES",
                                                                  "100")), deadline=None)
settings.load_profile("qsnn")
