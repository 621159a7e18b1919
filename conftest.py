import pytest


@pytest.fixture(autouse=True)
def _no_request_context():
    """Each test starts outside any request: no request id or IP leaks between tests."""
    from bankside import context

    token = context.bind(None)
    yield
    context.reset(token)
