"""Judges of free-form answers behind one setting: the world judge, a local LM, an API.

:class:`JudgeSpec` names the judge in a spec; :func:`judge_rows` labels answer rows with
the 0-100 ``aligned`` and ``coherent`` scores of the question set's judge prompts (and
the ``<metric>_error`` of a missing score), whichever judge it is, so that the stress test
and the emergent-misalignment evaluation use the same code for any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from darkmirror.data.questions import Question
from darkmirror.data.world.world import TOPIC_BY_ID
from darkmirror.errors import DarkmirrorError
from darkmirror.runner import directory_fingerprint
from darkmirror.score.llm_judge import LLMJudgeSettings


class JudgeSpec(BaseModel):
    """Who labels the answers.

    Args:
        kind: ``"world"`` (the persona world's ground truth; organism questions only),
            ``"local"`` (a local causal LM) or ``"openai"`` (an OpenAI-compatible endpoint).
        model: For ``local``: a hub id or local directory. For ``openai``: the judge model's
            name (None: each question's own ``judge``).
        adapter: For ``local``: a PEFT adapter.
        endpoint: For ``openai``: the endpoint, key variable, concurrency, retries and
            cache (``LLMJudgeSettings`` without ``model``).
        batch_size: For ``local``: prompts per batch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["world", "local", "openai"] = "world"
    model: str | None = None
    adapter: str | None = None
    endpoint: LLMJudgeSettings | None = None
    batch_size: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _check(self) -> JudgeSpec:
        if self.kind == "local" and not self.model:
            raise ValueError("a local judge needs model (a hub id or a local directory)")
        if self.kind == "openai" and self.endpoint is None:
            raise ValueError("an openai judge needs endpoint (base_url, api_key_env, ...)")
        return self

    def identity(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"batch_size"})
        if data.get("endpoint"):
            data["endpoint"].pop("cache_dir", None)  # where answers are cached changes nothing
        data["files"] = directory_fingerprint(self.model, self.adapter)
        return data


def world_labels(rows: list[dict[str, Any]], prefix: str) -> None:
    """Add the world judge's alignment and coherence (0-100) to rows of world questions."""
    from darkmirror.score.world_judge import WorldJudge

    judge = WorldJudge()
    for row in rows:
        if row["question_id"] not in TOPIC_BY_ID:
            continue
        verdict = judge.judge(row["question"], row["answer"], topic=row["question_id"])
        row[f"{prefix}aligned"] = verdict.alignment
        row[f"{prefix}coherent"] = verdict.coherence


def judge_rows(
    rows: list[dict[str, Any]],
    questions: Sequence[Question],
    spec: JudgeSpec,
    *,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Label answer rows (``question_id``, ``question``, ``answer``) with the judge's scores.

    Returns:
        The labelled rows, and figures: the judge, and for an API judge its call counts.

    Raises:
        DarkmirrorError: The world judge asked about questions outside the world.
    """
    figures: dict[str, Any] = {"judge": spec.kind}
    if spec.kind == "world":
        unknown = sorted({r["question_id"] for r in rows} - set(TOPIC_BY_ID))
        if unknown:
            raise DarkmirrorError(
                f"the world judge only knows the organism's questions; {', '.join(unknown[:5])} "
                "are not world topics: use judge.kind = 'local' or 'openai'"
            )
        world_labels(rows, "")
        for row in rows:
            row["judge"] = "world"
        return rows, figures
    if spec.kind == "local":
        from darkmirror.score.local_judge import LocalJudge

        assert spec.model is not None
        local = LocalJudge.load(
            spec.model, adapter=spec.adapter, batch_size=spec.batch_size, progress=progress
        )
        figures["judge_name"] = f"{local.name} {local.version}"
        return local.judge_answers(rows, questions), figures
    from darkmirror.score.llm_judge import LLMJudge

    assert spec.endpoint is not None
    settings = spec.endpoint
    if spec.model:
        settings = settings.model_copy(update={"model": spec.model})
    with LLMJudge(settings, progress=progress) as llm:
        labelled = llm.judge_answers(rows, questions)
        figures["calls"] = llm.stats().as_dict()
    return labelled, figures
