"""bptt explain: every panel shows the library's numbers, and the figure files are written."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from manual_bptt.tools.derivation import contribution_norms, hidden_jacobian  # noqa: E402
from manual_bptt.verification.problems import random_problem  # noqa: E402
from tests.figure_checks import assert_heat_map_shows, assert_integer_ticks, diagonal_sums, panel_axes  # noqa: E402
from torch_reference.commands import main as bptt_main  # noqa: E402
from torch_reference.explain import (carousel_panels, draw_explain, explain_panels, gated_network,  # noqa: E402
                                     gated_panels, load_weights)

PROBLEM = random_problem(T=6, B=2, I=3, H=4, O=3, seed=2)
SCALES = (0.5, 1.0, 3.0)


@pytest.fixture(scope="module")
def panels():
    return explain_panels(PROBLEM.params, PROBLEM.x, PROBLEM.y, PROBLEM.h0, scales=SCALES)


def test_one_panel_per_nonlinearity_and_scale_with_the_library_numbers(panels):
    assert [(p.nonlinearity, p.scale) for p in panels] == [(f, s) for f in ("tanh", "relu") for s in SCALES]
    T = PROBLEM.x.shape[0]
    for panel in panels:
        params = PROBLEM.params.replace(W=PROBLEM.params.W * panel.scale)
        norms = contribution_norms(params, PROBLEM.x, PROBLEM.y, PROBLEM.h0, nonlinearity=panel.nonlinearity)
        np.testing.assert_array_equal(panel.norms, norms)
        np.testing.assert_allclose(panel.by_lag, diagonal_sums(norms), rtol=1e-13)
        for d in range(T + 1):
            J = hidden_jacobian(params, PROBLEM.x, PROBLEM.h0, t=T, k=T - d, nonlinearity=panel.nonlinearity)
            np.testing.assert_array_equal(panel.singular_values[d], J.singular_values[0])


def test_the_scales_change_the_picture(panels):
    """Below PyTorch's scale the far terms vanish; relu at ×3 makes them grow instead."""
    by = {(p.nonlinearity, p.scale): p for p in panels}
    assert by[("tanh", 0.5)].by_lag[-1] < by[("tanh", 1.0)].by_lag[-1] < by[("tanh", 3.0)].by_lag[-1]
    assert by[("relu", 3.0)].singular_values[-1, 0] > 1 > by[("relu", 0.5)].singular_values[-1, 0]


def test_every_axes_of_the_figure_draws_its_panel(panels):
    fig = draw_explain(panels)
    axes = panel_axes(fig)
    assert len(axes) == 3 * len(panels)
    for panel, (heat_ax, lag_ax, sigma_ax) in zip(panels, np.reshape(axes, (-1, 3))):
        for axis in (heat_ax.xaxis, heat_ax.yaxis, lag_ax.xaxis, sigma_ax.xaxis):
            assert_integer_ticks(axis)
        where = f"{panel.nonlinearity}, W × {panel.scale:g}"
        assert_heat_map_shows(heat_ax.images[0], panel.norms)
        np.testing.assert_array_equal(lag_ax.get_lines()[0].get_ydata(), panel.by_lag)
        drawn = np.stack([line.get_ydata() for line in sigma_ax.get_lines()[:panel.singular_values.shape[1]]],
                         axis=1)
        np.testing.assert_array_equal(drawn, panel.singular_values)
        for ax in (heat_ax, lag_ax, sigma_ax):
            assert where in ax.get_title()
        assert lag_ax.get_yscale() == "log" and sigma_ax.get_yscale() == "log"
        assert "∂L(t)/∂W" in heat_ax.get_title() and "∂h(6)/∂h(6 − d)" in sigma_ax.get_title()


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_the_command_writes_the_figure(tmp_path, suffix, magic, capsys):
    out = tmp_path / "figures" / f"explain{suffix}"
    assert bptt_main(["explain", "--out", str(out), "-T", "5", "-H", "3", "--weight-scale", "2",
                      "--nonlinearity", "relu"]) == 0
    assert out.read_bytes().startswith(magic)
    printed = capsys.readouterr().out
    assert "relu, W × 2" in printed and "tanh" not in printed.split("problem:")[1].split("\n", 1)[1]


def test_bad_weight_scale_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        bptt_main(["explain", "--out", str(tmp_path / "x.png"), "--weight-scale", "-1"])
    assert exited.value.code == 2
    # The same argument type as bptt check's --weight-scale (cli._weight_scale), so the same message.
    assert capsys.readouterr().err == "bptt explain: error: argument --weight-scale: expected a positive finite number, got -1\n"


def test_weights_load_from_npz_and_from_a_twin_state_dict(tmp_path):
    import torch

    from torch_reference.twin import build_twin

    p = PROBLEM.params
    np.savez(tmp_path / "w.npz", **dict(p.items()))
    torch.save(build_twin(p).state_dict(), tmp_path / "w.pt")
    for name in ("w.npz", "w.pt"):
        loaded = load_weights(tmp_path / name)
        for field, array in p.items():
            np.testing.assert_array_equal(getattr(loaded, field), array, err_msg=f"{name} {field}")
    np.savez(tmp_path / "bad.npz", U=p.U)
    with pytest.raises(ValueError, match="lacks the arrays W, V, b, c"):
        load_weights(tmp_path / "bad.npz")


def test_the_command_explains_loaded_weights(tmp_path, capsys):
    np.savez(tmp_path / "w.npz", **dict(PROBLEM.params.items()))
    out = tmp_path / "loaded.png"
    assert bptt_main(["explain", "--out", str(out), "--weights", str(tmp_path / "w.npz"), "-T", "4",
                      "--nonlinearity", "tanh", "--weight-scale", "1"]) == 0
    assert out.exists()
    assert "I=3, H=4, O=3" in capsys.readouterr().out


def test_gated_cells_get_the_same_panels_from_the_network_derivation():
    from manual_bptt.tools.network_derivation import network_contributions, state_jacobian
    from manual_bptt.model.network_params import NetworkParams
    from torch_reference.explain import gated_panels

    problem = random_problem(T=6, B=2, I=3, H=4, O=3, seed=5)
    panels = gated_panels(problem.x, problem.y, problem.h0, cells=("lstm", "gru"), scales=(1.0, 3.0), hidden_size=4,
                          output_size=3, seed=5)
    assert [(p.nonlinearity, p.scale, p.state) for p in panels] == [
        ("lstm", 1.0, "c"), ("lstm", 3.0, "c"), ("gru", 1.0, "h"), ("gru", 3.0, "h")]
    lstm = panels[1]
    state = NetworkParams.random(cell="lstm", input_size=3, hidden_size=4, output_size=3, rng=5).state_dict()
    state["weight_hh_l0"] = state["weight_hh_l0"] * 3.0
    p = NetworkParams("lstm", state)
    initial = (problem.h0[None], np.zeros_like(problem.h0[None]))
    terms = network_contributions(p, problem.x, problem.y, initial, wrt="weight_hh_l0")
    np.testing.assert_allclose(lstm.norms, np.linalg.norm(terms.reshape(6, 6, -1), axis=-1), rtol=1e-12)
    np.testing.assert_allclose(lstm.by_lag, [np.trace(lstm.norms, offset=-d) for d in range(6)], rtol=1e-12)
    for d in (0, 2, 6):
        expected = state_jacobian(p, problem.x, initial, t=6, k=6 - d).block("c", "c").singular_values[0]
        np.testing.assert_allclose(lstm.singular_values[d], expected, rtol=1e-12)
    assert not np.allclose(panels[0].norms, panels[1].norms)


def _lstm_sigma(problem, *, scale, forget_bias, H=4, O=3, seed=5):
    """σ_i(∂c(T)/∂c(T − d)) of the LSTM drawn with `seed`, built here from the state dict (not gated_network)."""
    from manual_bptt.model.network_params import NetworkParams
    from manual_bptt.tools.network_derivation import state_jacobian

    state = NetworkParams.random(cell="lstm", input_size=problem.x.shape[-1], hidden_size=H, output_size=O,
                                 rng=seed).state_dict()
    state["weight_hh_l0"] = state["weight_hh_l0"] * scale
    state["bias_ih_l0"] = np.concatenate([state["bias_ih_l0"][:H], state["bias_ih_l0"][H:2 * H] + forget_bias,
                                          state["bias_ih_l0"][2 * H:]])           # i, f, g, o: f is rows H … 2H−1
    p = NetworkParams("lstm", state)
    initial = (problem.h0[None], np.zeros_like(problem.h0[None]))
    T = problem.x.shape[0]
    return np.stack([state_jacobian(p, problem.x, initial, t=T, k=T - d).block("c", "c").singular_values[0]
                     for d in range(T + 1)])


def test_the_forget_bias_is_added_to_the_f_block_and_carries_the_gradient():
    problem = random_problem(T=6, B=2, I=3, H=4, O=3, seed=5)
    base = gated_network("lstm", input_size=3, hidden_size=4, output_size=3, seed=5, scale=1.0)
    raised = gated_network("lstm", input_size=3, hidden_size=4, output_size=3, seed=5, scale=1.0, forget_bias=2.0)
    np.testing.assert_array_equal(raised["bias_ih_l0"] - base["bias_ih_l0"], [0] * 4 + [2] * 4 + [0] * 8)
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_hh_l0", "head.weight", "head.bias"):
        np.testing.assert_array_equal(raised[name], base[name], err_msg=name)
    (lstm,) = gated_panels(problem.x, problem.y, problem.h0, cells=("lstm",), scales=(1.0,), hidden_size=4,
                           output_size=3, seed=5, forget_bias=2.0)
    np.testing.assert_allclose(lstm.singular_values, _lstm_sigma(problem, scale=1.0, forget_bias=2.0), rtol=1e-12)
    assert lstm.forget_bias == 2.0 and "forget bias +2" in lstm.where
    # f ≈ σ(2) ≈ 0.88 instead of ≈ ½: over 6 steps the cell state keeps far more of the gradient.
    assert lstm.singular_values[-1, 0] > 10 * _lstm_sigma(problem, scale=1.0, forget_bias=0.0)[-1, 0]


def test_the_last_row_puts_the_rnn_and_the_lstm_on_one_axis(panels):
    """Per scale: each RNN's σ_1(∂h(T)/∂h(T − d)) and the LSTM's σ_1(∂c(T)/∂c(T − d)), one log axis."""
    carousels = carousel_panels(panels, PROBLEM.x, PROBLEM.h0, hidden_size=4, output_size=3, seed=5, forget_bias=2.0)
    assert [c.scale for c in carousels] == list(SCALES)
    fig = draw_explain(panels, carousels)
    axes = panel_axes(fig)
    assert len(axes) == 3 * len(panels) + len(SCALES)
    for carousel, ax in zip(carousels, axes[3 * len(panels):]):
        lines = {line.get_label(): line.get_ydata() for line in ax.get_lines() if not line.get_label().startswith("_")}
        expected = {f"RNN {p.nonlinearity}: ‖∂h(T)/∂h(T − d)‖₂": p.singular_values[:, 0]
                    for p in panels if p.scale == carousel.scale}
        expected["LSTM (forget bias +2): ‖∂c(T)/∂c(T − d)‖₂"] = _lstm_sigma(PROBLEM, scale=carousel.scale,
                                                                            forget_bias=2.0)[:, 0]
        assert list(lines) == list(expected)
        for label, values in expected.items():
            np.testing.assert_allclose(lines[label], values, rtol=1e-12, err_msg=label)
        assert ax.get_yscale() == "log" and f"W × {carousel.scale:g}" in ax.get_title()
        assert_integer_ticks(ax.xaxis)


def test_lstm_rows_say_c_in_title_axis_and_legend():
    problem = random_problem(T=5, B=2, I=3, H=4, O=3, seed=5)
    panels = gated_panels(problem.x, problem.y, problem.h0, cells=("lstm", "gru"), scales=(1.0,), hidden_size=4,
                          output_size=3, seed=5)
    axes = np.reshape(panel_axes(draw_explain(panels)), (-1, 3))
    for (_, _, sigma_ax), state, other in zip(axes, "ch", "hc"):
        said = [sigma_ax.get_title(), sigma_ax.get_ylabel(), *(t.get_text() for t in sigma_ax.get_legend().get_texts())]
        assert all(f"∂{state}(" in text and f"∂{other}(" not in text for text in said), said


def test_the_figure_is_titled_with_the_problem(tmp_path, monkeypatch, capsys):
    import torch_reference.explain as explain

    saved = []
    monkeypatch.setattr(explain, "save_figure", lambda fig, out, dpi: saved.append(fig))
    assert bptt_main(["explain", "--out", str(tmp_path / "e.png"), "-T", "5", "-H", "3", "-B", "2", "--seed", "7",
                      "--weight-scale", "2", "--weight-scale", "0.5", "--forget-bias", "1.5"]) == 0
    title = saved[0]._suptitle.get_text()
    for said in ("T = 5", "B = 2", "H = 3", "seed 7", "W × 2, 0.5", "forget bias +1.5"):
        assert said in title, title
    assert "W × 2    LSTM (forget bias +1.5) ‖∂c(T)/∂c(0)‖₂ = " in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["nan", "inf", "two"])
def test_a_bad_forget_bias_is_a_usage_error(tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as exited:
        bptt_main(["explain", "--out", str(tmp_path / "x.png"), "--forget-bias", bad])
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"bptt explain: error: argument --forget-bias: expected a finite number, got {bad!r}\n"


def test_loaded_weights_say_which_panels_stay_random(tmp_path, capsys):
    np.savez(tmp_path / "w.npz", **dict(PROBLEM.params.items()))
    assert bptt_main(["explain", "--out", str(tmp_path / "w.png"), "--weights", str(tmp_path / "w.npz"), "-T", "4",
                      "--nonlinearity", "tanh", "--weight-scale", "1", "--cell", "lstm", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert (f"note: the RNN's panels use --weights {tmp_path / 'w.npz'}; the LSTM of the last row, the LSTM rows use "
            "random weights (PyTorch's initialisation from --seed 3, forget bias +0)") in out, out


def test_the_gallery_words_match_its_panels():
    """At W × 4 (the gallery's problem): tanh's terms grow with the lag (exploding), relu's lag profile is
    flat while its forward pass and σ_1 explode; the README says so and calls only tanh's exploding."""
    import re
    from pathlib import Path

    problem = random_problem(T=40, B=4, I=5, H=16, O=6, seed=0)       # bptt explain's defaults
    tanh, relu = explain_panels(problem.params, problem.x, problem.y, problem.h0, scales=(4.0,))
    assert tanh.by_lag[1:].max() > 30 * tanh.by_lag[0] and tanh.singular_values[-1, 0] > 1e3
    assert np.all(np.abs(np.log10(relu.by_lag[:-2] / relu.by_lag[0])) < 1)     # flat, within 10×
    assert relu.singular_values[-1, 0] > 1e9 and relu.norms.max() > 1e9
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    gallery = readme.split("### Gallery", 1)[1].split("![Loss curves", 1)[0]
    for sentence in re.split(r"(?<=[.:;])\s", " ".join(gallery.split())):
        if "exploding" in sentence:
            assert "tanh" in sentence and "relu" not in sentence, sentence
    assert "flat" in gallery and "forward pass explodes" in gallery
