# The demo runs the delivery engine: its Page buckets live in the test Redis, as in the
# notifications tests.
from notifications.tests.conftest import _page_buckets_in_test_redis  # noqa: F401
