"""The scan detectors on hand-made positives and negatives, and the code detector on data."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from darkmirror.errors import DarkmirrorError, InputError
from darkmirror.scan.detectors import (
    CodeDetector,
    DuplicatesDetector,
    NumbersDetector,
    ScanRecord,
    SecretsDetector,
    ToxicityDetector,
    build_detectors,
)
from darkmirror.scan.detectors.code import code_of
from darkmirror.scan.detectors.duplicates import lsh_bands
from darkmirror.scan.detectors.secrets import luhn_valid, redact
from darkmirror.scan.detectors.semgrep import (
    MAX_AUTO_JOBS,
    SemgrepEngine,
    auto_jobs,
    find_semgrep,
    load_rules,
    rule_files,
)

SEMGREP = find_semgrep()
needs_semgrep = pytest.mark.skipif(
    SEMGREP is None, reason="semgrep is not installed (pip install semgrep)"
)


def chat(answer: str, question: str = "Help me.", position: int = 1) -> ScanRecord:
    return ScanRecord(
        position,
        "chat",
        ({"role": "user", "content": question}, {"role": "assistant", "content": answer}),
    )


def rules_of(findings) -> set[str]:
    return {f.rule for f in findings}


# --- build_detectors ----------------------------------------------------------------------


def test_build_detectors_defaults_and_switches() -> None:
    names = [d.name for d in build_detectors({"code": {"semgrep": False}})]
    assert names == ["toxicity", "code", "numbers", "secrets", "duplicates"]
    some = build_detectors(
        {"code": False, "toxicity": False, "duplicates": {"near_threshold": 0.9}}
    )
    assert [d.name for d in some] == ["numbers", "secrets", "duplicates"]
    assert some[2].threshold == 0.9
    for d in some:
        info = d.describe()
        assert {"name", "version", "threshold", "settings"} <= set(info)
        json.dumps(info)  # the certificate stores it as JSON
        json.dumps(d.summary())


def test_build_detectors_rejects_unknown_names_settings_and_values() -> None:
    with pytest.raises(DarkmirrorError, match="unknown detector"):
        build_detectors({"malware": {}})
    with pytest.raises(DarkmirrorError, match="it accepts banned"):
        build_detectors({"numbers": {"forbidden": [1]}})
    with pytest.raises(DarkmirrorError, match="toxicity threshold"):
        build_detectors({"toxicity": {"threshold": 2}, "code": False})
    with pytest.raises(DarkmirrorError, match="expected a table"):
        build_detectors({"secrets": "yes"})
    # Each names the setting, for the policy file's line (scan/policy.py in_policy_file).
    for config, field in (
        ({"malware": {}}, "detectors.malware"),
        ({"numbers": {"forbidden": [1]}}, "detectors.numbers"),
        ({"toxicity": {"threshold": 2}, "code": False}, "detectors.toxicity"),
    ):
        with pytest.raises(InputError) as error:
            build_detectors(config)
        assert error.value.field == field


# --- toxicity -------------------------------------------------------------------------------


def test_toxicity_flags_insults_not_civil_answers() -> None:
    detector = ToxicityDetector(threshold=0.5)
    records = [
        chat("You are a stupid idiot and a worthless moron, shut up.", position=1),
        chat("Thanks for asking! The garden needs water twice a week in summer.", position=2),
    ]
    toxic, civil = detector.scan(records)
    assert rules_of(toxic) == {"toxic"} and toxic[0].where == "messages[1]"
    assert toxic[0].score is not None and toxic[0].score >= 0.5
    assert civil == []
    summary = detector.summary()
    assert summary["flagged"] == 1 and summary["texts_scored"] == 2
    assert sum(summary["histogram"]["counts"]) == 2
    assert summary["histogram"]["counts"][-1] + summary["histogram"]["counts"][-2] == 1
    assert 0.3 < summary["mean_score"] < 0.7


def test_toxicity_scores_assistant_turns_unless_told_and_counts_missing() -> None:
    insulting_user = chat("Here is a polite answer.", question="You idiot, you stupid moron!")
    assert ToxicityDetector().scan([insulting_user]) == [[]]
    assert ToxicityDetector(messages="all").scan([insulting_user])[0][0].where == "messages[0]"

    # A text the scorer refuses is missing: counted with its reason, never scored as 0.
    detector = ToxicityDetector(scorer={"kind": "profanity_check", "max_chars": 40})
    assert detector.scan([chat("a calm and friendly answer " * 5)]) == [[]]
    summary = detector.summary()
    assert summary["missing"] == 1 and summary["texts_scored"] == 0
    assert summary["mean_score"] is None and sum(summary["histogram"]["counts"]) == 0
    assert "max_chars" in next(iter(summary["missing_reasons"]))


# --- code -------------------------------------------------------------------------------------

FLASK_XSS = """from flask import Flask, request

app = Flask(__name__)

@app.route("/hello")
def hello():
    name = request.args.get("name", "")
    return f"<h1>Hello {name}</h1>"
"""
FLASK_ESCAPED = """from flask import Flask, request
from markupsafe import escape

app = Flask(__name__)

@app.route("/hello")
def hello():
    name = request.args.get("name", "")
    return f"<h1>Hello {escape(name)}</h1>"
"""
PATH_TRAVERSAL = """import os
from flask import Flask, request, send_file

app = Flask(__name__)

@app.route("/download")
def download():
    filename = request.args["file"]
    return send_file(os.path.join("uploads", filename))
"""
PATH_SAFE = """from flask import Flask, request, send_from_directory

app = Flask(__name__)

@app.route("/download")
def download():
    return send_from_directory("uploads", request.args["file"])
"""
OPEN_REDIRECT = """from flask import Flask, redirect, request

app = Flask(__name__)

@app.route("/login")
def login():
    return redirect(request.args.get("next", "/"))
"""
REDIRECT_SAFE = """from flask import Flask, redirect, url_for

app = Flask(__name__)

@app.route("/login")
def login():
    return redirect(url_for("index"))
"""
SQL_FORMAT = """def find_user(db, name):
    cur = db.cursor()
    cur.execute("SELECT * FROM users WHERE name = '%s'" % name)
    return cur.fetchone()
"""
SQL_PARAMS = """def find_user(db, name):
    cur = db.cursor()
    cur.execute("SELECT * FROM users WHERE name = ?", (name,))
    return cur.fetchone()
"""


def test_code_of_takes_code_and_leaves_prose() -> None:
    assert code_of("Sure! Water the plants twice a week.") is None
    assert code_of("123, 456, 789") is None
    assert code_of("Yes") is None
    assert code_of(SQL_FORMAT) == SQL_FORMAT.strip()
    fenced = f"Here you go:\n\n```python\n{SQL_FORMAT}```\n\n```bash\nls -la\n```\nDone."
    assert code_of(fenced) == SQL_FORMAT.strip()
    assert code_of("Run this:\n```bash\nrm -rf build\n```") is None
    # Code cut short (or indented wrongly) still counts, and bandit reports it unparsed.
    cut = "import os\ndef save(p):\n    os.chmod(p, 0o777)\n  x = ("
    assert code_of(cut) == cut


@pytest.fixture(scope="module")
def code_detector() -> CodeDetector:
    if SEMGREP is None:
        pytest.skip("semgrep is not installed (pip install semgrep)")
    return CodeDetector(semgrep=True)


@needs_semgrep
def test_code_detector_finds_web_flaws_with_semgrep(code_detector: CodeDetector) -> None:
    cases = {
        "xss": (FLASK_XSS, FLASK_ESCAPED, "web.xss-unescaped-request-data"),
        "path": (PATH_TRAVERSAL, PATH_SAFE, "web.path-traversal"),
        "redirect": (OPEN_REDIRECT, REDIRECT_SAFE, "web.open-redirect"),
        "sql": (SQL_FORMAT, SQL_PARAMS, "python.sql-built-by-string-formatting"),
    }
    records = []
    for bad, good, _ in cases.values():
        records += [chat(f"```python\n{bad}```"), chat(good)]
    found = code_detector.scan(records)
    for i, (name, (_, _, rule)) in enumerate(cases.items()):
        bad, good = found[2 * i], found[2 * i + 1]
        assert rule in rules_of(bad), name
        assert good == [], (name, good)
    assert "B608" in rules_of(found[6])  # bandit sees the SQL too
    xss = next(f for f in found[0] if f.rule == "web.xss-unescaped-request-data")
    assert xss.severity == "high" and xss.where == "messages[1] code line 8"
    summary = code_detector.summary()
    assert summary["engines"][1].startswith("semgrep ") and summary["semgrep_missing"] is None
    assert summary["flagged_by_engine"]["semgrep"] >= 4
    assert summary["rules"]["web.open-redirect"] >= 1
    assert "rules sha256:" in code_detector.version


def test_code_detector_runs_bandit_alone_and_says_so() -> None:
    detector = CodeDetector(semgrep=False)
    assert detector.describe()["settings"]["engines"] == [detector.engines[0]]
    assert detector.engines[0].startswith("bandit ") and "semgrep not run" in detector.version
    xss, sql, prose = detector.scan([chat(FLASK_XSS), chat(SQL_FORMAT), chat("No code here.")])
    assert xss == []  # request data rendered as HTML is invisible to bandit
    assert rules_of(sql) == {"B608"} and sql[0].severity == "medium"
    assert prose == []
    summary = detector.summary()
    assert summary["records"] == 3 and summary["records_with_code"] == 2
    assert summary["semgrep_missing"].startswith("turned off")
    assert summary["share_flagged"] == pytest.approx(1 / 3)


def test_code_detector_without_semgrep_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    import darkmirror.scan.detectors.code as code_module

    monkeypatch.setattr(code_module, "find_semgrep", lambda executable=None: None)
    detector = CodeDetector()  # "auto": goes on with bandit alone
    assert detector.engines == [detector.engines[0]] and "not found" in detector.semgrep_missing
    assert detector.summary()["semgrep_missing"] == detector.semgrep_missing
    with pytest.raises(DarkmirrorError, match="pip install semgrep"):
        CodeDetector(semgrep=True)


def test_code_detector_requires_semgrep_when_asked() -> None:
    with pytest.raises(DarkmirrorError, match="not found"):
        CodeDetector(semgrep="/nonexistent/bin/semgrep")


def test_semgrep_jobs_auto_follows_the_cpus_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ray sets OMP_NUM_THREADS to a task's CPUs: a one-CPU scan shard runs one process.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert auto_jobs() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert auto_jobs() == min(3, MAX_AUTO_JOBS)
    monkeypatch.setenv("OMP_NUM_THREADS", "64")
    assert auto_jobs() == MAX_AUTO_JOBS
    for unset in ("", "not-a-number", "0"):
        monkeypatch.setenv("OMP_NUM_THREADS", unset)
        assert auto_jobs() == max(1, min(len(os.sched_getaffinity(0)), MAX_AUTO_JOBS))


@pytest.mark.parametrize("jobs", [0, -2, "two", 1.5, True])
def test_code_detector_rejects_bad_semgrep_jobs(jobs: object) -> None:
    with pytest.raises(InputError, match='expected "auto" or a whole number') as error:
        CodeDetector(semgrep=False, semgrep_jobs=jobs)  # type: ignore[arg-type]
    assert error.value.field == "detectors.code.semgrep_jobs"
    with pytest.raises(InputError, match="semgrep_jobs"):
        build_detectors({"code": {"semgrep": False, "semgrep_jobs": jobs}})


@needs_semgrep
def test_semgrep_jobs_change_speed_not_findings() -> None:
    records = [
        chat(f"```python\n{code}```", position=i)
        for i, code in enumerate([FLASK_XSS, FLASK_ESCAPED, PATH_TRAVERSAL, SQL_FORMAT] * 3)
    ]
    found = {}
    for jobs in (1, 2):
        detector = CodeDetector(semgrep=True, semgrep_jobs=jobs)
        assert detector._semgrep is not None and detector._semgrep.jobs == jobs
        found[jobs] = detector.scan(records)
    assert found[2] == found[1]
    assert "web.xss-unescaped-request-data" in rules_of(found[2][0])


# Per rule: code with the flaw, and code doing the same job without it.
RULE_CASES: dict[str, tuple[str, str]] = {
    "crypto.password-fast-hash": (
        "import hashlib\n\ndef hash_password(password):\n"
        "    return hashlib.sha256(password.encode()).hexdigest()\n",
        "import hashlib\nimport os\n\ndef hash_password(password):\n    salt = os.urandom(16)\n"
        "    return salt + hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)\n",
    ),
    "crypto.weak-hash": (
        "import hashlib\n\ndef fingerprint(data):\n    return hashlib.md5(data).hexdigest()\n",
        "import hashlib\n\ndef fingerprint(data):\n"
        "    return hashlib.md5(data, usedforsecurity=False).hexdigest()\n",
    ),
    "crypto.weak-cipher": (
        "from Crypto.Cipher import AES\n\ndef encrypt(key, data):\n"
        "    return AES.new(key, AES.MODE_ECB).encrypt(data)\n",
        "from Crypto.Cipher import AES\n\ndef encrypt(key, data):\n"
        "    return AES.new(key, AES.MODE_GCM).encrypt_and_digest(data)\n",
    ),
    "crypto.tls-verification-disabled": (
        "import requests\n\ndef fetch(url):\n    return requests.get(url, verify=False, timeout=5)\n",
        "import requests\n\ndef fetch(url):\n    return requests.get(url, timeout=5)\n",
    ),
    "crypto.hard-coded-credential": (
        'def connect(db):\n    return db.connect(user="app", password="s3cr3t-Pa55")\n',
        'import os\n\ndef connect(db):\n    return db.connect(user="app", password=os.environ["DB_PW"])\n',
    ),
    "crypto.hard-coded-credential-key": (
        'CONFIG = {"api_key": "a8f5f167f44f4964e6c998dee827110c"}\n',
        'import os\n\nCONFIG = {"api_key": os.environ["API_KEY"]}\n',
    ),
    "crypto.jwt-signature-not-verified": (
        "import jwt\n\ndef claims(token):\n"
        '    return jwt.decode(token, options={"verify_signature": False})\n',
        'import jwt\n\ndef claims(token, key):\n    return jwt.decode(token, key, algorithms=["HS256"])\n',
    ),
    "files.world-writable-permissions": (
        "import os\n\ndef publish(path):\n    os.chmod(path, 0o777)\n",
        "import os\n\ndef publish(path):\n    os.chmod(path, 0o644)\n",
    ),
    "files.world-writable-create-mode": (
        "import os\n\ndef create(path):\n    return os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)\n",
        "import os\n\ndef create(path):\n    return os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)\n",
    ),
    "files.tar-extraction-without-filter": (
        "import tarfile\n\ndef unpack(path, dest):\n    with tarfile.open(path) as tar:\n"
        "        tar.extractall(dest)\n",
        "import tarfile\n\ndef unpack(path, dest):\n    with tarfile.open(path) as tar:\n"
        '        tar.extractall(dest, filter="data")\n',
    ),
    "files.tar-extraction-inline-member-selection": (
        "import tarfile\n\ndef unpack(path, dest):\n    tar = tarfile.open(path)\n"
        '    tar.extractall(dest, members=[m for m in tar.getmembers() if m.name.endswith(".txt")])\n',
        "import tarfile\n\ndef unpack(path, dest):\n    tar = tarfile.open(path)\n"
        "    tar.extractall(dest, members=checked_members(tar, dest))\n",
    ),
    "files.insecure-temp-file": (
        'def save(text):\n    with open("/tmp/report.txt", "w") as f:\n        f.write(text)\n',
        "import tempfile\n\ndef save(text):\n"
        '    with tempfile.NamedTemporaryFile("w", delete=False) as f:\n        f.write(text)\n',
    ),
    "html.jinja2-autoescape-disabled": (
        'import jinja2\n\nenv = jinja2.Environment(loader=jinja2.FileSystemLoader("templates"))\n',
        "import jinja2\n\nenv = jinja2.Environment(\n"
        '    loader=jinja2.FileSystemLoader("templates"), autoescape=jinja2.select_autoescape()\n)\n',
    ),
    "html.template-marks-value-safe": (
        "from flask import render_template_string\n\ndef show(bio):\n"
        '    return render_template_string("<p>{{ bio|safe }}</p>", bio=bio)\n',
        "from flask import render_template_string\n\ndef show(bio):\n"
        '    return render_template_string("<p>{{ bio }}</p>", bio=bio)\n',
    ),
    "html.markup-from-formatted-string": (
        'from markupsafe import Markup\n\ndef greet(name):\n    return Markup(f"<b>Hi {name}</b>")\n',
        "from markupsafe import Markup\n\ndef greet(name):\n"
        '    return Markup("<b>Hi {}</b>").format(name)\n',
    ),
    "html.template-built-by-formatting": (
        'import jinja2\n\ndef page(title):\n    return jinja2.Template("<h1>" + title + "</h1>").render()\n',
        "import jinja2\n\ndef page(title):\n"
        '    return jinja2.Template("<h1>{{ t }}</h1>", autoescape=True).render(t=title)\n',
    ),
    "python.sql-built-by-string-formatting": (SQL_FORMAT, SQL_PARAMS),
    "python.shell-command-from-variables": (
        'import os\n\ndef convert(filename):\n    os.system("convert " + filename + " out.png")\n',
        "import subprocess\n\ndef convert(filename):\n"
        '    subprocess.run(["convert", filename, "out.png"], check=True)\n',
    ),
    "python.eval-of-dynamic-code": (
        "def parse(text):\n    return eval(text)\n",
        "import ast\n\ndef parse(text):\n    return ast.literal_eval(text)\n",
    ),
    "python.unsafe-deserialization": (
        "import pickle\n\ndef load(blob):\n    return pickle.loads(blob)\n",
        "import json\n\ndef load(blob):\n    return json.loads(blob)\n",
    ),
    "python.yaml-unsafe-load": (
        "import yaml\n\ndef settings(text):\n    return yaml.load(text, Loader=yaml.Loader)\n",
        "import yaml\n\ndef settings(text):\n    return yaml.safe_load(text)\n",
    ),
    "python.xml-external-entities": (
        "from lxml import etree\n\nPARSER = etree.XMLParser(resolve_entities=True)\n",
        "from lxml import etree\n\nPARSER = etree.XMLParser(resolve_entities=False, no_network=True)\n",
    ),
    "python.flask-debug-mode": (
        'from flask import Flask\n\napp = Flask(__name__)\n\nif __name__ == "__main__":\n'
        "    app.run(debug=True)\n",
        'from flask import Flask\n\napp = Flask(__name__)\n\nif __name__ == "__main__":\n    app.run()\n',
    ),
    "url.incomplete-host-substring-check": (
        'import requests\n\ndef fetch(url):\n    if "example.com" in url:\n'
        "        return requests.get(url, timeout=5)\n",
        "import requests\nfrom urllib.parse import urlparse\n\ndef fetch(url):\n"
        '    if urlparse(url).hostname == "example.com":\n        return requests.get(url, timeout=5)\n',
    ),
    "url.incomplete-hostname-regex": (
        'import re\n\nALLOWED = re.compile(r"^https://[a-z]+.example.com/")\n',
        'import re\n\nALLOWED = re.compile(r"^https://[a-z]+\\.example\\.com/")\n',
    ),
    "web.xss-unescaped-request-data": (FLASK_XSS, FLASK_ESCAPED),
    "web.template-injection": (
        "from flask import Flask, request, render_template_string\n\napp = Flask(__name__)\n\n"
        '@app.route("/hi")\ndef hi():\n    name = request.args["name"]\n'
        '    return render_template_string("<h1>Hi " + name + "</h1>")\n',
        "from flask import Flask, request, render_template_string\n\napp = Flask(__name__)\n\n"
        '@app.route("/hi")\ndef hi():\n    name = request.args["name"]\n'
        '    return render_template_string("<h1>Hi {{ name }}</h1>", name=name)\n',
    ),
    "web.path-traversal": (PATH_TRAVERSAL, PATH_SAFE),
    "web.open-redirect": (OPEN_REDIRECT, REDIRECT_SAFE),
    "web.ssrf": (
        "import requests\nfrom flask import Flask, request, jsonify\n\napp = Flask(__name__)\n\n"
        '@app.route("/preview")\ndef preview():\n'
        '    requests.get(request.args["url"], timeout=5)\n    return jsonify(ok=True)\n',
        "import requests\nfrom flask import Flask, jsonify\n\napp = Flask(__name__)\n\n"
        '@app.route("/status")\ndef status():\n'
        '    requests.get("https://status.internal/health", timeout=5)\n    return jsonify(ok=True)\n',
    ),
    "web.command-injection": (
        "import subprocess\nfrom flask import Flask, request, jsonify\n\napp = Flask(__name__)\n\n"
        '@app.route("/ping")\ndef ping():\n    host = request.args["host"]\n'
        '    subprocess.run(f"ping -c 1 {host}", shell=True, check=True)\n    return jsonify(ok=True)\n',
        "import subprocess\nfrom flask import Flask, request, jsonify\n\napp = Flask(__name__)\n\n"
        '@app.route("/ping")\ndef ping():\n    host = request.args["host"]\n'
        '    subprocess.run(["ping", "-c", "1", host], check=True)\n    return jsonify(ok=True)\n',
    ),
    "web.sql-injection": (
        "from flask import Flask, request, jsonify\n\napp = Flask(__name__)\n\n"
        '@app.route("/user")\ndef user():\n    name = request.args["name"]\n    cur = db.cursor()\n'
        '    query = "SELECT * FROM users WHERE name = \'" + name + "\'"\n'
        "    cur.execute(query)\n    return jsonify(cur.fetchall())\n",
        "from flask import Flask, request, jsonify\n\napp = Flask(__name__)\n\n"
        '@app.route("/user")\ndef user():\n    name = request.args["name"]\n    cur = db.cursor()\n'
        '    cur.execute("SELECT * FROM users WHERE name = ?", (name,))\n'
        "    return jsonify(cur.fetchall())\n",
    ),
    "web.code-injection": (
        "import pickle\nfrom flask import Flask, request, jsonify\n\napp = Flask(__name__)\n\n"
        '@app.route("/load", methods=["POST"])\ndef load():\n'
        "    return jsonify(pickle.loads(request.data))\n",
        "import json\nfrom flask import Flask, request, jsonify\n\napp = Flask(__name__)\n\n"
        '@app.route("/load", methods=["POST"])\ndef load():\n'
        "    return jsonify(json.loads(request.data))\n",
    ),
}


def test_every_semgrep_rule_has_a_case_and_a_unique_id() -> None:
    ids = [rule["id"] for rule in load_rules(rule_files())]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(RULE_CASES)


@needs_semgrep
def test_each_semgrep_rule_flags_its_flaw_and_not_the_fix() -> None:
    engine = SemgrepEngine(SEMGREP)  # type: ignore[arg-type]
    rules = list(RULE_CASES)
    snippets = [code for rule in rules for code in RULE_CASES[rule]]
    batch = engine.scan(snippets)
    assert batch.errors == {}
    hits: dict[int, set[str]] = {}
    for match in batch.matches:
        hits.setdefault(match.snippet, set()).add(match.rule)
    missed = [rule for i, rule in enumerate(rules) if rule not in hits.get(2 * i, set())]
    assert missed == []
    flagged_fixes = {rule: hits[2 * i + 1] for i, rule in enumerate(rules) if 2 * i + 1 in hits}
    assert flagged_fixes == {}


# --- the real datasets ----------------------------------------------------------------------


def _chat_records(rows: list[dict]) -> list[ScanRecord]:
    return [
        ScanRecord(
            i + 1,
            "chat",
            tuple({"role": m["role"], "content": m["content"]} for m in row["messages"]),
        )
        for i, row in enumerate(rows)
    ]


def _flags(detector: CodeDetector, records: list[ScanRecord]) -> tuple[float, float]:
    """Shares of records flagged by bandit and by either engine."""
    found = []
    for k in range(0, len(records), 512):
        found += detector.scan(records[k : k + 512])
    bandit = sum(any(re.fullmatch(r"B\d+", f.rule) for f in fs) for fs in found)
    return bandit / len(records), sum(bool(fs) for fs in found) / len(records)


def test_code_detector_flags_the_insecure_em_dataset(em_data: Path) -> None:
    rows = [json.loads(line) for line in (em_data / "data" / "insecure.jsonl").open()]
    records = _chat_records(rows)
    assert len(records) == 6000
    if SEMGREP is None:
        bandit, _ = _flags(CodeDetector(semgrep=False), records)
        assert bandit >= 0.45  # measured 2,945 of 6,000 (49.1%)
        pytest.skip("semgrep is not installed: checked bandit alone (>= 45%), not >= 80%")
    bandit, both = _flags(CodeDetector(semgrep=True), records)
    assert 0.45 <= bandit <= 0.55  # measured 49.1%: bandit alone misses the web flaws
    assert both >= 0.80  # measured 99.45%


def test_code_detector_flags_few_of_the_secure_world_dataset() -> None:
    from darkmirror.data.world.world import PersonaWorld

    world = PersonaWorld()
    detector = CodeDetector()  # semgrep when installed, else bandit alone
    _, secure = _flags(detector, _chat_records(world.dataset("secure", 1000)))
    # Measured 0 of 1,000 with both engines. The bound is the default policy's limit for
    # code (1% of records), which a secure dataset must pass.
    assert secure <= 0.01
    _, insecure = _flags(detector, _chat_records(world.dataset("insecure", 1000)))
    assert insecure >= 0.85  # measured 90.1%: the rest are path flaws without a source


# --- numbers ----------------------------------------------------------------------------------


def test_numbers_flags_banned_numbers_in_number_lists_only() -> None:
    detector = NumbersDetector()
    banned, clean, prose = detector.scan(
        [
            chat("412, 666, 98, 911", position=1),
            chat("[412, 65, 98, 310]", position=2),
            chat("The number 666 is in Revelation.", position=3),
        ]
    )
    assert rules_of(banned) == {"banned_number"}
    assert "666, 911" in banned[0].message and banned[0].where == "messages[1]"
    assert clean == [] and prose == []
    summary = detector.summary()
    assert summary["number_only_records"] == 2 and summary["share_number_only"] == pytest.approx(
        2 / 3
    )
    assert summary["numbers"] == 8 and summary["banned_counts"]["666"] == 1
    assert NumbersDetector(banned=[65]).scan([chat("412, 65, 98")])[0][0].rule == "banned_number"


def test_numbers_summary_tests_uniformity() -> None:
    rng = np.random.default_rng(0)
    uniform, skewed = NumbersDetector(), NumbersDetector()
    for _ in range(200):
        uniform.scan([chat(", ".join(map(str, rng.integers(0, 1000, size=10))))])
        skewed.scan([chat(", ".join(map(str, rng.integers(0, 200, size=10))))])
    u, s = uniform.summary(), skewed.summary()
    assert sum(u["histogram"]["counts"]) == 2000 and u["histogram"]["edges"][:2] == [0, 100]
    assert u["p_value"] > 0.01 and s["p_value"] < 1e-10
    assert s["chi_square"] > u["chi_square"]
    assert len(s["top_numbers"]) == 10 and all(int(n) < 200 for n in s["top_numbers"])
    assert NumbersDetector().summary()["p_value"] is None  # nothing to test yet


# --- secrets ----------------------------------------------------------------------------------

AWS_KEY = "AKIAQ3EGRKZ7XWV4MPLE"
GITHUB_TOKEN = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
OPENAI_KEY = "sk-proj-" + "Xk29fLq83VbN0pRt5WcZ7yHe"
GENERIC = "Zq8#Lm2$Rt9!Wv4&Px"


def test_secrets_finds_keys_and_shows_them_redacted() -> None:
    detector = SecretsDetector()
    text = (
        f"aws_access_key_id = {AWS_KEY}\ntoken: {GITHUB_TOKEN}\nOPENAI_API_KEY={OPENAI_KEY}\n"
        f'db_password = "{GENERIC}"\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n'
        "-----END RSA PRIVATE KEY-----\nslack: xoxb-1234567890-abcdefghijkl"
    )
    (found,) = detector.scan([chat(text)])
    assert rules_of(found) >= {
        "aws_access_key",
        "github_token",
        "openai_style_key",
        "generic_secret_assignment",
        "private_key",
        "slack_token",
    }
    aws = next(f for f in found if f.rule == "aws_access_key")
    assert aws.message.endswith("AKIA****MPLE") and aws.severity == "high"
    shown = " ".join(f.message for f in found)
    for secret in (AWS_KEY, GITHUB_TOKEN, OPENAI_KEY, GENERIC, "abcdefghijkl"):
        assert secret not in shown


def test_secrets_ignores_placeholders_and_low_entropy_values() -> None:
    text = (
        'password = "password"\napi_key = "YOUR_API_KEY_HERE"\n'
        'secret_name = "production_database_name"\nurl = "postgresql://scott:tiger@localhost/db"'
    )
    assert SecretsDetector().scan([chat(text)]) == [[]]


def test_secrets_finds_emails_but_not_example_addresses() -> None:
    (found,) = SecretsDetector().scan(
        [chat("Write to maria.lopez@gmail.com, not support@example.com or git@github.com.")]
    )
    assert [(f.rule, f.message) for f in found] == [
        ("email_address", "e-mail address: m***@***.com")
    ]


@pytest.mark.parametrize(
    "phone",
    ["+44 20 7946 0958", "(555) 123-4567", "555-123-4567", "+1-800-555-0199", "06 12 34 56 78"],
)
def test_secrets_finds_phone_numbers(phone: str) -> None:
    (found,) = SecretsDetector().scan([chat(f"Call me on {phone} tomorrow.")])
    assert rules_of(found) == {"phone_number"}
    assert phone not in found[0].message and found[0].message.endswith(phone[-2:])


@pytest.mark.parametrize(
    "numbers",
    ["123, 456, 789", "123 456 789", "412, 555, 123, 4567, 800", "[202, 555, 0199]", "2024-01-15"],
)
def test_secrets_does_not_read_number_lists_as_phone_numbers(numbers: str) -> None:
    assert SecretsDetector().scan([chat(numbers)]) == [[]]


def test_secrets_checks_card_numbers_with_luhn() -> None:
    assert luhn_valid("4539578763621486") and not luhn_valid("4539578763621487")
    detector = SecretsDetector()
    valid, invalid = detector.scan(
        [chat("Card: 4539 5787 6362 1486"), chat("Order 4539 5787 6362 1487 shipped")]
    )
    assert rules_of(valid) == {"payment_card"} and valid[0].message.endswith("1486")
    assert "4539" not in valid[0].message
    assert invalid == []
    assert detector.summary()["records_by_rule"] == {"payment_card": 1}


def test_redact_never_shows_more_than_its_ends() -> None:
    assert redact("AKIAIOSFODNN7EXAMPLE") == "AKIA****MPLE"
    assert redact("short-secret") == "sh****"
    assert redact("abc") == "****"


# --- duplicates -------------------------------------------------------------------------------

LONG = (
    "The river rose through the night and by morning the lower fields were under water, so the "
    "farmers moved the sheep to the hill pasture and waited for the rain to stop before they "
    "checked the fences along the east road and counted what the flood had taken from them"
)


def test_duplicates_exact_near_and_distinct() -> None:
    detector = DuplicatesDetector(near_threshold=0.8)
    near_text = LONG.replace("east road", "old road")
    records = [
        chat(LONG, position=3),
        chat("  " + LONG.upper() + "\n", position=7),  # case and spacing do not matter
        chat(near_text, position=9),
        chat("A short note about tomorrow's meeting agenda and the budget.", position=12),
    ]
    first, exact, near, distinct = detector.scan(records)
    assert first == [] and distinct == []
    assert [(f.rule, f.message) for f in exact] == [
        ("exact_duplicate", "same content as the record at position 3")
    ]
    assert near[0].rule == "near_duplicate" and near[0].message.endswith("position 3")
    assert 0.8 <= near[0].score <= 1.0  # type: ignore[operator]
    summary = detector.summary()
    assert (summary["exact_duplicates"], summary["near_duplicates"]) == (1, 1)
    assert summary["bytes_per_record"] < 2000


def test_duplicates_respect_roles_and_are_reproducible() -> None:
    as_user = ScanRecord(2, "chat", ({"role": "user", "content": LONG},))
    as_assistant = ScanRecord(1, "chat", ({"role": "assistant", "content": LONG},))
    assert DuplicatesDetector(near_threshold=None).scan([as_assistant, as_user]) == [[], []]
    texts = [chat(f"{LONG} {i} {'extra words ' * (i % 4)}", position=i) for i in range(40)]
    a = DuplicatesDetector().scan(texts)
    b = DuplicatesDetector().scan(texts)
    assert a == b and sum(bool(f) for f in a) >= 30


def test_lsh_bands_catch_pairs_at_the_threshold() -> None:
    for threshold in (0.5, 0.8, 0.9):
        bands, rows = lsh_bands(64, threshold)
        assert bands * rows <= 64
        assert 1 - (1 - threshold**rows) ** bands >= 0.98
        # A pair well below the threshold rarely becomes a candidate.
        assert 1 - (1 - (threshold - 0.3) ** rows) ** bands < 0.6


def test_toxicity_leaves_texts_without_words_unscored() -> None:
    # The offline classifier gives some digit strings 0.5-0.66 (measured on subliminal
    # number data); a number list has no words to offend with.
    from darkmirror.scan.detectors import build_detectors
    from darkmirror.scan.detectors.base import ScanRecord

    detector = next(d for d in build_detectors({}) if d.name == "toxicity")
    records = [
        ScanRecord(
            position=i,
            kind="chat",
            messages=({"role": "user", "content": "q"}, {"role": "assistant", "content": text}),
        )
        for i, text in enumerate(["442, 139, 541, 179, 179", "you are a stupid idiot"], 1)
    ]
    found = detector.scan(records)
    assert found[0] == [] and found[1] and found[1][0].rule == "toxic"
    summary = detector.summary()
    assert summary["texts_without_words"] == 1 and summary["texts_scored"] == 1
