import numpy as np
import pytest
import torch

from trainables.training.metrics import (
    METRICS,
    compute_metric,
    mean_per_class_accuracy,
    top1_accuracy,
)

# 3 classes, unbalanced test set (class 0: 4 samples, class 1: 2, class 2: 1):
#   class 0: preds 0,0,0,1 -> 3/4 = 75 %
#   class 1: preds 1,0     -> 1/2 = 50 %
#   class 2: preds 2       -> 1/1 = 100 %
# mean per class = (75 + 50 + 100) / 3 = 75 %;  top-1 = 5 correct / 7 = 71.428... %
TARGETS = [0, 0, 0, 0, 1, 1, 2]
PREDS = [0, 0, 0, 1, 1, 0, 2]


def test_mean_per_class_hand_computed():
    assert mean_per_class_accuracy(PREDS, TARGETS, 3) == pytest.approx(75.0)


def test_top1_hand_computed():
    assert top1_accuracy(PREDS, TARGETS) == pytest.approx(500 / 7)


def test_classes_absent_from_test_set_are_not_averaged():
    # class 3 never occurs in the targets: it is left out, not counted as 0 %
    assert mean_per_class_accuracy(PREDS, TARGETS, 5) == pytest.approx(75.0)


def test_accepts_torch_tensors_and_logits():
    logits = torch.nn.functional.one_hot(torch.tensor(PREDS), 3).float()
    assert compute_metric("top1", logits, torch.tensor(TARGETS), 3) == pytest.approx(500 / 7)
    assert compute_metric("mean_per_class", np.array(PREDS), np.array(TARGETS), 3) == (
        pytest.approx(75.0)
    )


def test_registry_names_and_unknown_metric():
    assert set(METRICS.names()) == {"top1", "mean_per_class"}
    with pytest.raises(ValueError, match="top1.*mean_per_class|mean_per_class.*top1"):
        compute_metric("top5", PREDS, TARGETS, 3)


def test_bad_inputs():
    with pytest.raises(ValueError, match="length"):
        top1_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="zero samples"):
        top1_accuracy([], [])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        mean_per_class_accuracy([0, 3], [0, 3], 3)
