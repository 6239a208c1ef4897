"""Every page of the portal, console and explorer, signed in and out: axe, keyboard, no-JS.

The journeys' tests check the pages they pass through; this sweep checks the pages nobody
walks to. Pages are found, not listed: for each sub-app and each visitor (signed out, and
the demo citizen, DPO or analyst), a crawl starts from the app's start page, its
parameter-free GET routes (read from the Starlette router, so a page added later is swept
without touching this file) and an unknown path (the 404 page), and follows every
same-origin link and safe GET form within the app. Sign-in, sign-out and callbacks that
leave the site are not followed; no POST form is submitted, except that a draft is started
first so that the console's draft pages exist to be found.

On every page: axe-core finds no WCAG 2.2 A/AA violation; pressing Tab from the top
reaches every visible, enabled control (WCAG 2.1.1), and focus is visible on a sample of
them (2.4.7); the page gives the same heading with JavaScript off and is no JavaScript dead
end (only the GraphQL IDE needs JavaScript, and it must point to the query form); the
Content-Security-Policy has no 'unsafe-inline'. Each page is photographed at 1280 and 375
pixels wide as ``artifacts/screenshots/sweep-<visitor>-<page>-{desktop,mobile}.png``
(always rewritten, so the files show this run), and the list of pages swept is written to
``artifacts/accessibility-sweep.json``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.web.conftest import DESKTOP, MOBILE, ROOT, SCREENSHOTS, WCAG_TAGS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def running(shared_running):
    """The web tests' shared trust (tests/web/conftest.py): this module changes no
    consent, opt-out or policy."""
    return shared_running


MAX_PAGES = 40
"""Pages per app and visitor; the demo has under twenty, so hitting this means a link loop."""
MAX_VARIANTS = 3
"""Query-string variants of one path (filters, pages of results) worth sweeping."""
FOCUS_SAMPLE = 8
SKIP_SUFFIXES = (".csv", ".json", ".png", ".svg", ".ico", ".js", ".css", ".txt", ".geojson")
NOT_PAGES = ("/static/", "/assets/", "/healthz")
LEAVES_SITE = ("/sign-in", "/sign-out", "/graphql")
NO_JS_DEAD_END = re.compile(r"(needs|requires|enable|turn on|switch on)\s+JavaScript", re.I)
REPORT = ROOT / "artifacts" / "accessibility-sweep.json"

APPS = {"portal": "", "console": "/console", "explorer": "/explorer"}
USERS = {"citizen": "portal", "dpo": "console", "analyst": "explorer"}
VISITS = [
    ("portal", "signed-out"),
    ("portal", "citizen"),
    ("console", "signed-out"),
    ("console", "dpo"),
    ("explorer", "signed-out"),
    ("explorer", "analyst"),
]
ERROR_SUMMARY_SEEDS = {("console", "dpo"): ["/console/audit?from=31%2F02%2F2024"]}
"""GET pages that show an error summary (a search with an impossible date)."""

SWEPT: dict[str, list[dict]] = {}


# -- the visitors ---------------------------------------------------------------------


@dataclass
class Visitor:
    """One person's browser: the same cookies with JavaScript on and off."""

    name: str
    js: object
    no_js: object


@pytest.fixture(scope="module")
def visitors(browser, running):
    """Signed-out, citizen, DPO and analyst browsers; the DPO starts one draft to sweep."""
    made = []

    def context(javascript: bool):
        ctx = browser.new_context(viewport=DESKTOP, java_script_enabled=javascript)
        ctx.set_default_timeout(20_000)
        made.append(ctx)
        return ctx

    out: dict[str, Visitor] = {}
    try:
        for name in ("signed-out", *USERS):
            js, no_js = context(True), context(False)
            if name != "signed-out":
                sign_in(js, running, name)
                no_js.add_cookies(js.cookies())  # the same session, seen without JavaScript
            out[name] = Visitor(name, js, no_js)
        start_a_draft(out["dpo"].js, running)
        yield out
    finally:
        for ctx in made:
            ctx.close()
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(SWEPT, indent=2) + "\n", encoding="utf-8")


def sign_in(context, running, username: str) -> None:
    """Sign in on the identity server's page from the app's own sign-in route."""
    page = context.new_page()
    page.goto(running.portal + APPS[USERS[username]] + "/sign-in")
    page.wait_for_url(f"{running.identity}/authorize*")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(running.passwords[username])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(running.portal + "/**")
    page.close()


def start_a_draft(context, running) -> None:
    """The console's draft, edit and dry-run pages exist only once a draft does."""
    page = context.new_page()
    page.goto(running.portal + "/console/")
    if page.locator("a[href*='/console/drafts/']").count() == 0:
        page.get_by_role("button", name="Start a new draft").click()
        page.wait_for_url(running.portal + "/console/**")
    page.close()


def get_routes(app_name: str, tmp_path: Path) -> list[str]:
    """The app's GET routes without path parameters, read from the Starlette routers."""
    from starlette.routing import Mount, Route

    from datatrust.settings import PortalSettings, load_settings
    from datatrust.web import create_portal_app

    settings = load_settings(
        PortalSettings, environ={}, data_dir=tmp_path, issuer="http://127.0.0.1:9"
    )
    found: list[str] = []

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(route.routes, prefix + route.path)
            elif isinstance(route, Route) and "GET" in (route.methods or ()):
                path = prefix + route.path
                if "{" not in path:
                    found.append(path)

    walk(create_portal_app(settings).routes, "")
    return [p for p in found if app_of(p) == app_name and not p.endswith(LEAVES_SITE)]


# -- which URLs are pages of which app ------------------------------------------------


def app_of(path: str) -> str | None:
    if path.startswith(NOT_PAGES) or path.endswith(SKIP_SUFFIXES):
        return None
    for name in ("console", "explorer"):
        if path == APPS[name] or path.startswith(APPS[name] + "/"):
            return name
    return "portal"


def in_app(url: str, origin: str, app_name: str) -> str | None:
    """``url`` as a path (with its query) if it is a page of the app on this site."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != origin or app_of(parts.path) != app_name:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def to_follow(url: str, origin: str, app_name: str) -> str | None:
    """``url`` as a path if it is a page of the app worth visiting from a link."""
    path = in_app(url, origin, app_name)
    if path is None or path.split("?")[0].endswith((*LEAVES_SITE, "/callback")):
        return None
    return path


def slug(path: str) -> str:
    text = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-")
    return text[:80] or "start"


# -- the checks on one page -----------------------------------------------------------

LINKS_JS = """() => {
  const out = Array.from(document.querySelectorAll('a[href], area[href]'), a => a.href);
  for (const form of document.querySelectorAll('form')) {
    if ((form.getAttribute('method') || 'get').toLowerCase() !== 'get') continue;
    const query = new URLSearchParams(new FormData(form)).toString();
    out.push(form.action + (query ? '?' + query : ''));
  }
  return out;
}"""

CONTROLS_JS = """() => {
  const selector = 'a[href], area[href], button, input, select, textarea, summary, [tabindex]';
  const out = [];
  for (const el of document.querySelectorAll(selector)) {
    if (el.matches('input[type=hidden]') || el.disabled || el.closest('[inert]')) continue;
    const index = el.getAttribute('tabindex');
    if (index !== null && parseInt(index, 10) < 0) continue;
    const style = getComputedStyle(el);
    if (style.visibility !== 'visible' || style.display === 'none') continue;
    if (el.getClientRects().length === 0) continue;
    const id = String(out.length);
    el.setAttribute('data-sweep', id);
    const text = (el.innerText || el.value || el.getAttribute('aria-label') || '').trim();
    out.push({
      id,
      group: el.matches('input[type=radio]') && el.name ? 'radio:' + el.name : id,
      what: `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} "${text.slice(0, 40)}"`,
    });
  }
  window.__sweepFocused = [];
  const keys = new WeakMap();
  window.__sweepActive = () => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    if (!keys.has(el)) keys.set(el, 'k' + Math.random());
    return el.getAttribute('data-sweep') || keys.get(el);
  };
  document.addEventListener('focusin', e => {
    window.__sweepFocused.push(e.target.getAttribute('data-sweep'));
  }, true);
  if (document.activeElement) document.activeElement.blur();
  window.scrollTo(0, 0);
  return out;
}"""

FOCUS_STYLE_JS = """(ids) => {
  const look = el => {
    const s = getComputedStyle(el);
    const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0 &&
      !/rgba\\(0, 0, 0, 0\\)|transparent/.test(s.outlineColor);
    return {outline: outline ? `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}` : '',
            shadow: s.boxShadow};
  };
  // The element or a near ancestor (a :focus-within box round an editor's hidden textarea).
  const looks = el => {
    const out = [];
    for (let e = el, n = 0; e && n < 4; e = e.parentElement, n += 1) out.push(look(e));
    return out;
  };
  const missing = [];
  for (const id of ids) {
    const el = document.querySelector(`[data-sweep="${id}"]`);
    el.blur();
    const before = looks(el);
    el.focus();
    const after = looks(el);
    const shows = after.some((a, i) => (a.outline && a.outline !== before[i].outline) ||
      a.shadow !== before[i].shadow);
    if (!shows) missing.push(id);
    el.blur();
  }
  return missing;
}"""


def axe_violations(page, axe_source: str) -> list:
    page.evaluate(axe_source)
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    return [
        (v["id"], v["help"], [node["target"] for node in v["nodes"]][:5])
        for v in result["violations"]
    ]


def keyboard_problems(page) -> list[str]:
    """Controls Tab never reaches, and sampled controls with no visible focus."""
    controls = page.evaluate(CONTROLS_JS)
    problems = []
    last = None
    for _ in range(len(controls) + 3):
        page.keyboard.press("Tab")
        now = page.evaluate("window.__sweepActive()")
        if now is not None and now == last:  # Tab kept focus here (a code editor indents)
            page.keyboard.press("Escape")  # the way out such editors must offer (2.1.2)
            page.keyboard.press("Tab")
            now = page.evaluate("window.__sweepActive()")
            if now == last:
                what = page.evaluate("document.activeElement.outerHTML.slice(0, 80)")
                problems.append(f"keyboard trap: neither Tab nor Escape, Tab leaves {what}")
                break
        last = now
    focused = set(page.evaluate("window.__sweepFocused"))
    reached_groups = {c["group"] for c in controls if c["id"] in focused}
    problems += [
        f"Tab never reaches {c['what']}" for c in controls if c["group"] not in reached_groups
    ]
    by_kind: dict[str, list[str]] = {}
    for c in controls:
        by_kind.setdefault(c["what"].split(" ")[0].split("#")[0], []).append(c["id"])
    sample = [ids[0] for ids in by_kind.values()]
    sample += [c["id"] for c in controls if c["id"] not in sample][: FOCUS_SAMPLE - len(sample)]
    what = {c["id"]: c["what"] for c in controls}
    problems += [f"no visible focus on {what[i]}" for i in page.evaluate(FOCUS_STYLE_JS, sample)]
    return problems


def no_js_problems(page, url: str, status: int, heading: str, prefix: str) -> list[str]:
    response = page.goto(url)
    problems = []
    if response is None or response.status != status:
        problems.append(f"without JavaScript the status is {response and response.status}")
    h1 = page.locator("h1")
    text = page.locator("main").inner_text() if page.locator("main").count() else ""
    if h1.count() == 0 or " ".join(h1.first.inner_text().split()) != heading:
        problems.append("without JavaScript the page has another (or no) heading")
    if NO_JS_DEAD_END.search(text) and page.locator("main form").count() == 0:
        query_form = page.locator(f"main a[href='{prefix}/']")
        if not url.endswith(f"{prefix}/ide") or query_form.count() == 0:
            problems.append("without JavaScript the page is a dead end: " + text[:120])
        else:  # the IDE's way out must lead to a working query form
            query_form.first.click()
            if page.locator("form textarea[name=query]").count() == 0:
                problems.append("the IDE's no-JavaScript link does not reach the query form")
    return problems


def screenshots(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, viewport in (("desktop", DESKTOP), ("mobile", MOBILE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
    page.set_viewport_size(DESKTOP)


@dataclass
class Sweep:
    pages: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def sweep(running, visitor: Visitor, app_name: str, axe_source: str, seeds: list[str]) -> Sweep:
    origin = running.portal
    prefix = APPS[app_name]
    result = Sweep()
    queue = list(dict.fromkeys(seeds))
    seen = set(queue)
    variants: dict[str, int] = {}
    page, plain = visitor.js.new_page(), visitor.no_js.new_page()
    try:
        while queue and len(result.pages) < MAX_PAGES:
            path = queue.pop(0)
            url = origin + path
            response = page.goto(url)
            landed = in_app(page.url, origin, app_name)
            if response is None or landed is None:
                continue  # it sent the visitor to sign in (another site) or another app
            if "text/html" not in response.headers.get("content-type", ""):
                continue
            status = response.status
            where = f"{visitor.name} {path} ({status})"
            csp = response.headers.get("content-security-policy", "")
            if "script-src" not in csp or "unsafe-inline" in csp:
                result.problems.append(f"{where}: Content-Security-Policy is {csp!r}")
            if status >= 500:
                result.problems.append(f"{where}: server error")
            heading = page.locator("h1")
            heading_text = " ".join(heading.first.inner_text().split()) if heading.count() else ""
            if not heading_text:
                result.problems.append(f"{where}: no h1")
            for link in page.evaluate(LINKS_JS):
                target = to_follow(link, origin, app_name)
                if target is None or target in seen:
                    continue
                bare = target.split("?")[0]
                if "?" in target and variants.get(bare, 0) >= MAX_VARIANTS:
                    continue
                variants[bare] = variants.get(bare, 0) + ("?" in target)
                seen.add(target)
                queue.append(target)
            result.problems += [f"{where}: axe {v}" for v in axe_violations(page, axe_source)]
            result.problems += [f"{where}: {p}" for p in keyboard_problems(page)]
            screenshots(page, f"sweep-{visitor.name}-{app_name}-{slug(path)}")
            result.problems += [
                f"{where}: {p}" for p in no_js_problems(plain, url, status, heading_text, prefix)
            ]
            summary = page.locator(".govuk-error-summary").count() > 0
            result.pages.append(
                {"path": path, "landed": landed, "status": status, "error_summary": summary}
            )
    finally:
        page.close()
        plain.close()
    if queue:
        result.problems.append(f"the crawl stopped at {MAX_PAGES} pages; left: {queue[:5]}")
    return result


# -- the sweep --------------------------------------------------------------------------


@pytest.mark.parametrize(("app_name", "who"), VISITS, ids=[f"{a}-{w}" for a, w in VISITS])
def test_every_page_passes_axe_keyboard_and_no_javascript_checks(
    running, visitors, axe_source, tmp_path, app_name, who
):
    started = time.monotonic()
    prefix = APPS[app_name]
    seeds = [
        prefix + "/",
        *get_routes(app_name, tmp_path),
        prefix + "/no-such-page",
        *ERROR_SUMMARY_SEEDS.get((app_name, who), []),
    ]
    result = sweep(running, visitors[who], app_name, axe_source, seeds)
    SWEPT[f"{app_name} {who}"] = result.pages
    print(f"{app_name} {who}: {len(result.pages)} pages in {time.monotonic() - started:.1f}s")

    assert result.problems == [], "\n".join(result.problems)
    statuses = {p["landed"].split("?")[0]: p["status"] for p in result.pages}
    assert statuses.get(prefix + "/no-such-page") == 404, statuses  # the 404 page was swept
    if who == "signed-out":
        return
    assert len(result.pages) >= 3, statuses  # signed in, the crawl found the app's pages
    expected = {
        "portal": ["/choices"],
        "console": [
            "/console/purposes",
            "/console/history",
            "/console/audit",
            "/console/drafts/",
            "/dry-run",
            "/console/agreements/",
        ],
        "explorer": ["/explorer/ide"],
    }[app_name]
    for part in expected:
        assert any(part in path for path in statuses), f"no page like {part}: {statuses}"
    if (app_name, who) in ERROR_SUMMARY_SEEDS:
        assert any(p["error_summary"] for p in result.pages), "no page with an error summary"
