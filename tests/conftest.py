"""Hypothesis settings profiles. Pick one with `pytest --hypothesis-profile=NAME`.

dev       (default) quick and random: a fresh sample of problems on every run.
ci        derandomized: the same examples on every run, so CI is reproducible;
          `make test` and .ci/run use it.
thorough  thousands of examples per property, for a long run before a release
          or after touching the backward pass: `make test-thorough`.
mutation  the fewest examples that still exercise every option, for the many
          short runs of mutation testing.

Every profile has deadline=None: an example that calls torch costs a few ms,
and the first call in a process pays for torch's lazy initialisation.
"""

from hypothesis import HealthCheck, Phase, settings

settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "mutation",
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    # A mutant only has to be caught, not explained: skipping the shrink phase
    # keeps a failing run short, so a killed mutant is never mistaken for a hang.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile("dev")
