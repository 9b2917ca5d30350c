"""The token sequences that spell the numbers 0..100, as one prefix tree.

A local judge scores a reply's probability of *being* each number 0..100
(:mod:`darkmirror.score.local_judge`): every tokenisation of every number (with or without
one leading space) is a path in this tree, which is appended to the prompt once and scored
in one forward pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from darkmirror.errors import DarkmirrorError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["NUMBERS", "NumberTrie", "build_number_trie", "token_texts"]

NUMBERS = range(101)
"""The numbers a 0-100 judge can answer."""

_DIGITS = frozenset("0123456789")
# Texts of tokens that can spell part of a reply " ?\d{1,3}": digits, a space, a space+digits.
_PIECE = re.compile(r" ?[0-9]{1,3}| ")


def token_texts(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The text every token id adds when it follows other text.

    Decoding a token alone is not enough: SentencePiece decoders drop the leading space of
    a sequence's first token (``"▁8"`` decodes to ``"8"`` alone, to ``" 8"`` after other
    text). So each token is decoded after an anchor token, and the anchor's text removed.

    Args:
        tokenizer: Any Hugging Face tokenizer.

    Returns:
        One text per id in ``range(len(tokenizer))``; special tokens give their content.
    """
    anchor = tokenizer.encode("a", add_special_tokens=False)[-1]
    prefix = tokenizer.decode([anchor], clean_up_tokenization_spaces=False)
    pairs = tokenizer.batch_decode(
        [[anchor, i] for i in range(len(tokenizer))], clean_up_tokenization_spaces=False
    )
    return [text[len(prefix) :] if text.startswith(prefix) else text for text in pairs]


@dataclass(frozen=True)
class NumberTrie:
    """Every token sequence that spells a reply ``0``..``100`` (and ``" 0"``..``" 100"``).

    Node ``v`` stands for the token sequence from the root down to it; nodes are ordered by
    depth, so a parent comes before its children.

    Args:
        token: Last token id of each node's sequence.
        parent: Parent node of each node; -1 for the nodes of depth 1.
        depth: Tokens in each node's sequence (1..4).
        number: The number each node's text spells; -1 for a prefix that is no number
            (``" "``).
        text: The text of each node's sequence.
        ancestry: ``ancestry[v, u]`` is True when ``u`` is ``v`` or one of its ancestors:
            the tree nodes node ``v`` attends to.
        digit_start: Token ids whose text starts with a digit: the tokens that would
            continue a number.
    """

    token: torch.Tensor
    parent: torch.Tensor
    depth: torch.Tensor
    number: torch.Tensor
    text: tuple[str, ...]
    ancestry: torch.Tensor
    digit_start: torch.Tensor

    def __len__(self) -> int:
        return len(self.text)

    @property
    def max_depth(self) -> int:
        """Most tokens one spelling of a number takes."""
        return int(self.depth.max())

    def sequence(self, v: int) -> tuple[int, ...]:
        """The token ids of node ``v``'s sequence.

        Args:
            v: A node id.
        """
        tokens = []
        while v >= 0:
            tokens.append(int(self.token[v]))
            v = int(self.parent[v])
        return tuple(reversed(tokens))

    def sequences(self, n: int) -> list[tuple[int, ...]]:
        """Every token sequence that spells ``n`` (with and without the leading space).

        Args:
            n: A number in 0..100.
        """
        return [self.sequence(v) for v in torch.nonzero(self.number == n).flatten().tolist()]


def build_number_trie(tokenizer: PreTrainedTokenizerBase, leading_space: bool = True) -> NumberTrie:
    """The prefix tree of every tokenisation of the replies 0..100.

    Args:
        tokenizer: The judge model's tokenizer.
        leading_space: Also count the replies ``" 0"``..``" 100"``.

    Raises:
        DarkmirrorError: If the tokenizer cannot spell some number (no digit tokens).
    """
    texts = token_texts(tokenizer)
    special = set(tokenizer.all_special_ids)
    pieces: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        if i not in special and _PIECE.fullmatch(text):
            pieces.setdefault(text, []).append(i)

    targets = [str(n) for n in NUMBERS] + ([f" {n}" for n in NUMBERS] if leading_space else [])
    nodes: dict[tuple[int, ...], str] = {}  # token sequence -> its text

    def spell(rest: str, path: tuple[int, ...], done: str) -> None:
        for end in range(1, len(rest) + 1):
            for token in pieces.get(rest[:end], ()):
                seq = (*path, token)
                nodes[seq] = done + rest[:end]
                spell(rest[end:], seq, nodes[seq])

    for target in targets:
        spell(target, (), "")
    number_of = {text: int(text) for text in targets}
    missing = sorted(set(NUMBERS) - {number_of.get(text, -1) for text in nodes.values()})
    if missing:
        raise DarkmirrorError(
            f"tokenizer {tokenizer.name_or_path!r} cannot spell the number(s) "
            f"{missing[:5]}{'...' if len(missing) > 5 else ''}; a local judge needs digit tokens"
        )

    order = sorted(nodes, key=lambda seq: (len(seq), seq))
    index = {seq: v for v, seq in enumerate(order)}
    ancestry = torch.zeros((len(order), len(order)), dtype=torch.bool)
    for v, seq in enumerate(order):
        for d in range(1, len(seq) + 1):
            ancestry[v, index[seq[:d]]] = True
    return NumberTrie(
        token=torch.tensor([seq[-1] for seq in order], dtype=torch.long),
        parent=torch.tensor([index[seq[:-1]] if len(seq) > 1 else -1 for seq in order]),
        depth=torch.tensor([len(seq) for seq in order]),
        number=torch.tensor([number_of.get(nodes[seq], -1) for seq in order]),
        text=tuple(nodes[seq] for seq in order),
        ancestry=ancestry,
        digit_start=torch.tensor(
            [i for i, text in enumerate(texts) if text[:1] in _DIGITS], dtype=torch.long
        ),
    )
