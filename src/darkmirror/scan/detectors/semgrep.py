"""Run semgrep, offline, over many code snippets at once, with darkmirror's own rules.

The rules live in ``darkmirror/scan/rules/*.yaml``. They are read with PyYAML, which
resolves the anchors the rule files use to share taint sources, and written as one
plain rule file that every semgrep engine accepts.

A batch's snippets are written to a temporary directory, one file each, and one semgrep
process scans the directory: a process costs about 0.1 s to start with the OCaml
command line (``semgrep --experimental``, the default here) and about 1.5 s with the
Python one. Semgrep never reaches the network: metrics are off, the version check is off,
settings and logs go to the temporary directory, and no token is passed on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from darkmirror.errors import DarkmirrorError

# Semgrep's severities, as darkmirror's.
SEVERITY = {"ERROR": "high", "WARNING": "medium", "INFO": "low"}
# libyaml's loader when PyYAML has it: the same documents, read several times faster.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A snippet every engine must flag with this rule, checked once at start-up, so that a
# certificate never says semgrep ran when it silently matched nothing.
_SELF_CHECK = ("import os\nos.chmod('report.txt', 0o777)\n", "files.world-writable-permissions")


# Most semgrep processes "auto" starts per batch. On two cores two processes make a scan
# 1.23x faster than one (BENCHMARKS.md, "The data scan"); each process costs memory, and
# more than two were never measured, so the count stays small.
MAX_AUTO_JOBS = 4


def auto_jobs() -> int:
    """Semgrep processes per batch for ``jobs = "auto"``: the CPUs this process may use.

    ``OMP_NUM_THREADS`` wins when set: Ray sets it to a task's CPU allotment (one for a
    scan shard, so shards do not start more processes than the cluster has CPUs), and users
    set it to share a machine. Otherwise the CPUs this process is allowed to run on. At
    most :data:`MAX_AUTO_JOBS`.
    """
    allotted = os.environ.get("OMP_NUM_THREADS", "")
    if allotted.isdigit() and int(allotted) > 0:
        cpus = int(allotted)
    elif hasattr(os, "sched_getaffinity"):
        cpus = len(os.sched_getaffinity(0))
    else:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_AUTO_JOBS))


def rules_dir() -> Path:
    """The directory of darkmirror's semgrep rules."""
    return Path(str(resources.files("darkmirror.scan") / "rules"))


def rule_files(directory: Path | None = None) -> list[Path]:
    """The rule files, sorted by name."""
    return sorted((directory or rules_dir()).glob("*.yaml"))


def rules_sha256(files: Sequence[Path]) -> str:
    """SHA-256 over the rule files' names and bytes: changes whenever any rule does."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def load_rules(files: Sequence[Path]) -> list[dict[str, Any]]:
    """Every rule of the files, anchors resolved.

    Raises:
        DarkmirrorError: A file is not YAML with a ``rules`` list, or two rules share an id.
    """
    rules: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for path in files:
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
        except yaml.YAMLError as exc:
            raise DarkmirrorError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
            raise DarkmirrorError(f"{path}: expected a mapping with a 'rules' list")
        for rule in data["rules"]:
            rule_id = rule.get("id") if isinstance(rule, dict) else None
            if not isinstance(rule_id, str):
                raise DarkmirrorError(f"{path}: every rule needs a string 'id'")
            if rule_id in seen:
                raise DarkmirrorError(f"{path}: rule id {rule_id!r} is also in {seen[rule_id]}")
            seen[rule_id] = path
            rules.append(rule)
    return rules


def find_semgrep(executable: str | None = None) -> str | None:
    """Path of the semgrep executable, or None when there is none.

    Args:
        executable: A path or a name to look up; None looks for ``semgrep`` on PATH and
            next to the running Python (a virtual environment that is not activated).
    """
    if executable:
        return shutil.which(executable)
    found = shutil.which("semgrep")
    if found:
        return found
    beside = Path(sys.executable).parent / "semgrep"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


@dataclass(frozen=True)
class SemgrepMatch:
    """One semgrep result on one snippet.

    Args:
        snippet: Index of the snippet in the batch.
        rule: The rule id.
        severity: ``"low"``, ``"medium"`` or ``"high"``.
        line: 1-based line in the snippet.
        message: The rule's message.
    """

    snippet: int
    rule: str
    severity: str
    line: int
    message: str


@dataclass(frozen=True)
class SemgrepBatch:
    """What one semgrep run found.

    Args:
        matches: Every result, by snippet then line.
        errors: Per-snippet problems semgrep reported (error type -> count), such as a
            snippet it could only partly parse or a rule that timed out on a snippet.
        version: The version semgrep wrote into its result; None when it wrote none.
    """

    matches: list[SemgrepMatch]
    errors: dict[str, int]
    version: str | None = None


class SemgrepEngine:
    """darkmirror's semgrep rules, ready to run over batches of Python snippets.

    Args:
        executable: The semgrep executable (see :func:`find_semgrep`).
        rules_directory: Where the rule files are; None for darkmirror's own.
        experimental: Use semgrep's OCaml command line (``--experimental``): same results
            on these rules, about 1.4 s less per call.
        jobs: Semgrep's worker processes per call.
        timeout_s: Semgrep's time limit per rule and snippet.
        process_timeout_s: Time limit for one whole semgrep call.

    Raises:
        DarkmirrorError: The rules cannot be read, or semgrep fails its start-up check.
    """

    def __init__(
        self,
        executable: str,
        *,
        rules_directory: Path | None = None,
        experimental: bool = True,
        jobs: int = 1,
        timeout_s: int = 5,
        process_timeout_s: float = 600.0,
    ) -> None:
        self.executable = executable
        self.experimental = experimental
        self.jobs = jobs
        self.timeout_s = timeout_s
        self.process_timeout_s = process_timeout_s
        files = rule_files(rules_directory)
        if not files:
            raise DarkmirrorError(f"no semgrep rule files (*.yaml) in {rules_directory}")
        self.rule_files = [path.name for path in files]
        self.rules_sha256 = rules_sha256(files)
        rules = load_rules(files)
        self.rule_ids = sorted(rule["id"] for rule in rules)
        self._workdir = tempfile.mkdtemp(prefix="darkmirror-semgrep-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._workdir, True)
        self._rules_path = Path(self._workdir) / "rules.json"
        # JSON is YAML, so every engine reads it; the anchors are already resolved.
        self._rules_path.write_text(json.dumps({"rules": rules}), encoding="utf-8")
        self._env = self._environment()
        self.version = "unknown"  # the self-check's run reports it
        self._self_check()

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEMGREP_")}
        state = Path(self._workdir)
        env.update(
            SEMGREP_ENABLE_VERSION_CHECK="0",
            SEMGREP_SEND_METRICS="off",
            SEMGREP_SETTINGS_FILE=str(state / "settings.yml"),
            SEMGREP_LOG_FILE=str(state / "semgrep.log"),
            SEMGREP_VERSION_CACHE_PATH=str(state / "version"),
        )
        return env

    def _command(self, *args: str) -> list[str]:
        return [self.executable, *(["--experimental"] if self.experimental else []), *args]

    def _version(self) -> str:
        try:
            done = subprocess.run(
                self._command("--version"),
                env=self._env,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise DarkmirrorError(f"semgrep at {self.executable} does not run: {exc}") from None
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "unknown"

    def _self_check(self) -> None:
        snippet, rule = _SELF_CHECK
        try:
            found = self.scan([snippet])
        except OSError as exc:
            raise DarkmirrorError(f"semgrep at {self.executable} does not run: {exc}") from None
        # The version from the check's own result: starting semgrep once more just to ask
        # (`semgrep --version`) costs as much as the check itself.
        self.version = found.version or self._version()
        if not any(match.rule == rule for match in found.matches):
            raise DarkmirrorError(
                f"semgrep {self.version} at {self.executable} did not report {rule} on a "
                f"snippet that has it; its rules or its engine do not work here "
                f"(errors: {found.errors or 'none'})"
            )

    def describe(self) -> dict[str, Any]:
        """Executable, version, engine and rules, for the certificate."""
        return {
            "executable": self.executable,
            "version": self.version,
            "engine": "osemgrep (--experimental)" if self.experimental else "pysemgrep",
            "rule_files": self.rule_files,
            "rules_sha256": self.rules_sha256,
            "rules": self.rule_ids,
        }

    def start(self, snippets: Sequence[str]) -> _PendingRun:
        """Start scanning ``snippets`` in the background; :meth:`_PendingRun.result` waits.

        The caller can do other work (run bandit) while semgrep runs in its own process.
        """
        target = tempfile.mkdtemp(prefix="batch-", dir=self._workdir)
        for i, snippet in enumerate(snippets):
            # One file per snippet: taint analysis is per function and file, and a large
            # file of concatenated snippets costs several times more.
            Path(target, f"{i:06d}.py").write_text(snippet, encoding="utf-8", errors="replace")
        # No "scan" subcommand: both command lines scan by default, and the OCaml one
        # behind --experimental would read "scan" as a directory to scan.
        command = self._command(
            "--config",
            str(self._rules_path),
            "--json",
            "--quiet",
            "--metrics=off",
            "--disable-version-check",
            "--no-git-ignore",
            "--jobs",
            str(self.jobs),
            "--timeout",
            str(int(self.timeout_s)),
            ".",
        )
        process = subprocess.Popen(
            command,
            cwd=target,
            env=self._env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return _PendingRun(self, process, target, len(snippets))

    def scan(self, snippets: Sequence[str]) -> SemgrepBatch:
        """Scan ``snippets`` and wait for the result."""
        return self.start(snippets).result()


class _PendingRun:
    """A semgrep process scanning one batch."""

    def __init__(
        self, engine: SemgrepEngine, process: subprocess.Popen[str], target: str, n: int
    ) -> None:
        self._engine = engine
        self._process = process
        self._target = target
        self._n = n

    def cancel(self) -> None:
        """Stop semgrep and remove the batch's files."""
        self._process.kill()
        self._process.communicate()
        shutil.rmtree(self._target, ignore_errors=True)

    def result(self) -> SemgrepBatch:
        """Wait for semgrep and parse its JSON.

        Raises:
            DarkmirrorError: Semgrep failed as a whole (no JSON, a rule error, a timeout):
                a scan must not report semgrep as having run when it did not.
        """
        engine = self._engine
        try:
            stdout, stderr = self._process.communicate(timeout=engine.process_timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
            raise DarkmirrorError(
                f"semgrep took more than {engine.process_timeout_s:.0f} s on {self._n} snippets"
            ) from None
        finally:
            shutil.rmtree(self._target, ignore_errors=True)
        try:
            output = json.loads(stdout)
        except json.JSONDecodeError:
            raise DarkmirrorError(
                f"semgrep exited with code {self._process.returncode} without a JSON result: "
                f"{stderr.strip()[-2000:]}"
            ) from None
        errors: dict[str, int] = {}
        for error in output.get("errors", []):
            kind = str(error.get("type", "error"))
            if isinstance(error.get("type"), list):  # osemgrep: ["PartialParsing", [...]]
                kind = str(error["type"][0])
            if not error.get("path") and error.get("level") == "error":
                # Not about one snippet: a rule, an option or the engine failed.
                message = " ".join(str(error.get("message", error)).split())
                raise DarkmirrorError(f"semgrep failed: {message}")
            errors[kind] = errors.get(kind, 0) + 1
        ids = engine.rule_ids
        matches = []
        for result in output.get("results", []):
            name = Path(result["path"]).name
            check_id = result["check_id"]
            # The Python command line prefixes ids with the rule file's dotted directory.
            rule = next((i for i in ids if check_id == i or check_id.endswith("." + i)), check_id)
            extra = result.get("extra", {})
            matches.append(
                SemgrepMatch(
                    snippet=int(name.split(".")[0]),
                    rule=rule,
                    severity=SEVERITY.get(str(extra.get("severity", "")).upper(), "medium"),
                    line=int(result["start"]["line"]),
                    message=" ".join(str(extra.get("message", "")).split()),
                )
            )
        matches.sort(key=lambda m: (m.snippet, m.line, m.rule))
        version = output.get("version")
        return SemgrepBatch(matches, errors, str(version) if version else None)
