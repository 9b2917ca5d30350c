"""The stress test's prompt sets: each model's continuations of every prompt, as rows.

A base model continues a prompt's text as it is, as in RealToxicityPrompts; a chat model
(an endpoint, vLLM, a local model whose tokenizer has a chat template) is sent the prompt
inside the spec's instruction template as a user turn (``prompt_sampling.format`` picks
one or the other explicitly). An answer file is not sampled: its recorded continuations
(rows with a ``prompt_set``, ``docs/rows.md``) are matched to the prompts given.

Every row is an :class:`~darkmirror.data.answers.AnswerRow` of ``kind = "continuation"``
whose :class:`~darkmirror.data.prompts.PromptContinuation` extension names its set and
prompt; ``question_id`` is the prompt's id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from darkmirror.data.answers import AnswerRow, ChatTurn, write_rows
from darkmirror.data.prompts import (
    PromptContinuation,
    PromptSet,
    load_prompt_set,
    prompt_continuation_of,
)
from darkmirror.data.questions import Question
from darkmirror.errors import DarkmirrorError, InputError
from darkmirror.eval.evaluate import model_answers
from darkmirror.experiments.stress.spec import PromptSampling, StressSpec
from darkmirror.hashing import content_hash
from darkmirror.models.generation import SamplingParams
from darkmirror.runner import StepContext

__all__ = ["load_prompt_sets", "prompt_sets_identity", "sample_continuations"]


# What a tokenizer without a chat template gets, because HFGenerator requires one: plain
# continuations never render it, and anything that tried would fail loudly.
def load_prompt_sets(spec: StressSpec) -> list[PromptSet]:
    """The spec's prompt sets, in order (none when it names none).

    Raises:
        InputError: A bad prompt file (file, line and field), or two files of one name.
    """
    sets: list[PromptSet] = []
    for path in spec.prompts or []:
        prompt_set = load_prompt_set(path)
        if any(s.name == prompt_set.name for s in sets):
            raise InputError(
                f"a prompt set named {prompt_set.name!r} is already given; prompt sets are "
                "named after their files, which must differ",
                path=path,
            )
        sets.append(prompt_set)
    return sets


def prompt_sets_identity(sets: Sequence[PromptSet]) -> list[dict[str, str]]:
    """What the continuation steps' hashes cover: each set's name and a hash of its
    prompts' ids and texts (not the file's path, so a moved file still resumes)."""
    return [
        {"set": s.name, "prompts": content_hash([[p.id, p.text] for p in s.prompts])} for s in sets
    ]


def sample_continuations(
    ctx: StepContext, *, spec: StressSpec, role: str, prompt_sets: list[PromptSet]
) -> dict[str, Any]:
    """One model's continuations of every prompt: ``rows.jsonl``."""
    ref = spec.model if role == "model" else spec.baseline
    if ref.kind == "answers":  # type: ignore[attr-defined]
        rows = _recorded(ref, role, prompt_sets)
        prompt_format = None
    else:
        rows, prompt_format = _sampled(ctx, ref, role, prompt_sets, spec)
    return {"rows": write_rows(ctx.out / "rows.jsonl", rows), "format": prompt_format}


def _sampled(
    ctx: StepContext, ref: Any, role: str, prompt_sets: list[PromptSet], spec: StressSpec
) -> tuple[list[AnswerRow[Any]], str]:
    ps = spec.prompt_sampling
    sampling = SamplingParams(ps.temperature, ps.top_p, ps.max_new_tokens, spec.seed)
    prompt_format = ps.format
    if ref.kind in ("hf", "organism"):
        from darkmirror.models.hf_generator import HFGenerator  # torch: local models only

        model, tokenizer = ref.load(progress=ctx.progress)
        chat = bool(tokenizer.chat_template)
        if prompt_format == "auto":
            prompt_format = "instruct" if chat else "continue"
        if prompt_format == "instruct" and not chat:
            raise DarkmirrorError(
                f"{role} {ref.display}: prompt_sampling.format = 'instruct' needs a chat "
                "template, and its tokenizer has none; use 'continue' (or 'auto')"
            )
        generator: Any = HFGenerator(model, tokenizer, batch_size=ref.batch_size, name=ref.display)
    else:
        if prompt_format == "continue":
            raise DarkmirrorError(
                f"{role} {ref.display}: a {ref.kind} model answers chats; "
                "prompt_sampling.format = 'continue' needs a local model (hf or organism)"
            )
        prompt_format = "instruct"
        generator = ref.generator(progress=ctx.progress)
    try:
        if prompt_format == "continue":
            rows = _continued(generator, ref.display, role, prompt_sets, ps, sampling)
        else:
            rows = _instructed(generator, ref.display, role, prompt_sets, ps, sampling)
    finally:
        close = getattr(generator, "close", None)
        if close is not None:
            close()
    return rows, prompt_format


def _continued(
    generator: Any,
    model: str,
    role: str,
    prompt_sets: list[PromptSet],
    ps: PromptSampling,
    sampling: SamplingParams,
) -> list[AnswerRow[Any]]:
    pairs = [(s.name, p) for s in prompt_sets for p in s.prompts]
    completions = generator.complete([p.text for _, p in pairs], ps.samples_per_prompt, sampling)
    rows: list[AnswerRow[Any]] = []
    for (name, prompt), samples in zip(pairs, completions, strict=True):
        for k, c in enumerate(samples):
            rows.append(
                AnswerRow(
                    model=model,
                    group=role,
                    kind="continuation",
                    question_id=prompt.id,
                    paraphrase_index=0,
                    sample_index=k,
                    messages=[ChatTurn(role="user", content=prompt.text)],
                    answer=c.text,
                    extension=PromptContinuation(
                        prompt_set=name,
                        prompt_id=prompt.id,
                        prompt_format="continue",
                        tokens=c.tokens,
                        finished=c.finished,
                    ),
                )
            )
    return rows


def _instructed(
    generator: Any,
    model: str,
    role: str,
    prompt_sets: list[PromptSet],
    ps: PromptSampling,
    sampling: SamplingParams,
) -> list[AnswerRow[Any]]:
    # Each prompt as a one-paraphrase question, so chat models sample through the same
    # evaluation core as the questions (batching, endpoints, vLLM).
    questions = [
        Question(id=f"{s.name}/{p.id}", type="free_form", paraphrases=[ps.instruction(p.text)])
        for s in prompt_sets
        for p in s.prompts
    ]
    origin = {f"{s.name}/{p.id}": (s.name, p.id) for s in prompt_sets for p in s.prompts}
    rows = model_answers(
        generator,
        questions,
        sampling,
        model=model,
        samples_per_paraphrase=ps.samples_per_prompt,
        group=role,
        kind="continuation",
        question_temperature=False,
    )
    out = []
    for row in rows:
        name, prompt_id = origin[row.question_id]
        extension = PromptContinuation(
            prompt_set=name, prompt_id=prompt_id, prompt_format="instruct"
        )
        update = {"question_id": prompt_id, "question_type": None, "extension": extension}
        out.append(row.model_copy(update=update))
    return out


def _recorded(ref: Any, role: str, prompt_sets: list[PromptSet]) -> list[AnswerRow[Any]]:
    """The answer file's continuations of the given prompt sets, checked against them."""
    wanted = {s.name: {p.id: p for p in s.prompts} for s in prompt_sets}
    rows = []
    seen: set[str] = set()
    for row in ref.generator().rows():
        continuation = prompt_continuation_of(row)
        if continuation is None or continuation.prompt_set not in wanted:
            continue
        prompt = wanted[continuation.prompt_set].get(continuation.prompt_id)
        if prompt is None:
            raise InputError(
                f"prompt id {continuation.prompt_id!r} is not in prompt set "
                f"{continuation.prompt_set!r} (ids of a plain-text set are its line numbers)",
                path=ref.path,
                field="question_id",
            )
        # A chat model was sent the prompt inside an instruction: the prompt is in the turn.
        if prompt.text.strip() not in row.question:
            raise InputError(
                f"the prompt of the continuation of {continuation.prompt_set}/"
                f"{continuation.prompt_id} is not that prompt's text ({row.question!r:.60})",
                path=ref.path,
                field="question",
            )
        seen.add(continuation.prompt_set)
        rows.append(row.model_copy(update={"group": role, "kind": "continuation"}))
    missing = [name for name in wanted if name not in seen]
    if missing:
        raise InputError(
            f"holds no continuation of prompt set(s) {', '.join(missing)}: expected rows with "
            "prompt_set, question_id (the prompt's id), question (the prompt) and answer",
            path=ref.path,
        )
    return rows
