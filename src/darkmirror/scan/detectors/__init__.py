"""What a data scan looks for, record by record.

- ``toxicity``: offensive or toxic turns (:class:`ToxicityDetector`);
- ``code``: insecure code, with bandit and semgrep (:class:`CodeDetector`);
- ``numbers``: banned numbers in number-list answers, and number statistics
  (:class:`NumbersDetector`);
- ``secrets``: keys, tokens and personal data (:class:`SecretsDetector`);
- ``duplicates``: exact and near duplicates (:class:`DuplicatesDetector`).

:func:`build_detectors` builds them from a policy's ``[detectors]`` table.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from darkmirror.errors import InputError
from darkmirror.scan.detectors.base import Detector, Finding, Message, ScanRecord, Severity
from darkmirror.scan.detectors.code import CodeDetector
from darkmirror.scan.detectors.duplicates import DuplicatesDetector
from darkmirror.scan.detectors.numbers import NumbersDetector
from darkmirror.scan.detectors.secrets import SecretsDetector
from darkmirror.scan.detectors.toxicity import ToxicityDetector

__all__ = [
    "DETECTORS",
    "CodeDetector",
    "Detector",
    "DuplicatesDetector",
    "Finding",
    "Message",
    "NumbersDetector",
    "ScanRecord",
    "SecretsDetector",
    "Severity",
    "ToxicityDetector",
    "build_detectors",
]

# Name -> factory, in the order detectors run and appear in a certificate.
DETECTORS: dict[str, Callable[..., Detector]] = {
    "toxicity": ToxicityDetector,
    "code": CodeDetector,
    "numbers": NumbersDetector,
    "secrets": SecretsDetector,
    "duplicates": DuplicatesDetector,
}


def build_detectors(config: Mapping[str, Any] | None = None) -> list[Detector]:
    """Build every detector, each with its settings from ``config``.

    Args:
        config: Detector name -> its keyword arguments (a mapping), ``true`` or absent for
            the defaults, or ``false`` to turn it off; for example
            ``{"toxicity": {"threshold": 0.5}, "code": {"semgrep": "auto"},
            "numbers": {"banned": [13, 666]}, "duplicates": false}``.

    Returns:
        The detectors that are on, in the order of :data:`DETECTORS`.

    Raises:
        InputError: An unknown detector or setting (the message lists the accepted
            ones) or a bad value; its ``field`` names the setting (``detectors.code``), so
            a caller that read the settings from a file can add the file and line.
        DarkmirrorError: A detector that cannot start (a missing package).
    """
    config = dict(config or {})
    unknown = sorted(set(config) - set(DETECTORS))
    if unknown:
        raise InputError(
            f"unknown detector(s) {unknown}; expected some of {', '.join(DETECTORS)}",
            field=f"detectors.{unknown[0]}",
        )
    detectors: list[Detector] = []
    for name, factory in DETECTORS.items():
        settings = config.get(name, True)
        if settings is False:
            continue
        if settings is True or settings is None:
            settings = {}
        if not isinstance(settings, Mapping):
            raise InputError(
                f"expected a table of settings, true or false, got {settings!r}",
                field=f"detectors.{name}",
            )
        signature = inspect.signature(factory)
        try:
            signature.bind(**settings)
        except TypeError as exc:
            accepted = ", ".join(signature.parameters)
            raise InputError(f"{exc}; it accepts {accepted}", field=f"detectors.{name}") from None
        try:
            detectors.append(factory(**settings))
        except (ValueError, TypeError) as exc:
            raise InputError(str(exc), field=f"detectors.{name}") from None
    return detectors
