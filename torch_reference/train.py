"""`bptt train`: a character-level language model, trained twice from the same weights.

Once with the hand-written gradients (`bptt`) and an optimiser written in NumPy
(`manual_bptt.tools.optim`), once with torch.autograd on the twin and the same
`torch.optim` optimiser, same hyperparameters, same batches. Gradient clipping,
when asked for, is its own step on both sides (`clip_grad_norm` and
`torch.nn.utils.clip_grad_norm_`). In float64 the two runs agree to rounding
for hundreds of steps; in float32 they drift apart slowly, as any two float32
computations of the same sums in different orders do.

The text is the project's own derivation (docs/derivation.md) unless --text
names another file (UTF-8). Every option, the text, the prompt of the sample and
the output file are checked before the first step: a bad one exits 2 with one
line. Training that leaves the float range stops and exits 3; Ctrl-C stops it
and exits 130; both print the losses of the steps done so far.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from manual_bptt import RNNParams, bptt
from manual_bptt.inputs.checks import check_fits_in_memory, nbytes
from manual_bptt.tools.extras import require
from manual_bptt.tools.optim import SGD, Adam, clip_grad_norm, grad_norm
from manual_bptt.inputs.overflow import NonFiniteError, all_finite
from manual_bptt.inputs.options import DTYPES
from manual_bptt.model.names import torch_name
from manual_bptt.model.params import random_params_need
from manual_bptt.tools.text import DERIVATION_TEXT, CharCorpus, sample_text

from .cli import EXIT_CODES, Parser, _integer, _number, _positive, check_output_path
from .threads import one_thread
from .twin import build_twin, twin_to_params

DEFAULT_TEXT = DERIVATION_TEXT
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
    stopped:    None when every step ran; else why the run stopped early ("interrupted",
                or what overflowed), and steps is then the number of steps done
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
    stopped: str | None = None

    @property
    def steps(self) -> int:
        """The steps done: config.steps, unless the run stopped early."""
        return int(self.losses_manual.shape[0])

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


class Overflow(Exception):
    """Training left the float range at a step (the message says where)."""


def train_both(text: str, config: TrainConfig, *, progress=None) -> TrainResult:
    """Train the manual and the autograd model side by side on the same batches.

    `progress` wraps the range of steps (e.g. tqdm) when given; a bar with `set_postfix_str`
    shows the current loss after each step. Ctrl-C
    (KeyboardInterrupt) or a step that leaves the float range ends the run early:
    the result then holds the steps done before it, and says why in `stopped`.
    """
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {config.optimizer!r}")
    corpus = CharCorpus.from_text(text)
    dtype = np.dtype(config.dtype)
    rng = np.random.default_rng(config.seed)
    initial = RNNParams.random(input_size=corpus.V, hidden_size=config.hidden_size, output_size=corpus.V,
                               rng=rng, dtype=dtype)

    # The twin holds b in b_ih; b_hh stays zero and out of the optimiser, or the
    # optimiser would move b twice per step.
    twin = build_twin(initial)
    rnn = {symbol: getattr(twin.rnn, torch_name(symbol, 0, 0)) for symbol in ("U", "W", "b_ih", "b_hh")}
    rnn["b_hh"].requires_grad_(False)
    trained = [rnn["U"], rnn["W"], rnn["b_ih"], twin.out.weight, twin.out.bias]    # U, W, b, V, c
    optimizer_torch = torch_optimizer(config, trained)
    optimizer_numpy = numpy_optimizer(config)

    params = initial
    losses_manual, losses_torch, gaps, norms = [], [], [], []
    steps = range(config.steps)
    bar = progress(steps) if progress else steps
    stopped = None
    try:
        for step in bar:
            batch = corpus.batch(rng, T=config.seq_len, B=config.batch, dtype=dtype)

            L, g = bptt(params, batch.x, batch.y, reduction="mean")          # manual: the true gradient
            grads = g.params()
            norm = float(grad_norm(grads))
            if config.clip is not None:
                grads = clip_grad_norm(grads, config.clip).grads              # then clipping, its own step
            updated = optimizer_numpy.step(params, grads)                    # then the update

            optimizer_torch.zero_grad()
            o = twin(torch.from_numpy(batch.x))
            L_torch = F.cross_entropy(o.reshape(-1, corpus.V), torch.from_numpy(batch.y).reshape(-1))
            L_torch.backward()
            if config.clip is not None:
                torch.nn.utils.clip_grad_norm_(trained, config.clip)
            optimizer_torch.step()

            L_torch = float(L_torch.detach())
            gap = relative_gap(updated, twin_to_params(twin))
            if not (all_finite(*(array for _, array in updated.items())) and math.isfinite(L_torch)
                    and math.isfinite(gap)):
                raise Overflow(f"step {step + 1}: the update left the float range (L manual {L:.6g}, "
                               f"torch {L_torch:.6g}); use a smaller --lr")
            # A step is recorded whole or not at all: Ctrl-C inside it leaves the last one.
            params = updated
            losses_manual.append(L)
            losses_torch.append(L_torch)
            gaps.append(gap)
            norms.append(norm)
            if hasattr(bar, "set_postfix_str"):                          # tqdm: the loss beside the bar
                bar.set_postfix_str(f"L = {L:.4f}", refresh=False)
    except KeyboardInterrupt:
        stopped = "interrupted"
    except (NonFiniteError, Overflow) as error:
        stopped = f"overflow: {' '.join(str(error).split())}"
    finally:
        if hasattr(bar, "close"):                                        # a progress bar ends its line
            bar.close()
    return TrainResult(config=config, corpus=corpus, initial=initial, manual=params, torch=twin_to_params(twin),
                       losses_manual=np.array(losses_manual), losses_torch=np.array(losses_torch),
                       param_gap=np.array(gaps), grad_norm=np.array(norms), stopped=stopped)


#: The training figure's panels, in inches: wide and tall enough for a 2000-step curve at 72 dpi.
TRAINING_PANEL = (6.0, 4.2)


def plot_training(result: TrainResult):
    """A figure: both loss curves, and the parameters' relative difference per step (log scale).

    The left panel draws L of each step's batch for the manual run (thick, light) and the
    autograd run (thin, dashed, on top): where they agree one line shows through the other.
    The right panel is how far apart the two runs' parameters are after each step; it
    starts at the rounding of one step and grows as those differences compound.
    """
    from manual_bptt.tools.plotting import integer_ticks, new_figure

    fig, axes = new_figure(1, 2, purpose="bptt train's plot", panel_size=TRAINING_PANEL)
    config = result.config
    steps = np.arange(1, result.losses_manual.shape[0] + 1)
    curves, gap = axes[0]
    curves.plot(steps, result.losses_manual, label=f"manual bptt + NumPy {config.optimizer}", linewidth=3,
                color="tab:blue", alpha=0.5)
    curves.plot(steps, result.losses_torch, label=f"torch.autograd + torch.optim.{config.optimizer.capitalize()}",
                linestyle="--", linewidth=0.8, color="black")
    curves.set_xlabel("step")
    curves.set_ylabel("L: mean cross-entropy per character")
    curves.set_title(f"the loss of each step's batch: {result.corpus.V} characters, {config.dtype}")
    curves.legend(loc="upper right")
    gap.plot(steps, result.param_gap, color="tab:red", label="max over U, W, V, b, c")
    gap.set_yscale("log", nonpositive="mask")
    gap.set_xlabel("step")
    gap.set_ylabel("max|p_manual − p_autograd| / max|p_autograd|")
    gap.set_title(f"manual − autograd parameters: rounding ({config.dtype}),\n"
                  "compounded step after step (so it rises)")
    gap.legend(loc="lower right")
    for ax in (curves, gap):
        integer_ticks(ax.xaxis)
    fig.suptitle(f"bptt train: H = {config.hidden_size}, T = {config.seq_len}, B = {config.batch}, "
                 f"{config.optimizer} lr {config.lr:g}, clip {config.clip}, seed {config.seed}")
    return fig


def read_text(path: str) -> str:
    """The text of a UTF-8 file; a ValueError naming --text for one that is missing, not a
    file, binary (a NUL byte) or not UTF-8 (Latin-1, say: convert it first, e.g. with iconv)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"--text: cannot read {path!r}: {error.strerror or error}") from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise ValueError(f"--text: {path!r} is binary (a NUL byte at offset {nul}); expected a UTF-8 text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"--text: {path!r} is not UTF-8 (byte 0x{data[error.start]:02x} at offset "
                         f"{error.start}); expected a UTF-8 text file (convert it, e.g. iconv -t UTF-8)") from None


def check_training(text: str, config: TrainConfig, *, prompt: str, sample: int) -> CharCorpus:
    """The corpus, after every check that needs the text: long enough for one window of
    T + 1 characters, holding the prompt's characters (when a sample is asked for), and
    the parameters and a batch within memory."""
    if len(text) < config.seq_len + 1:
        raise ValueError(f"--text: expected at least T + 1 = {config.seq_len + 1} characters for "
                         f"-T/--seq-len {config.seq_len}, got a text of {len(text)}")
    corpus = CharCorpus.from_text(text)
    unknown = sorted(set(prompt) - set(corpus.alphabet))
    if sample > 0 and (not prompt or unknown):
        raise ValueError(f"--prompt: expected a non-empty prompt over the text's characters, got {prompt!r} "
                         f"(not in the text: {''.join(unknown)!r}); pass another --prompt, or --sample 0")
    V, H, dtype = corpus.V, config.hidden_size, np.dtype(config.dtype)
    shapes = {"U": (H, V), "W": (H, H), "V": (V, H), "b": (H,), "c": (V,)}
    renamed = {"hidden_size": "-H", "input_size": "the alphabet", "output_size": "the alphabet"}
    needs = [(", ".join(renamed[n] for n in names.split(", ")), size, what)
             for names, size, what in random_params_need(shapes, dtype)]
    # One batch, one-hot (T, B, V), and the caches of both models (a, h per step): a few (T, B, H).
    needs.append(("-T, -B", nbytes((config.seq_len, config.batch, V), dtype), "a batch of one-hot characters"))
    needs.append(("-T, -B, -H", 8 * nbytes((config.seq_len + 1, config.batch, H), np.float64),
                  "the forward and backward caches"))
    check_fits_in_memory(needs)
    return corpus


def parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    p = Parser(prog="bptt train", description=__doc__.split("\n\n")[0],
               epilog="exit status: 0 the float64 runs agree (or float32 ran); 1 the float64 runs part; "
                      "2 usage error (a bad option, text or output file); 3 training left the float range; "
                      "4 an optional extra is missing; 130 stopped by Ctrl-C")
    p.add_argument("--text", default=str(DEFAULT_TEXT), help="the text to learn, UTF-8 (default docs/derivation.md)")
    p.add_argument("--steps", type=_positive, default=defaults.steps,
                   help="updates, one batch each (default %(default)s)")
    p.add_argument("-H", "--hidden-size", type=_positive, default=defaults.hidden_size,
                   help="hidden size H of the RNN (default %(default)s)")
    p.add_argument("-T", "--seq-len", type=_positive, default=defaults.seq_len,
                   help="characters per sequence, T time steps (default %(default)s)")
    p.add_argument("-B", "--batch", type=_positive, default=defaults.batch,
                   help="sequences per batch B (default %(default)s)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer,
                   help="Adam, or SGD with --momentum; NumPy's on one side, torch.optim's on the other "
                        "(default %(default)s)")
    p.add_argument("--lr", type=_number(minimum=0, include_minimum=False), default=defaults.lr,
                   help="learning rate, > 0 (default %(default)s)")
    p.add_argument("--momentum", type=_number(minimum=0, maximum=1), default=defaults.momentum,
                   help="SGD's momentum, in [0, 1) (default %(default)s)")
    p.add_argument("--clip", type=_number(minimum=0), default=defaults.clip,
                   help="clip the gradients' total norm to this, >= 0; 0 for none (default %(default)s)")
    p.add_argument("--dtype", choices=DTYPES, default=defaults.dtype,
                   help="of every array on both sides; float64 runs must agree within "
                        f"{FLOAT64_AGREEMENT:g} (default %(default)s)")
    p.add_argument("--seed", type=_integer(0), default=defaults.seed,
                   help="seed of the initial weights, the batches and the sample (default %(default)s)")
    p.add_argument("--out", metavar="FILE",
                   help="write the loss curves here (.png, .svg, .pdf); None: no figure (default %(default)s)")
    p.add_argument("--sample", type=_integer(0), default=300,
                   help="characters to generate at the end, >= 0 (default %(default)s)")
    p.add_argument("--prompt", default="The ", help="the sample's first characters, all in the text (default %(default)r)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: a bar with the current loss)")
    return p


def _why_stopped(result: TrainResult) -> str:
    return "interrupted (Ctrl-C)" if result.stopped == "interrupted" else result.stopped


def _exit_code_of_stop(result: TrainResult) -> int:
    return EXIT_CODES["interrupted" if result.stopped == "interrupted" else "unchecked"]


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    config = TrainConfig(hidden_size=args.hidden_size, seq_len=args.seq_len, batch=args.batch, steps=args.steps,
                         optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                         clip=args.clip or None, dtype=args.dtype, seed=args.seed)
    if args.out:
        require("matplotlib", purpose="bptt train --out")
    try:
        out = check_output_path("--out", args.out) if args.out else None
        text = read_text(args.text)
        corpus = check_training(text, config, prompt=args.prompt, sample=args.sample)
    except ValueError as error:
        cli.error(str(error))
    progress = None
    if not args.no_progress:
        tqdm = require("tqdm", purpose="bptt train's progress bar").tqdm
        progress = lambda steps: tqdm(steps, unit="step", desc="training")  # noqa: E731
    # A step that leaves the float range stops the run, and says so: NumPy's warnings would only repeat it.
    with one_thread(), np.errstate(over="ignore", invalid="ignore"):
        result = train_both(text, config, progress=progress)
    print(f"{config}")
    print(f"text: {args.text} ({corpus.indices.shape[0]} characters, alphabet of {corpus.V})")
    if result.steps == 0:
        print(f"{cli.prog}: {_why_stopped(result)} before the first step ended", file=sys.stderr)
        return _exit_code_of_stop(result)
    print(f"loss, first step: manual {result.losses_manual[0]:.6f}  torch {result.losses_torch[0]:.6f}")
    print(f"loss, last step:  manual {result.losses_manual[-1]:.6f}  torch {result.losses_torch[-1]:.6f}  "
          f"|Δ| = {abs(result.losses_manual[-1] - result.losses_torch[-1]):.3e}")
    print(f"largest parameter difference after {result.steps} steps: {result.final_gap:.3e} "
          f"(max|p_manual − p_torch| / max|p_torch|)")
    if result.stopped is not None:
        # What was done is printed above; the figure and the sample belong to a whole run.
        print(f"{cli.prog}: {_why_stopped(result)}; stopped after {result.steps} of {config.steps} steps, "
              "no figure or sample written", file=sys.stderr)
        return _exit_code_of_stop(result)
    if out is not None:
        from manual_bptt.tools.plotting import save_figure

        out.parent.mkdir(parents=True, exist_ok=True)
        save_figure(plot_training(result), out, dpi=72)
        print(f"wrote {out}")
    if args.sample > 0:
        sample = sample_text(result.manual, result.corpus, np.random.default_rng(config.seed), prompt=args.prompt,
                             length=args.sample, temperature=0.8)
        print("sample from the manual model:\n" + sample)
    if config.dtype == "float64" and not result.final_gap <= FLOAT64_AGREEMENT:
        print(f"FAIL: float64 runs should agree within {FLOAT64_AGREEMENT:g}")
        return EXIT_CODES["disagree"]
    return EXIT_CODES["agree"]
