"""bptt train: manual gradients + NumPy optimiser vs autograd + torch.optim, from the same weights."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from manual_bptt.tools.text import CharCorpus, sample_text  # noqa: E402
from torch_reference.commands import main as bptt_main  # noqa: E402
from torch_reference.train import DEFAULT_TEXT, FLOAT64_AGREEMENT, TrainConfig, train_both  # noqa: E402

# A tiny model on the project's own text: 200 steps take about a second.
TINY = dict(hidden_size=8, seq_len=8, batch=4, steps=200)
TEXT = DEFAULT_TEXT.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _one_thread():
    """As the command does: small matrices run 30 times faster on one thread on a busy machine."""
    from torch_reference.threads import one_thread

    with one_thread():
        yield


# SGD's learning rate is one at which training is stable: at lr 0.5 with momentum
# 0.9 it is chaotic, and any two computations (even two orders of one sum) part
# exponentially after ~100 steps, as any chaotic system amplifies its rounding.
# The clipping norm 0.45 is near the median gradient norm of this model: it
# clips some steps and not others, so a clipping step missing or different on
# one side shows.
@pytest.mark.parametrize("optimizer, lr, clip", [("adam", 1e-2, 0.45), ("sgd", 0.1, 0.45), ("sgd", 0.1, None)])
def test_float64_runs_agree_for_200_steps(optimizer, lr, clip):
    result = train_both(TEXT, TrainConfig(**TINY, optimizer=optimizer, lr=lr, clip=clip))
    assert result.param_gap.shape == (200,)
    if clip is not None:
        assert np.any(result.grad_norm > clip) and np.any(result.grad_norm < clip)
    assert np.all(result.param_gap <= FLOAT64_AGREEMENT), result.param_gap.max()
    np.testing.assert_allclose(result.losses_manual, result.losses_torch, rtol=1e-12)
    # It learned something (the loss fell), so the agreement is not that of two idle runs.
    assert result.losses_manual[-20:].mean() < result.losses_manual[:5].mean() - 0.5
    for name, array in result.manual.items():
        assert not np.array_equal(array, getattr(result.initial, name)), name


def test_a_wrong_update_shows_as_a_gap(monkeypatch):
    """The measure can fail: U's gradient off by 1e-6 relative moves the runs apart by far more than 1e-9."""
    import torch_reference.train as train

    real = train.bptt

    def off(*args, **kwargs):
        L, g = real(*args, **kwargs)
        g.U = g.U * (1 + 1e-6)
        return L, g

    monkeypatch.setattr(train, "bptt", off)
    result = train_both(TEXT, TrainConfig(**{**TINY, "steps": 20}, optimizer="sgd", lr=0.5, clip=None))
    assert result.final_gap > FLOAT64_AGREEMENT


def test_float32_runs_drift_but_stay_close():
    result = train_both(TEXT, TrainConfig(**{**TINY, "steps": 50}, dtype="float32"))
    assert result.manual.dtype == np.float32
    assert 0 < result.final_gap < 1e-2


def test_the_command_prints_the_gap_writes_the_plot_and_a_sample(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "train.png"
    assert bptt_main(["train", "--steps", "30", "-H", "8", "-T", "8", "-B", "4", "--out", str(out),
                      "--sample", "40", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert out.read_bytes().startswith(b"\x89PNG")
    assert "largest parameter difference after 30 steps:" in printed
    sample = printed.split("sample from the manual model:\n")[1]
    assert sample.startswith("The ") and len(sample.rstrip("\n")) >= 44


def test_the_plot_holds_both_curves_and_the_gap():
    pytest.importorskip("matplotlib")
    from torch_reference.train import plot_training

    result = train_both(TEXT, TrainConfig(**{**TINY, "steps": 10}))
    curves, gap = [ax for ax in plot_training(result).axes]
    manual_line, torch_line = curves.get_lines()
    np.testing.assert_array_equal(manual_line.get_ydata(), result.losses_manual)
    np.testing.assert_array_equal(torch_line.get_ydata(), result.losses_torch)
    np.testing.assert_array_equal(gap.get_lines()[0].get_ydata(), result.param_gap)


def test_the_plot_says_what_its_panels_are_and_reads_at_its_size():
    """The right panel is the parameter difference between the two runs: its title says so and why it rises;
    each panel is at least 5 inches wide (a 2000-step curve at 72 dpi), the steps are whole numbers."""
    pytest.importorskip("matplotlib")
    from tests.figure_checks import assert_integer_ticks
    from torch_reference.train import plot_training

    result = train_both(TEXT, TrainConfig(**{**TINY, "steps": 7}))
    fig = plot_training(result)
    curves, gap = fig.axes
    assert fig.get_size_inches()[0] >= 2 * 5 and fig.get_size_inches()[1] >= 4
    assert "manual − autograd" in gap.get_title() and "rounding" in gap.get_title() and "rises" in gap.get_title()
    assert gap.get_ylabel() == "max|p_manual − p_autograd| / max|p_autograd|"
    assert [t.get_text() for t in gap.get_legend().get_texts()] == ["max over U, W, V, b, c"]
    for said in ("H = 8", "T = 8", "B = 4", "adam lr 0.003", "seed 0"):
        assert said in fig._suptitle.get_text()
    for ax in (curves, gap):
        assert_integer_ticks(ax.xaxis)


def test_the_progress_bar_shows_the_current_loss():
    class Bar:
        """A stand-in for tqdm: iterates the steps and records what the bar would show beside them."""

        def __init__(self, steps):
            self.steps, self.shown = steps, []

        def __iter__(self):
            return iter(self.steps)

        def set_postfix_str(self, text, refresh=True):
            self.shown.append(text)

        def close(self):
            pass

    bars = []
    result = train_both(TEXT, TrainConfig(**{**TINY, "steps": 5}), progress=lambda steps: bars.append(Bar(steps))
                        or bars[-1])
    assert bars[0].shown == [f"L = {L:.4f}" for L in result.losses_manual]


def test_every_option_of_train_has_help_and_a_default():
    from tests.figure_checks import assert_help_gives_defaults
    from torch_reference.train import parser

    assert_help_gives_defaults(parser())


def test_corpus_batches_predict_the_next_character():
    corpus = CharCorpus.from_text("abcabcabd")
    assert corpus.alphabet == "abcd" and corpus.V == 4
    batch = corpus.batch(np.random.default_rng(0), T=3, B=5)
    assert batch.x.shape == (3, 5, 4) and batch.y.shape == (3, 5)
    inputs = batch.x.argmax(axis=-1)
    np.testing.assert_array_equal(inputs[1:], batch.y[:-1])        # y(t) is x(t+1)
    text = corpus.decode(corpus.indices)
    for b in range(5):
        window = corpus.decode(inputs[:, b]) + corpus.decode(batch.y[-1:, b])
        assert window in text
    with pytest.raises(ValueError, match=r"^T: expected at most 8 for this text, got 9$"):
        corpus.batch(np.random.default_rng(0), T=9, B=1)


def test_sampling_is_seeded_and_checks_the_prompt():
    corpus = CharCorpus.from_text(TEXT)
    from manual_bptt import RNNParams

    params = RNNParams.random(input_size=corpus.V, hidden_size=5, output_size=corpus.V, rng=0)
    one = sample_text(params, corpus, np.random.default_rng(1), prompt="The ", length=30)
    two = sample_text(params, corpus, np.random.default_rng(1), prompt="The ", length=30)
    assert one == two and len(one) == 34 and set(one) <= set(corpus.alphabet)
    with pytest.raises(ValueError, match="prompt: expected a non-empty string over the text's alphabet"):
        sample_text(params, corpus, np.random.default_rng(1), prompt="\x00", length=3)
