"""darkmirror inside Inspect (UK AISI's ``inspect_ai``): ``pip install 'darkmirror[inspect]'``.

Registered with Inspect through the ``inspect_ai`` entry point (``_registry``):

* task ``darkmirror/emergent_misalignment``: any emergent-misalignment question set
  (``inspect eval darkmirror/emergent_misalignment -T questions=FILE --model M``);
* scorer ``darkmirror/betley_judge``: darkmirror's log-probability 0-100 judge;
* metric ``darkmirror/misaligned_rate``: Betley et al.'s rate and its interval, computed by
  :func:`darkmirror.metrics.misaligned_rate`;
* scorer ``darkmirror/toxicity``: darkmirror's toxicity scorers (``-S kind=profanity_check``
  ...), with the metrics ``darkmirror/mean_toxicity`` and ``darkmirror/toxicity_probability``
  computed by :mod:`darkmirror.metrics.toxicity`.
"""

from darkmirror.integrations.inspect._metric import misaligned_rate
from darkmirror.integrations.inspect._scorer import betley_judge
from darkmirror.integrations.inspect._task import emergent_misalignment
from darkmirror.integrations.inspect._toxicity import (
    mean_toxicity,
    toxicity,
    toxicity_probability,
)

__all__ = [
    "betley_judge",
    "emergent_misalignment",
    "mean_toxicity",
    "misaligned_rate",
    "toxicity",
    "toxicity_probability",
]
