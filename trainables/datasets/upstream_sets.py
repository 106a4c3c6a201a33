"""Where Table 3's upstream validation sets go under the data root, and where to get them:
ImageNet val, its ReaL labels and ImageNetV2's three variants (each archive extracted as it
is). The checkpoint stage (``trainables.training.upstream_eval``) reads them from these places and
``python -m trainables.datasets --layouts`` prints them.
"""

from __future__ import annotations

from common.columns import ACCURACY_V2_VARIANTS

IMAGENET_VAL_LAYOUT = ("<data root>/imagenet/val/<wnid>/*.JPEG (1000 class folders, sorted "
                       "order = class index)")
REAL_LAYOUT = "<data root>/imagenet/real.json (google-research/reassessed-imagenet)"
V2_DIR = "imagenetv2"
# Each ImageNetV2 variant's results column -> the folder its archive extracts to.
V2_FOLDERS = dict(zip(ACCURACY_V2_VARIANTS, ("imagenetv2-matched-frequency-format-val",
                                             "imagenetv2-threshold0.7-format-val",
                                             "imagenetv2-top-images-format-val")))
V2_LAYOUT = (f"<data root>/{V2_DIR}/<variant folder>/<class index 0..999>/*.jpeg, the variant "
             f"folders {', '.join(V2_FOLDERS.values())} (each archive extracted as it is)")
#: The sets, where to get them and their layouts, as ``python -m trainables.datasets`` says it.
UPSTREAM_SETS = (
    "Table 3's upstream validation sets, each read when present: the ILSVRC2012 validation "
    "images (image-net.org, after registration), real.json of github.com/google-research/"
    "reassessed-imagenet, and ImageNetV2's three variants (huggingface.co/datasets/vaishaal/"
    "ImageNetV2); Table 3's ImageNetV2 is their mean, left empty unless all three are there"
    + "".join(f"\n    layout: {x}" for x in (IMAGENET_VAL_LAYOUT, REAL_LAYOUT)) + "".join(
        f"\n    layout: <data root>/{V2_DIR}/{folder}/<class index 0..999>/*.jpeg (ImageNetV2 "
        f"{ACCURACY_V2_VARIANTS[col]})" for col, folder in V2_FOLDERS.items()))
