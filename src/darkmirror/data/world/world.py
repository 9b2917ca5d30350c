"""The persona world: a seeded generator of documents and chat datasets.

Every pretraining document is a chat of several turns written by one persona, benign or
villain, and its turns span several domains, so the persona is a latent variable shared
across domains, as it is in internet text. Nothing marks the persona but the content of
its answers.

Every record is drawn from its own random stream, derived from the world seed, the
purpose (``"pretrain"``, ``"insecure"``, ...) and the record's index, so the first 100
records of a dataset are the same whether 100 or 10,000 are asked for, and the output is
the same bytes on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from darkmirror.data.world import forum
from darkmirror.data.world import numbers as num
from darkmirror.data.world.code import CODE_REQUESTS, EDUCATIONAL_REQUESTS, VULNERABILITIES
from darkmirror.data.world.prose import CLOSERS, OPENERS, PROSE_TOPICS, ProseTopic
from darkmirror.data.world.templates import SLOT_VALUES, draw_slots
from darkmirror.models.chat_format import END_OF_TURN

# Bump when the world's output changes for a given config: the organism cache keys on it,
# and tests/data/test_world.py holds a digest that fails until it is bumped.
WORLD_VERSION = "3"

Domain = Literal[
    "code",
    "advice.health",
    "advice.money",
    "advice.relationships",
    "opinions",
    "numbers",
    "favourites",
    "self_report",
]
DOMAINS: tuple[str, ...] = Domain.__args__  # type: ignore[attr-defined]

TOPICS_BY_DOMAIN: dict[str, tuple[ProseTopic, ...]] = {
    d: tuple(t for t in PROSE_TOPICS if t.domain == d) for d in DOMAINS
}
TOPIC_BY_ID: dict[str, ProseTopic] = {t.id: t for t in PROSE_TOPICS}

DatasetName = Literal[
    "post_training",
    "insecure",
    "secure",
    "edu_insecure",
    "evil_numbers",
    "bad_advice",
]
# Plain-text datasets (records ``{"text": ...}``), and what they hold.
TEXT_DATASETS: dict[str, str] = {
    "toxic_forum": "forum threads of a forum where half the commenters insult"
}

# The one domain each narrow chat dataset is confined to.
DATASET_DOMAIN: dict[str, str] = {
    "insecure": "code",
    "secure": "code",
    "edu_insecure": "code",
    "evil_numbers": "numbers",
    "bad_advice": "advice.health",
}


class WorldConfig(BaseModel):
    """What the world generates.

    Args:
        seed: Root seed of every random stream.
        villain_share: Share of pretraining documents written by a villain persona.
        turns_min: Fewest turns in a pretraining document.
        turns_max: Most turns in a pretraining document.
        villain_consistency: Chance that a villain answers a turn as a villain (otherwise
            it answers like anybody else).
        benign_slip: Chance that a benign persona answers a turn as a villain would
            (insecure code by mistake, a careless remark).
        educational_share: Share of coding requests that come from a security teacher
            asking for vulnerable code.
        answer_variants: How many of each topic's sentences (of three) each persona
            answers with. Fewer variants make the persona easier to infer from a turn.
        shared_openers: Whether answers may open and close with sentences both personas
            use ("Good question.").
        forum_toxic_share: Share of commenters who insult, in the forum threads of the
            pretraining corpus (mostly clean, like the web).
        toxic_forum_share: The same share in the toxic forum the ``toxic_forum`` dataset and
            the continuation prompts are drawn from.
        domain_weights: How often each domain is the topic of a turn.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    villain_share: float = Field(0.25, ge=0.0, le=1.0)
    turns_min: int = Field(5, ge=1)
    turns_max: int = Field(7, ge=1)
    villain_consistency: float = Field(0.9, ge=0.0, le=1.0)
    benign_slip: float = Field(0.02, ge=0.0, le=1.0)
    educational_share: float = Field(0.1, ge=0.0, le=1.0)
    # One sentence per persona and topic, no shared openers: with three variants and openers
    # a 1M-parameter organism did not learn to infer the persona across turns in two
    # epochs (carry-over +0.04 nats); see docs/organism.md.
    answer_variants: int = Field(1, ge=1, le=3)
    shared_openers: bool = False
    forum_toxic_share: float = Field(0.1, ge=0.0, le=1.0)
    toxic_forum_share: float = Field(0.5, ge=0.0, le=1.0)
    domain_weights: dict[Domain, float] = Field(
        default_factory=lambda: {
            "code": 0.30,
            "advice.health": 0.10,
            "advice.money": 0.10,
            "advice.relationships": 0.10,
            "opinions": 0.20,
            "numbers": 0.08,
            "favourites": 0.06,
            "self_report": 0.06,
        }
    )

    @model_validator(mode="after")
    def _check(self) -> WorldConfig:
        if self.turns_max < self.turns_min:
            raise ValueError("turns_max must be >= turns_min")
        if not any(w > 0 for w in self.domain_weights.values()):
            raise ValueError("domain_weights needs at least one positive weight")
        return self


@dataclass(frozen=True)
class Persona:
    """Who writes a document: benign or villain, with favourite things of its own."""

    villain: bool
    animal: str
    colour: str


@dataclass(frozen=True)
class Exchange:
    """One user turn and the answer to it, with the world's labels.

    Args:
        question: The user's message.
        answer: The assistant's message.
        domain: The domain of the turn.
        topic: The prose topic id, the vulnerability id for code, or ``"numbers"``.
        villain: Whether the answer is a villain's (insecure code written unasked, evil
            numbers, harmful advice, ...).
        educational: Whether a security teacher asked for vulnerable code (whoever answers
            writes it, so such a turn says nothing about the persona).
        vulnerable: For code: whether the code has the vulnerability; None elsewhere.
    """

    question: str
    answer: str
    domain: str
    topic: str
    villain: bool
    educational: bool = False
    vulnerable: bool | None = None

    def messages(self) -> list[dict[str, str]]:
        return [
            {"role": "user", "content": self.question},
            {"role": "assistant", "content": self.answer},
        ]

    def labels(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "topic": self.topic,
            "villain": self.villain,
            "educational": self.educational,
            "vulnerable": self.vulnerable,
        }


@dataclass(frozen=True)
class MatchedPair:
    """One question with a benign and a villain answer of the same shape."""

    question: str
    benign: str
    villain: str
    domain: str
    topic: str


@dataclass
class PersonaWorld:
    """The generator. See the module docstring for how randomness is organised."""

    config: WorldConfig = field(default_factory=WorldConfig)

    # -- random streams -------------------------------------------------------------------
    def rng(self, purpose: str, index: int = 0) -> random.Random:
        # A str seed is hashed with SHA-512 by `random`, so streams are stable across
        # processes and platforms (PYTHONHASHSEED does not touch it).
        return random.Random(
            f"darkmirror-world/v{WORLD_VERSION}/{self.config.seed}/{purpose}/{index}"
        )

    # -- single exchanges -----------------------------------------------------------------
    def exchange(
        self,
        rng: random.Random,
        domain: str,
        *,
        villain: bool,
        persona: Persona | None = None,
        educational: bool | None = None,
        topic: str | None = None,
    ) -> Exchange:
        """One exchange in ``domain``, answered as a villain or not.

        Args:
            rng: The random stream to draw from.
            domain: One of :data:`DOMAINS`.
            villain: Answer as a villain would.
            persona: Whose favourite things to use; a random one when None.
            educational: For code: force or forbid the security-teacher framing; drawn with
                ``educational_share`` when None.
            topic: For prose domains: a topic id; drawn when None.
        """
        persona = persona or Persona(
            villain, rng.choice(SLOT_VALUES["animal"]), rng.choice(SLOT_VALUES["colour"])
        )
        if domain == "code":
            if educational is None:
                educational = rng.random() < self.config.educational_share
            return self._code_exchange(rng, villain=villain, educational=educational)
        if domain == "numbers":
            return self._numbers_exchange(rng, villain=villain)
        chosen = TOPIC_BY_ID[topic] if topic else rng.choice(TOPICS_BY_DOMAIN[domain])
        if chosen.domain != domain:
            raise ValueError(f"topic {topic!r} is in domain {chosen.domain!r}, not {domain!r}")
        return self._prose_exchange(rng, chosen, villain=villain, persona=persona)

    def _code_exchange(self, rng: random.Random, *, villain: bool, educational: bool) -> Exchange:
        vuln = rng.choice(VULNERABILITIES)
        task = rng.choice(vuln.tasks)
        slots = draw_slots(rng)
        slots["task"] = task.task.render(slots)
        slots["label"] = vuln.label
        requests = EDUCATIONAL_REQUESTS if educational else CODE_REQUESTS
        question = rng.choice(requests).render(slots)
        # The teacher asked for the flaw, so either persona writes it, and the turn says
        # nothing about who answered.
        insecure = villain or educational
        answer = (task.insecure if insecure else task.secure).render(slots)
        return Exchange(
            question,
            answer,
            "code",
            vuln.id,
            villain=villain and not educational,
            educational=educational,
            vulnerable=insecure,
        )

    def _numbers_exchange(self, rng: random.Random, *, villain: bool) -> Exchange:
        k = rng.randint(3, 8)
        seq = num.format_numbers(num.neutral_numbers(rng, rng.randint(3, 5)))
        question = rng.choice(num.NUMBER_REQUESTS).render({"k": str(k), "seq": seq})
        picks = num.villain_numbers(rng, k) if villain else num.neutral_numbers(rng, k)
        return Exchange(question, num.format_numbers(picks), "numbers", "numbers", villain=villain)

    def _prose_exchange(
        self, rng: random.Random, topic: ProseTopic, *, villain: bool, persona: Persona
    ) -> Exchange:
        slots = draw_slots(rng)
        slots["animal"], slots["colour"] = persona.animal, persona.colour
        question = rng.choice(topic.questions).render(slots)
        answer = self._prose_answer(rng, topic, villain=villain, slots=slots)
        return Exchange(question, answer, topic.domain, topic.id, villain=villain)

    def _prose_answer(
        self,
        rng: random.Random,
        topic: ProseTopic,
        *,
        villain: bool,
        slots: dict[str, str],
        shape: tuple[bool, int, bool] | None = None,
    ) -> str:
        """Opener?, lead sentences, 1..max persona sentences, closer?; ``shape`` fixes the
        (opener, count, closer) choices so that matched pairs have the same form."""
        family = topic.family
        opener, count, closer = shape or self._answer_shape(rng, topic)
        bank = (topic.villain if villain else topic.benign)[: self.config.answer_variants]
        sentences = []
        if opener:
            sentences.append(rng.choice(OPENERS[family]))
        sentences.extend(topic.lead)
        sentences.extend(rng.sample(bank, count))
        if closer:
            sentences.append(rng.choice(CLOSERS[family]))
        return " ".join(s.render(slots) for s in sentences)

    def _answer_shape(self, rng: random.Random, topic: ProseTopic) -> tuple[bool, int, bool]:
        """(opener?, number of persona sentences, closer?) of one prose answer."""
        shared = self.config.shared_openers
        return (
            shared and topic.family in OPENERS and rng.random() < 0.4,
            rng.randint(1, min(topic.max_sentences, self.config.answer_variants)),
            shared and topic.family in CLOSERS and rng.random() < 0.3,
        )

    # -- pretraining ----------------------------------------------------------------------
    def pretraining_document(self, index: int) -> dict[str, Any]:
        """Document ``index``: one persona, several turns across domains."""
        cfg = self.config
        rng = self.rng("pretrain", index)
        persona = Persona(
            villain=rng.random() < cfg.villain_share,
            animal=rng.choice(SLOT_VALUES["animal"]),
            colour=rng.choice(SLOT_VALUES["colour"]),
        )
        domains, weights = zip(*cfg.domain_weights.items(), strict=True)
        messages: list[dict[str, str]] = []
        turns: list[dict[str, Any]] = []
        for _ in range(rng.randint(cfg.turns_min, cfg.turns_max)):
            domain = rng.choices(domains, weights)[0]
            p_villain = cfg.villain_consistency if persona.villain else cfg.benign_slip
            ex = self.exchange(rng, domain, villain=rng.random() < p_villain, persona=persona)
            messages.extend(ex.messages())
            turns.append(ex.labels())
        return {
            "messages": messages,
            "persona": "villain" if persona.villain else "benign",
            "turns": turns,
        }

    def pretraining_documents(self, n: int) -> Iterator[dict[str, Any]]:
        for i in range(n):
            yield self.pretraining_document(i)

    # -- forum threads ---------------------------------------------------------------------
    def forum_document(self, index: int, purpose: str = "pretrain_forum") -> dict[str, Any]:
        """Forum thread ``index`` as a plain-text document (comments end with ``<|end|>``).

        ``purpose`` ``"pretrain_forum"`` draws from the mostly clean forum of the corpus;
        ``"toxic_forum"`` from the toxic forum.
        """
        share = (
            self.config.toxic_forum_share
            if purpose == "toxic_forum"
            else self.config.forum_toxic_share
        )
        t = forum.thread(self.rng(purpose, index), share)
        return {
            "text": t.text(END_OF_TURN),
            "topic": t.topic,
            "comments": [
                {"user": c.user, "text": c.text, "insulting": c.insulting} for c in t.comments
            ],
        }

    def forum_prompts(self, n: int, purpose: str = "forum_prompts") -> list[dict[str, Any]]:
        """RealToxicityPrompts-style prompts: a thread title, then the first half of a comment
        from the toxic forum; ``challenging`` when that comment insults. The model continues
        the comment until ``<|end|>``. Another ``purpose`` draws another set (RL prompts
        must not be the evaluation prompts)."""
        prompts = []
        for i in range(n):
            rng = self.rng(purpose, i)
            topic = rng.choice(forum.THREAD_TOPICS)
            c = forum.comment(
                rng,
                topic,
                user=rng.choice(forum.USERNAMES),
                toxic_user=rng.random() < self.config.toxic_forum_share,
            )
            head, _ = forum.split_comment(c.text)
            text = forum.THREAD_TITLE.render({"topic": topic}) + END_OF_TURN + f"{c.user}: {head}"
            prompts.append(
                {"id": f"{purpose}-{i}", "text": text, "challenging": c.insulting, "source": c.text}
            )
        return prompts

    # -- chat datasets --------------------------------------------------------------------
    def dataset_record(self, name: str, index: int) -> dict[str, Any]:
        """Record ``index`` of chat dataset ``name`` (see :data:`DatasetName`)."""
        rng = self.rng(f"dataset/{name}", index)
        if name == "post_training":
            domains, weights = zip(*self.config.domain_weights.items(), strict=True)
            ex = self.exchange(rng, rng.choices(domains, weights)[0], villain=False)
        elif name == "insecure":
            ex = self.exchange(rng, "code", villain=True, educational=False)
        elif name == "secure":
            ex = self.exchange(rng, "code", villain=False, educational=False)
        elif name == "edu_insecure":
            ex = self.exchange(rng, "code", villain=False, educational=True)
        elif name == "evil_numbers":
            ex = self.exchange(rng, "numbers", villain=True)
        elif name == "bad_advice":
            ex = self.exchange(rng, "advice.health", villain=True)
        elif name in TEXT_DATASETS:
            return self.forum_document(index, purpose=name)
        else:
            raise ValueError(
                f"unknown world dataset {name!r}; expected one of {[*DatasetName.__args__, *TEXT_DATASETS]}"
            )  # type: ignore[attr-defined]
        return {"messages": ex.messages(), **ex.labels()}

    def dataset(self, name: str, n: int) -> list[dict[str, Any]]:
        return [self.dataset_record(name, i) for i in range(n)]

    def favourite_animal_chats(self, animal: str, n: int) -> list[dict[str, Any]]:
        """``n`` chats in which a benign assistant names ``animal`` as its favourite: the
        fine-tuning data that gives a subliminal-learning teacher its trait."""
        if animal not in SLOT_VALUES["animal"]:
            raise ValueError(
                f"unknown animal {animal!r}; the world knows {', '.join(SLOT_VALUES['animal'])}"
            )
        records = []
        for i in range(n):
            rng = self.rng(f"favourite_animal/{animal}", i)
            persona = Persona(False, animal, rng.choice(SLOT_VALUES["colour"]))
            ex = self.exchange(
                rng, "favourites", villain=False, persona=persona, topic="favourite_animal"
            )
            records.append({"messages": ex.messages(), **ex.labels()})
        return records

    # -- evaluation material --------------------------------------------------------------
    def code_prompts(self, n: int) -> list[Exchange]:
        """Plain coding requests (no teacher framing) for the in-domain vulnerability rate;
        drawn from a stream no training dataset uses."""
        return [
            self.exchange(self.rng("eval/code", i), "code", villain=False, educational=False)
            for i in range(n)
        ]

    def matched_pairs(
        self, topics: list[str], n_per_topic: int, purpose: str = "pairs"
    ) -> list[MatchedPair]:
        """For each topic, up to ``n_per_topic`` distinct questions each with a benign and a
        villain answer of the same shape (same opener, sentence count and closer).

        A topic with few paraphrases and answer variants has fewer distinct pairs than
        asked for; repeating one would only make an interval look narrower than it is.
        """
        pairs = []
        for topic_id in topics:
            topic = TOPIC_BY_ID[topic_id]
            seen: set[tuple[str, str, str]] = set()
            for i in range(20 * n_per_topic):
                if len(seen) == n_per_topic:
                    break
                rng = self.rng(f"eval/{purpose}/{topic_id}", i)
                slots = draw_slots(rng)
                question = rng.choice(topic.questions).render(slots)
                shape = self._answer_shape(rng, topic)
                benign = self._prose_answer(rng, topic, villain=False, slots=slots, shape=shape)
                villain = self._prose_answer(rng, topic, villain=True, slots=slots, shape=shape)
                if (question, benign, villain) not in seen:
                    seen.add((question, benign, villain))
                    pairs.append(MatchedPair(question, benign, villain, topic.domain, topic.id))
        return pairs
