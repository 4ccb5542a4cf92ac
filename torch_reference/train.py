"""`bptt train`: a character-level language model, trained twice from the same weights.

Once with the hand-written gradients (`bptt`) and an optimiser written in NumPy
(`manual_bptt.optim`), once with torch.autograd on the twin and the same
`torch.optim` optimiser, same hyperparameters, same batches. Gradient clipping,
when asked for, is its own step on both sides (`clip_grad_norm` and
`torch.nn.utils.clip_grad_norm_`). In float64 the two runs agree to rounding
for hundreds of steps; in float32 they drift apart slowly, as any two float32
computations of the same sums in different orders do.

The text is the project's own derivation (docs/derivation.md) unless --text
names another file.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from manual_bptt import RNNParams, bptt
from manual_bptt.extras import require
from manual_bptt.optim import SGD, Adam, clip_grad_norm, grad_norm
from manual_bptt.text import CharCorpus, sample_text

from .cli import _integer, _positive
from .threads import one_thread
from .twin import build_twin, twin_to_params

DEFAULT_TEXT = Path(__file__).resolve().parent.parent / "docs" / "derivation.md"
OPTIMIZERS = ("adam", "sgd")
#: The agreement `bptt train` asks of float64: parameters within 1e-9 of the
#: largest entry after the run. One step's gradients agree to ~1e-15 relative
#: (a few ulps); training compounds that over hundreds of steps, and Adam divides
#: by √v, which magnifies the differences of small gradients, so the bound leaves
#: several orders of magnitude for growth and still shows any real disagreement.
FLOAT64_AGREEMENT = 1e-9


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run depends on; both runs share it."""

    hidden_size: int = 64
    seq_len: int = 32
    batch: int = 16
    steps: int = 300
    optimizer: str = "adam"
    lr: float = 3e-3
    momentum: float = 0.9
    clip: float | None = 5.0
    dtype: str = "float64"
    seed: int = 0


@dataclass(frozen=True)
class TrainResult:
    """Both runs' losses per step, their parameters at the end, and how far apart they are.

    losses_manual, losses_torch: (steps,) L of each step's batch, before its update
    param_gap:  (steps,) max over U, W, V, b, c of max|manual − torch| / max|torch|, after each step
    grad_norm:  (steps,) the manual gradients' total 2-norm before clipping
    """

    config: TrainConfig
    corpus: CharCorpus
    initial: RNNParams
    manual: RNNParams
    torch: RNNParams
    losses_manual: np.ndarray
    losses_torch: np.ndarray
    param_gap: np.ndarray
    grad_norm: np.ndarray

    @property
    def final_gap(self) -> float:
        return float(self.param_gap[-1])


def relative_gap(a: RNNParams, b: RNNParams) -> float:
    """max over the parameters of max|a − b| / max|b|, each measured in float64."""
    return max(float(np.max(np.abs(x.astype(np.float64) - getattr(b, name).astype(np.float64))))
               / float(np.max(np.abs(getattr(b, name)))) for name, x in a.items())


def numpy_optimizer(config: TrainConfig):
    if config.optimizer == "adam":
        return Adam(lr=config.lr)
    return SGD(lr=config.lr, momentum=config.momentum)


def torch_optimizer(config: TrainConfig, parameters):
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum)


def train_both(text: str, config: TrainConfig, *, progress=None) -> TrainResult:
    """Train the manual and the autograd model side by side on the same batches.

    `progress` wraps the range of steps (e.g. tqdm) when given.
    """
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {config.optimizer!r}")
    corpus = CharCorpus.from_text(text)
    dtype = np.dtype(config.dtype)
    rng = np.random.default_rng(config.seed)
    initial = RNNParams.random(input_size=corpus.V, hidden_size=config.hidden_size, output_size=corpus.V,
                               rng=rng, dtype=dtype)

    # The twin holds b in bias_ih_l0; bias_hh_l0 stays zero and out of the
    # optimiser, or the optimiser would move b twice per step.
    twin = build_twin(initial)
    twin.rnn.bias_hh_l0.requires_grad_(False)
    trained = [twin.rnn.weight_ih_l0, twin.rnn.weight_hh_l0, twin.rnn.bias_ih_l0, twin.out.weight, twin.out.bias]
    optimizer_torch = torch_optimizer(config, trained)
    optimizer_numpy = numpy_optimizer(config)

    params = initial
    losses_manual, losses_torch, gaps, norms = [], [], [], []
    steps = range(config.steps)
    for _ in progress(steps) if progress else steps:
        batch = corpus.batch(rng, T=config.seq_len, B=config.batch, dtype=dtype)

        L, g = bptt(params, batch.x, batch.y, reduction="mean")          # manual: the true gradient
        grads = g.params()
        norms.append(float(grad_norm(grads)))
        if config.clip is not None:
            grads = clip_grad_norm(grads, config.clip).grads              # then clipping, its own step
        params = optimizer_numpy.step(params, grads)                     # then the update

        optimizer_torch.zero_grad()
        o = twin(torch.from_numpy(batch.x))
        L_torch = F.cross_entropy(o.reshape(-1, corpus.V), torch.from_numpy(batch.y).reshape(-1))
        L_torch.backward()
        if config.clip is not None:
            torch.nn.utils.clip_grad_norm_(trained, config.clip)
        optimizer_torch.step()

        losses_manual.append(L)
        losses_torch.append(float(L_torch.detach()))
        gaps.append(relative_gap(params, twin_to_params(twin)))
    return TrainResult(config=config, corpus=corpus, initial=initial, manual=params, torch=twin_to_params(twin),
                       losses_manual=np.array(losses_manual), losses_torch=np.array(losses_torch),
                       param_gap=np.array(gaps), grad_norm=np.array(norms))


def plot_training(result: TrainResult):
    """A figure: both loss curves, and the parameters' relative gap per step (log scale)."""
    from manual_bptt.plotting import new_figure

    fig, axes = new_figure(1, 2, purpose="bptt train's plot")
    steps = np.arange(1, result.losses_manual.shape[0] + 1)
    curves, gap = axes[0]
    curves.plot(steps, result.losses_manual, label="manual bptt + NumPy " + result.config.optimizer, linewidth=2.5)
    curves.plot(steps, result.losses_torch, label="torch.autograd + torch.optim", linestyle="--", color="black")
    curves.set_xlabel("step")
    curves.set_ylabel("L (mean cross-entropy per character)")
    curves.set_title(f"training on {result.corpus.V} characters, {result.config.dtype}")
    curves.legend()
    gap.plot(steps, result.param_gap, color="tab:red")
    gap.set_yscale("log", nonpositive="mask")
    gap.set_xlabel("step")
    gap.set_ylabel("max|p_manual − p_torch| / max|p_torch|")
    gap.set_title("largest relative parameter difference")
    return fig


def parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(prog="bptt train", description=__doc__.split("\n\n")[0])
    p.add_argument("--text", default=str(DEFAULT_TEXT), help="the text to learn (default docs/derivation.md)")
    p.add_argument("--steps", type=_positive, default=defaults.steps, help=f"updates (default {defaults.steps})")
    p.add_argument("-H", "--hidden-size", type=_positive, default=defaults.hidden_size)
    p.add_argument("-T", "--seq-len", type=_positive, default=defaults.seq_len)
    p.add_argument("-B", "--batch", type=_positive, default=defaults.batch)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--momentum", type=float, default=defaults.momentum, help="SGD's momentum")
    p.add_argument("--clip", type=float, default=defaults.clip, help="max gradient norm; 0 for none")
    p.add_argument("--dtype", choices=("float64", "float32"), default=defaults.dtype)
    p.add_argument("--seed", type=_integer(0), default=defaults.seed)
    p.add_argument("--out", help="write the loss curves here (.png, .svg)")
    p.add_argument("--sample", type=int, default=300, help="characters to generate at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.lr > 0:
        parser().error(f"--lr: expected a positive number, got {args.lr}")
    try:
        text = Path(args.text).read_text(encoding="utf-8")
    except OSError as error:
        parser().error(f"--text: cannot read {args.text}: {error.strerror}")
    config = TrainConfig(hidden_size=args.hidden_size, seq_len=args.seq_len, batch=args.batch, steps=args.steps,
                         optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                         clip=args.clip or None, dtype=args.dtype, seed=args.seed)
    if args.out:
        require("matplotlib", purpose="bptt train --out")
    progress = None
    if not args.no_progress:
        tqdm = require("tqdm", purpose="bptt train's progress bar").tqdm
        progress = lambda steps: tqdm(steps, unit="step")  # noqa: E731
    with one_thread():
        result = train_both(text, config, progress=progress)
    print(f"{config}")
    print(f"text: {args.text} ({result.corpus.indices.shape[0]} characters, alphabet of {result.corpus.V})")
    print(f"loss, first step: manual {result.losses_manual[0]:.6f}  torch {result.losses_torch[0]:.6f}")
    print(f"loss, last step:  manual {result.losses_manual[-1]:.6f}  torch {result.losses_torch[-1]:.6f}  "
          f"|Δ| = {abs(result.losses_manual[-1] - result.losses_torch[-1]):.3e}")
    print(f"largest parameter difference after {config.steps} steps: {result.final_gap:.3e} "
          f"(max|p_manual − p_torch| / max|p_torch|)")
    if args.out:
        from manual_bptt.plotting import save_figure

        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_figure(plot_training(result), out, dpi=72)
        print(f"wrote {out}")
    if args.sample > 0:
        sample = sample_text(result.manual, result.corpus, np.random.default_rng(config.seed), prompt="The ",
                             length=args.sample, temperature=0.8)
        print("sample from the manual model:\n" + sample)
    if config.dtype == "float64" and not result.final_gap <= FLOAT64_AGREEMENT:
        print(f"FAIL: float64 runs should agree within {FLOAT64_AGREEMENT:g}")
        return 1
    return 0
