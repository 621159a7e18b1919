"""Test code run in several threads at once, as concurrent requests or workers run."""

import threading
from collections.abc import Callable, Sequence

from django.db import connections


def run_together(
    target: Callable[[object], object], arguments: Sequence, *, timeout: float | None = None
) -> list[BaseException]:
    """Call `target(argument)` for each of `arguments`, each in a thread of its own, all
    released at once; each thread closes its database connections when it ends. Waits
    for them (up to `timeout` seconds each) and returns what they raised, for the test to
    assert there was nothing."""
    start = threading.Barrier(len(arguments))
    errors: list[BaseException] = []

    def run(argument) -> None:
        try:
            start.wait()
            target(argument)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return errors
