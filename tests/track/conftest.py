"""The tuning tests' run maker (a digits run folder whose data stage has finished)."""

from tests.tune.conftest import make_run  # noqa: F401  (a fixture, shared)
