import helm_python
import pytest


@pytest.fixture(autouse=True, scope="session")
def _quiet_helm() -> None:
    """Keep the Helm library's own log lines (e.g. from `fail`) out of the test output."""
    helm_python.disable_logging()
