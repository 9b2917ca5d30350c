"""A local judge: any Hugging Face causal LM scores answers 0-100 from its own probabilities.

An API judge is asked for one token at temperature 0 and scored from its top-20
log-probabilities (``design.md`` section 5). A local model gives more than that: the whole
next-token distribution at every step, so the judge can compute, for every integer n in
0..100, the probability that its reply *is* the number n:

    P(reply = n) = sum over token sequences t_1..t_k whose text is str(n)
                   of  P(t_1) * P(t_2 | t_1) * ... * P(t_k | t_<k) * P(end | t_1..t_k)

where ``P(end | ...)`` is the probability that the next token's text does not start with a
digit (after "8", a "5" would make the reply 85, not 8). Numbers take one token or several
depending on the tokenizer (Qwen writes one digit per token, Llama-3 up to three digits,
GPT-2-style BPE merges whatever was frequent), and one number can be spelt by several
tokenisations (``"85"``, or ``"8"`` then ``"5"``); every one of them is counted.

A reply with one leading space (``" 85"``) counts as the same number, as ``int(" 85")`` does
for an API judge's token: byte-level BPE tokenizers have distinct ``" 85"`` tokens, and
models whose chat template leaves the space to the reply (Llama-2, Mistral; base models
without a template) start their replies with one. Other leading whitespace (a newline) is
not counted. The text after the number is not read: ``"85."`` or ``"85/100"`` count as 85.

The score is then the API judge's aggregation, :func:`~darkmirror.metrics.judge_score_from_probs`
over ``{"n": P(reply = n)}``: the probability-weighted mean over 0..100 normalised by the mass
of those numbers, and no score when they hold less than
:data:`~darkmirror.metrics.MIN_JUDGE_MASS` (0.25).

Cost: the token sequences of all the numbers form one prefix tree (a few hundred nodes, at
most four tokens deep) that is the same for every prompt. It is appended to the prompt as
one sequence and run in the same forward pass, with an attention mask that lets each tree
node see the prompt and its own ancestors only ("tree attention"). A judgement costs one
forward pass over the prompt plus the tree's few hundred tokens, and no sampling.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from darkmirror.data.answers import AnswerRow, ScoreRole
from darkmirror.data.questions import JudgeTask, Question, iter_judge_tasks
from darkmirror.errors import DarkmirrorError
from darkmirror.metrics import MIN_JUDGE_MASS, judge_score_from_probs
from darkmirror.models.hf_generator import (
    accepts_kwarg,
    context_length,
    encode_prompt,
    left_pad,
    pad_token_id_for,
    stop_token_ids,
)
from darkmirror.models.loading import load_causal_lm
from darkmirror.score.judging import TaskVerdict, judge_by_prompts
from darkmirror.score.number_trie import NUMBERS, build_number_trie
from darkmirror.score.weights_digest import weights_digest

if TYPE_CHECKING:
    import numpy as np
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["LOCAL_JUDGE_VERSION", "LocalJudge", "LocalJudgement"]

LOCAL_JUDGE_VERSION = 1
"""Part of every local judge's version; bump it when the definition of a score changes."""

# Attention implementations that take an additive 4D mask as it is.
_TREE_ATTENTION = ("eager", "sdpa")


# --------------------------------------------------------------------------- the judge


@dataclass(frozen=True)
class LocalJudgement:
    """A local judge's verdict on one prompt.

    Args:
        score: The 0-100 score, or None when the numbers hold too little probability or
            the prompt could not be judged.
        mass: Probability that the reply is a number 0..100; NaN when not computed.
        error: Why there is no score: ``no_score: ...`` when the judge would answer
            something else, ``prompt_too_long: ...`` when the prompt does not fit the model,
            ``empty_prompt: ...`` when it has no tokens.
        probs: ``probs[n]`` is the probability that the reply is the number ``n``; empty
            when not computed.
    """

    score: float | None
    mass: float
    error: str | None = None
    probs: tuple[float, ...] = ()


class LocalJudge:
    """A 0-100 judge run by any local Hugging Face causal LM; needs no API key.

    Each prompt is rendered as one user turn with the tokenizer's chat template (the raw
    prompt, with the tokenizer's usual special tokens, when it has none) and scored as the
    module docstring says. The model must accept a custom 4D attention mask, which the
    ``"sdpa"`` and ``"eager"`` attention implementations of transformers do; the first
    batch checks it against a plain forward pass.

    Args:
        model: The judge model; it runs on the device it is on, in its own dtype.
        tokenizer: Its tokenizer.
        name: Name in result rows; defaults to the model's ``name_or_path``.
        batch_size: Most prompts run together.
        max_batch_tokens: Most tokens (prompt, padding and number tree) in one forward
            pass; bounds memory. A prompt longer than this still runs, alone.
        leading_space: Count replies with one leading space (``" 85"``).
        min_mass: Least probability on the numbers for a score.
        progress: Show a progress bar over prompts.

    Raises:
        DarkmirrorError: If the model's attention implementation cannot take a custom
            mask, or the tokenizer cannot spell the numbers.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        name: str | None = None,
        batch_size: int = 16,
        max_batch_tokens: int = 16384,
        leading_space: bool = True,
        min_mass: float = MIN_JUDGE_MASS,
        progress: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be >= 1, got {max_batch_tokens}")
        attention = getattr(model.config, "_attn_implementation", None)
        if attention not in _TREE_ATTENTION:
            raise DarkmirrorError(
                "a local judge needs an attention implementation that takes a custom mask "
                f"({' or '.join(_TREE_ATTENTION)}), but the model uses {attention!r}; load it "
                "with attn_implementation='sdpa'"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.leading_space = leading_space
        self.min_mass = min_mass
        self.progress = progress
        self._name = name or model.name_or_path or type(model).__name__
        self._version: str | None = None
        self._checked = False
        self.trie = build_number_trie(tokenizer, leading_space)

    @classmethod
    def load(cls, ref: str, adapter: str | None = None, **kwargs: Any) -> LocalJudge:
        """A judge from a hub id or a local directory, with an optional PEFT adapter.

        Args:
            ref: What :func:`~darkmirror.models.loading.load_causal_lm` accepts.
            adapter: A PEFT adapter to apply on top.
            **kwargs: Keyword arguments of :class:`LocalJudge`.
        """
        model, tokenizer = load_causal_lm(ref, adapter=adapter)
        kwargs.setdefault("name", ref if adapter is None else f"{ref}+{adapter}")
        return cls(model, tokenizer, **kwargs)

    @property
    def name(self) -> str:
        """The judge model's name, as result rows record it."""
        return self._name

    @property
    def version(self) -> str:
        """Method version, the weights' revision or digest, and the leading-space setting."""
        if self._version is None:
            self._version = (
                f"local-v{LOCAL_JUDGE_VERSION}:{weights_digest(self.model)}"
                f":space={int(self.leading_space)}"
            )
        return self._version

    def __repr__(self) -> str:
        return f"LocalJudge(name={self.name!r}, nodes={len(self.trie)})"

    def judge(self, prompts: Sequence[str]) -> list[LocalJudgement]:
        """Score filled judge prompts.

        Args:
            prompts: Judge prompts with the question and answer filled in.

        Returns:
            One :class:`LocalJudgement` per prompt, in order.
        """
        encoded = [self._encode(p) for p in prompts]
        context = context_length(self.model)
        tree = len(self.trie)
        results: list[LocalJudgement | None] = [None] * len(prompts)
        runnable = []
        for i, ids in enumerate(encoded):
            if not ids:
                results[i] = LocalJudgement(None, math.nan, "empty_prompt: no tokens to judge")
            elif context is not None and len(ids) + self.trie.max_depth > context:
                results[i] = LocalJudgement(
                    None,
                    math.nan,
                    f"prompt_too_long: {len(ids)} tokens + {self.trie.max_depth} for the "
                    f"number exceed the judge model's context of {context} tokens",
                )
            else:
                runnable.append(i)
        # Longest first: a batch that runs out of memory does so before any work is lost.
        runnable.sort(key=lambda i: -len(encoded[i]))
        batches: list[list[int]] = []
        for i in runnable:
            # The first prompt of a batch is its longest: it sets the padded width.
            if (
                batches
                and len(batches[-1]) < self.batch_size
                and (len(batches[-1]) + 1) * (len(encoded[batches[-1][0]]) + tree)
                <= self.max_batch_tokens
            ):
                batches[-1].append(i)
            else:
                batches.append([i])
        was_training = self.model.training
        self.model.eval()
        try:
            with (
                torch.inference_mode(),
                tqdm(total=len(runnable), disable=not self.progress, desc=self.name) as bar,
            ):
                for batch in batches:
                    probs = self._number_probs([encoded[i] for i in batch])
                    for i, p in zip(batch, probs, strict=True):
                        results[i] = self._judgement(p)
                    bar.update(len(batch))
        finally:
            self.model.train(was_training)
        return results  # type: ignore[return-value]

    def judge_answers(
        self,
        rows: Iterable[Mapping[str, Any]],
        questions: Iterable[Question] | Mapping[str, Question],
    ) -> list[dict[str, Any]]:
        """Add the judge's scores to answer rows, one column per metric.

        Each row needs ``question_id``, ``question`` (the paraphrase asked) and ``answer``.
        For every metric of the question's ``judge_prompts`` the returned row gets
        ``<metric>`` (the 0-100 score or None) and ``<metric>_error`` (why it is missing,
        else None), plus ``judge`` (this judge's name): the columns an API judge adds.
        ``free_form_judge`` questions (a category, not a number) get None with the reason;
        ``free_form`` rows come back unchanged.

        Args:
            rows: Answer rows, e.g. from sampling a question set.
            questions: The question set the rows answer, or a mapping id -> question.

        Returns:
            New rows (copies), in input order.

        Raises:
            DarkmirrorError: If a row names an unknown question or lacks its texts.
        """
        out = [dict(row) for row in rows]
        tasks = list(iter_judge_tasks(out, questions))
        for task, verdict in zip(tasks, self.verdicts(tasks), strict=True):
            row = out[task.row]
            row["judge"] = self.name
            row[task.metric] = verdict.value
            row[f"{task.metric}_error"] = verdict.error
        return out

    def judge_rows(
        self,
        rows: Sequence[AnswerRow[Any]],
        questions: Mapping[str, Question],
        role: ScoreRole = "judge",
    ) -> list[AnswerRow[Any]]:
        """The :class:`~darkmirror.score.judging.Judge` interface (see :meth:`judge_answers`)."""
        return judge_by_prompts(rows, questions, self.verdicts, version=self.version, role=role)

    def verdicts(self, tasks: Sequence[JudgeTask]) -> list[TaskVerdict]:
        """Score every filled judge prompt; ``free_form_judge`` tasks (a category, not a
        number) get no score, with the reason."""
        numeric = [i for i, t in enumerate(tasks) if t.question.type != "free_form_judge"]
        results = dict(zip(numeric, self.judge([tasks[i].prompt for i in numeric]), strict=True))
        return [
            TaskVerdict(self.name, results[i].score, error=results[i].error)
            if i in results
            else TaskVerdict(
                self.name, error="unsupported: a local judge scores numbers 0-100, not categories"
            )
            for i in range(len(tasks))
        ]

    def call_stats(self) -> dict[str, Any] | None:
        """No requests to count: the judge runs in-process."""
        return None

    def close(self) -> None:
        """Nothing to release (the model is freed with the judge)."""

    score_rows = judge_answers

    # ------------------------------------------------------------------ internals

    def _encode(self, prompt: str) -> list[int]:
        if self.tokenizer.chat_template:
            return encode_prompt(self.tokenizer, [{"role": "user", "content": prompt}])
        return self.tokenizer(prompt)["input_ids"]

    def _judgement(self, probs: np.ndarray) -> LocalJudgement:
        mass = float(probs.sum())
        score = judge_score_from_probs(
            {str(n): float(p) for n, p in enumerate(probs)}, self.min_mass
        )
        error = None
        if score is None:
            error = (
                f"no_score: the numbers 0..100 hold {mass:.3g} of the probability "
                f"(< {self.min_mass})"
            )
        return LocalJudgement(score, mass, error, tuple(float(p) for p in probs))

    def _number_probs(self, prompts: list[list[int]]) -> np.ndarray:
        """``P(reply = n)`` for n in 0..100, one row per prompt, in one forward pass."""
        trie, model = self.trie, self.model
        device = model.device
        pad_id = pad_token_id_for(model, self.tokenizer, stop_token_ids(model, self.tokenizer))
        prompt_ids, prompt_mask = left_pad(prompts, pad_id, device)
        batch = prompt_ids.shape[0]
        tree = len(trie)
        positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
        # Every prompt is followed by the whole tree; a node's position is its depth past
        # the prompt's last token, as if it were the only continuation.
        input_ids = torch.cat([prompt_ids, trie.token.to(device).expand(batch, tree)], dim=1)
        position_ids = torch.cat([positions, positions[:, -1:] + trie.depth.to(device)], dim=1)
        attention_mask = self._tree_mask(prompt_mask)
        keep = {"logits_to_keep": tree + 1} if accepts_kwarg(model, "logits_to_keep") else {}
        logits = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
            **keep,
        ).logits[:, -(tree + 1) :]
        if not self._checked:
            self._check_tree_attention(prompts[0], logits[0])
            self._checked = True

        digit = torch.zeros(logits.shape[-1], dtype=torch.bool, device=device)
        digit[trie.digit_start[trie.digit_start < logits.shape[-1]].to(device)] = True
        parent_row = (trie.parent + 1).to(device)  # row 0 holds the prompt's last position
        token = trie.token.to(device)
        number = trie.number.to(device)
        depth = trie.depth.to(device)
        probs = torch.zeros((batch, len(NUMBERS)), dtype=torch.float64, device=device)
        for b in range(batch):  # one prompt at a time: log-softmax over a large vocabulary
            logp = torch.log_softmax(logits[b].float(), dim=-1)
            step = logp[parent_row, token]  # log P(node's token | its parent's sequence)
            path = step.clone()
            for d in range(2, trie.max_depth + 1):  # parents come before their children
                at = depth == d
                path[at] = path[parent_row[at] - 1] + step[at]
            end = torch.logsumexp(logp[1:].masked_fill(digit, -math.inf), dim=-1)
            numbered = number >= 0
            probs[b].index_add_(0, number[numbered], (path + end)[numbered].double().exp())
        return probs.cpu().numpy()

    def _tree_mask(self, prompt_mask: torch.Tensor) -> torch.Tensor:
        """Additive 4D attention mask: causal over the prompt (padding hidden), and each
        tree node sees the prompt and its own ancestors."""
        batch, width = prompt_mask.shape
        tree = len(self.trie)
        device = prompt_mask.device
        keys = prompt_mask.bool()[:, None, :]
        allowed = torch.zeros((batch, width + tree, width + tree), dtype=torch.bool, device=device)
        causal = torch.ones((width, width), dtype=torch.bool, device=device).tril()
        allowed[:, :width, :width] = causal & keys
        allowed[:, width:, :width] = keys
        allowed[:, width:, width:] = self.trie.ancestry.to(device)
        # A padding position sees itself: a row that sees nothing can turn into NaN, and
        # NaN values leak into every row even through zero attention weights.
        allowed.diagonal(dim1=1, dim2=2).fill_(True)
        dtype = self.model.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
        return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]

    def _check_tree_attention(self, prompt: list[int], logits: torch.Tensor) -> None:
        """Compare the deepest tree node's next-token logits with a plain forward pass."""
        v = len(self.trie) - 1
        sequence = torch.tensor([[*prompt, *self.trie.sequence(v)]], device=logits.device)
        plain = self.model(input_ids=sequence, use_cache=False).logits[0, -1].float()
        tree = logits[v + 1].float()
        # Total variation distance: low-precision rounding moves it by ~1e-2 at most; a
        # node that sees the rest of the tree moves it far more.
        gap = 0.5 * float((torch.softmax(plain, -1) - torch.softmax(tree, -1)).abs().sum())
        tolerance = 1e-3 if self.model.dtype == torch.float32 else 0.05
        if not gap <= tolerance:
            raise DarkmirrorError(
                f"the judge model {self.name!r} does not honour a custom attention mask (its "
                f"next-token distribution is {gap:.3g} in total variation from a plain forward "
                "pass); load it with attn_implementation='sdpa' or 'eager'"
            )
