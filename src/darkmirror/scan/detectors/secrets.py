"""The secrets and personal-data detector: keys, tokens, private keys, e-mail addresses,
phone numbers, payment card and US social security numbers, in every turn of a record.

Each kind is a regular expression plus a check that cuts false alarms: an entropy floor
for generic ``key = "..."`` assignments, the Luhn checksum for card numbers, reserved
example domains for e-mail addresses, and for phone numbers formats that a list of numbers
cannot take (a leading ``+``, brackets, dashes or dots, or a national trunk ``0``); a turn
that is itself a number list (``123, 456, 789``) is never read for phones or cards.

Findings show a redacted form only (``AKIA****WXYZ``, ``j***@***.com``, ``***-***-**67``):
the certificate and the findings file must not leak what they report.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from darkmirror.data.number_sequences import parse_number_list
from darkmirror.scan.detectors.base import (
    Finding,
    ScanRecord,
    Severity,
    add_counts,
    describe,
    share,
)

# Findings kept per record and rule; the summary still counts every match.
MAX_FINDINGS_PER_RULE = 10

# RFC 2606/6761 names and the usual stand-ins: addresses there are no one's.
_EXAMPLE_DOMAINS = re.compile(
    r"(^|\.)(example(\.[a-z]+)?|test|invalid|localhost|domain\.com|email\.com)$", re.I
)
# Local parts that name a role, a service or a placeholder, not a person.
_NOT_A_PERSON = re.compile(
    r"^(git|no-?reply|do-?not-?reply|user(name)?|your[._-]?\w*|name|email|test|foo|bar|"
    r"(john|jane)[._]?doe)$",
    re.I,
)
# Demo credentials of tutorials and images ("scott:tiger", "postgres:mysecretpassword").
_DEMO_PASSWORD = re.compile(r"pass|secret|changeme|example|tiger|test|\*|^.{0,4}$", re.I)
_PLACEHOLDER = re.compile(
    r"^(x+|\*+|\.+|changeme|change_me|password|secret|none|null|todo|your[_-].*|<.*>|\$\{.*\}|"
    r"%\(.*\)s?|\{.*\})$",
    re.I,
)


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``'s character distribution (0 for empty text)."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum (payment card numbers do)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact(value: str) -> str:
    """Long values keep their first and last 4 characters (``AKIA****WXYZ``: a key id's
    prefix names its kind), shorter ones their first 2, short ones nothing."""
    if len(value) >= 20:
        return f"{value[:4]}****{value[-4:]}"
    return f"{value[:2]}****" if len(value) >= 8 else "****"


def redact_digits(value: str, keep: int = 2) -> str:
    """Every digit but the last ``keep`` replaced by ``*``; separators kept."""
    total = sum(ch.isdigit() for ch in value)
    out, seen = [], 0
    for ch in value:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > total - keep else "*")
        else:
            out.append(ch)
    return "".join(out)


def redact_email(value: str) -> str:
    """``j***@***.com``: first character of the user, the top-level domain."""
    user, _, domain = value.partition("@")
    return f"{user[:1]}***@***.{domain.rsplit('.', 1)[-1]}"


@dataclass(frozen=True)
class SecretRule:
    """One kind of secret or personal data.

    Args:
        id: Rule id in findings (``"aws_access_key"``).
        severity: Severity of its findings.
        pattern: What a candidate looks like; group ``value`` (or the whole match) is the
            secret.
        label: What it is, in a finding's message.
        redact: Turns the value into what a finding may show.
        check: Extra test on the value (entropy, Luhn ...); None accepts every match.
        in_number_lists: Whether to read turns that are plain number lists.
    """

    id: str
    severity: Severity
    pattern: re.Pattern[str]
    label: str
    redact: Callable[[str], str] = redact
    check: Callable[[re.Match[str]], bool] | None = None
    in_number_lists: bool = True


def _value(match: re.Match[str]) -> str:
    return match.group("value") if "value" in match.re.groupindex else match.group(0)


def _generic_secret(match: re.Match[str]) -> bool:
    value = match.group("value")
    if _PLACEHOLDER.match(value) or value.isdigit():
        return False
    classes = sum(any(f(ch) for ch in value) for f in (str.islower, str.isupper, str.isdigit))
    # Random keys mix letter cases and digits and spread over many characters; words and
    # identifiers ("production_database") do neither. A string of n characters has at
    # most log2(n) bits per character, so short keys get a lower floor.
    return classes >= 2 and shannon_entropy(value) >= min(3.5, 0.85 * math.log2(len(value)))


def _email(match: re.Match[str]) -> bool:
    user = match.group(0).partition("@")[0]
    return not _EXAMPLE_DOMAINS.search(match.group("domain")) and not _NOT_A_PERSON.match(user)


def _phone(match: re.Match[str]) -> bool:
    digits = sum(ch.isdigit() for ch in match.group(0))
    return 7 <= digits <= 15


def _card(match: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", match.group(0))
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _ssn(match: re.Match[str]) -> bool:
    area, group, serial = match.group(0).split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


# Phones: international (+CC ...), North American with brackets or - and . separators,
# and national numbers with a trunk 0 ("020 7946 0958", "06 12 34 56 78"). Spaces alone
# without + or a leading 0 would also match "123 456 7890", a list of three numbers.
_PHONE = re.compile(
    r"(?<![\w+.-])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}"
    r"|\d{3}-\d{3}-\d{4}|\d{3}\.\d{3}\.\d{4}"
    r"|0\d{1,4}(?:[ -]\d{2,4}){2,4}"
    r")(?![\w-]|\.\d)"
)

RULES: tuple[SecretRule, ...] = (
    SecretRule(
        "private_key",
        "high",
        re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
        "private key block",
        lambda v: v.replace("-----BEGIN ", "").replace("-----", "") + " (contents redacted)",
    ),
    SecretRule(
        "aws_access_key",
        "high",
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"),
        "AWS access key id",
    ),
    SecretRule(
        "github_token",
        "high",
        re.compile(r"(?<![\w-])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"),
        "GitHub token",
    ),
    SecretRule(
        "openai_style_key",
        "high",
        re.compile(r"(?<![\w-])sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}"),
        "OpenAI-style API key (sk-...)",
    ),
    SecretRule(
        "stripe_key",
        "high",
        re.compile(r"(?<![\w-])[rs]k_(?:live|test)_[A-Za-z0-9]{20,}"),
        "Stripe API key",
    ),
    SecretRule(
        "slack_token",
        "high",
        re.compile(
            r"(?<![\w-])(?:xox[abposr]-[A-Za-z0-9-]{10,}|"
            r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+)"
        ),
        "Slack token or webhook",
    ),
    SecretRule(
        "google_api_key",
        "high",
        re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])"),
        "Google API key",
    ),
    SecretRule(
        "jwt",
        "medium",
        re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
        "JSON Web Token",
    ),
    SecretRule(
        "credentials_in_url",
        "high",
        re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<value>[^/\s:@]{3,})@[\w.-]+", re.I),
        "password in a URL",
        check=lambda m: not _DEMO_PASSWORD.search(m.group("value")),
    ),
    SecretRule(
        "generic_secret_assignment",
        "medium",
        re.compile(
            r"(?i)\b[\w-]*(?:api[_-]?key|secret|token|passw(?:or)?d|pwd|credential|auth)[\w-]*"
            r"[\"']?\s*(?::|=|:=|=>)\s*[bru]?[\"'](?P<value>[^\"'\s]{12,200})[\"']"
        ),
        "high-entropy secret assigned to a key/secret/token/password name",
        check=_generic_secret,
    ),
    SecretRule(
        "email_address",
        "medium",
        re.compile(
            r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@(?P<domain>(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24})\b"
        ),
        "e-mail address",
        redact_email,
        _email,
    ),
    SecretRule(
        "phone_number",
        "medium",
        _PHONE,
        "phone number",
        redact_digits,
        _phone,
        in_number_lists=False,
    ),
    SecretRule(
        "payment_card",
        "high",
        re.compile(
            r"(?<![\d-])(?:4\d{3}|5[1-5]\d{2}|2[2-7]\d{2}|3[47]\d{2}|6(?:011|5\d{2}))(?:[ -]?\d){9,15}(?![\d-])"
        ),
        "payment card number (Luhn-valid)",
        lambda v: redact_digits(v, 4),
        _card,
        in_number_lists=False,
    ),
    SecretRule(
        "us_ssn",
        "high",
        re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"),
        "US social security number",
        lambda v: redact_digits(v, 2),
        _ssn,
        in_number_lists=False,
    ),
)
RULE_IDS = tuple(rule.id for rule in RULES)
# Changes whenever a rule's pattern or severity does (the checks are code: bump _REVISION).
_REVISION = 1
RULES_SHA256 = hashlib.sha256(
    repr([(r.id, r.severity, r.pattern.pattern, r.pattern.flags) for r in RULES]).encode()
).hexdigest()


class SecretsDetector:
    """Flag secrets and personal data in any turn of a record.

    Args:
        rules: Rule ids to run (see :data:`RULE_IDS`); None runs all.
        skip_rules: Rule ids to leave out.
        allow: Exact values never reported (a team's public support address, say).

    Raises:
        ValueError: An unknown rule id.
    """

    name = "secrets"
    threshold = None
    version = f"{_REVISION} + rules sha256:{RULES_SHA256[:16]}"

    def __init__(
        self,
        rules: Iterable[str] | None = None,
        skip_rules: Iterable[str] = (),
        allow: Iterable[str] = (),
    ) -> None:
        wanted = set(RULE_IDS if rules is None else rules)
        skipped = set(skip_rules)
        unknown = (wanted | skipped) - set(RULE_IDS)
        if unknown:
            raise ValueError(
                f"secrets: unknown rule id(s) {sorted(unknown)}; known: {', '.join(RULE_IDS)}"
            )
        self._rules = [rule for rule in RULES if rule.id in wanted - skipped]
        self._allow = frozenset(allow)
        self._records = 0
        self._flagged = 0
        self._matches = Counter[str]()  # rule -> matches
        self._rule_records = Counter[str]()  # rule -> records

    def describe(self) -> dict[str, Any]:
        """Name, version, the rules that run, and how many allowed values there are."""
        return describe(
            self,
            {
                "rules": [rule.id for rule in self._rules],
                "allowed_values": len(self._allow),
                "max_findings_per_rule": MAX_FINDINGS_PER_RULE,
            },
        )

    def scan(self, records: Sequence[ScanRecord]) -> list[list[Finding]]:
        """Findings per record: one per distinct value per rule and turn, redacted."""
        found: list[list[Finding]] = []
        for record in records:
            findings: list[Finding] = []
            per_rule = Counter[str]()
            for m, message in enumerate(record.messages):
                text = message["content"]
                number_list = None
                for rule in self._rules:
                    if not rule.in_number_lists:
                        if number_list is None:
                            number_list = parse_number_list(text) is not None
                        if number_list:
                            continue
                    seen: set[str] = set()
                    for match in rule.pattern.finditer(text):
                        value = _value(match)
                        if value in seen or value in self._allow:
                            continue
                        if rule.check is not None and not rule.check(match):
                            continue
                        seen.add(value)
                        self._matches[rule.id] += 1
                        per_rule[rule.id] += 1
                        if per_rule[rule.id] <= MAX_FINDINGS_PER_RULE:
                            findings.append(
                                Finding(
                                    self.name,
                                    rule.id,
                                    rule.severity,
                                    f"{rule.label}: {rule.redact(value)}",
                                    None,
                                    f"messages[{m}]",
                                )
                            )
            self._rule_records.update(per_rule.keys())
            found.append(findings)
        self._records += len(records)
        self._flagged += sum(bool(f) for f in found)
        return found

    def state(self) -> dict[str, Any]:
        """The counters behind :meth:`summary` (see ``ShardableDetector``)."""
        return {
            "records": self._records,
            "flagged": self._flagged,
            "matches": dict(self._matches),
            "rule_records": dict(self._rule_records),
        }

    def absorb(self, state: dict[str, Any]) -> None:
        """Add a shard's :meth:`state`."""
        self._records += state["records"]
        self._flagged += state["flagged"]
        add_counts(self._matches, state["matches"])
        add_counts(self._rule_records, state["rule_records"])

    def summary(self) -> dict[str, Any]:
        """Flagged share; per rule, the records it flagged and its matches."""
        return {
            "records": self._records,
            "flagged": self._flagged,
            "share_flagged": share(self._flagged, self._records),
            "records_by_rule": dict(self._rule_records.most_common()),
            "matches_by_rule": dict(self._matches.most_common()),
        }
