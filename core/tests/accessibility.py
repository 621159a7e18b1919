"""axe-core, the npm package (core/tests/axe, installed by `make test`), run in the page.

The pages' policy lets scripts come from their own origin only, so the script is not
inlined (`add_script_tag(path=...)` would be, and refused): the browser asks this origin for
it, and Playwright answers that one request with the installed file.
"""

from pathlib import Path

import pytest

AXE_DIR = Path(__file__).resolve().parent / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
AXE_PATH = "/__axe-core__/axe.min.js"
INSTALL = f"npm ci --prefix {AXE_DIR.relative_to(AXE_DIR.parents[2])} (or make test)"
# What fails a page: the impacts a person is stopped or badly hindered by.
BLOCKING = {"serious", "critical"}
AXE_TIMEOUT_MS = 60_000


def axe_violations(page) -> list[dict]:
    """The serious and critical violations axe-core finds on the page as it stands."""
    if not AXE_JS.is_file():
        pytest.fail(f"axe-core is not installed: {INSTALL}.")
    source = AXE_JS.read_text()
    page.route(
        f"**{AXE_PATH}",
        lambda route: route.fulfill(body=source, content_type="text/javascript"),
    )
    origin = page.evaluate("() => location.origin")
    page.add_script_tag(url=origin + AXE_PATH)
    # evaluate() waits for its promise without a limit; wait_for_function() keeps one, so a
    # page that stops answering fails the test instead of holding the run.
    page.evaluate(
        "() => { window.__axe = null; axe.run(document, {resultTypes: ['violations']})"
        ".then(r => { window.__axe = {violations: r.violations}; },"
        " e => { window.__axe = {error: String(e)}; }); }"
    )
    results = page.wait_for_function("() => window.__axe", timeout=AXE_TIMEOUT_MS).json_value()
    if "error" in results:
        pytest.fail(f"axe-core failed on the page: {results['error']}")
    return [v for v in results["violations"] if v.get("impact") in BLOCKING]


def describe(violations: list[dict]) -> str:
    return "\n".join(
        f"{v['impact']}: {v['id']} ({v['help']}) at "
        + ", ".join(" ".join(map(str, node["target"])) for node in v["nodes"][:5])
        for v in violations
    )
