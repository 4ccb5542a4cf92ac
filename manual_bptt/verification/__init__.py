"""The verdict and the problems it is reached on.

    report.py        compare_grads and the per-gradient table (GradientReport)
    tolerances.py    the tolerance per dtype, with its reason
    conditioning.py  what rounding alone explains on an ill-conditioned problem
    problems.py      random_problem / random_network_problem: reproducible problems from a recipe
    strategies.py    hypothesis strategies of problems (the kit's and the suite's)
"""
