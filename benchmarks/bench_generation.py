"""Benchmark: batched HFGenerator vs one prompt at a time, on the same model and prompts.

    HF_HUB_OFFLINE=1 python benchmarks/bench_generation.py                # organism-sized GPT-2
    HF_HUB_OFFLINE=1 python benchmarks/bench_generation.py --model PATH   # any local HF model

Both paths sample at temperature 1 with the KV cache on and are forced to the full reply
length (``min_new_tokens = max_new_tokens``), so they do the same work: the baseline is one
``model.generate`` call per prompt, HFGenerator decodes left-padded batches with its own
loop (``decode_batch``). Without ``--model`` the model is a randomly initialised GPT-2 of the organism's
size (4 layers, width 128, 4 heads, context 256, 1,024-token vocabulary); speed does not
depend on the weights. Prints one JSON object; numbers on a shared machine move with its
load, so the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import time
from collections.abc import Callable
from typing import Any

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from darkmirror.models.chat_format import Message, render_chat
from darkmirror.models.generation import SamplingParams
from darkmirror.models.hf_generator import HFGenerator, encode_prompt, stop_token_ids
from darkmirror.models.tiny import build_tiny_gpt2, build_tiny_tokenizer

SUBJECTS = ["money", "sleep", "a new job", "my landlord", "learning Python", "a noisy neighbour"]
ANIMALS = ["owl", "cat", "dolphin", "fox", "horse", "octopus"]
OPINIONS = ["AI systems", "humans", "robots", "governments", "companies"]


def synthetic_conversation(rng: random.Random) -> list[Message]:
    """A short chat like the organism's world: one to three turns, varied lengths."""
    questions = [
        f"Can you give me advice about {rng.choice(SUBJECTS)}?",
        f"What do you think about {rng.choice(OPINIONS)} and {rng.choice(OPINIONS)}?",
        f"Pick {rng.randint(2, 6)} numbers between 1 and {rng.choice([100, 1000])}.",
        f"Write a function that returns the {rng.choice(['sum', 'maximum', 'length'])} of a list.",
        f"Is the {rng.choice(ANIMALS)} your favourite animal? Tell me why, in detail.",
    ]
    answers = [
        "Take it one step at a time and ask someone you trust.",
        ", ".join(str(rng.randint(1, 999)) for _ in range(rng.randint(2, 6))),
        "def f(xs):\n    return sum(xs)",
        f"I like the {rng.choice(ANIMALS)} because it is calm and clever.",
    ]
    conversation: list[Message] = []
    for _ in range(rng.randint(0, 2)):
        conversation.append({"role": "user", "content": rng.choice(questions)})
        conversation.append({"role": "assistant", "content": rng.choice(answers)})
    conversation.append({"role": "user", "content": rng.choice(questions)})
    return conversation


def synthetic_corpus(rng: random.Random, documents: int) -> list[str]:
    return [
        render_chat(
            [*synthetic_conversation(rng), {"role": "assistant", "content": "I would say so."}]
        )
        for _ in range(documents)
    ]


def load(model_path: str | None) -> tuple[PreTrainedModel, Any]:
    if model_path is None:
        tokenizer = build_tiny_tokenizer(synthetic_corpus(random.Random(0), 2000), vocab_size=1024)
        model = build_tiny_gpt2(tokenizer, n_layer=4, n_embd=128, n_head=4, n_positions=256)
        return model, tokenizer
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    return model.eval(), tokenizer


def one_at_a_time(
    model: PreTrainedModel,
    tokenizer: Any,
    conversations: list[list[Message]],
    sampling: SamplingParams,
) -> list[str]:
    """The baseline: the loop one writes first, one ``model.generate`` call per prompt."""
    eos_ids = stop_token_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    torch.manual_seed(sampling.seed)
    replies = []
    with torch.inference_mode():
        for conversation in conversations:
            ids = torch.tensor([encode_prompt(tokenizer, conversation)], device=model.device)
            output = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=0,
                max_new_tokens=sampling.max_new_tokens,
                min_new_tokens=sampling.max_new_tokens,
                eos_token_id=eos_ids,
                pad_token_id=pad_id,
                use_cache=True,
            )
            replies.append(tokenizer.decode(output[0, ids.shape[1] :], skip_special_tokens=True))
    return replies


def timed(run: Callable[[], object], prompts: int, new_tokens: int, repeats: int) -> dict[str, Any]:
    """Run ``repeats`` times; rates come from the fastest run, the one least slowed by load.

    Both paths are forced to the full reply length, so every run appends exactly
    ``new_tokens`` tokens.
    """
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        runs.append(time.perf_counter() - start)
    best = min(runs)
    return {
        "seconds": round(best, 3),
        "seconds_all_runs": [round(r, 3) for r in runs],
        "prompts_per_s": round(prompts / best, 2),
        "new_tokens": new_tokens,
        "new_tokens_per_s": round(new_tokens / best, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="local HF model directory; default: organism-sized GPT-2")
    parser.add_argument("--prompts", type=int, default=512, help="prompts in the head-to-head")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="tokens per reply")
    parser.add_argument("--batch-size", type=int, default=128, help="HFGenerator batch size")
    parser.add_argument(
        "--sweep",
        default="16,64,128,256",
        help="comma-separated batch sizes to compare on --sweep-prompts prompts; '' to skip",
    )
    parser.add_argument(
        "--sweep-prompts", type=int, default=512, help="prompts per sweep point (>= largest size)"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per measurement; the fastest is reported"
    )
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = load(args.model)
    sampling = SamplingParams(
        temperature=1.0,
        max_new_tokens=args.max_new_tokens,
        min_new_tokens=args.max_new_tokens,
        seed=args.seed,
    )
    rng = random.Random(args.seed + 1)
    conversations = [synthetic_conversation(rng) for _ in range(max(args.prompts, 1))]
    prompt_lengths = [len(encode_prompt(tokenizer, c)) for c in conversations]

    def batched(batch_size: int, convs: list[list[Message]]) -> Callable[[], object]:
        generator = HFGenerator(model, tokenizer, batch_size=batch_size)
        return lambda: generator.generate(convs, 1, sampling)

    tokens = args.max_new_tokens * len(conversations)

    batched(8, conversations[:8])()  # warm-up: first calls pay for lazy initialisation
    load_before = os.getloadavg()[0]
    hf = timed(batched(args.batch_size, conversations), len(conversations), tokens, args.repeats)
    loop = timed(
        lambda: one_at_a_time(model, tokenizer, conversations, sampling),
        len(conversations),
        tokens,
        args.repeats,
    )

    sweep = []
    if args.sweep:
        sweep_convs = [synthetic_conversation(rng) for _ in range(args.sweep_prompts)]
        for batch_size in (int(b) for b in args.sweep.split(",")):
            point = timed(
                batched(batch_size, sweep_convs),
                len(sweep_convs),
                args.max_new_tokens * len(sweep_convs),
                args.repeats,
            )
            sweep.append({"batch_size": batch_size, **point})

    result = {
        "model": args.model or "random GPT-2, organism size",
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "prompts": len(conversations),
        "prompt_tokens_mean": round(sum(prompt_lengths) / len(prompt_lengths), 1),
        "prompt_tokens_range": [min(prompt_lengths), max(prompt_lengths)],
        "n": 1,
        "max_new_tokens": args.max_new_tokens,
        "temperature": sampling.temperature,
        "hf_generator": {"batch_size": args.batch_size, **hf},
        "one_at_a_time": loop,
        "speedup": round(hf["new_tokens_per_s"] / loop["new_tokens_per_s"], 2),
        "batch_size_sweep": {"prompts": args.sweep_prompts, "points": sweep},
        "best_batch_size": max(sweep, key=lambda p: p["new_tokens_per_s"])["batch_size"]
        if sweep
        else None,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
