"""The fast path: `manual_bptt.bptt`, the default, tested equal to manual_bptt.reference.

    rnn.py       bptt() for RNNParams and NetworkParams; the RNNParams model as the one-layer Elman stack
    network.py   the Stack: layers × directions, lengths, target="last", truncation, the readout
    sequence.py  one cell over time: the forward loop and BPTT given ∂L/∂h(t)
    cells/       the Elman, LSTM and GRU steps, with the measured tricks (buffer reuse, chunks)
"""
