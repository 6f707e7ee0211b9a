"""NumPy trainer: LIF networks with BPTT, QAT weights and SQUAT states, exported to the
integer contract (qsnn_hw/contract.py) with eval-mode equivalence to the golden model.

``config`` (what to train), ``arch`` (the ``--arch`` syntax, layer geometry), ``linear``
(dense and convolutional currents, max pooling), ``batchnorm``, ``model`` (forward + BPTT),
``surrogate``, ``losses``, ``optim``, ``encoding`` (inputs), ``export`` (to IntNetwork),
``deployed`` (the trainer's integer eval path), ``trainer`` (the loop, checkpoints,
metrics), ``memory`` (freed arrays kept for the next batch), ``plots``.
"""

from .config import LayerConfig, TrainConfig
from .trainer import fit, run_training

__all__ = ["LayerConfig", "TrainConfig", "fit", "run_training"]
