"""What a finding claims and what a table says about it: the paper's words, checks, verdicts.

A finding is a few `Check`\ s. `verdict_of` turns them into a `Verdict`: it **holds** when every
check holds, **does not hold** when one fails, and is **not testable** with this grid when none
fails but one could not run (its numbers then say why). `PAPER` holds each finding's title and
the paper's own sentences, quoted in the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
NOT_TESTABLE = "not testable"
VERDICTS = (HOLDS, DOES_NOT_HOLD, NOT_TESTABLE)


# number -> (short title, the paper's own sentences with where they stand).
PAPER: dict[int, tuple[str, str]] = {
    1: (
        "Linear finetuning: sparse models match dense; regularization methods do best",
        "\"For *linear finetuning*, sparse models usually match and can slightly outperform "
        "dense models. Yet, this is not true for all pruning methods: *regularization-based* "
        "methods perform particularly well, even at high sparsities (e.g. 95%).\" (Section 1)",
    ),
    2: (
        "Full finetuning is more accurate than linear finetuning",
        "\"Although this approach typically results in lower accuracy relative to full "
        "finetuning [36, 61], it has significant practical advantages.\" (Section 3.3, on "
        "linear finetuning); \"For *full finetuning*, which generally provides higher "
        "accuracies [36], ...\" (Section 1)",
    ),
    3: (
        "Full finetuning: sparse competitive with dense, less sparse more accurate",
        "\"For *full finetuning*, which generally provides higher accuracies [36], sparse models "
        "are also competitive with dense ones, but transfer accuracy is more tightly correlated "
        "with accuracy on the ImageNet pre-training task: consequently, less sparse models (e.g. "
        "80%-90% sparsity) tend to be more accurate than sparser ones.\" (Section 1)",
    ),
    4: (
        "Full finetuning: progressive beats regularization, by small margins",
        "\"Moreover, in this setting we find that *progressive sparsification* methods "
        "consistently produce models with higher transfer accuracy, relative to regularization "
        "methods.\" (Section 1); \"The differences in test accuracy, measured at the same "
        "sparsity level, are typically small, on the order of 1–3%\" (Section 3.4)",
    ),
    5: (
        "LTH-T: competitive at 80 % in full finetuning, drops at >= 90 %, low in linear",
        "\"the exception is LTH-T, which is competitive at low sparsity (80%) but incurs severe "
        "accuracy drops at sparsities ≥ 90%.\" (Section 3.4); \"We exclude the LTH-T method from "
        "this analysis, as it is designed for full finetuning, and its transfer accuracy in the "
        "linear scenario is indeed very low\" (Section 3.3)",
    ),
    6: (
        "α: flat in linear up to 90 %, worse at 98 %, rising in full; tied to task difficulty",
        "\"This is apparent, for example, for AC/DC and RigL, where, despite the 1-2% gap in "
        "ImageNet accuracy between the 80% and 90% sparse models, the relative error with "
        "respect to the dense baseline stays quite flat. A similar trend can be observed for "
        "other pruning methods as well. However, extremely sparse models (98%) tend to perform "
        "worse\" (Section 3.3, linear); \"In contrast to linear finetuning, we see a consistent "
        "trend of decreasing quality with increased sparsity.\" (Section 3.4); \"Interestingly, "
        "we observe a trend for *regularization methods* (AC/DC, STR, RigL) to improve over the "
        "dense baseline with increased task difficulty, which is more apparent at higher "
        "sparsity (90%). In contrast, progressive sparsification methods (GMP, WoodFisher) do "
        "not show a similar behavior.\" (Section 3.3, Figure 3)",
    ),
    7: (
        "MobileNetV1: sparse matches dense only up to 75 % (linear transfer)",
        "\"Specifically, regularization-based methods also match or slightly outperform dense "
        "ones on linear transfer. However, for MobileNetV1, we observe that sparse models can "
        "match the dense baseline transfer performance only at lower sparsities (up to 75%), "
        "probably due to the lower parameter count.\" (Section 4)",
    ),
    8: (
        "Speed at 90 %: >= 2x online linear finetuning, >= 3x inference",
        "\"Results show that *using sparse backbones can reduce training time by 2-3x for linear "
        "transfer, without negative impact on validation accuracy*.\" (Section 3.6); \"these "
        "compression levels can lead to speedups of more than 3× on sparsity-enabled "
        "runtimes.\" (Section 1)",
    ),
}


@dataclass(frozen=True)
class Check:
    """One tested part of a finding: what is claimed, whether it held, and the numbers.

    ``result`` is True (holds), False (does not hold) or None (not testable; ``numbers`` then
    says why).
    """

    claim: str
    result: bool | None
    numbers: str
    details: tuple[str, ...] = ()

    @property
    def mark(self) -> str:
        return {True: "✓", False: "✗", None: "–"}[self.result]

    def line(self) -> str:
        return f"{self.mark} {self.claim}: {self.numbers}"


@dataclass(frozen=True)
class Verdict:
    """A finding of the paper and what the table says about it."""

    number: int
    title: str
    paper: str
    verdict: str  # one of VERDICTS
    why: str
    checks: tuple[Check, ...]
    notes: tuple[str, ...] = ()  # numbers that inform but do not decide
    arch: str | None = None

    @property
    def supporting(self) -> tuple[str, ...]:
        """The numbers for the finding: checks that held."""
        return tuple(c.line() for c in self.checks if c.result is True)

    @property
    def against(self) -> tuple[str, ...]:
        """The numbers against the finding: checks that failed."""
        return tuple(c.line() for c in self.checks if c.result is False)


def verdict_of(number: int, checks: Sequence[Check], notes: Iterable[str] = (),
             arch: str | None = None) -> Verdict:
    """Holds when every check holds; does not hold when one fails; else not testable."""
    failed = [c for c in checks if c.result is False]
    untested = [c for c in checks if c.result is None]
    if failed:
        verdict = DOES_NOT_HOLD
        why = "; ".join(f"{c.claim}: {c.numbers}" for c in failed)
    elif untested:
        verdict = NOT_TESTABLE
        why = "; ".join(dict.fromkeys(c.numbers for c in untested))
    else:
        verdict = HOLDS
        why = "every check holds" if len(checks) > 1 else checks[0].numbers
    title, paper = PAPER[number]
    return Verdict(number, title, paper, verdict, why, tuple(checks), tuple(notes), arch)

