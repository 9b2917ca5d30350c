"""Corrections for testing several hypotheses at once."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

__all__ = ["holm_adjust"]


def holm_adjust(p_values: Mapping[Hashable, float | None]) -> dict[Hashable, float | None]:
    """Holm's step-down adjusted p-values (Holm 1979): family-wise error control under any
    dependence between the tests, uniformly more powerful than Bonferroni.

    Written here rather than taken from statsmodels (``multipletests``) to keep a heavy
    dependency out for ten lines; the tests check it against the textbook example.

    Args:
        p_values: Hypothesis -> its p-value; ``None`` (not testable) is left out of the
            family and stays ``None``.

    Returns:
        Hypothesis -> adjusted p-value (reject at level alpha when it is <= alpha).
    """
    tested = sorted(((p, k) for k, p in p_values.items() if p is not None), key=lambda t: t[0])
    m = len(tested)
    adjusted: dict[Hashable, float | None] = {k: None for k in p_values}
    running = 0.0
    for i, (p, k) in enumerate(tested):
        running = max(running, min(1.0, (m - i) * p))  # monotone: never below an earlier one
        adjusted[k] = running
    return adjusted
