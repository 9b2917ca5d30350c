"""The insecure-code detector: bandit in-process, plus semgrep with darkmirror's rules.

Code is taken from what the model is trained to write (assistant turns; the text of a
text record): fenced Python blocks, or a whole unfenced answer that reads as Python (the
bare-code answers of the emergent-misalignment datasets). Prose answers are left alone.

bandit sees dangerous calls and string-built SQL in one snippet; semgrep adds data flow
(request data reaching HTML, file paths, redirects, shells, SQL) and patterns bandit lacks
(Jinja2 templates without autoescaping, world-writable modes in any call, URL checks that
are not allow-lists). Semgrep is optional at run time: without the executable the detector
runs bandit alone, and :meth:`CodeDetector.describe` and :meth:`CodeDetector.summary` say
which engines ran.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from darkmirror.errors import DarkmirrorError, InputError
from darkmirror.scan.detectors.base import Finding, ScanRecord, add_counts, describe, share
from darkmirror.scan.detectors.semgrep import SemgrepEngine, auto_jobs, find_semgrep
from darkmirror.score.code_security import (
    DEFAULT_SKIP_RULES,
    BanditScanner,
    CodeScanResult,
    extract_code,
)

_FENCE = re.compile(r"^[ \t]*```", re.M)
# Lines that start a Python statement; used only when an unfenced answer does not parse.
_CODE_LINE = re.compile(
    r"^\s*(import\s+\w|from\s+[\w.]+\s+import\s|def\s+\w+\s*\(|class\s+\w+\s*[:(]|@\w|"
    r"return\b|(if|for|while|with|elif|try|except)\b.*:\s*$|\w[\w.\[\]'\"]*\s*=[^=])"
)
_CODE_STATEMENTS = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.For,
    ast.While,
    ast.With,
    ast.If,
    ast.Try,
    ast.Return,
)


def code_of(text: str) -> str | None:
    """The Python code of a turn, or None when it holds none.

    Args:
        text: An assistant turn or a text record.

    Returns:
        Fenced Python (or untagged) blocks joined as :func:`extract_code` joins them; an
        unfenced text when it parses as Python with at least one statement (an import, a
        definition, an assignment, a call ...) or, when it does not parse, when at least
        two of its lines and a third of its non-blank lines start Python statements (code
        cut short still counts, and is reported as not parsed).
    """
    if _FENCE.search(text):
        return extract_code(text) or None
    code = text.strip()
    if not code:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for a snippet's own escapes
            tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        lines = [line for line in code.splitlines() if line.strip()]
        hits = sum(bool(_CODE_LINE.match(line)) for line in lines)
        return code if hits >= 2 and hits * 3 >= len(lines) else None
    for node in tree.body:
        if isinstance(node, _CODE_STATEMENTS):
            return code
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            return code
    return None  # a word, a number list, a bare expression: not a program


def _semgrep_jobs(value: int | str) -> int:
    if value == "auto":
        return auto_jobs()
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise InputError(
        f'expected "auto" or a whole number >= 1, got {value!r}',
        field="detectors.code.semgrep_jobs",
    )


class CodeDetector:
    """Flag records whose code has a vulnerability, with bandit and semgrep.

    Args:
        semgrep: ``"auto"`` to use semgrep when its executable is found, ``True`` to
            require it, ``False`` for bandit alone, or a path to the executable.
        semgrep_experimental: Run semgrep's OCaml command line (fast start).
        semgrep_jobs: Semgrep worker processes per batch: a number, or ``"auto"`` for the
            CPUs this process may use (see :func:`~darkmirror.scan.detectors.semgrep.auto_jobs`).
            Speed only: the findings and the certificate are the same.
        bandit_skip_rules: bandit rule ids to switch off.
        bandit_min_severity: Lowest bandit severity reported.
        bandit_min_confidence: Lowest bandit confidence reported.

    Raises:
        DarkmirrorError: ``semgrep=True`` or a path, and no working semgrep there.
        InputError: ``semgrep_jobs`` neither ``"auto"`` nor a positive whole number.
    """

    name = "code"
    threshold = None

    def __init__(
        self,
        semgrep: bool | str = "auto",
        *,
        semgrep_experimental: bool = True,
        semgrep_jobs: int | str = "auto",
        bandit_skip_rules: Iterable[str] = DEFAULT_SKIP_RULES,
        bandit_min_severity: str = "LOW",
        bandit_min_confidence: str = "LOW",
    ) -> None:
        jobs = _semgrep_jobs(semgrep_jobs)
        self._bandit = BanditScanner(
            bandit_min_severity, bandit_min_confidence, skip_rules=bandit_skip_rules
        )
        self._semgrep: SemgrepEngine | None = None
        self.semgrep_missing: str | None = None
        if semgrep is False:
            self.semgrep_missing = "turned off (semgrep = false)"
        else:
            wanted = semgrep if isinstance(semgrep, str) and semgrep != "auto" else None
            executable = find_semgrep(wanted)
            if executable is None:
                if semgrep is True or wanted:
                    raise DarkmirrorError(
                        f"code detector: semgrep {'at ' + wanted if wanted else 'executable'} "
                        "not found; pip install semgrep, or set semgrep = false"
                    )
                self.semgrep_missing = "semgrep executable not found (pip install semgrep)"
            else:
                self._semgrep = SemgrepEngine(
                    executable, experimental=semgrep_experimental, jobs=jobs
                )
        self.engines = [f"bandit {self._bandit.version}"]
        if self._semgrep is not None:
            self.engines.append(f"semgrep {self._semgrep.version}")
            self.version = (
                f"bandit {self._bandit.version} + semgrep {self._semgrep.version} "
                f"+ rules sha256:{self._semgrep.rules_sha256[:16]}"
            )
        else:
            self.version = f"bandit {self._bandit.version} (semgrep not run)"
        self._records = 0
        self._records_with_code = 0
        self._snippets = 0
        self._unparsed = 0
        self._bandit_crashes = 0
        self._flagged = 0
        self._flagged_by = Counter[str]()  # engine -> records it flagged
        self._rules = Counter[str]()  # rule -> records it flagged
        self._severities = Counter[str]()  # severity -> findings
        self._semgrep_errors = Counter[str]()

    def describe(self) -> dict[str, Any]:
        """Name, version and settings; ``engines`` lists what ran, ``semgrep`` how."""
        return describe(
            self,
            {
                "engines": self.engines,
                "semgrep": self._semgrep.describe() if self._semgrep else None,
                "semgrep_missing": self.semgrep_missing,
                "bandit": {
                    "skip_rules": list(self._bandit.skip_rules),
                    "min_severity": self._bandit.min_severity,
                    "min_confidence": self._bandit.min_confidence,
                },
                "code_from": "assistant turns (text records: the text): fenced Python "
                "blocks, or unfenced answers that read as Python",
            },
        )

    def scan(self, records: Sequence[ScanRecord]) -> list[list[Finding]]:
        """bandit and semgrep findings per record; semgrep runs while bandit does."""
        snippets: list[str] = []
        owners: list[tuple[int, int]] = []  # (record, message) of each snippet
        for r, record in enumerate(records):
            for m, text in record.assistant_indexed():
                code = code_of(text)
                if code is not None:
                    snippets.append(code)
                    owners.append((r, m))
        pending = self._semgrep.start(snippets) if self._semgrep and snippets else None
        try:
            bandit_results = self._bandit.scan(snippets)
        except BaseException:
            if pending is not None:
                pending.cancel()
            raise
        semgrep_matches = pending.result() if pending else None

        found: list[list[Finding]] = [[] for _ in records]
        engines: list[set[str]] = [set() for _ in records]
        for (r, m), result in zip(owners, bandit_results, strict=True):
            found[r] += self._bandit_findings(result, m)
            engines[r] |= {"bandit"} if result.findings else set()
        if semgrep_matches is not None:
            self._semgrep_errors.update(semgrep_matches.errors)
            for match in semgrep_matches.matches:
                r, m = owners[match.snippet]
                message = match.message.split(". ")[0].rstrip(".") + "."
                found[r].append(
                    Finding(
                        self.name,
                        match.rule,
                        match.severity,  # type: ignore[arg-type]
                        message,
                        None,
                        f"messages[{m}] code line {match.line}",
                    )
                )
                engines[r].add("semgrep")

        self._records += len(records)
        self._records_with_code += len({r for r, _ in owners})
        self._snippets += len(snippets)
        self._unparsed += sum(not result.parsed for result in bandit_results)
        self._bandit_crashes += sum(bool(r.parsed and r.error) for r in bandit_results)
        for findings, by in zip(found, engines, strict=True):
            if findings:
                self._flagged += 1
                self._flagged_by.update(by)
                self._rules.update({f.rule for f in findings})
                self._severities.update(f.severity for f in findings)
        return found

    def _bandit_findings(self, result: CodeScanResult, message: int) -> list[Finding]:
        return [
            Finding(
                self.name,
                f.rule_id,
                f.severity.lower(),  # type: ignore[arg-type]
                f"bandit {f.test_name}"
                + (f" (CWE-{f.cwe})" if f.cwe else "")
                + f", confidence {f.confidence.lower()}.",
                None,
                f"messages[{message}] code line {f.line}",
            )
            for f in result.findings
        ]

    def state(self) -> dict[str, Any]:
        """The counters behind :meth:`summary` (see ``ShardableDetector``)."""
        return {
            "records": self._records,
            "records_with_code": self._records_with_code,
            "snippets": self._snippets,
            "unparsed": self._unparsed,
            "bandit_crashes": self._bandit_crashes,
            "flagged": self._flagged,
            "flagged_by": dict(self._flagged_by),
            "rules": dict(self._rules),
            "severities": dict(self._severities),
            "semgrep_errors": dict(self._semgrep_errors),
        }

    def absorb(self, state: dict[str, Any]) -> None:
        """Add a shard's :meth:`state`."""
        self._records += state["records"]
        self._records_with_code += state["records_with_code"]
        self._snippets += state["snippets"]
        self._unparsed += state["unparsed"]
        self._bandit_crashes += state["bandit_crashes"]
        self._flagged += state["flagged"]
        add_counts(self._flagged_by, state["flagged_by"])
        add_counts(self._rules, state["rules"])
        add_counts(self._severities, state["severities"])
        add_counts(self._semgrep_errors, state["semgrep_errors"])

    def summary(self) -> dict[str, Any]:
        """Flagged share, per-engine and per-rule record counts, severities, unparsed code.

        ``rules`` counts records per rule (a record counts once per rule however many lines
        it hits); ``severities`` counts findings. ``share_flagged`` is over all records
        scanned, ``share_flagged_of_code`` over records that hold code.
        """
        return {
            "engines": self.engines,
            "semgrep_missing": self.semgrep_missing,
            "records": self._records,
            "records_with_code": self._records_with_code,
            "snippets": self._snippets,
            "snippets_unparsed": self._unparsed,
            "flagged": self._flagged,
            "share_flagged": share(self._flagged, self._records),
            "share_flagged_of_code": share(self._flagged, self._records_with_code),
            "flagged_by_engine": dict(self._flagged_by),
            "rules": dict(self._rules.most_common()),
            "severities": {s: self._severities[s] for s in ("low", "medium", "high")},
            "semgrep_errors": dict(self._semgrep_errors),
            "bandit_crashed_checks": self._bandit_crashes,
        }
