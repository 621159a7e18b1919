# The notifications tests' fixtures (a linked customer, the Graph API stand-in, Page buckets
# in the test Redis) serve the conversation's tests as they are.
from notifications.tests.conftest import (  # noqa: F401
    _page_buckets_in_test_redis,
    graph,
    linked,
    linked_api,
    sign_in,
)
