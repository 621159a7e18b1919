"""A real OpenID provider for the tests: node-oidc-provider, run from `oidc_peer/`.

`make test` installs it (`npm ci` in `oidc_peer/` whenever its lock file changes). Without
it the tests that need it fail and say how to install it: they never skip.
"""

import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

PEER_DIR = Path(__file__).resolve().parent / "oidc_peer"
CLIENT_ID = "bankside-harbour"
CLIENT_SECRET = "Tz+7/q=9%Ab%2F+x/=="  # what form-encoding must carry through intact
INSTALL = "run `make test`, or `npm ci` in linking/tests/oidc_peer (Node.js 20.19 or newer)"


@contextlib.contextmanager
def provider_running(*, path: str, redirect_uri: str):
    """Start the provider on a free loopback port; yields its issuer."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"Node.js is not installed, and the OpenID provider needs it: {INSTALL}.")
    if not (PEER_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        pytest.fail(f"The OpenID provider (oidc-provider) is not installed: {INSTALL}.")
    config = {
        "path": path,
        "client": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [redirect_uri],
        },
    }
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen(
            [node, "server.mjs"],
            cwd=PEER_DIR,
            env={**os.environ, "OIDC_PEER_CONFIG": json.dumps(config)},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            ready, _, _ = select.select([process.stdout], [], [], 30)
            line = process.stdout.readline() if ready else ""
            if not line:
                process.kill()
                process.wait()
                stderr.seek(0)
                pytest.fail(f"The OpenID provider did not start:\n{stderr.read()}")
            yield json.loads(line)["issuer"]
        finally:
            process.terminate()
            process.wait(timeout=10)
            process.stdout.close()


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attributes.get("action") or "", "fields": {}})
        elif tag == "input" and self.forms and attributes.get("type") == "hidden":
            self.forms[-1]["fields"][attributes.get("name")] = attributes.get("value") or ""


def submit(
    browser: httpx.Client, page: httpx.Response, data: dict, *, action: str = ""
) -> httpx.Response:
    """Post the page's form whose action contains `action`, as a browser would."""
    parser = _Forms()
    parser.feed(page.text)
    form = next((f for f in parser.forms if action in f["action"]), None)
    assert form is not None, f"no form posting to {action!r} on {page.url}"
    target = urljoin(str(page.url), unescape(form["action"]))
    return browser.post(target, data={**form["fields"], **data})
