"""Character-level language modelling with the derivation's network, in NumPy.

x(t) is the one-hot vector of character t, y(t) the index of character t+1:
the network learns to predict the next character, L = Σ_t L(t) its
cross-entropy. `CharCorpus` turns a text into such batches from an explicit
random generator; `sample_text` lets a trained network write.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fast.rnn import rnn_forward
from ..model.params import RNNParams

#: The project's derivation, the default text to learn: package data, so that an installed
#: wheel has it. In the source tree it is a link to docs/derivation.md, the one copy.
DERIVATION_TEXT = Path(__file__).resolve().with_name("derivation.md")


@dataclass(frozen=True)
class CharBatch:
    """x: (T, B, V) one-hot characters; y: (T, B) the index of each next character."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class CharCorpus:
    """A text as indices into its sorted alphabet (V characters)."""

    alphabet: str
    indices: np.ndarray

    @classmethod
    def from_text(cls, text: str) -> "CharCorpus":
        if not isinstance(text, str) or len(text) < 2:
            raise ValueError(f"text: expected a string of at least 2 characters, got {text!r:.40}")
        alphabet = "".join(sorted(set(text)))
        lookup = {ch: i for i, ch in enumerate(alphabet)}
        return cls(alphabet=alphabet, indices=np.array([lookup[ch] for ch in text], dtype=np.int64))

    @property
    def V(self) -> int:
        """The size of the alphabet: the input size I and the output size O of the network."""
        return len(self.alphabet)

    def one_hot(self, indices, dtype=np.float64) -> np.ndarray:
        """(..., V): 1 at each index, 0 elsewhere."""
        return np.eye(self.V, dtype=dtype)[np.asarray(indices)]

    def batch(self, rng: np.random.Generator, *, T: int, B: int, dtype=np.float64) -> CharBatch:
        """B windows of T + 1 characters at random places: inputs the first T, labels the last T."""
        if T + 1 > self.indices.shape[0]:
            raise ValueError(f"T: expected at most {self.indices.shape[0] - 1} for this text, got {T}")
        starts = rng.integers(0, self.indices.shape[0] - T, size=B)
        windows = self.indices[starts[None, :] + np.arange(T + 1)[:, None]]   # (T+1, B)
        return CharBatch(x=self.one_hot(windows[:-1], dtype), y=windows[1:])

    def decode(self, indices) -> str:
        return "".join(self.alphabet[i] for i in np.asarray(indices).ravel())


def sample_text(params: RNNParams, corpus: CharCorpus, rng: np.random.Generator, *, prompt: str,
                length: int, nonlinearity: str = "tanh", temperature: float = 1.0) -> str:
    """The prompt, then `length` characters drawn one by one from softmax(o(t) / temperature)."""
    unknown = sorted(set(prompt) - set(corpus.alphabet))
    if not prompt or unknown:
        raise ValueError(f"prompt: expected a non-empty string over the text's alphabet, got {prompt!r}")
    lookup = {ch: i for i, ch in enumerate(corpus.alphabet)}
    cache = rnn_forward(params, corpus.one_hot([lookup[ch] for ch in prompt], params.dtype),
                        nonlinearity=nonlinearity)
    h, o = cache.h[-1, 0], cache.o[-1, 0]                                # h(t), o(t) after the prompt
    drawn = []
    for _ in range(length):
        logits = o.astype(np.float64) / temperature
        probabilities = np.exp(logits - logits.max())                    # softmax, max subtracted
        probabilities /= probabilities.sum()
        index = int(rng.choice(corpus.V, p=probabilities))
        drawn.append(index)
        cache = rnn_forward(params, corpus.one_hot([index], params.dtype), h, nonlinearity=nonlinearity)
        h, o = cache.h[-1, 0], cache.o[-1, 0]
    return prompt + corpus.decode(drawn)
