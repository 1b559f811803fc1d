"""What a Prefect UI user sees, in a real browser: Debian's chromium driven by Playwright
(no browser download). Opt-in, not part of `make test`: it needs `apt-get install chromium`
and `pip install playwright` in the virtualenv.

    .venv/bin/python bench/ui.py              # the stack of PHOENIX_HOME (the demo's by default)
    .venv/bin/python bench/ui.py --shots DIR  # and keep a screenshot of each page

It opens the latest breed report and the latest environment's connect artifact and checks
what users missed before: the report's tables render as tables (no `| total |` text), no
table is wider than the page (long rule lists wrap), and the connect artifact shows host and
port. Exit 1 with one line per failed check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def _latest(client, key_prefix: str):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=key_prefix)),
                                 sort=ArtifactSort.CREATED_DESC, limit=1)
    return arts[0] if arts else None


def _check(page, url: str, name: str, shots: Path | None) -> list[str]:
    page.goto(url, wait_until="networkidle")
    page.wait_for_selector("table", timeout=20_000)
    if shots:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    body = page.inner_text("body")
    problems = [f"{name}: markdown table text shown raw ({line.strip()[:40]!r})"
                for line in body.splitlines() if line.strip().startswith("|")]
    too_wide = page.evaluate("""() => [...document.querySelectorAll('table')].filter(t => {
        const box = t.parentElement.getBoundingClientRect();
        return t.getBoundingClientRect().width > box.width + 1 || t.scrollWidth > t.parentElement.clientWidth + 1;
    }).length""")
    if too_wide:
        problems.append(f"{name}: {too_wide} table(s) wider than the page (a long cell does not wrap)")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shots", type=Path, help="Directory for a screenshot of each page.")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    from prefect import get_client

    from infra.local import prefect as local_prefect
    from phoenix.config import get_settings

    settings = get_settings()
    ui = local_prefect.client_env(settings)["PREFECT_API_URL"].removesuffix("/api")
    with get_client(sync_client=True) as client:
        report, env = _latest(client, "breed-report"), _latest(client, "env-%")
    problems = [f"no {what} artifact on {ui}: run `make demo` first" for what, a in
                (("breed-report", report), ("environment", env)) if a is None]
    if problems:
        print("\n".join(problems))
        return 1
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems += _check(page, f"{ui}/artifacts/artifact/{report.id}", "breed-report", args.shots)
        problems += _check(page, f"{ui}/artifacts/artifact/{env.id}", "environment", args.shots)
        text = page.inner_text("body")
        if "host" not in text or f"{env.data}".split("| port | `")[1].split("`")[0] not in text:
            problems.append("environment: host and port not shown")
        browser.close()
    print("\n".join(problems) or f"UI checks passed on {ui}: breed report and connect artifact render as tables")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
