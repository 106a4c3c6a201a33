"""One catalog of the methods, architectures and datasets a study may name.

Each entry holds a key (what study files, trial ids and the results table write), its label
(how the paper writes it) and the facts that need no torch: a method's family, an
architecture's input size, a dataset's classes, metric and group, and the other spellings
result tables use. The study schema, the registries and the reports all read these entries,
so a name is added or changed in one place; a registry adds only what its builder knows.

Readers look ``CATALOG`` up when they run, not at import, so a test can put a copy with one
entry more in its place (``dataclasses.replace(CATALOG, methods=(*CATALOG.methods, m))``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.errors import UnknownName

# The paper's method families (Section 2.1, and Appendix J's channel-pruned models), in the
# order reports show them; a study may name a family of its own.
DENSE = "dense"
PROGRESSIVE = "progressive"
REGULARIZATION = "regularization"
LOTTERY = "lottery"
STRUCTURED = "structured"
FAMILIES = (DENSE, PROGRESSIVE, REGULARIZATION, LOTTERY, STRUCTURED)
FAMILY_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")  # a study's own family: a plain name

# The paper's two kinds of downstream task (Section 4.1).
GENERAL = "general"
SPECIALIZED = "specialized"
GROUPS = (GENERAL, SPECIALIZED)

# How a dataset is scored: top-1, or the mean of the per-class accuracies (Table 2).
TOP1 = "top1"
MEAN_PER_CLASS = "mean_per_class"
METRICS = (TOP1, MEAN_PER_CLASS)

# A dataset named "imagefolder:<path>" is a folder of the user's own class folders.
IMAGEFOLDER_PREFIX = "imagefolder:"


@dataclass(frozen=True)
class MethodFacts:
    """A pruning method (or the dense baseline).

    ``made_here``: the tiny study's upstream can make its backbones (the dense one by
    pretraining, the others by a module of ``trainables.pruning``); False for methods known
    only from checkpoint files (AMC). ``aliases``: other spellings in result tables.
    """

    key: str
    label: str
    family: str
    made_here: bool = True
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArchFacts:
    """An architecture: its label and the image side it is built for."""

    key: str
    label: str
    input_size: int = 224


@dataclass(frozen=True)
class DatasetFacts:
    """A downstream dataset.

    ``paper``: one of the paper's Table 2 datasets, which reports recognise in any table by
    their key, label or ``aliases`` (spellings other tables use); the built-in tasks are
    recognised by their rows' own ``group``.
    """

    key: str
    label: str
    classes: int
    metric: str
    group: str
    paper: bool = True
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Catalog:
    """The three tables, in the order studies, registries and reports list them.

    Compared by identity (``eq=False``), so readers may cache what they derive per catalog.
    """

    methods: tuple[MethodFacts, ...]
    archs: tuple[ArchFacts, ...]
    datasets: tuple[DatasetFacts, ...]

    def __post_init__(self) -> None:
        for kind, table in (("method", self.methods), ("architecture", self.archs),
                            ("dataset", self.datasets)):
            keys = [e.key for e in table]
            repeated = sorted({k for k in keys if keys.count(k) > 1})
            if repeated:
                raise ValueError(f"catalog: {kind} {repeated[0]!r} is listed twice")
        for m in self.methods:
            if not FAMILY_NAME.fullmatch(m.family):
                raise ValueError(f"catalog: method {m.key!r} has family {m.family!r}; "
                                 f"expected a plain lower-case name such as {FAMILIES[1]}")
        for d in self.datasets:
            if d.metric not in METRICS or d.group not in GROUPS:
                raise ValueError(f"catalog: dataset {d.key!r}: metric must be one of {METRICS} "
                                 f"and group one of {GROUPS}, got {d.metric!r}, {d.group!r}")

    def method(self, key: str) -> MethodFacts:
        return _find("method", self.methods, key)

    def arch(self, key: str) -> ArchFacts:
        return _find("architecture", self.archs, key)

    def dataset(self, key: str) -> DatasetFacts:
        return _find("dataset", self.datasets, key)

    def upstream_methods(self) -> tuple[str, ...]:
        """Keys of the methods an upstream study can make, the dense baseline first."""
        return tuple(m.key for m in self.methods if m.made_here)


def _find(kind: str, table: tuple, key: str):
    for entry in table:
        if entry.key == key:
            return entry
    raise UnknownName(f"unknown {kind} {key!r} (not in common.catalog); known: "
                      f"{', '.join(e.key for e in table)}")


def _fine(key: str, classes: int) -> DatasetFacts:
    """A procedural fine-grained task: a stand-in for the paper's specialized datasets."""
    return DatasetFacts(key, key, classes, MEAN_PER_CLASS, SPECIALIZED, paper=False)


CATALOG = Catalog(
    methods=(
        MethodFacts("dense", "Dense", DENSE),
        MethodFacts("gmp", "GMP", PROGRESSIVE, aliases=("gradual magnitude pruning",)),
        MethodFacts("woodfisher", "WoodFisher", PROGRESSIVE, aliases=("wf",)),
        MethodFacts("acdc", "AC/DC", REGULARIZATION),
        MethodFacts("str", "STR", REGULARIZATION),
        MethodFacts("rigl_erk1x", "RigL ERK 1x", REGULARIZATION),
        MethodFacts("rigl_erk5x", "RigL ERK 5x", REGULARIZATION),
        MethodFacts("lth_t", "LTH-T", LOTTERY, aliases=("lth",)),
        # second-order, progressive like WoodFisher (the paper: MobileNetV1 only)
        MethodFacts("mfac", "M-FAC", PROGRESSIVE),
        MethodFacts("amc", "AMC", STRUCTURED, made_here=False),
    ),
    archs=(
        ArchFacts("resnet18", "ResNet18"),
        ArchFacts("resnet34", "ResNet34"),
        ArchFacts("resnet50", "ResNet50"),
        ArchFacts("resnet_tiny", "resnet_tiny", input_size=32),  # not the paper's: its key
        ArchFacts("mobilenet_v1", "MobileNetV1"),
        ArchFacts("mobilenet_tiny", "mobilenet_tiny", input_size=32),  # not the paper's: its key
    ),
    datasets=(
        # The paper's Table 2, labelled as its Table 1 heads them. Caltech-101 without its
        # background class, as the reference code; caltech101_background keeps it.
        DatasetFacts("sun397", "SUN397", 397, TOP1, GENERAL, aliases=("SUN", "SUN397 dataset")),
        DatasetFacts("aircraft", "Aircraft", 100, MEAN_PER_CLASS, SPECIALIZED,
                     aliases=("FGVC Aircraft", "FGVC-Aircraft-2013b", "aircrafts")),
        DatasetFacts("birdsnap", "Birds", 500, TOP1, SPECIALIZED, aliases=("birds",)),
        DatasetFacts("caltech101", "Caltech-101", 101, MEAN_PER_CLASS, GENERAL,
                     aliases=("Caltech101 dataset",)),
        DatasetFacts("caltech101_background", "Caltech-101 with background", 102,
                     MEAN_PER_CLASS, GENERAL, aliases=("Caltech-102",)),
        DatasetFacts("caltech256", "Caltech-256", 257, MEAN_PER_CLASS, GENERAL),
        DatasetFacts("cars", "Cars", 196, TOP1, SPECIALIZED,
                     aliases=("Stanford Cars", "cars196", "Stanford Cars 196")),
        DatasetFacts("cifar10", "CIFAR-10", 10, TOP1, GENERAL),
        DatasetFacts("cifar100", "CIFAR-100", 100, TOP1, GENERAL),
        DatasetFacts("dtd", "DTD", 47, TOP1, GENERAL,
                     aliases=("Describable Textures", "Describable Textures Dataset",
                              "textures")),
        DatasetFacts("flowers", "Flowers", 102, MEAN_PER_CLASS, SPECIALIZED,
                     aliases=("Flowers 102", "Oxford Flowers", "Oxford Flowers 102",
                              "Oxford 102 Flowers", "Oxford 102")),
        DatasetFacts("food101", "Food-101", 101, TOP1, SPECIALIZED,
                     aliases=("food", "Food101 dataset")),
        DatasetFacts("pets", "Pets", 37, MEAN_PER_CLASS, SPECIALIZED,
                     aliases=("Oxford Pets", "Oxford-IIIT Pets", "Oxford-IIIT Pet",
                              "Oxford-IIIT", "pet", "IIIT Pets")),
        # Built-in tasks (trainables.datasets.embedded): small, offline, not the paper's.
        DatasetFacts("digits", "digits", 10, TOP1, GENERAL, paper=False),
        DatasetFacts("mnist", "mnist", 10, TOP1, GENERAL, paper=False),
        DatasetFacts("textures", "textures", 6, MEAN_PER_CLASS, GENERAL, paper=False),
        # face vs background is a coarse distinction, not a fine-grained one: general
        DatasetFacts("lfw_faces", "lfw_faces", 2, MEAN_PER_CLASS, GENERAL, paper=False),
        _fine("fine_stripe_angle", 12),
        _fine("fine_shape_detail", 12),
        _fine("fine_stripe_period", 10),
        _fine("fine_hue", 12),
    ),
)
