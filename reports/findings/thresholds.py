"""The thresholds of the findings' rules: accuracy in percentage points, alpha as a fraction.

Each stands beside the paper's words it reads, so that a reader can disagree with a number
rather than with a hunch.
"""

MATCH_POINTS = 1.0  # "matches dense": best sparse mean at least dense mean - 1 point
COMPETITIVE_ALPHA = 0.10  # "competitive": the best sparse method's mean alpha at most 0.10
SPREAD_POINTS = 3.0  # "differences ... are typically small, on the order of 1-3 %"
FLAT_ALPHA = 0.05  # linear alpha "stays quite flat" from 80 to 90 %: mean moves at most 0.05
EXTREME_LEVEL = 98  # "extremely sparse models (98%) tend to perform worse"
MAIN_LEVELS = (80, 90)  # the paper's Table 1 sparsities
LINEAR_LEVELS = (80, 90, 95)  # "even at high sparsities (e.g. 95%)"
HIGH_LEVEL = 90  # ">= 90 %", "more apparent at higher sparsity (90%)"
MOBILENET_UP_TO = 75  # "only at lower sparsities (up to 75%)"
SPEED_LEVEL = 90
EPOCH_SPEEDUP = 2.0  # "reduce training time by 2-3x"
INFERENCE_SPEEDUP = 3.0  # "speedups of more than 3x"
MIN_CORRELATION_POINTS = 3  # a correlation over 2 datasets is always +-1
