"""The pictures: the numbers behind every panel are the library's (the data, not the pixels).

Each test recomputes what a panel should show with the library's functions,
independently of the code that made the panel, and reads the drawn data back
out of the matplotlib artists (image arrays, line data).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from manual_bptt.tools.derivation import contribution_norms, contributions, hidden_jacobian  # noqa: E402
from manual_bptt.tools.lags import lag_profile, singular_values_by_lag  # noqa: E402
from manual_bptt.tools.plotting import (draw_singular_values, draw_state_norms, new_figure,  # noqa: E402
                                        plot_contributions, plot_hidden_jacobian)
from manual_bptt.verification.problems import random_problem  # noqa: E402
from tests.figure_checks import assert_heat_map_shows, assert_integer_ticks, diagonal_sums, panel_axes  # noqa: E402

PROBLEM = random_problem(T=7, B=3, I=2, H=4, O=3, seed=5)
ARGS = (PROBLEM.params, PROBLEM.x, PROBLEM.y, PROBLEM.h0)


def test_lag_profile_sums_each_diagonal():
    norms = contribution_norms(*ARGS)
    np.testing.assert_allclose(lag_profile(norms), diagonal_sums(norms), rtol=1e-14)
    with pytest.raises(ValueError, match=r"^norms: expected a \(T, T\) array, got shape \(3, 4\)$"):
        lag_profile(np.zeros((3, 4)))


def test_singular_values_by_lag_are_those_of_hidden_jacobian():
    sigma = singular_values_by_lag(PROBLEM.params, PROBLEM.x, PROBLEM.h0)
    T = PROBLEM.x.shape[0]
    assert sigma.shape == (T + 1, 3, 4)
    np.testing.assert_array_equal(sigma[0], np.ones((3, 4)))          # no step: the identity
    for d in range(T + 1):
        J = hidden_jacobian(PROBLEM.params, PROBLEM.x, PROBLEM.h0, t=T, k=T - d)
        np.testing.assert_allclose(sigma[d], np.linalg.svd(J.matrix, compute_uv=False), rtol=1e-12)


def test_plot_hidden_jacobian_draws_the_matrix_and_its_singular_values():
    J = hidden_jacobian(PROBLEM.params, PROBLEM.x, PROBLEM.h0, t=6, k=2)
    for n in (0, 2):
        fig = plot_hidden_jacobian(J, n=n)
        matrix_ax, sigma_ax = panel_axes(fig)
        np.testing.assert_array_equal(matrix_ax.images[0].get_array(), J.matrix[n])
        expected = np.linalg.svd(J.matrix, compute_uv=False)
        for element, line in enumerate(sigma_ax.get_lines()):
            np.testing.assert_allclose(line.get_ydata(), expected[element], rtol=1e-12)
        assert len(sigma_ax.get_lines()) == 3
        assert "∂h(6)/∂h(2)" in matrix_ax.get_title()
    with pytest.raises(ValueError, match=r"^n: expected a batch element in \[0, 3\), got 3$"):
        plot_hidden_jacobian(J, n=3)


def test_plot_contributions_draws_the_term_sizes_and_the_lag_profile():
    norms = contribution_norms(*ARGS)
    for drawn_from in (contributions(*ARGS, wrt="W"), norms):
        heat_ax, lag_ax = panel_axes(plot_contributions(drawn_from))
        image = heat_ax.images[0]
        T = norms.shape[0]
        below = ~np.triu(np.ones((T, T), dtype=bool), k=1)
        np.testing.assert_allclose(image.get_array().data[below], norms[below], rtol=1e-12)
        np.testing.assert_allclose(lag_ax.get_lines()[0].get_ydata(), diagonal_sums(norms), rtol=1e-12)
        assert heat_ax.get_xlabel().startswith("k") and heat_ax.get_ylabel().startswith("t")
        assert lag_ax.get_xlabel() == "lag d = t − k"
    with pytest.raises(ValueError, match=r"^terms: expected a \(T, T, \.\.\.\) array"):
        plot_contributions(np.zeros((3, 4)))


def test_no_term_and_an_exact_zero_are_drawn_apart_with_a_labelled_colour_bar():
    """k > t (no term) is grey, an exactly-zero term (a dead relu unit) another colour; the legend names both."""
    norms = contribution_norms(*ARGS)
    norms[4, 1] = 0.0                                               # a term (t=5, k=2) that is exactly 0
    heat_ax, _ = panel_axes(plot_contributions(norms))
    assert_heat_map_shows(heat_ax.images[0], norms)
    assert [image.get_label() for image in heat_ax.images] == ["term sizes", "no term (k > t)", "exactly 0"]
    # Without a zero term there is no red layer and no legend entry for it.
    heat_ax, _ = panel_axes(plot_contributions(contribution_norms(*ARGS)))
    assert_heat_map_shows(heat_ax.images[0], contribution_norms(*ARGS))


def test_steps_and_lags_get_whole_number_ticks():
    """T = 3: a default locator puts ticks at 0.5, 1.5, ...; a step or lag has no fraction."""
    problem = random_problem(T=3, B=2, I=2, H=3, O=2, seed=1)
    args = (problem.params, problem.x, problem.y, problem.h0)
    heat_ax, lag_ax = panel_axes(plot_contributions(contribution_norms(*args)))
    for axis in (heat_ax.xaxis, heat_ax.yaxis, lag_ax.xaxis):
        assert_integer_ticks(axis)
    matrix_ax, sigma_ax = panel_axes(plot_hidden_jacobian(hidden_jacobian(problem.params, problem.x, problem.h0, t=3, k=1)))
    for axis in (matrix_ax.xaxis, matrix_ax.yaxis, sigma_ax.xaxis):
        assert_integer_ticks(axis)
    fig, axes = new_figure(1, 2, purpose="test")
    draw_singular_values(axes[0, 0], singular_values_by_lag(problem.params, problem.x, problem.h0)[:, 0])
    draw_state_norms(axes[0, 1], {"one": [1.0, 0.5, 0.25, 0.125]})
    for ax in axes[0]:
        assert_integer_ticks(ax.xaxis)


def test_singular_values_name_the_state_they_are_of():
    """An LSTM's panel is of ∂c(t)/∂c(t − d): its axis label and legend say c, as its title does."""
    sigma = singular_values_by_lag(PROBLEM.params, PROBLEM.x, PROBLEM.h0)[:, 0]
    fig, axes = new_figure(1, 2, purpose="test")
    for ax, state in zip(axes[0], ("h", "c")):
        lines = draw_singular_values(ax, sigma, t=7, state=state)
        np.testing.assert_array_equal(np.stack([line.get_ydata() for line in lines], axis=1), sigma)
        other = "c" if state == "h" else "h"
        said = [ax.get_ylabel(), ax.get_title(), *(text.get_text() for text in ax.get_legend().get_texts())]
        assert all(f"∂{state}(t" in text and f"∂{other}(" not in text for text in said), said


def test_state_norms_of_several_networks_share_one_log_axis():
    fig, axes = new_figure(1, 1, purpose="test")
    drawn = {"RNN tanh: ‖∂h(T)/∂h(T − d)‖₂": np.array([1.0, 1e-2, 1e-4]),
             "LSTM (forget bias +2): ‖∂c(T)/∂c(T − d)‖₂": np.array([1.0, 0.9, 0.8])}
    ax = axes[0, 0]
    lines = draw_state_norms(ax, drawn, title="RNN against LSTM")
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in lines] == list(drawn)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == list(drawn)
    for line, values in zip(lines, drawn.values()):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(3))
        np.testing.assert_array_equal(line.get_ydata(), values)


def test_manual_bptt_imports_without_matplotlib_and_says_how_to_install_it():
    script = textwrap.dedent(
        """
        import sys

        class NoMatplotlib:
            def find_spec(self, name, path=None, target=None):
                if name == "matplotlib" or name.startswith("matplotlib."):
                    raise ImportError("matplotlib is blocked in this test")

        sys.meta_path.insert(0, NoMatplotlib())
        from manual_bptt.tools.derivation import hidden_jacobian
        from manual_bptt.tools.extras import MissingExtra
        from manual_bptt.tools.plotting import plot_hidden_jacobian
        from manual_bptt.verification.problems import random_problem
        p = random_problem(T=3, B=1)
        J = hidden_jacobian(p.params, p.x, p.h0, t=3, k=1)
        try:
            plot_hidden_jacobian(J)
        except MissingExtra as missing:
            print(missing)
        assert "matplotlib" not in sys.modules
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "plot_hidden_jacobian needs matplotlib.figure, which is not installed" in done.stdout
    assert "pip install -c constraints.txt -e '.[plot]'" in done.stdout
