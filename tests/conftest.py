"""Shared test settings."""

from hypothesis import settings

# JAX dispatch is slow for example-heavy property tests; keep them bounded and deadline-free.
settings.register_profile("optax_l1", max_examples=60, deadline=None)
settings.load_profile("optax_l1")
