"""The fast path: `manual_bptt.bptt`, the default, tested equal to manual_bptt.reference.

    rnn.py       bptt() for RNNParams and NetworkParams; the one-layer Elman model's own loop
    network.py   layers × directions, lengths, target="last", truncation
    sequence.py  one cell over time: the forward loop and BPTT given ∂L/∂h(t)
    cells/       the Elman, LSTM and GRU steps, with the measured tricks (buffer reuse, chunks)
"""
