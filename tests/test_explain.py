"""bptt explain: every panel shows the library's numbers, and the figure files are written."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from manual_bptt.tools.derivation import contribution_norms, hidden_jacobian  # noqa: E402
from manual_bptt.verification.problems import random_problem  # noqa: E402
from tests.figure_checks import assert_heat_map_shows, diagonal_sums, panel_axes  # noqa: E402
from torch_reference.commands import main as bptt_main  # noqa: E402
from torch_reference.explain import draw_explain, explain_panels, load_weights  # noqa: E402

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
    assert "relu  W × 2" in printed and "tanh" not in printed.split("problem:")[1].split("\n", 1)[1]


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
