"""Assertions that say what was expected and print enough to reproduce a failure."""

from __future__ import annotations

import numpy as np

from manual_bptt import GradientReport, RNNGrads, compare_grads


def assert_agree(report: GradientReport, problem=None, what: str = "") -> None:
    """Fail with the per-gradient table, the drawn problem and how to rebuild it."""
    if report.ok:
        return
    lines = [what or "gradients disagree", str(report)]
    if problem is not None:
        lines += [
            f"drawn problem: {problem!r}",
            "reproduce: from manual_bptt.verification.problems import random_problem; "
            "from torch_reference import compare; "
            f"print({problem!r}.run(compare))",
        ]
    raise AssertionError("\n".join(lines))


def assert_grads_agree(actual: RNNGrads, reference: RNNGrads, problem=None, *, loss=None,
                       reference_loss=None, tolerance=None, actual_name="manual",
                       reference_name="reference", what: str = "") -> None:
    report = compare_grads(
        actual, reference, loss=loss, reference_loss=reference_loss, tolerance=tolerance,
        actual_name=actual_name, reference_name=reference_name,
    )
    assert_agree(report, problem, what)


def assert_within(actual, reference, tolerance, what: str) -> None:
    """max |actual - reference| <= tolerance.allowed(max |reference|), the project's measure."""
    actual, reference = np.asarray(actual, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    assert actual.shape == reference.shape, f"{what}: shape {actual.shape}, expected {reference.shape}"
    diff, scale = float(np.max(np.abs(actual - reference))), float(np.max(np.abs(reference)))
    allowed = tolerance.allowed(scale)
    assert diff <= allowed, f"{what}: max|Δ| = {diff:.3e} > {allowed:.3e} allowed (max|ref| = {scale:.3e}; {tolerance.reason})"
