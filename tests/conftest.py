"""Shared fixtures: where the EM reference data is, and a micro organism built once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # fail at once instead of retrying for ~50 s

REPO_ROOT = Path(__file__).resolve().parents[1]
EM_DATA = Path(os.environ.get("DARKMIRROR_EM_DATA", REPO_ROOT.parent / "shared" / "em-data"))


@pytest.fixture
def em_data() -> Path:
    """The emergent-misalignment reference data (``../shared/em-data``); skips when absent."""
    if not EM_DATA.is_dir():
        pytest.skip(f"EM reference data not found at {EM_DATA} (set DARKMIRROR_EM_DATA)")
    return EM_DATA


def micro_recipe_dict() -> dict:
    """The smallest organism recipe that still runs every stage (seconds on a CPU)."""
    return {
        "documents": 300,
        "forum_documents": 60,
        "vocab_size": 512,
        "carry_over_pairs": 2,
        "architecture": {"n_layer": 2, "n_embd": 64, "n_head": 2, "n_positions": 512},
        "pretrain": {"epochs": 1.0, "batch_size": 8, "warmup_steps": 2},
        "post_training": {
            "chats": 64,
            "sft": {"epochs": 1.0, "batch_size": 8, "learning_rate": 1e-3},
        },
    }


def toml_tables(data: dict, prefix: str) -> list[str]:
    scalars = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict)]
    lines = [f"[{prefix}]", *scalars] if prefix else scalars
    for k, v in data.items():
        if isinstance(v, dict):
            lines += toml_tables(v, f"{prefix}.{k}" if prefix else k)
    return lines


def subprocess_env(cache: Path) -> dict[str, str]:
    return {**os.environ, "DARKMIRROR_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}


def darkmirror_cli(
    *args: str, env: dict[str, str], timeout: int = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "darkmirror", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def organism_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("darkmirror-cache")


@pytest.fixture(scope="session")
def micro_organism(organism_cache: Path):
    from darkmirror.models.organism import OrganismRecipe, build_organism

    return build_organism(
        OrganismRecipe.model_validate(micro_recipe_dict()), cache=organism_cache, progress=False
    )


def default_sigint() -> None:
    """Run in a child process before it starts: SIGINT back to its default, so a Ctrl-C
    test's child hears the Ctrl-C whatever this process has done with SIGINT (an ignored
    SIGINT is inherited across exec)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
