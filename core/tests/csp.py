"""What every response's Content-Security-Policy must say, and what no page may hold under it."""

import re

REQUIRED = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
}
UNSAFE = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "'wasm-unsafe-eval'")
# What the policy blocks in a page: inline scripts and styles, event-handler attributes,
# `javascript:` URLs. A JSON data block (`json_script`) is never run, so it is not one.
INLINE = re.compile(
    r"<script(?![^>]*\ssrc=)(?![^>]*\stype=[\"']application/json[\"'])[^>]*>"
    r"|<style\b|\sstyle\s*=|\son[a-z]+\s*=\s*[\"']|=\s*[\"']\s*javascript:",
    re.IGNORECASE,
)


def policy_of(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    request = getattr(response, "wsgi_request", None)
    where = request.get_full_path() if request else ""
    assert header, f"{where}: a {response.status_code} without a Content-Security-Policy"
    policy = {}
    for directive in header.split(";"):
        name, *sources = directive.split()
        policy[name] = sources
    return policy


def assert_strict_policy(response) -> dict[str, list[str]]:
    """The response carries the policy: nothing but this origin's own scripts and styles."""
    policy = policy_of(response)
    for directive, sources in REQUIRED.items():
        assert policy.get(directive) == sources, (directive, policy.get(directive))
    form_action = policy.get("form-action", [])
    assert form_action[:1] == ["'self'"], form_action
    assert not {"*", "http:", "https:", "data:"} & set(form_action), form_action
    for source in (s for sources in policy.values() for s in sources):
        assert source not in UNSAFE, source
    return policy


def assert_nothing_inline(html: str) -> None:
    """The page holds nothing the policy would block."""
    found = INLINE.findall(html)
    assert not found, found
