"""Checking a model trained in torch, from its own state dict or module, with no renaming.

Two models as people write them:

- a tagger: a 2-layer bidirectional nn.LSTM with batch_first=True and dropout=0.2, and an
  nn.Linear named `fc`; trained a few steps, saved with torch.save(model.state_dict());
- an encoder-decoder: an nn.GRU nested as `encoder.rnn` beside an nn.Embedding, the output
  layer named `decoder`, and a second nn.Linear (`aux`) that also reads the GRU's output,
  so that the head must be named.

The loss the check computes is the model's own in eval mode: cross-entropy summed over
every step and sequence (F.cross_entropy(..., reduction="sum") on the logits of every
step), the options `bptt check` uses by default.
"""

from __future__ import annotations

import html

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

import torch_reference.cli as cli  # noqa: E402
from manual_bptt import NetworkParams, bptt  # noqa: E402
from torch_reference import compare, torch_bptt  # noqa: E402
from torch_reference.commands import main  # noqa: E402

I, H, O, T, B = 3, 5, 4, 6, 3
VOCAB, GRU_H = 11, 6


class Tagger(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True, dropout=0.2)
        self.fc = torch.nn.Linear(2 * H, O)

    def forward(self, x):
        return self.fc(self.lstm(x)[0])


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, I)
        self.rnn = torch.nn.GRU(I, GRU_H, num_layers=2)


class Seq2Label(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = torch.nn.Linear(GRU_H, O)
        self.aux = torch.nn.Linear(GRU_H, 2)                          # reads the GRU's output too

    def forward(self, tokens, h0):
        out, _ = self.encoder.rnn(self.encoder.embedding(tokens), h0)
        return self.decoder(out)


def trained(model, inputs, labels, *extra, steps: int = 3):
    """A few steps of Adam in train mode (dropout active), as a user trains."""
    torch.manual_seed(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        logits = model(inputs, *extra)
        F.cross_entropy(logits.reshape(-1, O), labels.reshape(-1), reduction="sum").backward()
        optimizer.step()
    return model


def model_loss(model, inputs, labels, *extra) -> float:
    """The model's own loss in eval mode: cross-entropy summed over every step."""
    model.eval()
    with torch.no_grad():
        logits = model(inputs, *extra)
        return float(F.cross_entropy(logits.reshape(-1, O), labels.reshape(-1), reduction="sum"))


@pytest.fixture(scope="module")
def tagger():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I)).astype(np.float32)              # batch-first, as the module is
    y = rng.integers(0, O, size=(B, T))
    model = trained(Tagger(), torch.from_numpy(x), torch.from_numpy(y))
    return model, x, y


@pytest.fixture(scope="module")
def seq2label():
    torch.manual_seed(2)
    rng = np.random.default_rng(2)
    tokens = rng.integers(0, VOCAB, size=(T, B))                       # time-major
    y = rng.integers(0, O, size=(T, B))
    h0 = (0.5 * rng.standard_normal((2, B, GRU_H))).astype(np.float32)
    model = trained(Seq2Label(), torch.from_numpy(tokens), torch.from_numpy(y), torch.from_numpy(h0))
    with torch.no_grad():
        x = model.encoder.embedding(torch.from_numpy(tokens)).numpy().copy()
    return model, tokens, x, y, h0


def run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exited:
        code = exited.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- the LSTM tagger ----------------------------------------------------------------------


def test_the_saved_tagger_is_checked_by_bptt_check_weights_alone(tagger, tmp_path, capsys):
    model, _, _ = tagger
    path = tmp_path / "tagger.pt"
    torch.save(model.state_dict(), path)
    code, out, err = run(["check", "--weights", str(path)], capsys)
    assert code == 0, out + err
    assert "'lstm' and head 'fc'" in out and "cell='lstm'" in out and "num_layers=2, bidirectional=True" in out
    assert "checked as its eval-mode function" in out
    assert out.rstrip().splitlines()[-1].startswith("all agree"), out


def test_the_tagger_from_its_state_dict_and_from_the_module_gives_the_models_own_loss(tagger):
    model, x, y = tagger
    expected = model_loss(model, torch.from_numpy(x), torch.from_numpy(y))
    from_state = NetworkParams.from_state_dict(model.state_dict())       # no renaming, no cell
    from_module = NetworkParams.from_torch(model)                        # no batch_first anywhere
    assert from_state.cell == from_module.cell == "lstm"
    assert (from_module.batch_first, from_module.dropout) == (True, 0.2)
    for name, array in from_state.items():
        np.testing.assert_array_equal(array, from_module[name], err_msg=name)
    L, g = bptt(from_module, x, y)
    assert L == pytest.approx(expected, rel=1e-5)
    L_t, _ = torch_bptt(from_module, x, y)
    assert L_t == pytest.approx(expected, rel=1e-5)
    # A state dict does not record the layout: the same problem, said explicitly.
    L_state, g_state = bptt(from_state, x, y, batch_first=True)
    assert L_state == L
    np.testing.assert_array_equal(g_state.x, g.x)
    # batch_first passed explicitly wins over the module's.
    L_time_major, g_time_major = bptt(from_module, x.swapaxes(0, 1), y.swapaxes(0, 1), batch_first=False)
    assert L_time_major == pytest.approx(L, rel=1e-6)
    np.testing.assert_allclose(g_time_major.x.swapaxes(0, 1), g.x, rtol=1e-5, atol=1e-7)
    report = compare(from_module, x, y)
    assert report.ok, str(report)
    assert "note: dropout=0.2 between layers is not applied" in str(report)
    assert report.notes and html.escape(report.notes[0]) in report._repr_html_()


def test_from_torch_params_keep_their_layout_through_copies(tagger):
    model, x, y = tagger
    p = NetworkParams.from_torch(model)
    for copy in (p.copy(), p.astype(np.float64)):
        assert (copy.batch_first, copy.dropout) == (True, 0.2)
    L64, _ = bptt(p.astype(np.float64), x.astype(np.float64), y)
    assert L64 == pytest.approx(model_loss(model, torch.from_numpy(x), torch.from_numpy(y)), rel=1e-5)


# ---- the GRU nested as encoder.rnn ----------------------------------------------------------


def test_the_nested_gru_is_checked_with_prefix_head_and_the_users_batch(seq2label, tmp_path, capsys):
    model, _, x, y, h0 = seq2label
    weights, data = tmp_path / "seq2label.pt", tmp_path / "batch.npz"
    torch.save(model.state_dict(), weights)
    lengths = np.array([T, 2, 4])
    np.savez(data, x=x, y=y, lengths=lengths, h0=h0)
    code, out, err = run(["check", "--weights", str(weights), "--prefix", "encoder.rnn", "--head", "decoder",
                          "--data", str(data)], capsys)
    assert code == 0, out + err
    assert "'encoder.rnn' and head 'decoder'" in out and "cell='gru'" in out and str(data) in out
    assert out.rstrip().splitlines()[-1].startswith("all agree"), out


def test_the_nested_gru_from_python_gives_the_models_own_loss(seq2label):
    model, tokens, x, y, h0 = seq2label
    expected = model_loss(model, torch.from_numpy(tokens), torch.from_numpy(y), torch.from_numpy(h0))
    p = NetworkParams.from_state_dict(model.state_dict(), prefix="encoder.rnn", head="decoder")
    assert (p.cell, p.num_layers, p.output_size, p.batch_first) == ("gru", 2, O, None)
    L, _ = bptt(p, x, y, h0)
    assert L == pytest.approx(expected, rel=1e-5)
    q = NetworkParams.from_torch(model.encoder.rnn, model.decoder)
    assert q.batch_first is False
    assert bptt(q, x, y, h0)[0] == L
    assert compare(p, x, y, h0).ok


# ---- what is found, and what is refused ------------------------------------------------------


def test_ambiguities_list_the_candidates(seq2label):
    model = seq2label[0]
    state = model.state_dict()
    with pytest.raises(ValueError, match=r"^head: 2 nn.Linear layers take its D·H_out = 6 features: 'decoder', 'aux'"):
        NetworkParams.from_state_dict(state)
    with pytest.raises(ValueError, match=r"^model: expected one nn.Linear taking the 6 features of 'encoder.rnn', "
                                         r"found 2: 'decoder', 'aux'"):
        NetworkParams.from_torch(model)
    two = {**state, **{f"second.{k}": v for k, v in model.encoder.rnn.state_dict().items()}}
    with pytest.raises(ValueError, match=r"^prefix: 2 candidates .*recurrent module .*: 'encoder.rnn', 'second'; expected one"):
        NetworkParams.from_state_dict(two, head="decoder")
    with pytest.raises(ValueError, match=r"^prefix: no recurrent module .* named 'encoder'.*candidates: 'encoder.rnn'"):
        NetworkParams.from_state_dict(state, prefix="encoder", head="decoder")
    with pytest.raises(ValueError, match=r"^head: no key fc.weight .*: 'encoder.embedding'|'decoder'"):
        NetworkParams.from_state_dict(state, head="fc")


def test_other_modules_are_ignored_and_unknown_keys_inside_the_network_refused(seq2label):
    model = seq2label[0]
    state = model.state_dict()
    p = NetworkParams.from_state_dict(state, prefix="encoder.rnn.", head="decoder")   # a trailing dot is fine
    assert "encoder.embedding.weight" in state and p.keys()[-2:] == ("head.weight", "head.bias")
    bad = {**state, "encoder.rnn.weight_hh_l2_sideways": state["encoder.rnn.weight_hh_l0"]}
    with pytest.raises(ValueError, match=r"unknown parameter names \['weight_hh_l2_sideways'\].*'encoder.rnn'"):
        NetworkParams.from_state_dict(bad, head="decoder")


def test_the_cell_is_read_off_the_shapes_but_an_elman_rnn_needs_it(seq2label):
    rnn, head = torch.nn.RNN(I, H, nonlinearity="relu"), torch.nn.Linear(H, O)
    state = {**{f"rnn.{k}": v for k, v in rnn.state_dict().items()}, **{f"out.{k}": v for k, v in head.state_dict().items()}}
    with pytest.raises(ValueError, match=r"^cell: the state dict holds an Elman RNN .*cell='rnn_tanh' or cell='rnn_relu'"):
        NetworkParams.from_state_dict(state)
    assert NetworkParams.from_state_dict(state, "rnn_relu").cell == "rnn_relu"
    gru = NetworkParams.from_state_dict(seq2label[0].state_dict(), head="decoder")
    assert gru.cell == "gru"
    lstm = torch.nn.LSTM(I, H, proj_size=2)
    projected = {**lstm.state_dict(), "head.weight": torch.zeros(O, 2), "head.bias": torch.zeros(O)}
    assert NetworkParams.from_state_dict(projected).cell == "lstm"        # 4·H rows, H from weight_hr_l0
    # NumPy arrays as well as tensors.
    assert NetworkParams.from_state_dict({k: v.numpy() for k, v in projected.items()}).proj_size == 2


def test_tensors_that_require_grad_are_refused_as_rnn_params_refuses_them(tagger):
    model = tagger[0]
    parameters = dict(model.named_parameters())                          # requires_grad, unlike state_dict()
    with pytest.raises(TypeError, match=r"^state\['weight_ih_l0'\]: .*requires grad"):
        NetworkParams.from_state_dict(parameters)
    with pytest.raises(TypeError, match=r"^state\['weight_ih_l0'\]: expected a tensor on the CPU, got one on meta"):
        NetworkParams.from_state_dict({k: v.to("meta") for k, v in model.state_dict().items()})


# ---- bptt check --weights: every bad file or argument is one line, exit 2 ----------------------


@pytest.fixture
def files(tagger, seq2label, tmp_path):
    """Good files to break: the tagger's and the encoder-decoder's state dicts, and a batch."""
    torch.save(tagger[0].state_dict(), tmp_path / "tagger.pt")
    torch.save(seq2label[0].state_dict(), tmp_path / "seq2label.pt")
    model, _, x, y, h0 = seq2label
    np.savez(tmp_path / "batch.npz", x=x, y=y, h0=h0)
    return tmp_path


def _save(state):
    return lambda path: torch.save(state, path)


def _tagger_state():
    torch.manual_seed(0)
    return Tagger().state_dict()


def _elman_state():
    return {**{f"rnn.{k}": v for k, v in torch.nn.RNN(I, H).state_dict().items()},
            **{f"fc.{k}": v for k, v in torch.nn.Linear(H, O).state_dict().items()}}


BAD = {
    # name: (files to write {name: writer}, the arguments after `check`, what the line says)
    "missing file": ({}, ["--weights", "{d}/absent.pt"], "--weights: no such file"),
    "a directory": ({"folder.pt": lambda p: p.mkdir()}, ["--weights", "{d}/folder.pt"], "is a directory"),
    "a text file": ({"notes.pt": lambda p: p.write_text("weights\n")}, ["--weights", "{d}/notes.pt"],
                    "is not a readable torch state dict"),
    "a checkpoint": ({"ckpt.pt": _save({"model": _tagger_state(), "epoch": 3})}, ["--weights", "{d}/ckpt.pt"],
                     "model is of type OrderedDict; expected a tensor (a checkpoint of several things?"),
    "a tensor": ({"t.pt": _save(torch.zeros(3))}, ["--weights", "{d}/t.pt"], "holds a value of type Tensor"),
    "no recurrent module": ({"lin.pt": _save(torch.nn.Linear(2, 2).state_dict())}, ["--weights", "{d}/lin.pt"],
                            "no recurrent module (nn.RNN, nn.LSTM or nn.GRU) in the state dict"),
    "two heads": ({}, ["--weights", "{d}/seq2label.pt"], "2 nn.Linear layers take its D·H_out = 6 features: 'decoder', 'aux'"),
    "a wrong prefix": ({}, ["--weights", "{d}/tagger.pt", "--prefix", "rnn"],
                       "no recurrent module (nn.RNN, nn.LSTM or nn.GRU) named 'rnn' in the state dict (no key "
                       "rnn.weight_ih_l0); the candidates: 'lstm'"),
    "a wrong head": ({}, ["--weights", "{d}/tagger.pt", "--head", "out"], "head: no key out.weight"),
    "an unknown key in the network": (
        {"odd.pt": _save({**_tagger_state(), "lstm.weight_hh_l0_sideways": torch.zeros(3)})},
        ["--weights", "{d}/odd.pt"], "unknown parameter names ['weight_hh_l0_sideways']"),
    "half precision": ({"half.pt": _save({k: v.to(torch.bfloat16) for k, v in _tagger_state().items()})},
                       ["--weights", "{d}/half.pt"], "bfloat16"),
    "an Elman RNN without --nonlinearity": ({"elman.pt": _save(_elman_state())}, ["--weights", "{d}/elman.pt"],
                                            "--nonlinearity: the file holds an Elman RNN"),
    "--nonlinearity for an LSTM": ({}, ["--weights", "{d}/tagger.pt", "--nonlinearity", "relu"],
                                   "--nonlinearity: only for an Elman RNN (nn.RNN); the network is an LSTM"),
    "--cell against the shapes": ({}, ["--weights", "{d}/tagger.pt", "--cell", "gru"], "weight_hh_l0"),
    "a size with --weights": ({}, ["--weights", "{d}/tagger.pt", "-H", "8"], "-H: read off the --weights file"),
    "--prefix without --weights": ({}, ["--prefix", "lstm"], "--prefix: only with --weights FILE"),
    "--data without --weights": ({}, ["--data", "{d}/batch.npz"], "--data: only with --weights FILE"),
    "-T with --data": ({}, ["--weights", "{d}/seq2label.pt", "--head", "decoder", "--data", "{d}/batch.npz", "-T", "3"],
                       "-T: for drawn data"),
    "data not .npz": ({}, ["--weights", "{d}/seq2label.pt", "--head", "decoder", "--data", "{d}/tagger.pt"],
                      "expected a .npz file of x, y"),
    "data without y": ({"x.npz": lambda p: np.savez(p, x=np.zeros((T, B, I), np.float32))},
                       ["--weights", "{d}/seq2label.pt", "--head", "decoder", "--data", "{d}/x.npz"],
                       "expected the arrays x, y and optionally lengths, h0, c0; got x"),
    "data with a misspelt array": ({"typo.npz": lambda p: np.savez(p, x=np.zeros((T, B, I), np.float32),
                                                                   y=np.zeros((T, B), int), lenghts=np.ones(B))},
                                   ["--weights", "{d}/seq2label.pt", "--head", "decoder", "--data", "{d}/typo.npz"],
                                   "got x, y, lenghts"),
    "data in another dtype": ({"f64.npz": lambda p: np.savez(p, x=np.zeros((T, B, I)), y=np.zeros((T, B), int))},
                              ["--weights", "{d}/seq2label.pt", "--head", "decoder", "--data", "{d}/f64.npz"],
                              "x is float64, the weights float32; expected one dtype (--dtype float64"),
    "data of the wrong width": ({"wide.npz": lambda p: np.savez(p, x=np.zeros((T, B, I + 1), np.float32),
                                                                y=np.zeros((T, B), int))},
                                ["--weights", "{d}/seq2label.pt", "--head", "decoder", "--data", "{d}/wide.npz"],
                                "x: expected"),
    "labels out of range": ({"labels.npz": lambda p: np.savez(p, x=np.zeros((T, B, I), np.float32),
                                                              y=np.full((T, B), O))},
                            ["--weights", "{d}/seq2label.pt", "--head", "decoder", "--data", "{d}/labels.npz"], "y: "),
    "a bad safetensors file": ({"bad.safetensors": lambda p: p.write_bytes(b"\x00" * 12)},
                               ["--weights", "{d}/bad.safetensors"], "is not a readable .safetensors file"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_every_bad_file_or_argument_is_one_line_and_exit_2(case, files, capsys, monkeypatch):
    writers, argv, says = BAD[case]
    if case == "a bad safetensors file":
        pytest.importorskip("safetensors")
    for name, write in writers.items():
        write(files / name)
    monkeypatch.setattr(cli, "compare", lambda *a, **k: pytest.fail("computed despite bad input"))
    code, out, err = run(["check", *[a.replace("{d}", str(files)) for a in argv]], capsys)
    assert code == 2, (code, out, err)
    assert err.startswith("bptt check: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert says in err, err


def test_npz_and_safetensors_state_dicts_are_read_too(files, capsys):
    safetensors = pytest.importorskip("safetensors.torch")
    state = torch.load(files / "tagger.pt", weights_only=True)
    np.savez(files / "tagger.npz", **{k: v.numpy() for k, v in state.items()})
    safetensors.save_file(state, str(files / "tagger.safetensors"))
    for name in ("tagger.npz", "tagger.safetensors"):
        code, out, err = run(["check", "--weights", str(files / name), "-T", "3", "-B", "2"], capsys)
        assert code == 0, out + err
        assert "'lstm' and head 'fc'" in out


def test_safetensors_without_its_extra_says_which_and_exits_4(files, capsys, monkeypatch):
    (files / "m.safetensors").write_bytes(b"")
    monkeypatch.setitem(__import__("sys").modules, "safetensors", None)   # import safetensors raises ImportError
    monkeypatch.setitem(__import__("sys").modules, "safetensors.torch", None)
    code, out, err = run(["check", "--weights", str(files / "m.safetensors")], capsys)
    assert code == 4, (code, err)
    assert "'safetensors' extra" in err and err.count("\n") == 1


# ---- bptt explain --weights reads the same files ---------------------------------------------


def test_explain_reads_a_models_state_dict_with_its_own_names(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    torch.save(_elman_state(), tmp_path / "elman.pt")
    code, out, err = run(["explain", "--out", str(tmp_path / "e.png"), "--weights", str(tmp_path / "elman.pt"),
                          "-T", "3", "--nonlinearity", "tanh", "--weight-scale", "1"], capsys)
    assert code == 0, err
    assert f"I={I}, H={H}, O={O}" in out
    torch.save(_tagger_state(), tmp_path / "tagger.pt")
    code, out, err = run(["explain", "--out", str(tmp_path / "e.png"), "--weights", str(tmp_path / "tagger.pt")], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "holds a 2-layer bidirectional LSTM network ('lstm'); bptt explain draws" in err


def test_a_module_on_the_meta_device_is_refused_by_name():
    """from_torch copies a module's tensors to the CPU; a meta tensor has nothing to copy
    (it raised torch's NotImplementedError before)."""
    lstm, fc = torch.nn.LSTM(3, 4).to("meta"), torch.nn.Linear(4, 2)
    with pytest.raises(TypeError, match=r"^rnn\.weight_ih_l0: expected a tensor with data, got one on the meta device"):
        NetworkParams.from_torch(lstm, fc)
