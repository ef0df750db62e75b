import os
import sys

import pytest

# The Python tests import their helpers (reference.py, checks.py) by name; put
# their folder on sys.path so this works under any pytest --import-mode.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "python"))

try:
    from hypothesis import settings
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    settings = None

if settings is not None:
    # No example database on disk (keeps the checkout clean) and a fixed seed
    # so a run is reproducible; no deadline since the first call of a loss may
    # start the thread pool.
    settings.register_profile("fastloss", database=None, deadline=None, derandomize=True, print_blob=True)
    settings.load_profile("fastloss")


@pytest.fixture
def restore_threads():
    """Give back fastloss's thread count after a test that changes it."""
    import fastloss

    n = fastloss.get_num_threads()
    yield n
    fastloss.set_num_threads(n)
