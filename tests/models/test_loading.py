"""Loading models by path or hub id: clear errors, safetensors only, adapters."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from darkmirror.errors import DarkmirrorError
from darkmirror.models.loading import load_causal_lm, save_causal_lm
from darkmirror.models.tiny import build_tiny_gpt2, build_tiny_tokenizer


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = build_tiny_tokenizer(
        ["hello world, a tiny corpus for a tiny tokenizer"] * 5, vocab_size=300
    )
    model = build_tiny_gpt2(tok, n_layer=1, n_embd=16, n_head=2)
    path = tmp_path_factory.mktemp("tiny-model")
    save_causal_lm(model, tok, path)
    return path


def test_a_local_directory_loads(saved: Path) -> None:
    model, tok = load_causal_lm(saved)
    assert model.config.n_layer == 1 and tok.pad_token is not None and not model.training


def test_a_missing_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(DarkmirrorError, match="does not exist"):
        load_causal_lm(tmp_path / "nope")


def test_an_unreachable_hub_id_fails_fast_with_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(DarkmirrorError, match="local directory"):
        load_causal_lm("darkmirror-test/no-such-model")
    assert time.perf_counter() - start < 20


def test_pickle_weights_are_refused(saved: Path, tmp_path: Path) -> None:
    import shutil

    pickled = tmp_path / "pickled"
    shutil.copytree(saved, pickled)
    (pickled / "model.safetensors").unlink()
    torch.save({}, pickled / "pytorch_model.bin")
    with pytest.raises(DarkmirrorError, match="safetensors"):
        load_causal_lm(pickled)


def test_an_adapter_is_applied(saved: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    model, tok = load_causal_lm(saved)
    peft_model = get_peft_model(
        model, LoraConfig(r=2, target_modules=["c_attn"], task_type="CAUSAL_LM")
    )
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)
    peft_model.save_pretrained(tmp_path / "adapter")
    loaded, _ = load_causal_lm(saved, adapter=tmp_path / "adapter")
    ids = tok("hello world", return_tensors="pt").input_ids.to(loaded.device)
    plain, _ = load_causal_lm(saved)
    assert not torch.allclose(loaded(ids).logits, plain(ids).logits)
    (tmp_path / "adapter" / "adapter_model.safetensors").unlink()
    with pytest.raises(DarkmirrorError, match=r"adapter_model\.safetensors"):
        load_causal_lm(saved, adapter=tmp_path / "adapter")
