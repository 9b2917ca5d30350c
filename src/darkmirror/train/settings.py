"""Settings shared by every trainer: what makes the Hugging Face trainers behave on a CPU.

`SFTConfig` defaults to bf16 and gradient checkpointing, which on a CPU are slower (bf16
matmuls are emulated on most CPUs; checkpointing recomputes activations we can afford to
keep), and every trainer defaults to reporting to whatever integration is installed.
"""

from __future__ import annotations

from typing import Any


def on_gpu() -> bool:
    import torch  # here, not at the top: a run's driver imports trainers' settings only

    return torch.cuda.is_available()


def trainer_kwargs(*, seed: int, progress: bool, logging_steps: int = 10) -> dict[str, Any]:
    """Keyword arguments for `TrainingArguments` / `SFTConfig` that are right on any machine."""
    import torch

    gpu = on_gpu()
    return {
        "use_cpu": not gpu,
        "bf16": gpu and torch.cuda.is_bf16_supported(),
        "fp16": False,
        "activation_checkpointing": False,
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": logging_steps,
        "disable_tqdm": not progress,
        "seed": seed,
        "data_seed": seed,
        "dataloader_num_workers": 0,
    }
