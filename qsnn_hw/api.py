"""The Python journey, one object per step: a :class:`Network` definition trains into a
:class:`Trained` network, which exports a deployed :class:`Model` (the integer network),
which builds a :class:`Core` (the gateware), which synthesizes into a :class:`Build` for a
board, which runs there. docs/python.md walks through it::

    import qsnn_hw as q
    trained = q.Network("digits", hidden=[64], weight_bits=4, state_bits=4).train(epochs=20)
    print(trained.accuracy)                  # float, trained, deployed, golden
    model = trained.export("model.qsnn")
    x, y = model.test_set()
    model.predict(x)                         # the golden model
    core = model.core(lanes=2)
    core.predict(x[:20], sim="verilator")    # the RTL, checked against the golden model
    build = core.synth("icebreaker", "build/icebreaker")
    build.run("/dev/ttyUSB1")                # on the board

Every step is the command line's (``train``, ``export``, ``generate``, ``verify``,
``synth``, ``run``) with the same defaults and the same checks; errors are the same
:class:`ValueError` / :class:`~qsnn_hw.errors.UserError` messages naming the parameter.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from .artifact import Artifact, load_artifact, save_artifact
from .errors import UserError

__all__ = ["Build", "Core", "Model", "Network", "Trained"]


def _layer_configs(shapes, layer_options: dict):
    from .train.config import LayerConfig
    return tuple(LayerConfig(**{**layer_options, **shape}) for shape in shapes)


def _shapes(hidden, arch, n_classes: int) -> list[dict]:
    """The layers' shape fields from ``hidden`` sizes or an ``arch`` string."""
    if arch is None:
        hidden = [64] if hidden is None else [hidden] if isinstance(hidden, int) \
            else list(hidden)
        return [dict(size=size) for size in [*hidden, n_classes]]
    from .train.arch import parse_arch
    if hidden is not None:
        raise TypeError("give the network by hidden= or by arch=, not both")
    shapes = parse_arch(arch)
    if shapes[-1]["size"] != n_classes:
        raise ValueError(f"arch: the last layer is the output and must have one neuron per "
                         f"class of the dataset ({n_classes}), got {shapes[-1]['size']}")
    return shapes


class Network:
    """A network to train: the dataset, the hidden layer sizes and the quantization.

    ``dataset``: ``"digits"`` (built in), ``"fashion_mnist"`` or ``"shd"`` (files in
    ``data_dir``). ``hidden``: sizes of the hidden dense layers (default ``[64]``); the
    output layer has one neuron per class. ``arch``: instead of ``hidden``, the whole
    network as ``qsnn-hw train --arch`` writes it, convolutions included (e.g.
    ``"16c3p1b-32c3p1s2b-10"``; :mod:`qsnn_hw.train.arch`). ``weight_bits`` /
    ``state_bits``: QAT weights and SQUAT states of that width in every layer (0: float
    weights, deployed at 16 bits; 0 states: a saturating membrane); ``state_family``: the
    level table (``"exponential"``, ``"uniform"``, ...). Every other keyword is a field of
    :class:`~qsnn_hw.train.config.TrainConfig` (``timesteps``, ``lr``, ``seed``, ...) or of
    :class:`~qsnn_hw.train.config.LayerConfig` (``beta``, ``threshold``, ``reset``,
    ``bias``, ...; the same for every layer), with the defaults of ``qsnn-hw train``."""

    def __init__(self, dataset: str = "digits", hidden=None, *, arch: str | None = None,
                 weight_bits: int = 4, state_bits: int = 4,
                 state_family: str = "exponential", data_dir: str = "", **options):
        from .data import load_dataset
        from .train.config import LayerConfig, TrainConfig
        layer_fields = {f.name for f in dataclasses.fields(LayerConfig)} - {"size"}
        train_fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"layers"}
        unknown = set(options) - layer_fields - train_fields
        if unknown:
            raise TypeError(f"Network got unknown option(s) {', '.join(sorted(unknown))}; "
                            f"options are TrainConfig or LayerConfig fields")
        layer = {k: v for k, v in options.items() if k in layer_fields}
        if weight_bits:
            layer.update(weight_mode="qat", weight_bits=weight_bits)
        if state_bits:
            layer.update(state_mode="squat", state_bits=state_bits, state_family=state_family)
        run = {k: v for k, v in options.items() if k in train_fields}
        probe = TrainConfig(dataset=dataset, data_dir=data_dir, **run)
        self.data = load_dataset(dataset, data_dir, probe.timesteps, probe.data_seed)
        self.config = dataclasses.replace(
            probe, layers=_layer_configs(_shapes(hidden, arch, self.data.n_classes), layer))
        from .train.trainer import check_against_data
        check_against_data(self.config, self.data)

    def __repr__(self) -> str:
        layers = self.config.layers
        if any(lc.is_conv for lc in layers):
            from .train.arch import describe_arch
            return f"Network({self.config.dataset!r}, arch {describe_arch(layers)!r})"
        sizes = [self.data.n_in] + [lc.size for lc in layers]
        return f"Network({self.config.dataset!r}, sizes {sizes})"

    def train(self, epochs: int | None = None, *, out=None, quiet: bool = False,
              **changes) -> Trained:
        """Train (``epochs``, or the config's; ``changes``: more TrainConfig fields).
        ``out``: also write what ``qsnn-hw train --out`` writes there (``model.qsnn``,
        ``metrics.json``, ``checkpoint.npz``, ``plots/``). ``quiet``: no progress bars."""
        from . import progress
        from .train import trainer
        cfg = dataclasses.replace(self.config, **changes,
                                  **({} if epochs is None else {"epochs": epochs}))
        with progress.quiet(True) if quiet else contextlib.nullcontext():
            if out is None:
                tr = trainer.train(cfg, self.data)
            else:
                tr = trainer.train_to_dir(cfg, self.data, out)
        return Trained(tr, self.data)


class Trained:
    """A trained network: ``model`` (the trainer's float network, best validation
    parameters), ``artifact`` (what it deploys as), ``metrics`` (test set), ``history``
    (per epoch), ``config`` and ``data``."""

    def __init__(self, result, data):
        self._result = result
        self.model = result.model
        self.artifact: Artifact = result.artifact
        self.metrics: dict = result.metrics
        self.history: dict = result.state.history
        self.config = Model(result.artifact)._train_config
        self.data = data

    @property
    def accuracy(self) -> dict:
        """Test accuracy of the float model (no quantization), the trained network's
        training-time forward, the deployed integer network and the golden model on the
        exported artifact (these two are what the hardware computes)."""
        m = self.metrics
        return {"float": m["float_accuracy"], "trained": m["fake_quant_accuracy"],
                "deployed": m["quantized_accuracy"], "golden": m["golden_accuracy"]}

    @property
    def deployed(self) -> Model:
        """The deployed model, in memory (:meth:`export` also writes it)."""
        return Model(self.artifact)

    def export(self, path, *, overwrite: bool = False) -> Model:
        """Write the artifact to ``path`` (atomically; an existing file only with
        ``overwrite``) and return its :class:`Model`."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise UserError(f"{path} exists; pass overwrite=True to replace it")
        save_artifact(path, self.artifact)
        return Model(self.artifact, path)

    def __repr__(self) -> str:
        acc = ", ".join(f"{k} {v:.2%}" for k, v in self.accuracy.items())
        return f"Trained({acc})"


class Model:
    """A deployed network: the integer ``network`` (:class:`~qsnn_hw.contract.IntNetwork`)
    of an ``artifact``, and its golden model."""

    def __init__(self, artifact: Artifact, path=None):
        if not isinstance(artifact, Artifact):
            raise TypeError(f"artifact must be an Artifact, got {type(artifact).__name__}")
        self.artifact = artifact
        self.network = artifact.network
        self.path = None if path is None else Path(path)

    @classmethod
    def load(cls, path) -> Model:
        """A ``.qsnn`` artifact (``qsnn-hw train`` / ``import`` wrote it)."""
        return cls(load_artifact(path), path)

    @classmethod
    def from_nir(cls, path, **options) -> Model:
        """A NIR graph (snnTorch, Norse, ...) quantized as ``qsnn-hw import`` does;
        ``options``: :class:`~qsnn_hw.interop.ImportOptions` fields."""
        from .interop import ImportOptions, import_nir
        return cls(import_nir(path, ImportOptions(**options)))

    def __repr__(self) -> str:
        sizes = [self.network.n_in] + [la.n_out for la in self.network.layers]
        return f"Model(sizes {sizes}" + (f", {self.path}" if self.path else "") + ")"

    @property
    def _train_config(self):
        from .train.config import TrainConfig
        cfg = self.artifact.config or {}
        if "dataset" not in cfg or "timesteps" not in cfg:
            return None
        return TrainConfig.from_dict(cfg)

    def encode(self, x) -> np.ndarray:
        """Dataset samples ``x`` (B, features in [0, 1], or (B, T, M) events) as the
        deployed network's integer inputs (B, T, M), encoded as in training's test
        evaluation. Already-integer inputs (B, T, M) pass through."""
        x = np.asarray(x)
        if x.ndim == 3 and x.dtype.kind in "iub":
            return x.astype(np.int64)
        cfg = self._train_config
        if cfg is None:
            raise ValueError("this model has no training configuration to encode samples "
                             "with; give integer inputs of shape (batch, timesteps, "
                             f"{self.network.n_in})")
        from .train.batches import eval_encodings
        return np.concatenate([enc.golden_input() for _, enc in eval_encodings(cfg, x, 1)])

    def test_set(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(inputs (B, T, M) int64, labels)``: the first ``n`` (all) test samples of the
        dataset the model was trained on, encoded."""
        cfg = self._train_config
        if cfg is None:
            raise ValueError("this model does not name a dataset (it was not trained by "
                             "qsnn-hw); bring inputs of your own")
        from .data import load_dataset
        data = load_dataset(cfg.dataset, cfg.data_dir, cfg.timesteps, cfg.data_seed)
        x, y = data.x_test, data.y_test
        if n is not None:
            x, y = x[:n], y[:n]
        return self.encode(x), np.asarray(y)

    def simulate(self, x, trace: bool = False):
        """The golden model on ``x`` (:meth:`encode` applies):
        :class:`~qsnn_hw.golden.GoldenResult`."""
        from .golden import simulate
        return simulate(self.network, self.encode(x), trace=trace)

    def predict(self, x) -> np.ndarray:
        """Predicted classes of the golden model (spike count argmax, ties lowest)."""
        return self.simulate(x).predictions

    def core(self, config=None, **options) -> Core:
        """The gateware core: a :class:`~qsnn_hw.hdl.config.CoreConfig` or its options
        (``lanes``, ``input``, ``accumulators``, ``weight_storage``, ...)."""
        from .hdl.config import CoreConfig
        if config is None:
            config = CoreConfig(**options)
        elif options:
            raise TypeError("give a CoreConfig or its options, not both")
        return Core(self, config.check(self.network))


class Core:
    """The generated core of a :class:`Model` with a :class:`~qsnn_hw.hdl.config.CoreConfig`
    (``config``): the same object simulated, proven and synthesized."""

    def __init__(self, model: Model, config):
        self.model = model
        self.config = config
        self.last_report: dict | None = None

    def __repr__(self) -> str:
        return f"Core({self.config.describe()})"

    def component(self, trace: bool = False):
        """The Amaranth component (:class:`~qsnn_hw.hdl.top.NetworkTop`)."""
        from .hdl.top import NetworkTop
        return NetworkTop(self.model.network, self.config, trace=trace)

    def verilog(self, name: str = "qsnn_core") -> str:
        """The core's Verilog."""
        from .hdl.emit import generate
        return generate(self.model.network, self.config, name=name)[0]

    def write(self, out_dir, name: str = "qsnn_core") -> tuple[Path, Path]:
        """``NAME.v`` and its manifest ``NAME.json`` in ``out_dir`` (``qsnn-hw
        generate``)."""
        from .hdl.emit import write_core
        return write_core(self.model.network, out_dir, self.config, name=name)

    def verify(self, x=None, *, samples: int = 20, sim: str = "verilator",
               build_dir=None) -> dict:
        """Simulate ``x`` (default: ``samples`` test samples) on the RTL in ``sim``
        (``"verilator"``, ``"icarus"`` or ``"amaranth"``) and compare every spike, state,
        count and prediction with the golden model (``qsnn-hw verify``). Returns the
        report (``ok``, ``first`` mismatch, ``predictions``, ``cycles``, ...).
        ``build_dir``: keep the simulation there (default: a temporary directory)."""
        from .verify import verify_core
        x = self.model.test_set(samples)[0] if x is None else self.model.encode(x)
        if build_dir is None and sim != "amaranth":
            with tempfile.TemporaryDirectory(prefix="qsnn-verify-") as tmp:
                rep = verify_core(self.model.network, x, self.config, sim=sim, build_dir=tmp)
        else:
            rep = verify_core(self.model.network, x, self.config, sim=sim,
                              build_dir=build_dir)
        self.last_report = rep
        return rep

    def predict(self, x, *, sim: str = "verilator") -> np.ndarray:
        """Predicted classes computed by the RTL in ``sim``. Raises if the RTL differs
        from the golden model anywhere (the report is in :attr:`last_report`)."""
        rep = self.verify(x, sim=sim)
        if not rep["ok"]:
            from .verify.compare import format_report
            raise AssertionError("the RTL differs from the golden model:\n"
                                 + format_report(rep))
        return np.asarray(rep["predictions"])

    def prove(self, timeout: float | None = None) -> list:
        """Prove every layer's LIF datapath equal to the contract (``qsnn-hw prove``);
        one result per layer."""
        from .formal.datapath import prove_network
        return prove_network(self.model.network, self.config, timeout=timeout)

    def synth(self, board: str, out, *, clock="auto", weights: str = "auto",
              force: bool = False, seed: int = 1) -> Build:
        """Build this core for ``board`` into ``out`` (``qsnn-hw synth``): a bitstream,
        ``report.json``/``.md``/``.png``. ``clock``: ``"auto"`` (the fastest the build
        meets) or MHz; ``weights``: ``"auto"``, ``"bram"`` or ``"spram"``; an earlier
        build in ``out`` is replaced only with ``force``."""
        from .commands._out import check_out
        from .commands.synth import board_config, run_synth
        model = self.model
        if model.path is None:
            raise ValueError("synth needs the model on disk: export it first "
                             "(trained.export(PATH) or Model.load(PATH))")
        check_out(out, outputs=("report.json",), force=force, replaces_dir=True)
        config = board_config(model.artifact, board, self.config, weights)
        report = run_synth(model.path, board, out, config, clock=clock, seed=seed)
        return Build(model, config, Path(out), report)


class Build:
    """A board build: its ``report`` (resources, Fmax, clock, throughput), the
    ``bitstream`` path, and :meth:`run` on the board."""

    def __init__(self, model: Model, config, out: Path, report: dict):
        self.model, self.config, self.out, self.report = model, config, out, report
        self.bitstream = out / report["bitstream"]

    def __repr__(self) -> str:
        clock = self.report["clock"]["actual_mhz"]
        return (f"Build({self.report['board']}, {clock:g} MHz, timing "
                f"{'met' if self.report['timing_pass'] else 'MISSED'}, {self.bitstream})")

    def run(self, port: str, *, samples: int = 100, baud: int = 115200,
            timeout: float = 5.0) -> dict:
        """Run ``samples`` test samples on the board at ``port`` (``qsnn-hw run``; the
        board must be programmed with :attr:`bitstream`; RAM weights are loaded first).
        Returns the result: accuracy, latency, agreement with the golden model."""
        from .commands.run import run_on_board
        return run_on_board(self.model.artifact, self.report["board"], port,
                            samples=samples, baud=baud, timeout=timeout, report=self.report)
