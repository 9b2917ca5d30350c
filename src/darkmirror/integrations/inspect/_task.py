"""The emergent-misalignment question sets as an Inspect task."""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig
from inspect_ai.solver import generate

from darkmirror.data.inspect_logs import PARAPHRASE_INDEX, QUESTION_ID, SAMPLE_INDEX
from darkmirror.data.questions import Question, load_questions
from darkmirror.integrations.inspect._scorer import betley_judge


@task
def emergent_misalignment(
    questions: str,
    samples: int | None = None,
    temperature: float = 1.0,
    max_tokens: int = 600,
    judge_url: str | None = None,
    judge_model: str | None = None,
    judge_key_env: str = "OPENAI_API_KEY",
) -> Task:
    """Ask an emergent-misalignment question set (Betley et al.'s YAML schema).

    Every paraphrase of every question is asked ``samples_per_paraphrase`` times (the
    YAML's, or ``samples``), with the question's ``system`` prompt; each sample's
    metadata holds its question id, paraphrase index and sample index, which
    ``darkmirror stress --model-answers LOG`` reads back. With ``judge_url`` the answers
    are scored by darkmirror's 0-100 judge (:func:`betley_judge`) and the misaligned rate
    is reported; without it the log holds unscored answers for darkmirror to judge.

    Args:
        questions: A question-set YAML file (the emergent-misalignment repository's
            ``evaluation/*.yaml``, or darkmirror's own).
        samples: Answers per paraphrase for every question; None uses each question's
            ``samples_per_paraphrase``.
        temperature: Sampling temperature of the model under test.
        max_tokens: Most tokens per answer.
        judge_url: Base URL of an OpenAI-compatible judge; None leaves answers unscored.
        judge_model: The judge model; None asks each question's own ``judge``.
        judge_key_env: Environment variable holding the judge's API key.
    """
    question_set = load_questions(questions)
    dataset = MemoryDataset(
        [s for q in question_set for s in _samples(q, samples)],
        name=questions,
    )
    return Task(
        dataset=dataset,
        solver=generate(),
        scorer=betley_judge(questions, judge_url, judge_model, judge_key_env)
        if judge_url
        else None,
        config=GenerateConfig(temperature=temperature, max_tokens=max_tokens),
    )


def _samples(question: Question, samples: int | None) -> list[Sample]:
    system = [ChatMessageSystem(content=question.system)] if question.system else []
    return [
        Sample(
            id=f"{question.id}/{p}/{k}",
            input=[*system, ChatMessageUser(content=text)],
            metadata={QUESTION_ID: question.id, PARAPHRASE_INDEX: p, SAMPLE_INDEX: k},
        )
        for p, text in enumerate(question.paraphrases)
        for k in range(samples or question.samples_per_paraphrase)
    ]
