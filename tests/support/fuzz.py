"""Hypothesis settings of the fuzz tests: a fixed budget and seed in CI, a long profile by hand.

`REVURB_FUZZ=long scripts/test tests/unit/test_transport_fuzz.py` runs the long profile (random
seeds, many more examples); the default is the CI profile (derandomized, so the same examples every
run, and no example database).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "revurb-fuzz-ci",
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=_SLOW,
)
settings.register_profile(
    "revurb-fuzz-long", max_examples=20_000, deadline=None, suppress_health_check=_SLOW, print_blob=True
)

LONG = os.environ.get("REVURB_FUZZ", "").lower() == "long"
PROFILE = "revurb-fuzz-long" if LONG else "revurb-fuzz-ci"
#: Decorate a `@given` test with this.
fuzz = settings(settings.get_profile(PROFILE))
#: The fuzz tests' own limit in seconds (`pytest.mark.timeout`): the suite's 60 s is too short for
#: 20,000 examples (a few minutes per test); 0 means none.
TIMEOUT = 0 if LONG else 60
