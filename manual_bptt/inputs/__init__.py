"""What bptt accepts: the options, the checks of every argument, and the overflow report.

    options.py             the option names, values and defaults, in one place
    checks.py              the checks every constructor and function shares (arrays, flags, sizes)
    validation.py          an RNNParams problem, checked and in time-major layout
    network_validation.py  a NetworkParams problem, checked and in time-major layout
    overflow.py            NonFiniteError: which state, step and gradient left the float range
"""
