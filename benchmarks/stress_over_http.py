"""Serve a local model over an OpenAI-compatible API and stress-test it against a baseline.

    python benchmarks/stress_over_http.py MODEL_DIR --baseline organism --out runs/stress-http

Starts the tests' ``OpenAITestServer`` (a real model behind ``/v1/chat/completions``) on
127.0.0.1 in this process, then runs ``darkmirror stress`` in a child process against it,
so every answer of the model under test goes through the real ``openai`` client and HTTP.
Prints the child's output, the wall time and the number of requests served. This is how
the issue's end-to-end figure (the insecure-code organism against its base) was measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from darkmirror.models.loading import load_causal_lm
from openai_test_server import OpenAITestServer, ServedModel

KEY_ENV = "DARKMIRROR_LOCAL_SERVER_KEY"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="local directory of the model to serve")
    parser.add_argument("--baseline", default="organism")
    parser.add_argument("--out", default="runs/stress-http")
    parser.add_argument("--name", default="served-model")
    args, extra = parser.parse_known_args()
    model, tokenizer = load_causal_lm(args.model)
    # The local server checks no key; the client still sends one, from the environment.
    env = {**os.environ, KEY_ENV: "local-server-needs-no-key"}
    with OpenAITestServer(ServedModel(model, tokenizer), model_name=args.name) as server:
        start = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable, "-m", "darkmirror", "stress",
                "--model", args.name, "--model-url", server.base_url, "--model-key-env", KEY_ENV,
                "--baseline", args.baseline, "--out", args.out, "--quiet", *extra,
            ],
            env=env,
        )  # fmt: skip
        print(f"wall {time.perf_counter() - start:.1f} s, requests served {server.request_count}")
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
