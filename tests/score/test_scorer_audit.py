"""The scorer audit: its figures on hand-made scores, its sentences, its CLI and report section."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from conftest import darkmirror_cli, subprocess_env
from darkmirror.cli.audit import scorer_option
from darkmirror.data.world.forum import INSULT_WORDS
from darkmirror.errors import DarkmirrorError
from darkmirror.metrics import TOXICITY_THRESHOLD, wilson_interval
from darkmirror.score.scorer import Score
from darkmirror.score.toxicity import SCORER_KINDS, ProfanityCheckScorer
from darkmirror.score.toxicity.audit import audit_scorer, audit_scores
from darkmirror.score.toxicity.audit_report import audit_section, shipped_scorers, verdict
from darkmirror.score.toxicity.audit_templates import (
    DIALECT_PAIRS,
    IDENTITY_TERMS,
    TEMPLATES,
    fill,
    identity_sentences,
)

SENTENCES = identity_sentences()
N_TEMPLATES = len(TEMPLATES)


class FakeScorer:
    """Scores each text by a rule: a float, or None for a failure."""

    def __init__(self, rule: Callable[[str], float | None]) -> None:
        self.rule = rule

    name = "fake"
    version = "1"

    def score(self, texts: Sequence[str]) -> list[Score]:
        return [
            Score.failed("fake failure") if (v := self.rule(t)) is None else Score(v) for t in texts
        ]


def _texts_of(term: str) -> set[str]:
    return {s.text for s in SENTENCES if s.term == term}


def test_a_scorer_that_flags_one_term_has_fpr_one_there_zero_elsewhere_and_gap_one() -> None:
    muslim = _texts_of("Muslim")
    audit, rows = audit_scorer(FakeScorer(lambda t: 0.9 if t in muslim else 0.1))
    religion = next(c for c in audit.categories if c.category == "religion")
    rates = {t.term: t.false_positive_rate for t in religion.terms}
    assert rates["Muslim"].value == 1.0 and rates["Muslim"].n == N_TEMPLATES
    assert (rates["Muslim"].lo, rates["Muslim"].hi) == wilson_interval(N_TEMPLATES, N_TEMPLATES)
    assert all(r.value == 0.0 for term, r in rates.items() if term != "Muslim")
    gap = religion.rate_gap
    assert (gap.a, gap.b, gap.kind) == ("Muslim", "Christian", "rate")
    assert gap.difference.value == 1.0 and gap.difference.n == N_TEMPLATES
    # 30 templates all the same way: p = 1/10001 by Monte Carlo, times the 21 pairs of 7 terms.
    assert gap.comparisons == 21 and gap.p_value == pytest.approx(21 / 10_001)
    assert religion.score_gap.difference.value == pytest.approx(0.8)
    assert audit.findings() == [("religion", gap)]
    assert audit.n_false_positives == N_TEMPLATES and audit.n_missing == 0
    for c in audit.categories:
        if c.category != "religion":
            assert c.rate_gap.difference.value == 0.0 and c.rate_gap.p_value == 1.0
            assert c.score_gap.difference.value == 0.0
    assert verdict(audit)[0].startswith("fake 1 is UNFAIR") and "'Muslim'" in verdict(audit)[0]
    assert len(rows) == len(SENTENCES) + 2 * len(DIALECT_PAIRS)


def test_a_mean_score_gap_is_the_paired_mean_difference_over_templates() -> None:
    # 'gay' scores 0.3 on even templates, 0.1 on odd ones; every other sentence 0.1. No score
    # reaches the threshold: a gap in scores, not in false positives.
    identity = [0.3 if s.term == "gay" and s.template % 2 == 0 else 0.1 for s in SENTENCES]
    flat = [0.1] * len(DIALECT_PAIRS)
    audit = audit_scores("hand", "0", identity, flat, flat)
    orientation = next(c for c in audit.categories if c.category == "sexual_orientation")
    gay = next(t for t in orientation.terms if t.term == "gay")
    assert gay.mean_score.value == pytest.approx(0.1 + 0.2 * 15 / 30)
    assert gay.false_positive_rate.value == 0.0
    gap = orientation.score_gap
    assert (gap.a, gap.b) == ("gay", "lesbian")  # the first of the tied lowest terms
    assert gap.difference.value == pytest.approx(0.1)
    assert gap.p_value < 0.05  # 15 templates of +0.2, none against
    assert [(w, g.kind) for w, g in audit.findings()] == [("sexual_orientation", "score")]
    # Below MATERIAL_SCORE_GAP a significant gap is reported, not called unfair.
    small = [0.12 if s.term == "gay" else 0.1 for s in SENTENCES]
    assert audit_scores("hand", "0", small, flat, flat).findings() == []


def test_dialect_pairs_give_each_side_and_their_paired_difference() -> None:
    dialect = {p.dialect for p in DIALECT_PAIRS}
    audit, _ = audit_scorer(FakeScorer(lambda t: 0.6 if t in dialect else 0.2))
    d = audit.dialect
    assert (d.dialect_rate.value, d.standard_rate.value) == (1.0, 0.0)
    assert d.dialect_mean.value == pytest.approx(0.6) and d.standard_mean.value == pytest.approx(
        0.2
    )
    assert d.rate_difference.difference.value == 1.0
    assert d.score_difference.difference.value == pytest.approx(0.4)
    assert d.score_difference.p_value < 0.001
    assert [w for w, _ in audit.findings()] == ["dialect"]
    assert "UNFAIR to African American English" in verdict(audit)[-1]


def test_missing_scores_are_counted_never_zero() -> None:
    hindu, jewish = _texts_of("Hindu"), sorted(_texts_of("Jewish"))[:10]
    audit, rows = audit_scorer(
        FakeScorer(lambda t: None if t in hindu or t in jewish else (0.7 if "Sikh" in t else 0.1))
    )
    religion = {t.term: t for t in audit.categories[0].terms}
    assert religion["Hindu"].n_missing == N_TEMPLATES
    assert religion["Hindu"].mean_score.n == 0 and math.isnan(religion["Hindu"].mean_score.value)
    assert religion["Jewish"].n_missing == 10 and religion["Jewish"].false_positive_rate.n == 20
    assert audit.n_missing == N_TEMPLATES + 10
    gap = audit.categories[0].rate_gap
    assert gap.a == "Sikh" and gap.comparisons == 15  # Hindu, unscored, is not compared
    assert sum(r["score"] is None and r["error"] == "fake failure" for r in rows) == 40


def test_scores_outside_zero_to_one_are_refused() -> None:
    flat = [0.1] * len(DIALECT_PAIRS)
    with pytest.raises(ValueError, match=r"0\.\.1"):
        audit_scores("x", "0", [50.0] * len(SENTENCES), flat, flat)


# --- the sentences -------------------------------------------------------------------


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def test_every_template_has_one_slot_and_terms_appear_only_in_it() -> None:
    terms = {t.lower() for ts in IDENTITY_TERMS.values() for t in ts}
    for template in TEMPLATES:
        assert template.count("{term}") + template.count("{a_term}") == 1, template
        frame = template.replace("{a_term}", "").replace("{term}", "")
        assert not any(re.search(rf"\b{re.escape(t)}\b", frame.lower()) for t in terms), template
    for s in SENTENCES:
        assert s.text == fill(TEMPLATES[s.template], s.term)
        assert len(re.findall(rf"\b{re.escape(s.term)}\b", s.text)) == 1, s.text
    assert len(SENTENCES) == len(TEMPLATES) * sum(map(len, IDENTITY_TERMS.values()))
    assert 20 <= len(TEMPLATES) <= 40 and 30 <= len(DIALECT_PAIRS) <= 50
    assert all(5 <= len(ts) <= 8 for ts in IDENTITY_TERMS.values())


def _frames_and_pairs() -> set[str]:
    words = set().union(
        *(_words(t.replace("{a_term}", "a").replace("{term}", "")) for t in TEMPLATES)
    )
    return words | set().union(*(_words(p.standard) | _words(p.dialect) for p in DIALECT_PAIRS))


def test_the_sentences_hold_no_insult_word_of_the_world() -> None:
    assert not _frames_and_pairs() & INSULT_WORDS


def test_no_word_of_the_sentences_is_offensive_to_the_profanity_model_alone() -> None:
    # The profanity model's lexicon: the words that score toxic on their own. Identity terms
    # are what is audited, so only the frames and the dialect pairs are checked.
    words = sorted(_frames_and_pairs())
    scores = ProfanityCheckScorer().score(words)
    offensive = [w for w, s in zip(words, scores, strict=True) if s.value >= TOXICITY_THRESHOLD]
    assert offensive == []


# --- default scorers, CLI, report section ---------------------------------------------


def test_every_shipped_scorer_is_audited_or_skipped_with_a_reason() -> None:
    built, skipped = shipped_scorers()
    audited = {s.name for s in built}
    assert {"profanity_check", "world_classifier"} <= audited
    assert audited | {s.kind for s in skipped} == set(SCORER_KINDS)
    assert all(s.reason for s in skipped)


def test_the_cli_audits_a_scorer_in_a_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "audit"
    env = subprocess_env(tmp_path / "cache")
    result = darkmirror_cli("audit-scorer", "--scorer", "profanity", "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads((out / "audit.json").read_text())
    (audit,) = document["audits"]
    assert audit["scorer"] == "profanity_check"
    assert audit["n_texts"] == len(SENTENCES) + 2 * len(DIALECT_PAIRS)
    assert document["skipped"] == [] and audit["verdict"][0] in result.stdout
    assert len(audit["categories"]) == len(IDENTITY_TERMS)
    rows = (out / "scores.jsonl").read_text().splitlines()
    assert len(rows) == audit["n_texts"]
    assert "## profanity_check" in (out / "audit.md").read_text()

    bad = darkmirror_cli("audit-scorer", "--scorer", "nope", "--out", str(out), env=env)
    assert bad.returncode == 2 and "unknown" in bad.stderr


def test_scorer_options_parse_kinds_prefixes_fields_and_json() -> None:
    kinds = list(SCORER_KINDS)
    assert scorer_option("profanity", kinds) == "profanity_check"
    assert scorer_option("hf:model=./bert,batch_size=8", kinds) == {
        "kind": "hf",
        "model": "./bert",
        "batch_size": 8,
    }
    assert scorer_option('{"kind": "world_classifier", "world_seed": 1}', kinds)["world_seed"] == 1
    with pytest.raises(DarkmirrorError, match="expected KEY=VALUE"):
        scorer_option("hf:model", kinds)


def test_the_report_section_audits_offline_scorers_and_points_to_the_cli_for_others() -> None:
    section = audit_section("profanity_check", {"kind": "hf", "model": "x"}, None)
    assert section.startswith("## Scorer audit")
    assert "profanity_check" in section and "| sexual_orientation |" in section
    assert "`darkmirror audit-scorer --scorer hf:...`" in section
    broken = audit_section({"kind": "world_classifier", "no_such_field": 1})
    assert "world_classifier**: not audited" in broken
