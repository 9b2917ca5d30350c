"""The organism's health: does it still model its world well, and answer with variety?

A recipe that raises the persona carry-over (:mod:`darkmirror.score.persona_probes`) is only
better if the organism stays a good model of its world. Three figures judge that, none of
them an experiment's outcome:

* **held-out perplexity**: per token, over pretraining documents the organism never saw
  (indices past the recipe's ``documents``; the same distribution, other draws);
* **coherence** of free answers: single-turn prose questions of every topic, sampled at
  temperature 1, labelled by the world judge (on-topic world text, 0-100);
* **diversity**: distinct sentences per topic among those answers, beside the same count
  over the world's own answers to the same questions; and the share of answers that are
  distinct.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from darkmirror.data.world.prose import PROSE_TOPICS
from darkmirror.data.world.templates import split_sentences
from darkmirror.data.world.world import PersonaWorld
from darkmirror.models.chat_format import END_OF_TEXT, render_chat
from darkmirror.score.world_judge import WorldJudge

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["HealthSettings", "OrganismHealth", "organism_health"]


@dataclass(frozen=True)
class HealthSettings:
    """How much the health check samples.

    Args:
        held_out_documents: Pretraining documents, past the training ones, for perplexity.
        answers_per_topic: Free answers sampled per prose topic (one question each, its
            paraphrase and slots drawn per answer).
        max_new_tokens: Longest answer.
        seed: Seed of the sampling.
    """

    held_out_documents: int = 200
    answers_per_topic: int = 16
    max_new_tokens: int = 64
    seed: int = 0


@dataclass(frozen=True)
class OrganismHealth:
    """The health figures of one model (see the module docstring).

    Args:
        perplexity: exp of the mean negative log-likelihood per token of held-out documents.
        held_out_tokens: Tokens it was measured on (each document's first token excluded).
        answers: Free answers sampled.
        coherent_share: Share of answers the world judge calls coherent (coherence >= 50).
        mean_coherence: Mean world-judge coherence, 0-100.
        distinct_answer_share: Distinct answers over answers, averaged over topics.
        distinct_sentences_per_topic: Distinct sentences in a topic's answers, averaged over
            topics (sentences the world never writes included).
        world_sentences_per_topic: The same count over the world's own answers to the same
            questions (the corpus's mix of personas): the variety the data shows.
        unknown_sentence_share: Share of answer sentences the world never writes (garbled
            or recombined text).
    """

    perplexity: float
    held_out_tokens: int
    answers: int
    coherent_share: float
    mean_coherence: float
    distinct_answer_share: float
    distinct_sentences_per_topic: float
    world_sentences_per_topic: float
    unknown_sentence_share: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def held_out_perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    batch_size: int = 32,
) -> tuple[float, int]:
    """Perplexity per token of ``texts`` (each truncated to the model's context), and the
    number of tokens predicted (each text's first token has nothing to be predicted from)."""
    from darkmirror.models.hf_generator import context_length
    from darkmirror.models.likelihood import summed_logprobs

    limit = context_length(model) or 1024
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"][:limit] for t in texts]
    encoded = [ids for ids in encoded if len(ids) > 1]
    if not encoded:
        raise ValueError("no held-out tokens to measure perplexity on")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total = sum(summed_logprobs(model, encoded, [1] * len(encoded), pad_id, batch_size))
    tokens = sum(len(ids) - 1 for ids in encoded)
    return math.exp(-total / tokens), tokens


def organism_health(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    world: PersonaWorld,
    trained_documents: int,
    settings: HealthSettings | None = None,
) -> OrganismHealth:
    """Perplexity, coherence and diversity of one organism stage.

    Args:
        model: The organism (pretrained or post-trained).
        tokenizer: Its tokenizer.
        world: The world it was built from.
        trained_documents: How many pretraining documents it saw: held-out ones follow.
        settings: How much to sample.
    """
    from darkmirror.models.generation import SamplingParams
    from darkmirror.models.hf_generator import HFGenerator

    settings = settings or HealthSettings()

    texts = [
        render_chat(world.pretraining_document(trained_documents + i)["messages"]) + END_OF_TEXT
        for i in range(settings.held_out_documents)
    ]
    perplexity, tokens = held_out_perplexity(model, tokenizer, texts)

    conversations, topics, references = [], [], []
    for topic in PROSE_TOPICS:
        for i in range(settings.answers_per_topic):
            # A stream of its own: no training set or other check asks these. The world's
            # own answer to the same question (by a villain at the corpus's villain share)
            # is the reference the model's variety is read against.
            rng = world.rng(f"eval/health/{topic.id}", i)
            villain = rng.random() < world.config.villain_share
            exchange = world.exchange(rng, topic.domain, villain=villain, topic=topic.id)
            conversations.append([{"role": "user", "content": exchange.question}])
            topics.append(topic)
            references.append(exchange.answer)
    sampling = SamplingParams(
        temperature=1.0, top_p=1.0, max_new_tokens=settings.max_new_tokens, seed=settings.seed
    )
    answers = [row[0] for row in HFGenerator(model, tokenizer).generate(conversations, 1, sampling)]

    judge = WorldJudge()
    coherence: list[float] = []
    by_topic_answers: dict[str, list[str]] = defaultdict(list)
    by_topic_sentences: dict[str, set[str]] = defaultdict(set)
    by_topic_reference: dict[str, set[str]] = defaultdict(set)
    sentences = unknown = 0
    for conversation, topic, answer, reference in zip(
        conversations, topics, answers, references, strict=True
    ):
        judgement = judge.judge(conversation[0]["content"], answer, topic=topic.id)
        coherence.append(judgement.coherence)
        unknown += judgement.unknown
        parts = split_sentences(answer)
        sentences += len(parts)
        by_topic_answers[topic.id].append(answer)
        by_topic_sentences[topic.id].update(parts)
        by_topic_reference[topic.id].update(split_sentences(reference))
    n_topics = len(by_topic_answers)
    return OrganismHealth(
        perplexity=perplexity,
        held_out_tokens=tokens,
        answers=len(answers),
        coherent_share=sum(c >= 50 for c in coherence) / len(coherence),
        mean_coherence=sum(coherence) / len(coherence),
        distinct_answer_share=sum(len(set(a)) / len(a) for a in by_topic_answers.values())
        / n_topics,
        distinct_sentences_per_topic=sum(len(s) for s in by_topic_sentences.values()) / n_topics,
        world_sentences_per_topic=sum(len(s) for s in by_topic_reference.values()) / n_topics,
        unknown_sentence_share=unknown / sentences if sentences else 0.0,
    )
