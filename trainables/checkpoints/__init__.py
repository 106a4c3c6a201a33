"""Upstream checkpoints: recognise a file's format, read it safely, clean it, fit it to an
architecture and check its sparsity; build a model from it, save one, and read LTH-T's masks.

The study's sparse backbones come from several sources (the reference study's own files,
plain torchvision state dicts, SparseML, the TensorFlow port of RigL, LTH tickets); each
format is one module of ``formats`` registered in ``FORMATS``. The modules, in the order a
file goes through them:

- ``reading``: sniff the file, then torch's weights-only reader or the safetensors package.
- ``formats``: which format the object is, and what its loader reads out of it.
- ``cleaning``: torchvision-style names, masks multiplied in, the classifier as a Linear.
- ``fitting``: the architecture (the reference's names understood) and what does not fit.
- ``loading``: ``load_checkpoint`` (all of the above, sparsity measured) and
  ``build_backbone_model``.
- ``mask_sources``: LTH-T's tickets and the dense weights under a borrowed mask.
- ``saving``: the reference's format, written atomically.
- ``stats``: fully pruned filters and the file's SHA-256.
- ``__main__``: ``python -m trainables.checkpoints FILE`` prints what a file holds.

The names below are the package's public face; import them from here.
"""

from __future__ import annotations

from trainables.checkpoints.cleaning import prunable_weight_names
from trainables.checkpoints.fitting import ARCH_ALIASES, resolve_arch
from trainables.checkpoints.formats import FORMATS, detect_format
from trainables.checkpoints.formats.base import StateDict
from trainables.checkpoints.loading import (
                                            SPARSITY_TOLERANCE,
                                            LoadedCheckpoint,
                                            backbone_masks,
                                            build_backbone_model,
                                            load_checkpoint,
)
from trainables.checkpoints.mask_sources import (
                                            MASKS_ONLY,
                                            load_mask_source,
                                            lth_transfer,
                                            mask_on_dense,
                                            ticket_holds_weights,
)
from trainables.checkpoints.saving import save_reference_checkpoint
from trainables.checkpoints.stats import file_sha256, filters_pruned_share, per_layer_filters_pruned

__all__ = [
    "ARCH_ALIASES", "FORMATS", "MASKS_ONLY", "SPARSITY_TOLERANCE", "LoadedCheckpoint",
    "StateDict", "backbone_masks", "build_backbone_model", "detect_format", "file_sha256",
    "filters_pruned_share", "load_checkpoint", "load_mask_source", "lth_transfer",
    "mask_on_dense", "per_layer_filters_pruned", "prunable_weight_names", "resolve_arch",
    "save_reference_checkpoint", "ticket_holds_weights",
]
