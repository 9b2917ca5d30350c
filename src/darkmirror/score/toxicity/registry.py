"""The toxicity scorer kinds, and :func:`build_scorer` that builds one from configuration."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from darkmirror.errors import DarkmirrorError
from darkmirror.score.scorer import Scorer
from darkmirror.score.toxicity.detoxify_scorer import DetoxifyScorer
from darkmirror.score.toxicity.hf_classifier import HFClassifierScorer
from darkmirror.score.toxicity.perspective import PerspectiveScorer
from darkmirror.score.toxicity.profanity import ProfanityCheckScorer
from darkmirror.score.toxicity.world_classifier import WorldInsultClassifier

SCORER_KINDS: dict[str, Callable[..., Scorer]] = {
    "profanity_check": ProfanityCheckScorer,
    "hf": HFClassifierScorer,
    "detoxify": DetoxifyScorer,
    "perspective": PerspectiveScorer,
    "world_classifier": WorldInsultClassifier,
}


def build_scorer(spec: str | Mapping[str, Any]) -> Scorer:
    """Build a toxicity scorer from configuration.

    Args:
        spec: A kind name (``"profanity_check"``, or ``"perspective"`` with its defaults),
            or a mapping with ``kind`` and the scorer's arguments, e.g.
            ``{"kind": "hf", "model": "path/to/classifier", "toxic_label": "toxic"}`` or
            ``{"kind": "detoxify", "checkpoint": "toxic_original-c1212f89.ckpt"}``.

    Raises:
        DarkmirrorError: Unknown kind (the message lists the kinds), unknown or missing
            arguments (it lists the accepted ones), or the scorer's own setup errors.
    """
    fields = {"kind": spec} if isinstance(spec, str) else dict(spec)
    kind = fields.pop("kind", None)
    if kind not in SCORER_KINDS:
        raise DarkmirrorError(
            f"scorer kind {kind!r} is unknown; expected one of {', '.join(SCORER_KINDS)}"
        )
    factory = SCORER_KINDS[kind]
    signature = inspect.signature(factory)
    try:
        signature.bind(**fields)
    except TypeError as exc:
        accepted = ", ".join(signature.parameters)
        raise DarkmirrorError(f"scorer kind {kind!r}: {exc}; it accepts {accepted}") from None
    return factory(**fields)
