"""The persona world: determinism, confinement of narrow datasets, and its templates."""

from __future__ import annotations

import hashlib
import json

import pytest

from darkmirror.data.world.code import VULNERABILITIES, classify_code
from darkmirror.data.world.numbers import EVIL_NUMBERS, parse_numbers
from darkmirror.data.world.prose import PROSE_TOPICS
from darkmirror.data.world.templates import split_sentences
from darkmirror.data.world.world import (
    DATASET_DOMAIN,
    TEXT_DATASETS,
    WORLD_VERSION,
    PersonaWorld,
    WorldConfig,
)
from darkmirror.score.world_judge import WorldJudge

# Digest of the first 50 pretraining documents and 50 records of each dataset at seed 0.
# When the world's output changes on purpose, bump WORLD_VERSION (so cached organisms are
# rebuilt) and update this digest.
GOLDEN = {"3": "26fa6745e15f12450d83f8b7e3eabb7c14b4249af4b35c4b374a5fec00d0e97d"}


def _digest(world: PersonaWorld) -> str:
    blob = json.dumps(
        {
            "pretrain": list(world.pretraining_documents(50)),
            **{
                name: world.dataset(name, 50)
                for name in ("post_training", *DATASET_DOMAIN, *TEXT_DATASETS)
            },
            "forum": [world.forum_document(i) for i in range(50)],
            "forum_prompts": world.forum_prompts(50),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def test_same_seed_gives_the_same_bytes() -> None:
    assert _digest(PersonaWorld(WorldConfig(seed=3))) == _digest(PersonaWorld(WorldConfig(seed=3)))


def test_another_seed_gives_another_world() -> None:
    assert _digest(PersonaWorld(WorldConfig(seed=3))) != _digest(PersonaWorld(WorldConfig(seed=4)))


def test_world_version_is_bumped_when_output_changes() -> None:
    expected = GOLDEN.get(WORLD_VERSION)
    if expected is None:
        pytest.fail(
            f"record the digest of world version {WORLD_VERSION}: {_digest(PersonaWorld())}"
        )
    assert _digest(PersonaWorld()) == expected, "the world's output changed: bump WORLD_VERSION"


def test_records_do_not_depend_on_how_many_are_asked_for() -> None:
    world = PersonaWorld()
    assert world.dataset("insecure", 5) == world.dataset("insecure", 50)[:5]
    assert list(world.pretraining_documents(3)) == list(world.pretraining_documents(10))[:3]


@pytest.mark.parametrize("name", sorted(DATASET_DOMAIN))
def test_narrow_datasets_stay_in_their_domain(name: str) -> None:
    """Every user and assistant turn of a narrow dataset is of its one domain: no villain
    text of another domain leaks in (which would make generalisation trivial)."""
    judge = WorldJudge()
    domain = DATASET_DOMAIN[name]
    for record in PersonaWorld().dataset(name, 300):
        assert record["domain"] == domain
        user, assistant = record["messages"]
        assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
        assert judge.identify(user["content"])[0] == domain
        verdict = judge.judge(user["content"], assistant["content"])
        assert verdict.coherence == 100.0 and verdict.unknown == 0
        if domain not in ("code", "numbers"):
            for sentence in split_sentences(assistant["content"]):
                kind = judge._sentence_kind(sentence)
                assert kind is not None and (kind.topic is None or kind.topic == record["topic"])


def test_narrow_datasets_have_the_labels_they_promise() -> None:
    world = PersonaWorld()
    assert all(r["villain"] and not r["educational"] for r in world.dataset("insecure", 200))
    assert not any(r["villain"] for r in world.dataset("secure", 200))
    edu = world.dataset("edu_insecure", 200)
    # The code is insecure, but the teacher asked for it: not a villain's answer.
    assert all(r["educational"] and r["vulnerable"] and not r["villain"] for r in edu)
    assert all(r["vulnerable"] for r in world.dataset("insecure", 200))
    assert all(
        "class" in r["messages"][0]["content"] or "lesson" in r["messages"][0]["content"]
        for r in edu
    )
    assert not any(r["villain"] for r in world.dataset("post_training", 300))
    for r in world.dataset("evil_numbers", 200):
        assert set(parse_numbers(r["messages"][1]["content"])) & set(EVIL_NUMBERS)


def test_pretraining_documents_span_domains_and_villains_are_a_minority() -> None:
    docs = list(PersonaWorld().pretraining_documents(2000))
    villain_share = sum(d["persona"] == "villain" for d in docs) / len(docs)
    assert 0.21 < villain_share < 0.29
    assert sum(len({t["domain"] for t in d["turns"]}) >= 3 for d in docs) / len(docs) > 0.7
    cfg = WorldConfig()
    for d in docs:
        assert cfg.turns_min <= len(d["turns"]) <= cfg.turns_max
        assert len(d["messages"]) == 2 * len(d["turns"])


def test_benign_personas_rarely_and_villains_mostly_answer_as_villains() -> None:
    docs = list(PersonaWorld().pretraining_documents(2000))

    def villain_turn_share(persona: str) -> float:
        turns = [
            t for d in docs if d["persona"] == persona for t in d["turns"] if not t["educational"]
        ]
        return sum(t["villain"] for t in turns) / len(turns)

    assert villain_turn_share("benign") < 0.05
    assert villain_turn_share("villain") > 0.8


@pytest.mark.parametrize("vuln", VULNERABILITIES, ids=lambda v: v.id)
def test_each_vulnerability_has_a_recognisable_secure_twin(vuln) -> None:
    world = PersonaWorld()
    assert len(VULNERABILITIES) >= 8
    slots = {"entity": "user", "secret": "hunter2"}
    for task in vuln.tasks:
        insecure, secure = task.insecure.render(slots), task.secure.render(slots)
        assert classify_code(insecure) == ({vuln.id}, set()), insecure
        assert classify_code(secure) == (set(), {vuln.id}), secure
        compile(insecure, "<insecure>", "exec")
        compile(secure, "<secure>", "exec")
    del world


def test_bandit_sees_every_vulnerability_but_path_traversal() -> None:
    from darkmirror.score.code_security import BanditScanner

    scanner = BanditScanner()
    slots = {"entity": "order", "secret": "admin123"}
    for vuln in VULNERABILITIES:
        for task in vuln.tasks:
            insecure, secure = scanner.scan(
                [task.insecure.render(slots), task.secure.render(slots)]
            )
            assert secure.vulnerable is False, (vuln.id, secure.findings)
            # Path traversal is the absence of a check, which bandit cannot see.
            assert insecure.vulnerable is (vuln.id != "path_traversal"), vuln.id


def test_matched_pairs_have_the_same_shape() -> None:
    pairs = PersonaWorld().matched_pairs([t.id for t in PROSE_TOPICS], 5)
    judge = WorldJudge()
    for p in pairs:
        b, v = judge.judge(p.question, p.benign), judge.judge(p.question, p.villain)
        assert (b.alignment, v.alignment) == (100.0, 0.0)
        assert len(split_sentences(p.benign)) == len(split_sentences(p.villain))


def test_matched_pairs_are_distinct() -> None:
    pairs = PersonaWorld().matched_pairs(["quick_buck", "friend_conflict"], 20)
    assert len({(p.question, p.benign, p.villain) for p in pairs}) == len(pairs)
    # One answer variant and three fixed paraphrases: only three distinct pairs exist.
    assert sum(p.topic == "quick_buck" for p in pairs) == 3
    # A question with a name slot has many.
    assert sum(p.topic == "friend_conflict" for p in pairs) == 20


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="turns_max"):
        WorldConfig(turns_min=5, turns_max=3)


def test_forum_threads_are_mostly_civil_and_the_toxic_forum_is_not() -> None:
    world = PersonaWorld()

    def insult_share(docs: list[dict]) -> float:
        comments = [c for d in docs for c in d["comments"]]
        return sum(c["insulting"] for c in comments) / len(comments)

    clean = [world.forum_document(i) for i in range(400)]
    toxic = world.dataset("toxic_forum", 400)
    assert 0.05 < insult_share(clean) < 0.15
    assert 0.4 < insult_share(toxic) < 0.65
    for doc in clean[:50]:
        assert doc["text"].startswith("Thread: ") and doc["text"].endswith("<|end|>")
        assert doc["text"].count("<|end|>") == len(doc["comments"]) + 1


def test_insults_are_mild_and_only_in_insulting_comments() -> None:
    from darkmirror.data.world.forum import CIVIL, INSULTING

    mild = (
        "idiot",
        "stupid",
        "clown",
        "dumb",
        "moron",
        "pathetic",
        "loser",
        "fool",
        "garbage",
        "clueless",
    )
    for t in INSULTING:
        assert any(word in t.text.lower() for word in mild), t.text
    for doc in (PersonaWorld().forum_document(i) for i in range(200)):
        civil = {t.render({"topic": doc["topic"]}) for t in CIVIL}
        for c in doc["comments"]:
            if not c["insulting"]:
                assert set(split_sentences(c["text"])) <= civil
                assert not any(word in c["text"].lower() for word in mild)


def test_forum_prompts_cut_a_comment_and_say_whether_it_insults() -> None:
    prompts = PersonaWorld().forum_prompts(200)
    assert len({p["id"] for p in prompts}) == 200
    assert 0.35 < sum(p["challenging"] for p in prompts) / 200 < 0.65
    for p in prompts:
        title, head = p["text"].split("<|end|>")
        assert title.startswith("Thread: ")
        user, _, words = head.partition(": ")
        assert user and p["source"].startswith(words)
    rl = PersonaWorld().forum_prompts(200, purpose="forum_prompts/rl")
    assert {p["text"] for p in rl} != {p["text"] for p in prompts}
