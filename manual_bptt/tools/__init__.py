"""Tools around the engine: the derivation's terms, pictures, optimisers, text.

    derivation.py          the source's sum over k, term by term; ∂h(t)/∂h(k)
    network_derivation.py  the same for networks: state Jacobians, per-layer terms
    lags.py                sums of terms by lag d = t − k; singular values by lag
    plotting.py            the figures (matplotlib, an optional extra)
    optim.py               Adam, SGD and clip_grad_norm in NumPy, as torch.optim computes them
    text.py                character-level language modelling: the corpus and sampling of `bptt train`
    extras.py              optional dependencies, with an error that names the extra to install
"""
