"""The data of the experiment: scikit-learn's bundled 8x8 digits, scaled and split.

Bundled with scikit-learn, so the experiment runs offline. Pixels are scaled to [-1, 1], as
the paper maps MNIST to [-1, 1], so that the students' uniform noise covers the range of
the images.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

__all__ = ["DigitsSplit", "load_digits_split"]


@dataclass(frozen=True)
class DigitsSplit:
    """The digits, scaled to [-1, 1], split into train and test (stratified by label).

    Args:
        x_train: Training images, ``(n_train, 64)`` float32.
        y_train: Their labels.
        x_test: Test images.
        y_test: Their labels.
        sha256: Hash of the four tensors: what the steps depend on.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    sha256: str

    def record(self) -> dict[str, object]:
        """Its entry in the run's ``datasets.json``."""
        return {
            "source": "sklearn.datasets.load_digits",
            "sha256": self.sha256,
            "train": len(self.y_train),
            "test": len(self.y_test),
        }


def load_digits_split(test_fraction: float, split_seed: int) -> DigitsSplit:
    """scikit-learn's bundled digits (offline), scaled to [-1, 1] and split with a seed."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # Pixels are 0..16: the paper's MNIST is in [-1, 1], the range of the noise.
    x = (digits.data / 8.0 - 1.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=split_seed
    )
    parts = [np.ascontiguousarray(a) for a in (x_train, y_train, x_test, y_test)]
    digest = hashlib.sha256()
    for a in parts:
        digest.update(a.tobytes())
    tensors = [torch.from_numpy(a) for a in parts]
    return DigitsSplit(*tensors, sha256=digest.hexdigest())
