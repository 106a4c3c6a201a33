"""Column names of the long results table: the only contract between the sweep and the reports.

In ``common`` because both sides name them: the trainables write rows (speed trials), the
orchestrator collects them, the reports read them.

One row per trial. ``mode`` says what the row measures:
- ``linear`` / ``full``: a transfer trial; ``accuracy`` is the dataset's metric (percent) at the
  best epoch, ``accuracy_last`` at the last epoch.
- ``upstream``: a checkpoint of the zoo (``dataset`` is the upstream dataset); carries
  ``accuracy`` (upstream validation), ``sparsity_measured`` and ``filters_pruned_share``.
- ``checkpoint``: one backbone before transfer (``dataset`` is its upstream dataset); carries
  ``accuracy`` (upstream validation top-1, empty when the validation set is not there),
  ``accuracy_real``, the three ImageNetV2 variants' ``accuracy_v2_*`` and their mean
  ``accuracy_v2`` (empty unless all three were measured), ``upstream_eval`` (one line: what
  was evaluated or why not), ``sparsity_measured``, ``filters_pruned_share`` and
  ``layer_stats_json``.
- ``speed``: a DeepSparse speed trial of one backbone; carries the timing columns, and the
  online runs' loader share and test accuracy (``accuracy`` itself stays empty).
The dense baseline is the rows with ``sparsity == 0``. Sparsity is in percent.
"""

# Values of ``mode`` (what a row measures; see above).
MODE_LINEAR = "linear"
MODE_FULL = "full"
MODE_UPSTREAM = "upstream"
MODE_CHECKPOINT = "checkpoint"
MODE_SPEED = "speed"
TRANSFER_MODES = (MODE_LINEAR, MODE_FULL)  # a study's ``modes``: the transfer trials' rows

# Required in every table the reports read.
METHOD = "method"
SPARSITY = "sparsity"
DATASET = "dataset"
MODE = "mode"
SEED = "seed"
ACCURACY = "accuracy"
REQUIRED = (METHOD, SPARSITY, DATASET, MODE, SEED, ACCURACY)

# Optional.
METHOD_LABEL = "method_label"  # how the study labels the method ("AC/DC" for key "acdc")
ARCH = "arch"
GROUP = "group"  # "general" | "specialized"
# a method's kind: "dense" | "progressive" | "regularization" | "lottery" | "structured", or a
# family a study names itself
FAMILY = "family"
# LTH-T only (Study.method_facts): "ticket weights" | "ticket mask on dense weights" |
# "mask from <method>" | "checkpoint file"
LTH_SOURCE = "lth_source"
STATUS = "status"  # "finished" | "failed"
ERROR = "error"
TRIAL_ID = "trial_id"
ACCURACY_LAST = "accuracy_last"
BEST_EPOCH = "best_epoch"
EPOCH_SELECTION = "epoch_selection"  # the reported epoch: "top1" | "metric" (best by) | "last"
NORMALIZE = "normalize"  # input mean/std of a transfer trial: "imagenet" | "dataset"
EPOCHS = "epochs"
LR = "lr"
TRAIN_TIME_S = "train_time_s"
SPARSITY_MEASURED = "sparsity_measured"  # percent, read back from the checkpoint
FILTERS_PRUNED_SHARE = "filters_pruned_share"  # fraction of conv filters that are all zero
# Checkpoint rows: {prunable weight: [sparsity %, fully pruned filters % (None: not a conv)]}
LAYER_STATS_JSON = "layer_stats_json"
ACCURACY_REAL = "accuracy_real"  # upstream top-1 with ImageNet's ReaL labels
# Upstream top-1 on ImageNetV2 as the paper's Table 3 reports it: the mean over its three
# variants, empty unless all three were measured (``upstream_eval`` then names the missing ones).
ACCURACY_V2 = "accuracy_v2"
ACCURACY_V2_MATCHED_FREQUENCY = "accuracy_v2_matched_frequency"
ACCURACY_V2_THRESHOLD07 = "accuracy_v2_threshold07"
ACCURACY_V2_TOP_IMAGES = "accuracy_v2_top_images"
# Each variant's column -> its name in ImageNetV2's release (Recht et al., 2019).
ACCURACY_V2_VARIANTS = {ACCURACY_V2_MATCHED_FREQUENCY: "matched-frequency",
                        ACCURACY_V2_THRESHOLD07: "threshold-0.7",
                        ACCURACY_V2_TOP_IMAGES: "top-images"}
UPSTREAM_EVAL = "upstream_eval"  # what the upstream accuracy was measured on, or why it was not
WEIGHTS = "weights"  # "trained" or "random" (speed trials on random pruned weights)
SPARSITY_PROFILE = "sparsity_profile"  # random weights: "uniform"/"global"; else "trained"
MACS_SHARE = "macs_share"  # nonzero multiply-adds / dense ones (1 / the ideal speed-up)

# Speed rows (mode == "speed"): times in ms per batch / s per epoch, medians over repetitions.
BATCH = "batch"
DS_MS_B1 = "deepsparse_ms_b1"
DS_MS_B64 = "deepsparse_ms_b64"
DS_DENSE_MS_B64 = "deepsparse_dense_ms_b64"
ORT_DENSE_MS_B64 = "onnxruntime_dense_ms_b64"
TORCH_DENSE_MS_B64 = "torch_dense_ms_b64"
SPEEDUP_INFERENCE = "speedup_inference"  # DeepSparse dense / DeepSparse sparse at batch 64
EPOCH_TIME_S = "epoch_time_s"  # online linear-finetuning epoch, sparse backbone
DENSE_EPOCH_TIME_S = "dense_epoch_time_s"
SPEEDUP_EPOCH = "speedup_epoch"
# Speed rows, more: speed-ups over the other dense runtimes, online epoch details, spread.
SPEEDUP_VS_ORT = "speedup_vs_onnxruntime"  # ONNX Runtime dense / DeepSparse sparse, batch 64
SPEEDUP_VS_TORCH = "speedup_vs_torch"  # PyTorch dense / DeepSparse sparse, batch 64
ORT_DENSE_EPOCH_TIME_S = "onnxruntime_dense_epoch_time_s"  # online epoch, ONNX Runtime dense
SPEEDUP_EPOCH_VS_ORT = "speedup_epoch_vs_onnxruntime"
TORCH_DENSE_EPOCH_TIME_S = "torch_dense_epoch_time_s"  # online epoch, PyTorch dense backbone
SPEEDUP_EPOCH_VS_TORCH = "speedup_epoch_vs_torch"
EPOCH_BATCHES = "epoch_batches"  # batches in the online epoch
EPOCH_TIMED_BATCHES = "epoch_timed_batches"  # batches actually timed
EPOCH_EXTRAPOLATED = "epoch_extrapolated"  # True: epoch = epoch_batches x median batch time
# The online runs (DeepSparse, sparse and dense): how they loaded data and what they learnt.
ONLINE_EPOCHS = "online_epochs"  # epochs the online runs trained; epoch times are their mean
LOADER_WORKERS = "loader_workers"  # DataLoader worker processes of the online runs
# seconds the training loop waited on the DataLoader / the epochs' time, in [0, 1]
LOADER_SHARE = "loader_share"  # sparse backbone's run
DENSE_LOADER_SHARE = "dense_loader_share"
# the online classifier's test accuracy (the dataset's metric, percent, at the epoch the linear
# mode's epoch_selection picks); empty without a test split (synthetic images)
ONLINE_ACCURACY = "online_accuracy"  # sparse backbone's run
DENSE_ONLINE_ACCURACY = "dense_online_accuracy"
ONLINE_ACCURACY_GAP = "online_accuracy_gap"  # sparse - dense, percentage points (Figure 4)
IMAGE_SIZE = "image_size"
REPS = "reps"
P10_SUFFIX = "_p10"  # appended to a *_ms_* column: 10th percentile over repetitions
P90_SUFFIX = "_p90"
# Where a speed row was measured.
CPU_MODEL = "cpu_model"
NUM_CORES = "num_cores"
DEEPSPARSE_ISA = "deepsparse_isa"  # e.g. "avx512,vnni"
DEEPSPARSE_VERSION = "deepsparse_version"
ONNXRUNTIME_VERSION = "onnxruntime_version"
TORCH_VERSION = "torch_version"
HOSTNAME = "hostname"
NODE_ID = "node_id"  # Ray node of the actor that ran the trial
# Provenance of every row (orchestrator.provenance): the sweep run that recorded it. A speed
# row's own CPU_MODEL, HOSTNAME, TORCH_VERSION and DEEPSPARSE_VERSION (the node that timed it)
# stand; every other row gets the recording driver's. Empty on rows recorded before they were.
PROJECT_VERSION = "project_version"  # sparse-transfer's version (pyproject.toml)
# "git:<commit>" (with "-dirty" when package files differ from it) in a git checkout, else
# "sha256:<16 hex>" of the package files (a Ray Jobs upload)
CODE_DIGEST = "code_digest"
PYTHON_VERSION = "python_version"
RAY_VERSION = "ray_version"
MLFLOW_VERSION = "mlflow_version"
PROVENANCE = (PROJECT_VERSION, CODE_DIGEST, PYTHON_VERSION, TORCH_VERSION, RAY_VERSION,
              DEEPSPARSE_VERSION, MLFLOW_VERSION, HOSTNAME, CPU_MODEL)
# True on every row of a rehearsal (``--rehearsal``): synthetic numbers from a stand-in trial,
# never results; the reports mark every page built from such a row.
REHEARSAL = "rehearsal"
