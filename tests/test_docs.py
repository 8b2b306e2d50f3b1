"""The README and docs/ name only what the repository holds: every relative
link resolves, every repository path they quote exists, every reference to
a page's section names one the page has, and nothing links outside the
repository (the pages describe what is built in their own words).  A file
renamed or a section retitled without its references fails here."""
from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import pytest

from zksidecar.daemon.config import Config, user_name
from zksidecar.tools.cli import parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
PAGE_IDS = [str(p.relative_to(ROOT)) for p in PAGES]

# The folders of the repository a page quotes paths in; build/ and var/ are
# made by `make` and the daemon, not held.
FOLDERS = ("benchmarks", "bindings", "csrc", "daemon", "docs", "engine", "examples",
           "prover", "ringbuf", "systemd", "tests", "tools")
REPO_PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w./@-]*[\w/])" % "|".join(FOLDERS))
LINK = re.compile(r"\]\(([^)\s]+)\)")
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s)`>\"']+")
LOCAL_URL = re.compile(r"(?:http://localhost\b|tcp://|tls://)")   # the admin endpoint, Dask addresses
SECTION_NUMBER = re.compile(r"\b([A-Z][A-Z0-9_]*\.md),?\s+(?:section|§)\s+(\d+(?:\.\d+)?)|"
                            r"\b([A-Z][A-Z0-9_]*\.md)\s+(\d+\.\d+)\b")
SECTION_TITLE = re.compile(r"\b([A-Z][A-Z0-9_]*\.md)\)?,?\s+[\"“]([^\"”\n]{2,80})[\"”]")
PAGE_NAME = re.compile(r"\b([A-Z][A-Z0-9_]*\.md)\b")


def text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def flat(page: Path) -> str:
    """The page with its line breaks as spaces: a reference may wrap."""
    return re.sub(r"\s*\n\s*", " ", text(page))


def page_by_name(name: str) -> Path | None:
    path = ROOT / name if name == "README.md" else DOCS / name
    return path if path.exists() else None


def headings(page: Path) -> list[str]:
    """The page's headings, bold labels (`**Title.**` opens a paragraph)
    and table rows' first cells: what a reference may name; without
    markup, lower case."""
    body = text(page)
    found = [line.lstrip("#") for line in body.splitlines() if line.startswith("#")]
    found += re.findall(r"\*\*([^*\n]+)\*\*", body)
    found += re.findall(r"^\| ([^|\n]+) \|", body, re.M)
    return [re.sub(r"[`*]", "", h).strip().lower() for h in found]


def path_exists(quoted: str) -> bool:
    """A quoted repository path exists, or names a module's attribute
    (`prover/orderbook/batch.verify_history`: batch.py)."""
    if (ROOT / quoted).exists():
        return True
    module, dot, _ = quoted.rpartition(".")
    return bool(dot) and (ROOT / (module + ".py")).exists()


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_relative_links_resolve(page):
    missing = [target for target in LINK.findall(text(page))
               if not URL.match(target) and target.split("#")[0]
               and not (page.parent / target.split("#")[0]).resolve().exists()]
    assert not missing, f"{page.name}: links to nothing: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_nothing_outside_the_repository(page):
    body = text(page)
    outside = [u for u in URL.findall(body) if not LOCAL_URL.match(u)]
    outside += [t for t in LINK.findall(body) if not URL.match(t)
                and not (page.parent / t.split("#")[0]).resolve().is_relative_to(ROOT)]
    outside += re.findall(r"(?<![\w.])\.\./[\w./-]+", body)
    assert not outside, f"{page.name}: refers outside the repository: {outside}"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_quoted_repository_paths_exist(page):
    missing = sorted({p for p in REPO_PATH.findall(text(page)) if not path_exists(p.rstrip("."))})
    assert not missing, f"{page.name}: names paths the repository does not hold: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_section_references_resolve(page):
    """`ZK.md section 5`, `ZK.md 5.7`, `STORE.md, "Snapshots"`: the page
    exists and has that section (a numbered heading, or a heading, bold
    label or table row holding the quoted words)."""
    body = flat(page)
    wrong = [name for name in PAGE_NAME.findall(body) if page_by_name(name) is None]
    for m in SECTION_NUMBER.finditer(body):
        name, number = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        target = page_by_name(name)
        if target is None or not any(re.match(re.escape(number) + r"(?:[.\s:]|$)", h)
                                     for h in headings(target)):
            wrong.append(m.group(0))
    for m in SECTION_TITLE.finditer(body):
        name, title = m.groups()
        target = page_by_name(name)
        words = re.sub(r"[`*]", "", title).strip().rstrip(".,").lower()
        if target is None or not any(words in h for h in headings(target)):
            wrong.append(m.group(0))
    assert not wrong, f"{page.name}: refers to sections that do not exist: {wrong}"


def test_admin_metrics_table_is_what_the_daemon_exports():
    """docs/ADMIN.md's tables give every /metrics family by its wire name
    and type (a counter's name ends in `_total`, which prometheus_client
    adds), and nothing daemon/metrics.py does not make."""
    source = (ROOT / "daemon" / "metrics.py").read_text()
    made = {name: kind.lower() for kind, name in
            re.findall(r"(Counter|Gauge|Histogram)MetricFamily\(\s*\"(zksidecar_\w+)\"", source)}
    # families built in a loop from (name, help, key) tuples: their type is the loop's
    for loop in re.finditer(r"for name, doc, key in \((.*?)\):\s*family = (Counter|Gauge|Histogram)"
                            r"MetricFamily\(name", source, re.S):
        made.update({n: loop.group(2).lower() for n in re.findall(r"\(\"(zksidecar_\w+)\"", loop.group(1))})
    wire = {(name + "_total" if kind == "counter" else name): kind for name, kind in made.items()}
    documented = dict(re.findall(r"^\| `(zksidecar_\w+)` \| (\w+) \|", text(DOCS / "ADMIN.md"), re.M))
    assert documented == wire


def test_readme_names_every_command():
    """The README's command list has every `zksidecar` command and action
    (a command added without a line there fails)."""
    def commands(p, path=()):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield " ".join((*path, name))
                    yield from commands(sub, (*path, name))

    readme = text(ROOT / "README.md")
    missing = [c for c in commands(parser()) if not re.search(rf"zksidecar {re.escape(c)}\b", readme)]
    assert not missing, f"README.md lacks: {missing}"


def test_deploy_defaults_are_the_configs():
    """docs/DEPLOY.md's table of keys gives each key's default as
    daemon/config.py has it (a TOML value; `$USER` is the user's name)."""
    defaults = Config()
    rows = re.findall(r"^\| `([a-z_]+)\.([a-z_]+)` \| `([^`]*)` \|", text(DOCS / "DEPLOY.md"), re.M)
    assert rows
    wrong = []
    for section, key, value in rows:
        documented = tomllib.loads("v = " + value.replace("$USER", user_name()))["v"]
        actual = getattr(getattr(defaults, section), key)
        if documented != (list(actual) if isinstance(actual, tuple) else actual):
            wrong.append((f"{section}.{key}", value, actual))
    assert not wrong


def test_quoted_test_names_exist():
    """A test a page names (`test_rest_that_is_not_last`) is one the suites
    define: a test renamed leaves no page pointing at nothing."""
    sources = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    defined = {name for path in sources for name in re.findall(r"def (test_\w+)", path.read_text())}
    quoted = {(page.name, name) for page in PAGES for name in re.findall(r"`(test_\w+)`", text(page))}
    assert not sorted((page, name) for page, name in quoted
                      if name not in defined and not (ROOT / "tests" / f"{name}.py").exists())
