import pytest

from trainables.datasets import DATASETS, build_dataset, dataset_info

EMBEDDED = [e.name for e in DATASETS if e.meta.get("builtin")]


def test_expected_tasks_are_registered():
    assert {"digits", "mnist", "textures", "lfw_faces"} <= set(EMBEDDED)
    specialized = [n for n in EMBEDDED if dataset_info(n).group == "specialized"]
    assert len(specialized) >= 2


# What every dataset yields (CHW float tensors, int labels of the declared classes) is checked
# for these too by the DATASETS contract in test_datasets.py.
@pytest.mark.parametrize("name", EMBEDDED)
def test_task_is_small_offline_and_trains_on_every_class(name, tmp_path):
    info = dataset_info(name)
    assert info.metric in ("top1", "mean_per_class") and "built in" in info.layout
    train = build_dataset(name, tmp_path / "ignored", "train", None)
    test = build_dataset(name, None, "test", None)
    # Small enough for a laptop; test sets of 1,000+ where a task can make them (one image
    # of a 480-image test set was 0.2 points: most of the seed spread).
    assert 0 < len(train) <= 2000 and 0 < len(test) <= 1200
    assert sorted(set(train.labels.tolist())) == list(range(info.classes))
    assert set(test.labels.tolist()) <= set(range(info.classes))


@pytest.mark.parametrize("name", EMBEDDED)
def test_split_is_deterministic(name):
    first = build_dataset(name, None, "train", None)
    again = build_dataset(name, None, "train", None)
    assert first.labels[:20].tolist() == again.labels[:20].tolist()
    assert first[0][0].tobytes() == again[0][0].tobytes()
    assert first[0][0].mode == "RGB" and min(first[0][0].size) >= 32
