"""Which failures of a trial are results and which are raised (``trial.run_trial``).

Only bad input (``common.errors.BadInput``) becomes a ``status="failed"`` result, which Tune
never retries. Out of memory, a killed DataLoader worker, a stale NFS handle and bugs are
raised, so Tune retries the trial and the sweep records what is left as an error. No Ray here:
``tests/orchestrator/test_failures.py`` checks the retries in a Tune run.
"""

from __future__ import annotations

import errno
import pickle
from pathlib import Path

import pytest
import torch

from common.errors import BadInput, Diverged, MissingInput, UnknownName, machine_error
from search_spaces.recipe import Recipe
from search_spaces.schema import StudyError
from search_spaces.trial import TrialSpec
from trainables import checkpoints, datasets, models
from trainables.datasets import files as dataset_files
from trainables.entry import full, ray_train, trial, upstream
from trainables.entry.context import FullPlan, TrialContext

SPEC = TrialSpec(stage="linear", method="dense", sparsity=0, arch="resnet_tiny",
                 dataset="digits", seed=0, recipe=Recipe(epochs=1), num_classes=3,
                 checkpoint="x.pth", checkpoint_hash="h")
FULL = TrialSpec(**{**SPEC.__dict__, "stage": "full"})
CTX = TrialContext(out_dir="/nonexistent")
RAY_TRAIN = TrialContext(out_dir="/nonexistent", full_plan=FullPlan(in_trial=False))


def _stage_raising(exc: BaseException):
    def stage(spec, ctx, report):
        raise exc
    return stage


BAD_INPUT = [
    BadInput("checkpoint x.pth could not be read (truncated)"),
    MissingInput("checkpoint file x.pth does not exist"),
    Diverged("training loss is nan in epoch 1: the run diverged"),
    UnknownName("unknown dataset 'cifar10'; known: digits"),
    datasets.DatasetNotFoundError("dataset 'dtd': expected /data/dtd, which does not exist"),
    StudyError("modes.linear.recipe.lr: expected a positive number, got 0"),
]
NOT_BAD_INPUT = [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("DataLoader worker (pid 123) is killed by signal: Killed."),
    OSError(errno.ESTALE, "Stale file handle"),
    OSError(errno.ENOSPC, "could not write features/x.npz: No space left on device"),
    TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'"),
    AttributeError("'NoneType' object has no attribute 'state_dict'"),
    NameError("name 'modle' is not defined"),
    KeyError("fc.weight"),  # a bug's KeyError is no unknown name of a study
    ValueError("too many values to unpack"),  # nor is a library's ValueError
    FloatingPointError("overflow"),
]


@pytest.mark.parametrize("exc", BAD_INPUT, ids=lambda e: type(e).__name__)
def test_bad_input_is_a_failed_result_with_its_message(exc):
    out = trial.run_trial(_stage_raising(exc), SPEC, CTX, report=lambda r: None)
    assert out["status"] == "failed" and out["final"] is True
    assert out["error"].startswith(f"{type(exc).__name__}: {exc} (at test_trial.py:")


@pytest.mark.parametrize("exc", NOT_BAD_INPUT, ids=lambda e: type(e).__name__)
def test_anything_else_is_raised_for_tune_to_retry(exc):
    with pytest.raises(type(exc)) as info:
        trial.run_trial(_stage_raising(exc), SPEC, CTX, report=lambda r: None)
    assert info.value is exc


def test_the_subclasses_keep_the_builtin_types_callers_catch():
    assert issubclass(BadInput, ValueError)
    assert issubclass(MissingInput, FileNotFoundError)
    assert issubclass(Diverged, FloatingPointError)
    assert issubclass(UnknownName, KeyError)
    assert str(UnknownName("unknown dataset 'x'")) == "unknown dataset 'x'"  # not quoted
    for cls in (BadInput, MissingInput, Diverged, UnknownName, datasets.DatasetNotFoundError):
        # A Ray Train worker's exception travels pickled, a DataLoader worker's is rebuilt from
        # its type and message: both must give the same type back.
        again = pickle.loads(pickle.dumps(cls("message")))
        assert type(again) is cls and str(again) == "message"
        assert type(cls(str(cls("message")))) is cls


# ---------------------------------------------------------------------------------------
# Where bad input is raised


def test_the_readers_raise_bad_input(tmp_path):
    with pytest.raises(MissingInput, match="does not exist"):
        checkpoints.load_checkpoint(tmp_path / "none.pth")
    torch.save({"w": torch.zeros(100)}, tmp_path / "cut.pth")
    data = (tmp_path / "cut.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match="could not be read"):
        checkpoints.load_checkpoint(tmp_path / "cut.pth")
    with pytest.raises(UnknownName, match="known: "):
        models.build_model("resnet_huge", 10)
    with pytest.raises(UnknownName):
        datasets.build_dataset("imagenet21k", None, "train", None)
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        datasets.build_dataset(f"imagefolder:{tmp_path / 'nothing'}", None, "train", None)
    assert isinstance(info.value, MissingInput)
    with pytest.raises(BadInput, match="lr must be > 0"):
        Recipe(epochs=1, lr=0)


def test_a_machine_os_error_while_reading_is_not_bad_input(tmp_path, monkeypatch):
    """A stale NFS handle while reading a checkpoint or an image is the machine's fault: it
    propagates (Tune retries) instead of calling the file corrupt for good."""
    path = tmp_path / "x.pth"
    path.write_bytes(b"PK\x03\x04whatever")  # begins like a torch file; torch.load is mocked

    def stale(*args, **kwargs):
        raise OSError(errno.ESTALE, "Stale file handle")

    monkeypatch.setattr(torch, "load", stale)
    with pytest.raises(OSError) as info:
        checkpoints.load_checkpoint(path)
    assert not isinstance(info.value, BadInput) and info.value.errno == errno.ESTALE

    monkeypatch.setattr(dataset_files.Image, "open", stale)
    with pytest.raises(OSError) as info:
        dataset_files.open_rgb(Path("/data/a.png"))
    assert not isinstance(info.value, BadInput)

    def truncated(*args, **kwargs):
        raise OSError("image file is truncated")  # PIL's: no errno, the file's fault

    monkeypatch.setattr(dataset_files.Image, "open", truncated)
    with pytest.raises(datasets.DatasetError, match="cannot read image file /data/a.png"):
        dataset_files.open_rgb(Path("/data/a.png"))


def test_machine_error_reads_the_errno():
    assert machine_error(OSError(errno.EIO, "Input/output error"))
    assert machine_error(OSError(errno.ESTALE, "Stale file handle"))
    assert not machine_error(OSError("cannot identify image file"))
    assert not machine_error(FileNotFoundError(errno.ENOENT, "No such file"))
    assert not machine_error(ValueError("x"))


# ---------------------------------------------------------------------------------------
# Ray Train: the workers' exceptions come wrapped


class WorkerGroupError(Exception):
    """Stands in for ray.train.WorkerGroupError: a message and the failures by rank."""

    def __init__(self, worker_failures: dict[int, BaseException]) -> None:
        super().__init__("Training failed due to worker errors")
        self.worker_failures = worker_failures


def _full_with(monkeypatch, raised: BaseException) -> None:
    def trainer(*args, **kwargs):
        raise raised

    monkeypatch.setattr(full, "load_backbone", lambda spec: None)  # checked up front
    monkeypatch.setattr(full, "trial_dataset", lambda *a: None)
    monkeypatch.setattr(ray_train, "run_full_finetune_trainer", trainer)


def test_bad_input_from_a_ray_train_worker_is_a_failed_result(monkeypatch):
    nan = Diverged("training loss is nan in epoch 1: the run diverged")
    # Rank 0 diverged; rank 1's collective then lost its peer.
    _full_with(monkeypatch, WorkerGroupError({0: nan, 1: RuntimeError("Connection closed")}))
    out = trial.run_trial(full.run_full, FULL, RAY_TRAIN, report=lambda r: None)
    assert out["status"] == "failed"
    assert out["error"].startswith("Diverged: training loss is nan in epoch 1")


@pytest.mark.parametrize("failures", [
    {0: torch.OutOfMemoryError("CUDA out of memory")},
    {0: RuntimeError("the actor died unexpectedly"), 1: RuntimeError("Connection closed")},
    {0: TypeError("a bug")},
    {},  # a controller error: nothing from the workers
], ids=["oom", "dead-worker", "bug", "controller"])
def test_anything_else_from_ray_train_is_raised_for_tune_to_retry(monkeypatch, failures):
    wrapped = WorkerGroupError(failures)
    _full_with(monkeypatch, wrapped)
    with pytest.raises(WorkerGroupError) as info:
        trial.run_trial(full.run_full, FULL, RAY_TRAIN, report=lambda r: None)
    assert info.value is wrapped


def test_a_bad_prune_setting_of_the_study_is_bad_input():
    from trainables.pruning import METHODS

    config = METHODS.get("gmp").meta["config"]
    with pytest.raises(BadInput, match=r"upstream.prune for 'gmp': .*steps must be >= 1"):
        upstream.prune_config(config, "gmp", {"steps": 0})
    with pytest.raises(BadInput, match="unknown key 'stepz'"):
        upstream.prune_config(config, "gmp", {"stepz": 1})


def test_an_lth_t_trial_puts_its_ticket_mask_on_the_dense_weights(tmp_path):
    """The ticket route (a file of torch.nn.utils.prune masks alone, convolutions only, as
    Chen et al. publish them): dense weights x mask, the classifier dense, sparsity over the
    ticket's layers."""
    torch.manual_seed(0)
    dense = models.build_model("resnet_tiny", 10)
    dense_path, ticket = tmp_path / "dense.pth", tmp_path / "lth_t_80_ticket.pth"
    checkpoints.save_reference_checkpoint(dense_path, dense, "resnet_tiny", "imagenet")
    masks = {}
    for name, p in dense.named_parameters():
        if name.endswith(".weight") and p.dim() == 4:
            m = (torch.rand_like(p) >= 0.8).float()
            masks[name.replace(".weight", ".weight_mask")] = m
    torch.save(masks, ticket)
    spec = TrialSpec(stage="linear", method="lth_t", sparsity=80, arch="resnet_tiny",
                     dataset="digits", seed=0, checkpoint=str(dense_path),
                     mask_checkpoint=str(ticket))
    ckpt = trial.load_backbone(spec)
    weights = dict(dense.state_dict())
    for key, m in masks.items():
        name = key.replace(".weight_mask", ".weight")
        assert torch.equal(ckpt.state_dict[name], weights[name] * m)
    assert torch.equal(ckpt.state_dict["fc.weight"], weights["fc.weight"])
    assert ckpt.sparsity == pytest.approx(80, abs=1)


def test_an_lth_t_trial_from_a_ticket_with_weights_uses_the_tickets_own_weights(tmp_path):
    """The reference code's LTH-T: the ticket file is the backbone (the grid names it as the
    trial's checkpoint, no mask source), its weight_orig * weight_mask and its BatchNorm,
    whatever the study's dense file holds."""
    from tests.trainables.checkpoints.samples import write_weight_ticket

    ticket = tmp_path / "lth_t_80_ticket.pth"
    want = write_weight_ticket(ticket)
    spec = TrialSpec(stage="full", method="lth_t", sparsity=80, arch="resnet_tiny",
                     dataset="digits", seed=0, checkpoint=str(ticket), num_classes=3)
    ckpt = trial.load_backbone(spec)
    net = checkpoints.build_backbone_model(ckpt, num_classes=3)
    weights = net.state_dict()
    for name, mask in want.masks.items():
        assert torch.equal(weights[name], want.orig[name] * mask), name
    for name in ("bn1.running_mean", "bn1.running_var", "bn1.weight", "layer1.0.bn2.bias"):
        assert torch.equal(weights[name], want.others[name]), name
    assert ckpt.sparsity == pytest.approx(want.sparsity)
    # full finetuning keeps the ticket's convolutions' masks fixed
    assert set(checkpoints.backbone_masks(ckpt)) == set(want.masks)


def test_full_finetuning_normalises_with_the_datasets_own_statistics_when_asked(tmp_path):
    import json

    from trainables.datasets import build_dataset
    from trainables.datasets.transforms import IMAGENET_MEAN, eval_transform

    ctx = TrialContext(out_dir=str(tmp_path))
    spec = TrialSpec(**{**FULL.__dict__, "image_size": 16,
                        "params": (("normalize", "dataset"),)})
    train = trial.trial_dataset(spec, ctx, "train", True)
    test = trial.trial_dataset(spec, ctx, "test", False)
    saved = json.loads((tmp_path / "data_stats" / "digits-16-bilinear.json").read_text())
    norm = train.transform.transforms[-1] if hasattr(train, "transform") else None
    norm = norm or train.inner.transform.transform.transforms[-1]
    assert tuple(norm.mean) == tuple(saved["mean"]) != IMAGENET_MEAN
    # the test split is kept as tensors: its images are the dataset's own statistics' ones
    own = build_dataset("digits", None, "test",
                        eval_transform(16, mean=saved["mean"], std=saved["std"]))
    assert torch.equal(test[3][0], own[3][0])
    plain = trial.trial_dataset(FULL, ctx, "test", False)  # no param: ImageNet's, as before
    imagenet = build_dataset("digits", None, "test", eval_transform(FULL.image_size))
    assert torch.equal(plain[3][0], imagenet[3][0])
    assert trial.protocol(spec) == {"epoch_selection": "metric", "normalize": "dataset"}


def test_throttled_reports_the_first_record_then_at_most_one_per_interval():
    now = [0.0]
    seen = []
    report = trial.throttled(seen.append, 1.0, clock=lambda: now[0])
    for t, epoch in ((0.0, 1), (0.3, 2), (0.9, 3), (1.0, 4), (1.5, 5), (2.6, 6)):
        now[0] = t
        report({"epoch": epoch})
    assert [r["epoch"] for r in seen] == [1, 4, 6]


def test_augment_batch_holds_the_split_as_uint8_with_the_trials_augmentation(tmp_path):
    """``training: {augment: batch}``: a built-in task's train split as one uint8 tensor,
    every image of it, augmented to the trial's size with its normalisation and mirror rule;
    a method read with bicubic resizing (RigL) is refused: roi_align is bilinear."""
    from trainables.datasets import build_dataset, dataset_info
    from trainables.datasets.batched import TensorImages

    ctx = TrialContext(out_dir=str(tmp_path))
    spec = TrialSpec(**{**FULL.__dict__, "image_size": 16,
                        "params": (("augment", "batch"), ("crop_scale", (0.6, 1.0)))})
    train = trial.trial_dataset(spec, ctx, "train", True)
    assert isinstance(train, TensorImages) and train.images.dtype == torch.uint8
    assert len(train) == len(build_dataset("digits", None, "train", None))
    assert train.augment.size == 16 and train.augment.scale == (0.6, 1.0)
    assert train.augment.hflip == dataset_info("digits", None).hflip is False
    assert train.augment(train.images[:4]).shape == (4, 3, 16, 16)
    assert not isinstance(trial.trial_dataset(spec, ctx, "test", False), TensorImages)
    bicubic = TrialSpec(**{**spec.__dict__, "interpolation": "bicubic"})
    with pytest.raises(BadInput, match="bicubic.*augment: image"):
        trial.trial_dataset(bicubic, ctx, "train", True)
