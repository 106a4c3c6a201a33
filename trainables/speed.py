"""Speed trials: a backbone exported to ONNX, timed in DeepSparse against dense references.

The paper's speed claims (study.md, Speed) are ratios measured on one machine in one run:
DeepSparse running the sparse backbone against the same architecture dense, in DeepSparse,
ONNX Runtime and PyTorch, for inference and for an *online* linear-finetuning epoch (features
computed on the fly from augmented images, a linear head trained in PyTorch). Shared machines
are noisy, so every reference is timed inside the same trial, interleaved repetition by
repetition with the sparse engine, and only ratios of medians are compared.

Plain functions, no Ray: ``orchestrator.speed_pool`` places trials on whole CPU nodes.
DeepSparse is imported lazily with its analytics off (``NM_DISABLE_ANALYTICS=1``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import platform
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from common import columns as C
from trainables import masks, models
from trainables.transforms import eval_resize_size, train_transform

# DeepSparse reads this at import; a speed trial must never phone home.
os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

ONNX_INPUT = "input"
ONNX_OUTPUT = "features"
# Head trained during the online epoch; its width does not change the backbone's cost.
ONLINE_NUM_CLASSES = 100


def _deepsparse() -> Any:
    os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
    import deepsparse

    return deepsparse


@contextlib.contextmanager
def torch_threads(num_threads: int) -> Iterator[None]:
    """Run PyTorch CPU ops on ``num_threads`` threads, restoring the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------------- export and sparsity


def export_backbone_onnx(
    model: nn.Module,
    arch: str,
    path: str | os.PathLike,
    image_size: int | None = None,
    batch_size: int | None = None,
    opset: int = 17,
) -> Path:
    """Export the penultimate-feature backbone of ``model`` to ONNX, atomically.

    The classifier is replaced by the identity (``models.backbone``) and the copy is exported in
    eval mode with the legacy TorchScript exporter (DeepSparse 1.8 refuses opset 20, and the
    dynamo exporter needs an onnx version that cannot live next to it; stack.md).

    Args:
        model: a model of ``arch`` (its classifier is dropped; ``model`` is not modified).
        arch: registered architecture name.
        path: destination ``.onnx`` file; written to ``path.tmp-<pid>`` then renamed.
        image_size: input side in pixels; default ``models.input_size(arch)``.
        batch_size: ``None`` exports a dynamic batch axis. DeepSparse compiles a fixed batch
            either way (it rewrites the batch dimension before compiling) and ONNX Runtime
            accepts any batch, so one dynamic file serves every batch size.
        opset: ONNX opset; DeepSparse 1.8 compiles 17-19.

    Returns:
        The path of the written file.
    """
    if not 7 <= opset <= 19:
        raise ValueError(f"opset must be in 7..19 for DeepSparse 1.8, got {opset}")
    size = image_size or models.input_size(arch)
    net = models.backbone(model, arch).eval().cpu()
    example = torch.randn(batch_size or 1, 3, size, size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    dynamic_axes = None
    if batch_size is None:
        dynamic_axes = {ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}}
    try:
        with torch.no_grad():
            torch.onnx.export(
                net,
                (example,),
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=[ONNX_INPUT],
                output_names=[ONNX_OUTPUT],
                dynamic_axes=dynamic_axes,
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def onnx_sparsity(path: str | os.PathLike) -> float:
    """Percent of zeros over the Conv/Gemm/MatMul weights of an ONNX file, counted per node.

    Read back from the file so the number describes what DeepSparse actually runs (BatchNorm
    folded into convolutions by the exporter keeps zeros zero). The exporter stores identical
    tensors once and points the other nodes at them through ``Identity`` nodes (two all-zero
    convolutions become one initializer), so weights are resolved through ``Identity`` and
    counted once per node that runs them, as PyTorch counts its parameters.
    """
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file {path} does not exist")
    graph = onnx.load(str(path)).graph
    inits = {t.name: t for t in graph.initializer}
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity" and n.input}
    zeros = total = 0
    arrays: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        name = node.input[1]
        for _ in range(len(alias) + 1):  # follow Identity chains, never loop forever
            if name in inits or name not in alias:
                break
            name = alias[name]
        if name not in inits:
            continue  # an activation (MatMul of two inputs), not a weight
        if name not in arrays:
            arrays[name] = numpy_helper.to_array(inits[name])
        w = arrays[name]
        zeros += int(np.count_nonzero(w == 0))
        total += w.size
    if total == 0:
        raise ValueError(f"ONNX file {path} has no Conv/Gemm/MatMul weight initializers")
    return 100.0 * zeros / total


# How random weights are pruned to a target sparsity (``prune_random``).
PRUNE_PROFILES = ("uniform", "global")


def _smallest(values: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Keep-mask (flat) dropping the ``k`` smallest ``values``, ties broken at random."""
    keys = torch.rand(values.numel(), generator=gen)
    order = torch.argsort(keys)
    order = order[torch.argsort(values[order], stable=True)]
    keep = torch.ones(values.numel(), dtype=torch.bool)
    keep[order[:k]] = False
    return keep


def _uniform_counts(sizes: Sequence[int], k: int) -> list[int]:
    """Split ``k`` zeros over layers of ``sizes`` in proportion, summing to exactly ``k``."""
    total = sum(sizes)
    if k > total:
        raise ValueError(f"cannot zero {k} weights in layers holding {total}")
    exact = [k * n / total for n in sizes]
    counts = [math.floor(e) for e in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: k - sum(counts)]:
        counts[i] += 1
    return counts


@torch.no_grad()
def prune_random(
    model: nn.Module,
    target: float,
    seed: int = 0,
    exclude: Sequence[str] = (),
    profile: str = "uniform",
) -> nn.Module:
    """A copy of ``model`` pruned to ``target`` sparsity by weight magnitude.

    Used for "random weights" speed trials (``weights="random"``): the kernels' speed depends on
    where the zeros are, not on the surviving values. Exactly ``round(target * total)`` of the
    prunable weights (``trainables.masks``) become zero: the smallest magnitudes, with ties
    broken at random under ``seed``.

    Profiles (where the zeros go):
        ``"uniform"``: every layer at the same sparsity except the first (the stem), which stays
            dense, as in uniform gradual magnitude pruning (Gale et al. 2019); the others are
            pruned a little more to make up for it.
        ``"global"``: one magnitude threshold over all layers. On *random* weights this ranks
            layers by their initialisation scale, not by anything learnt: torchvision's ResNet50
            at 90 % keeps layer1 40 % dense and the stem 1 % dense (4.8x fewer multiply-adds,
            against 8.0x for uniform), and at 98 % it zeroes whole layer4 convolutions. Kept to
            compare with, not as the reference profile.

    Args:
        model: any model; not modified.
        target: fraction of prunable weights to zero, in [0, 1).
        seed: seed of the tie-break.
        exclude: module names left dense and out of the count (e.g. the classifier).
        profile: one of ``PRUNE_PROFILES``.
    """
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target sparsity must be a fraction in [0, 1), got {target}")
    if profile not in PRUNE_PROFILES:
        raise ValueError(f"profile must be one of {PRUNE_PROFILES}, got {profile!r}")
    pruned = copy.deepcopy(model)
    names = masks.prunable_names(pruned, exclude)
    params = dict(pruned.named_parameters())
    k = round(target * sum(params[n].numel() for n in names))
    if k == 0:
        return pruned
    # Groups of layers ranked together, and how many zeros each gets.
    if profile == "global":
        groups = [(names, k)]
    else:
        rest = names[1:] if len(names) > 1 else names  # the stem stays dense
        counts = _uniform_counts([params[n].numel() for n in rest], k)
        groups = [([n], count) for n, count in zip(rest, counts)]
    gen = torch.Generator().manual_seed(seed)
    keep: dict[str, torch.Tensor] = {}
    for group, count in groups:
        flat = torch.cat([params[n].detach().abs().flatten() for n in group])
        kept = _smallest(flat, count, gen)
        for n, part in zip(group, kept.split([params[n].numel() for n in group])):
            keep[n] = part.view_as(params[n])
    masks.apply_masks(pruned, keep)
    return pruned


@torch.no_grad()
def macs_share(model: nn.Module, image_size: int) -> float:
    """Nonzero multiply-adds of the Conv2d/Linear layers over their dense count, one image.

    The work a sparsity-aware runtime can skip: the upper bound of its speed-up is about
    ``1 / macs_share``, whatever the overall sparsity says.
    """
    dense = nonzero = 0.0

    def count(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal dense, nonzero
        w = module.weight
        per_output = w[0].numel() if isinstance(module, nn.Conv2d) else w.shape[1]
        positions = output.numel() / output.shape[0] / w.shape[0]
        dense += per_output * w.shape[0] * positions
        nonzero += float(torch.count_nonzero(w)) * positions

    hooks = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    try:
        model.eval()(torch.zeros(1, 3, image_size, image_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if dense == 0:
        raise ValueError("model has no Conv2d or Linear layer to count")
    return nonzero / dense


# ---------------------------------------------------------------------------------- runtimes


def compile_deepsparse(path: str | os.PathLike, batch_size: int, num_cores: int) -> Any:
    """A DeepSparse engine of the ONNX file at a fixed ``batch_size`` on ``num_cores`` cores.

    ``num_cores`` must be passed: DeepSparse otherwise uses every core of the machine, whatever
    Ray has granted the process.
    """
    if batch_size < 1 or num_cores < 1:
        raise ValueError(f"batch_size and num_cores must be >= 1, got {batch_size}, {num_cores}")
    ds = _deepsparse()
    return ds.Engine(model=str(path), batch_size=batch_size, num_cores=num_cores)


def onnxruntime_session(path: str | os.PathLike, num_cores: int) -> Any:
    """An ONNX Runtime CPU session on ``num_cores`` intra-op threads.

    Spinning is off so that its idle threads do not steal cycles from the runtime timed next
    (the runtimes are timed interleaved).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_cores
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _input_chw(onnx_path: str | os.PathLike) -> tuple[int, int, int]:
    import onnx

    dims = onnx.load(str(onnx_path)).graph.input[0].type.tensor_type.shape.dim
    chw = tuple(d.dim_value for d in dims[1:])
    if len(chw) != 3 or not all(chw):
        raise ValueError(f"ONNX file {onnx_path}: expected a static (N, C, H, W) input, got {dims}")
    return chw  # type: ignore[return-value]


def deepsparse_features(engine: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap an engine as ``features(x: float tensor NCHW) -> float tensor``."""

    def run(x: torch.Tensor) -> torch.Tensor:
        out = engine.run([np.ascontiguousarray(x.numpy(), dtype=np.float32)], val_inp=False)
        return torch.from_numpy(out[0])

    return run


def onnxruntime_features(session: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap an ONNX Runtime session as ``features(x: float tensor NCHW) -> float tensor``."""

    def run(x: torch.Tensor) -> torch.Tensor:
        x_np = np.ascontiguousarray(x.numpy(), dtype=np.float32)
        return torch.from_numpy(session.run(None, {ONNX_INPUT: x_np})[0])

    return run


def check_outputs_match(
    model: nn.Module,
    onnx_path: str | os.PathLike,
    engine: Any,
    atol: float = 1e-3,
    seed: int = 0,
) -> float:
    """Raise if DeepSparse and PyTorch disagree on a random batch; return the worst difference.

    ``model`` is the backbone that was exported (classifier = identity); the batch has the
    engine's batch size and the ONNX file's input shape. Random-weight backbones can produce
    large features, so the tolerance is relative to the output scale:
    ``|deepsparse - torch| <= atol * max(1, max|torch|)``.
    """
    chw = _input_chw(onnx_path)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((engine.batch_size, *chw)).astype(np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    got = engine.run([x])[0]
    if got.shape != expected.shape:
        raise ValueError(
            f"DeepSparse output shape {got.shape} != PyTorch {expected.shape} for {onnx_path}"
        )
    scale = max(1.0, float(np.abs(expected).max()))
    diff = float(np.abs(got - expected).max())
    if not np.isfinite(diff) or diff > atol * scale:
        raise ValueError(
            f"DeepSparse output of {onnx_path} differs from PyTorch: max |diff| {diff:.3g} > "
            f"{atol} x scale {scale:.3g}"
        )
    return diff / scale


# ----------------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class TimingStats:
    """Milliseconds per call over ``reps`` timed repetitions (after warm-up)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    reps: int

    @classmethod
    def from_seconds(cls, seconds: Sequence[float]) -> TimingStats:
        ms = np.asarray(seconds, dtype=float) * 1e3
        return cls(
            median_ms=float(np.median(ms)),
            p10_ms=float(np.percentile(ms, 10)),
            p90_ms=float(np.percentile(ms, 90)),
            reps=len(ms),
        )


def _check_reps(warmup: int, reps: int) -> None:
    if warmup < 0 or reps < 1:
        raise ValueError(f"need warmup >= 0 and reps >= 1, got warmup={warmup}, reps={reps}")


def time_fn(fn: Callable[[], Any], warmup: int, reps: int) -> TimingStats:
    """Call ``fn`` ``warmup`` times untimed, then ``reps`` times timed."""
    return time_interleaved({"fn": fn}, warmup, reps)["fn"]


def time_interleaved(
    fns: Mapping[str, Callable[[], Any]], warmup: int, reps: int
) -> dict[str, TimingStats]:
    """Time several functions round-robin: repetition r of every function, then r + 1.

    On a shared machine the load drifts over minutes; interleaving exposes every runtime to
    the same drift, so their ratios stay meaningful even when absolute times do not.
    """
    _check_reps(warmup, reps)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    return {name: TimingStats.from_seconds(s) for name, s in seconds.items()}


def inference_speed(
    *,
    sparse_engines: Mapping[int, Any],
    dense_engine: Any,
    ort_session: Any,
    dense_model: nn.Module,
    image_size: int,
    batch: int,
    warmup: int,
    reps: int,
    num_cores: int,
    seed: int = 0,
) -> dict[str, TimingStats]:
    """Time the sparse engine(s) against the dense references, interleaved in one run.

    Args:
        sparse_engines: DeepSparse engines of the sparse backbone by batch size; must hold
            ``batch`` (and usually 1).
        dense_engine: DeepSparse engine of the dense backbone at ``batch``.
        ort_session: ONNX Runtime session of the dense backbone.
        dense_model: the dense PyTorch backbone (timed on ``num_cores`` threads).

    Returns:
        ``{"deepsparse_b<k>": ..., "deepsparse_dense": ..., "onnxruntime_dense": ...,
        "torch_dense": ...}``, the last three at ``batch``.
    """
    if batch not in sparse_engines:
        raise ValueError(f"sparse_engines has batches {sorted(sparse_engines)}, needs {batch}")
    rng = np.random.default_rng(seed)
    inputs = {
        b: rng.standard_normal((b, 3, image_size, image_size)).astype(np.float32)
        for b in {*sparse_engines, batch}
    }
    x = inputs[batch]
    xt = torch.from_numpy(x)
    dense_model = dense_model.eval()

    def torch_run() -> None:
        with torch.inference_mode():
            dense_model(xt)

    fns: dict[str, Callable[[], Any]] = {
        f"deepsparse_b{b}": (lambda e=e, b=b: e.run([inputs[b]], val_inp=False))
        for b, e in sorted(sparse_engines.items())
    }
    fns["deepsparse_dense"] = lambda: dense_engine.run([x], val_inp=False)
    fns["onnxruntime_dense"] = lambda: ort_session.run(None, {ONNX_INPUT: x})
    fns["torch_dense"] = torch_run
    with torch_threads(num_cores):
        return time_interleaved(fns, warmup, reps)


# ------------------------------------------------------------------------- online finetuning


class SyntheticImages(Dataset):
    """``length`` random RGB PIL images of ``side`` px with random labels, drawn per index.

    Stands in for a decoded dataset when timing the online epoch: augmentation cost depends
    on image size, not content.
    """

    def __init__(self, length: int, side: int, num_classes: int, seed: int = 0) -> None:
        if length < 1 or side < 1 or num_classes < 1:
            raise ValueError(
                f"need length, side, num_classes >= 1, got {length}, {side}, {num_classes}"
            )
        self.length, self.side, self.num_classes, self.seed = length, side, num_classes, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        rng = np.random.default_rng((self.seed, index))
        pixels = rng.integers(0, 256, (self.side, self.side, 3), dtype=np.uint8)
        return Image.fromarray(pixels, "RGB"), int(rng.integers(self.num_classes))


class _Augmented(Dataset):
    def __init__(self, inner: Dataset, transform: Callable) -> None:
        self.inner, self.transform = inner, transform

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.inner[index]
        return self.transform(image), int(label)


@dataclass(frozen=True)
class EpochTiming:
    """Time of one online linear-finetuning epoch.

    ``seconds`` is the measured epoch when every batch ran (``extrapolated`` False), else
    ``epoch_batches x median_batch_s`` over the ``timed_batches`` that ran.
    """

    seconds: float
    median_batch_s: float
    timed_batches: int
    epoch_batches: int
    extrapolated: bool


def online_linear_epoch(
    features: Any,
    dataset: Dataset,
    num_classes: int,
    batch_size: int = 64,
    max_batches: int | None = None,
    *,
    image_size: int,
    warmup_batches: int = 1,
    num_cores: int | None = None,
    lr: float = 0.01,
    seed: int = 0,
) -> EpochTiming:
    """Time one epoch of the paper's online linear finetuning.

    Each batch is read from ``dataset`` (raw PIL images), augmented with RandomResizedCrop and
    a horizontal flip at ``image_size`` (``transforms.train_transform``), pushed through the
    frozen backbone, and one SGD step (momentum 0.9, weight decay 5e-4) is taken on a PyTorch
    ``nn.Linear`` head. Data loading runs in this process, so its time counts. A last partial
    batch is padded to ``batch_size``: a DeepSparse engine is compiled for one batch size.

    Args:
        features: a DeepSparse engine (compiled at ``batch_size``) or a callable mapping an
            NCHW float tensor to features (e.g. a PyTorch backbone in eval mode).
        dataset: yields ``(PIL image, int label)``.
        num_classes: width of the linear head; labels are taken modulo it.
        max_batches: time at most this many batches (after warm-up) and extrapolate the epoch
            as ``epoch batches x median batch time``; ``None`` runs the whole epoch.
        warmup_batches: batches run before timing starts (engine and allocator warm-up); they
            are extra, not counted in the epoch.
        num_cores: PyTorch threads for a torch backbone (data loading and the head run on one
            thread, as in a DataLoader worker; a DeepSparse engine has its own cores).

    Returns:
        An ``EpochTiming``; ``extrapolated`` says whether ``seconds`` was extrapolated.
    """
    if batch_size < 1 or num_classes < 1:
        raise ValueError(
            f"batch_size and num_classes must be >= 1, got {batch_size}, {num_classes}"
        )
    if max_batches is not None and max_batches < 1:
        raise ValueError(f"max_batches must be >= 1 or None, got {max_batches}")
    if hasattr(features, "run") and hasattr(features, "batch_size"):
        if features.batch_size != batch_size:
            raise ValueError(
                f"DeepSparse engine compiled at batch {features.batch_size}, "
                f"epoch uses {batch_size}"
            )
        features = deepsparse_features(features)
    epoch_batches = math.ceil(len(dataset) / batch_size)  # type: ignore[arg-type]
    if epoch_batches == 0:
        raise ValueError("the online dataset is empty")
    to_time = epoch_batches if max_batches is None else min(max_batches, epoch_batches)

    torch.manual_seed(seed)
    loader = DataLoader(
        _Augmented(dataset, train_transform(image_size)),
        batch_size=batch_size,
        shuffle=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(seed),
    )
    head: nn.Linear | None = None
    optimizer: torch.optim.Optimizer | None = None
    criterion = nn.CrossEntropyLoss()

    cores = num_cores or torch.get_num_threads()

    def step(it: Iterator) -> None:
        nonlocal head, optimizer
        # Per-image tensor ops and a 64-row linear head are far too small for a thread pool:
        # on a busy machine 2 threads made ToTensor + Normalize 30x slower than 1. One thread,
        # as in a DataLoader worker; the backbone alone gets every core.
        with torch_threads(1):
            x, y = next(it)
        n = x.shape[0]
        if n < batch_size:
            x = torch.cat([x, x.new_zeros((batch_size - n, *x.shape[1:]))])
        with torch_threads(cores), torch.inference_mode():
            f = features(x)
        with torch_threads(1):
            f = f[:n].reshape(n, -1).clone()
            if head is None:
                head = nn.Linear(f.shape[1], num_classes)
                optimizer = torch.optim.SGD(
                    head.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4
                )
            loss = criterion(head(f), y % num_classes)
            optimizer.zero_grad(set_to_none=True)  # type: ignore[union-attr]
            loss.backward()
            optimizer.step()  # type: ignore[union-attr]

    seconds: list[float] = []
    it = iter(loader)
    for _ in range(warmup_batches):
        try:
            step(it)
        except StopIteration:
            it = iter(loader)
            step(it)
    it = iter(loader)  # the timed epoch starts from a fresh shuffle
    while len(seconds) < to_time:
        start = time.perf_counter()
        step(it)
        seconds.append(time.perf_counter() - start)
    median = float(np.median(seconds))
    extrapolated = to_time < epoch_batches
    total = epoch_batches * median if extrapolated else float(sum(seconds))
    return EpochTiming(
        seconds=total,
        median_batch_s=median,
        timed_batches=len(seconds),
        epoch_batches=epoch_batches,
        extrapolated=extrapolated,
    )


# ------------------------------------------------------------------------------- environment


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def deepsparse_isa() -> str:
    """The instruction set DeepSparse runs with, e.g. ``"avx512,vnni"`` or ``"avx2"``."""
    arch = _deepsparse().cpu.cpu_architecture()
    return arch.isa + (",vnni" if arch.vnni else "")


def physical_cores() -> int:
    """Physical cores DeepSparse may use in this process."""
    return int(_deepsparse().cpu.cpu_architecture().num_available_physical_cores)


def environment(num_cores: int) -> dict[str, Any]:
    """Facts a speed row needs to be compared with another machine's."""
    import onnxruntime

    ds = _deepsparse()
    return {
        C.CPU_MODEL: cpu_model(),
        C.NUM_CORES: num_cores,
        C.DEEPSPARSE_ISA: deepsparse_isa(),
        C.DEEPSPARSE_VERSION: ds.__version__,
        C.ONNXRUNTIME_VERSION: onnxruntime.__version__,
        C.TORCH_VERSION: torch.__version__,
        C.HOSTNAME: socket.gethostname(),
    }


# ------------------------------------------------------------------------------- speed trial


@dataclass(frozen=True)
class SpeedSpec:
    """One speed trial: a backbone at one sparsity, timed against its dense references.

    Attributes:
        arch: registered architecture.
        method: label of the sparse model's method (``"random_uniform"`` for random weights).
        sparsity: target sparsity in percent (int, 0-99); with random weights the backbone is
            pruned to it by magnitude (``profile``); with ``load_model`` it is a label.
        profile: where random weights' zeros go, one of ``PRUNE_PROFILES`` (``prune_random``);
            ignored for trained weights, which keep their own.
        checkpoint: a sparse checkpoint file (any ``trainables.checkpoints`` format) of
            ``arch``; its weights are timed as they are (``weights="trained"``).
        load_model: builds the trained sparse model (classifier included or not), instead of
            ``checkpoint``. Must pickle (cloudpickle) to travel to a Ray actor. With neither,
            random weights are pruned to ``sparsity`` (``weights="random"``).
        dense_model: builds the dense reference model; ``None`` = fresh random weights of
            ``arch`` (dense kernels do not depend on values).
        image_size: input side; ``None`` = the architecture's input size.
        batch: batch size of the batched timings (the ``*_b64`` columns; ``batch`` says which).
        warmup, reps: untimed and timed repetitions per runtime, interleaved.
        num_cores: cores for every runtime; ``None`` = all physical cores of the process's
            machine (the speed pool passes the CPUs its actor holds).
        online_dataset: builds the dataset of the online epoch, yielding raw
            ``(PIL image, label)``; ``None`` = ``online_images`` synthetic images.
        online_dataset_name: the ``dataset`` column of the row.
        online_images: size of the synthetic online dataset (defines the epoch).
        online_batches: batches timed per online epoch (``None``: the whole epoch); the epoch
            time is extrapolated from their median when fewer than the epoch.
        online_warmup: untimed batches before each online epoch.
        online_baselines: also time the online epoch with the dense backbone in ONNX Runtime
            and in PyTorch.
        check_atol: tolerance of the DeepSparse vs PyTorch output check (relative to scale).
        seed: seeds random weights, inputs and the online epoch.
        work_dir: where the ONNX files go; ``None`` = a temporary folder removed afterwards.
        trial_id: copied into the result row.
    """

    arch: str
    method: str
    sparsity: int
    profile: str = "uniform"
    checkpoint: str | None = None
    load_model: Callable[[], nn.Module] | None = None
    dense_model: Callable[[], nn.Module] | None = None
    image_size: int | None = None
    batch: int = 64
    warmup: int = 2
    reps: int = 10
    num_cores: int | None = None
    online_dataset: Callable[[], Dataset] | None = None
    online_dataset_name: str = "synthetic"
    online_images: int = 64 * 20
    online_batches: int | None = 5
    online_warmup: int = 1
    online_baselines: bool = True
    check_atol: float = 1e-3
    seed: int = 0
    work_dir: str | None = None
    trial_id: str | None = None

    def __post_init__(self) -> None:
        if self.arch not in models.ARCHITECTURES:
            raise ValueError(
                f"SpeedSpec.arch {self.arch!r} unknown; known: {models.ARCHITECTURES.names()}"
            )
        if not isinstance(self.sparsity, int) or not 0 <= self.sparsity < 100:
            raise ValueError(
                f"SpeedSpec.sparsity must be an int percent in 0..99, got {self.sparsity!r}"
            )
        if self.batch < 1 or self.online_images < 1:
            raise ValueError(
                f"SpeedSpec.batch and online_images must be >= 1, got {self.batch}, "
                f"{self.online_images}"
            )
        if self.num_cores is not None and self.num_cores < 1:
            raise ValueError(f"SpeedSpec.num_cores must be >= 1 or None, got {self.num_cores}")
        if self.checkpoint is not None and self.load_model is not None:
            raise ValueError("SpeedSpec: give checkpoint or load_model, not both")
        if self.profile not in PRUNE_PROFILES:
            raise ValueError(
                f"SpeedSpec.profile must be one of {PRUNE_PROFILES}, got {self.profile!r}"
            )
        _check_reps(self.warmup, self.reps)

    @property
    def weights(self) -> str:
        return "random" if self.load_model is None and self.checkpoint is None else "trained"

    @property
    def sparsity_profile(self) -> str:
        """``profile`` for random weights; ``"trained"`` when the weights bring their own."""
        return self.profile if self.weights == "random" else "trained"

    def label(self) -> str:
        weights = "trained" if self.weights == "trained" else f"random-{self.profile}"
        return f"{self.arch}/{self.method}/{self.sparsity}/{weights}"


def _random_model(arch: str, seed: int) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return models.build_model(arch, 1000)


def _as_backbone(model: nn.Module, arch: str) -> nn.Module:
    """The feature backbone whether or not ``model`` still has its classifier."""
    if isinstance(getattr(model, models.classifier_name(arch), None), nn.Identity):
        return model.eval()
    return models.backbone(model, arch).eval()


def _load_checkpoint_model(path: str, arch: str) -> nn.Module:
    # Imported here: the checkpoint module is only needed for trained weights.
    from trainables.checkpoints import build_backbone_model, load_checkpoint

    ckpt = load_checkpoint(path, arch=arch)
    return build_backbone_model(ckpt, num_classes=ckpt.num_classes or 1000)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def speed_trial(spec: SpeedSpec) -> dict[str, Any]:
    """Export, compile, check and time one sparse backbone against its dense references.

    Everything is measured in this one call, side by side: DeepSparse sparse at batch 1 and
    ``spec.batch``; DeepSparse, ONNX Runtime and PyTorch dense at ``spec.batch``; online
    linear-finetuning epochs with the sparse and dense backbones in DeepSparse (and the dense
    one in ONNX Runtime and PyTorch). Outputs of each compiled engine are checked against
    PyTorch first.

    Returns:
        A flat results row: the speed columns of ``reports.columns`` plus environment facts
        (``cpu_model``, ``num_cores``, ``deepsparse_isa``, versions, ``hostname``).
    """
    size = spec.image_size or models.input_size(spec.arch)
    cores = min(spec.num_cores or physical_cores(), physical_cores())
    dense_full = spec.dense_model() if spec.dense_model else _random_model(spec.arch, spec.seed)
    dense = _as_backbone(dense_full, spec.arch)
    if spec.load_model is not None:
        sparse = _as_backbone(spec.load_model(), spec.arch)
    elif spec.checkpoint is not None:
        sparse = _as_backbone(_load_checkpoint_model(spec.checkpoint, spec.arch), spec.arch)
    else:
        sparse = prune_random(dense, spec.sparsity / 100, seed=spec.seed, profile=spec.profile)

    with contextlib.ExitStack() as stack:
        if spec.work_dir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="speed-")))
        else:
            work = Path(spec.work_dir)
        tag = f"{spec.arch}-{spec.method}-{spec.sparsity}-{spec.weights}-{spec.seed}"
        sparse_onnx = export_backbone_onnx(sparse, spec.arch, work / f"{tag}.onnx", size)
        dense_onnx = export_backbone_onnx(dense, spec.arch, work / f"{spec.arch}-dense.onnx", size)
        measured = onnx_sparsity(sparse_onnx)
        share = macs_share(sparse, size)

        batches = sorted({1, spec.batch})
        sparse_engines = {b: compile_deepsparse(sparse_onnx, b, cores) for b in batches}
        dense_engine = compile_deepsparse(dense_onnx, spec.batch, cores)
        with torch_threads(cores):
            for engine in sparse_engines.values():
                check_outputs_match(sparse, sparse_onnx, engine, spec.check_atol, spec.seed)
            check_outputs_match(dense, dense_onnx, dense_engine, spec.check_atol, spec.seed)
        ort = onnxruntime_session(dense_onnx, cores)

        t = inference_speed(
            sparse_engines=sparse_engines,
            dense_engine=dense_engine,
            ort_session=ort,
            dense_model=dense,
            image_size=size,
            batch=spec.batch,
            warmup=spec.warmup,
            reps=spec.reps,
            num_cores=cores,
            seed=spec.seed,
        )

        if spec.online_dataset is not None:
            online = spec.online_dataset()
        else:
            online = SyntheticImages(
                spec.online_images, eval_resize_size(size), ONLINE_NUM_CLASSES, spec.seed
            )
        epoch_kwargs = dict(
            dataset=online,
            num_classes=ONLINE_NUM_CLASSES,
            batch_size=spec.batch,
            max_batches=spec.online_batches,
            image_size=size,
            warmup_batches=spec.online_warmup,
            num_cores=cores,
            seed=spec.seed,
        )
        epoch_sparse = online_linear_epoch(sparse_engines[spec.batch], **epoch_kwargs)
        epoch_dense = online_linear_epoch(dense_engine, **epoch_kwargs)
        epoch_ort = epoch_torch = None
        if spec.online_baselines:
            epoch_ort = online_linear_epoch(onnxruntime_features(ort), **epoch_kwargs)
            epoch_torch = online_linear_epoch(dense, **epoch_kwargs)

    sparse_b = t[f"deepsparse_b{spec.batch}"]
    row: dict[str, Any] = {
        C.TRIAL_ID: spec.trial_id,
        C.MODE: "speed",
        C.STATUS: "finished",
        C.ARCH: spec.arch,
        C.METHOD: spec.method,
        C.SPARSITY: spec.sparsity,
        C.DATASET: spec.online_dataset_name,
        C.SEED: spec.seed,
        C.ACCURACY: float("nan"),
        C.WEIGHTS: spec.weights,
        C.SPARSITY_MEASURED: measured,
        C.SPARSITY_PROFILE: spec.sparsity_profile,
        C.MACS_SHARE: share,
        C.BATCH: spec.batch,
        C.IMAGE_SIZE: size,
        C.REPS: spec.reps,
        C.DS_MS_B1: t["deepsparse_b1"].median_ms,
        C.DS_MS_B64: sparse_b.median_ms,
        C.DS_DENSE_MS_B64: t["deepsparse_dense"].median_ms,
        C.ORT_DENSE_MS_B64: t["onnxruntime_dense"].median_ms,
        C.TORCH_DENSE_MS_B64: t["torch_dense"].median_ms,
        C.SPEEDUP_INFERENCE: _ratio(t["deepsparse_dense"].median_ms, sparse_b.median_ms),
        C.SPEEDUP_VS_ORT: _ratio(t["onnxruntime_dense"].median_ms, sparse_b.median_ms),
        C.SPEEDUP_VS_TORCH: _ratio(t["torch_dense"].median_ms, sparse_b.median_ms),
        C.EPOCH_TIME_S: epoch_sparse.seconds,
        C.DENSE_EPOCH_TIME_S: epoch_dense.seconds,
        C.ORT_DENSE_EPOCH_TIME_S: epoch_ort.seconds if epoch_ort else float("nan"),
        C.TORCH_DENSE_EPOCH_TIME_S: epoch_torch.seconds if epoch_torch else float("nan"),
        C.SPEEDUP_EPOCH: _ratio(epoch_dense.seconds, epoch_sparse.seconds),
        C.SPEEDUP_EPOCH_VS_ORT: (
            _ratio(epoch_ort.seconds, epoch_sparse.seconds) if epoch_ort else float("nan")
        ),
        C.SPEEDUP_EPOCH_VS_TORCH: (
            _ratio(epoch_torch.seconds, epoch_sparse.seconds) if epoch_torch else float("nan")
        ),
        C.EPOCH_BATCHES: epoch_sparse.epoch_batches,
        C.EPOCH_TIMED_BATCHES: epoch_sparse.timed_batches,
        C.EPOCH_EXTRAPOLATED: epoch_sparse.extrapolated,
    }
    for key, col in (
        ("deepsparse_b1", C.DS_MS_B1),
        (f"deepsparse_b{spec.batch}", C.DS_MS_B64),
        ("deepsparse_dense", C.DS_DENSE_MS_B64),
        ("onnxruntime_dense", C.ORT_DENSE_MS_B64),
        ("torch_dense", C.TORCH_DENSE_MS_B64),
    ):
        row[col + C.P10_SUFFIX] = t[key].p10_ms
        row[col + C.P90_SUFFIX] = t[key].p90_ms
    row.update(environment(cores))
    return row


__all__ = [
    "EpochTiming",
    "SpeedSpec",
    "SyntheticImages",
    "TimingStats",
    "check_outputs_match",
    "compile_deepsparse",
    "cpu_model",
    "deepsparse_isa",
    "export_backbone_onnx",
    "inference_speed",
    "macs_share",
    "onnx_sparsity",
    "onnxruntime_features",
    "online_linear_epoch",
    "PRUNE_PROFILES",
    "prune_random",
    "speed_trial",
    "time_fn",
    "time_interleaved",
]
