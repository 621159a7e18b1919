import os
import shutil
import warnings

import pytest

# The core-banking API's fixtures (a bank, its API key, a client, a card), for every app's tests.
pytest_plugins = ["linking.tests.api_fixtures", "core.tests.listener"]

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Chromium reports every Content-Security-Policy violation on the page's console; the page
# also hears a `securitypolicyviolation` event, which this script reports there too.
CSP_VIOLATION = "Content Security Policy"
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`Content Security Policy violation: ${event.effectiveDirective} `
    + `blocked ${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber}`);
});
"""
_violations: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _flush_past_the_audit_guards():
    """Transactional tests empty every table with TRUNCATE after each test, the audit log's
    included, whose triggers refuse it (portal migration 0013). The test database's
    superuser flushes with triggers off: `session_replication_role` can be set by a
    superuser only, never by the application's role."""
    from django.db import connection

    operations = type(connection.ops)
    sql_flush = operations.sql_flush

    def sql_flush_past_triggers(self, *args, **kwargs):
        statements = sql_flush(self, *args, **kwargs)
        if statements and self.connection.vendor == "postgresql":
            return ["SET LOCAL session_replication_role = replica", *statements]
        return statements

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(operations, "sql_flush", sql_flush_past_triggers)
        yield


@pytest.fixture(autouse=True)
def _no_request_context():
    """Each test starts outside any request: no request id or IP leaks between tests."""
    from core import context

    token = context.bind(None)
    yield
    context.reset(token)


@pytest.fixture(autouse=True)
def _stop_sandbox_webhooks():
    """The sandbox's webhook thread lives no longer than the test that started it."""
    yield
    from django.conf import settings

    if "sandbox" in settings.INSTALLED_APPS:
        from sandbox.webhooks import dispatcher

        dispatcher.stop()


@pytest.fixture(autouse=True)
def _no_policy_violations():
    """A browser test fails if any page it opened broke the Content-Security-Policy."""
    _violations.clear()
    yield
    if _violations:
        found = "\n".join(dict.fromkeys(_violations))
        _violations.clear()
        pytest.fail(f"Content-Security-Policy violations:\n{found}", pytrace=False)


class WatchedBrowser:
    """The test Chromium, whose every context notes the policy violations its pages report."""

    def __init__(self, browser) -> None:
        self._browser = browser

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)
        context.add_init_script(_REPORT_VIOLATIONS)
        context.on("console", _note_violation)
        return context

    def __getattr__(self, name):
        return getattr(self._browser, name)


def _note_violation(message) -> None:
    if CSP_VIOLATION in message.text:
        where = message.page.url if message.page else "a page"
        _violations.append(f"{where}: {message.text}")


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def browser():
    """Headless system Chromium driven by Playwright for Python.

    Without Chromium the browser tests are skipped, loudly, on a developer's machine; in
    CI (`CI=true`) a missing browser fails them.
    """
    path = chromium_path()
    if path is None:
        message = (
            "Chromium not found: browser tests need Debian's `chromium` package "
            "(apt-get install chromium) or CHROMIUM_PATH."
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # alongside it are still plain synchronous calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(
                executable_path=path, headless=True, args=CHROMIUM_ARGS
            )
            yield WatchedBrowser(launched)
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()
