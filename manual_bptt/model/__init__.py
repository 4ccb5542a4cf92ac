"""The model: its parameters and the names they go by, φ, the loss and the readout.

    params.py           RNNParams / RNNGrads: the derivation's U, W, V, b, c
    network_params.py   NetworkParams / NetworkGrads: nn.RNN / nn.LSTM / nn.GRU + nn.Linear, by torch's keys
    names.py            the one table of derivation symbols ↔ torch names
    activations.py      φ and φ' (tanh, relu) for the fast path
    losses.py           L(t): cross-entropy on a max-subtracted log-softmax, or ½‖o − y‖²; the "mean" rule
    readout.py          o(t) = V h(t) + c, L and its gradients ∂L/∂V, ∂L/∂c, ∂L/∂h
    reductions.py       sums written as products with a vector of ones (BLAS)
"""
