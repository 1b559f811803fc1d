"""`phoenix anonymize` and `phoenix gate`, for use outside the cycle."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import typer
from rich.console import Console

from phoenix.errors import ConfigError
from tasks.runtime.base import AdminAccess


def parse_dsn(dsn: str) -> tuple[AdminAccess, str]:
    """mysql://user:password@host:port/db or mysql://user@localhost/db?unix_socket=/path."""
    u = urlparse(dsn)
    db = u.path.lstrip("/")
    if u.scheme not in ("mysql", "mariadb") or not db:
        raise ConfigError("--dsn: expected mysql://user[:password]@host[:port]/database[?unix_socket=PATH]")
    sock = parse_qs(u.query).get("unix_socket", [None])[0]
    return AdminAccess(host=None if sock else (u.hostname or "127.0.0.1"), port=None if sock else (u.port or 3306),
                       user=unquote(u.username or "root"), password=unquote(u.password) if u.password else None,
                       socket=Path(sock) if sock else None), db


def anonymize_cmd(
    dsn: str = typer.Option(..., "--dsn", help="mysql://user:password@host:port/db (or ?unix_socket=PATH)."),
    rules: Path = typer.Option(..., "--rules", help="Rules file (YAML)."),
) -> None:
    """Anonymize a database in place with a rules file (key from PHOENIX_ANON_KEY)."""
    from anonymization import anonymize, load_rules
    from phoenix.config import get_settings

    admin, db = parse_dsn(dsn)
    key = get_settings().anon_key_bytes()
    ruleset = load_rules(rules)
    err = Console(stderr=True)
    report = anonymize(admin, db, ruleset, key, progress=lambda t, d, n: err.print(f"[dim]{t}[/] {d:,}/{n:,}"))
    Console().print(report.to_markdown())


def gate_cmd(
    dsn: str = typer.Option(..., "--dsn", help="mysql://user:password@host:port/db (or ?unix_socket=PATH)."),
    rules: Path = typer.Option(..., "--rules", help="Rules file (YAML)."),
    source: Path = typer.Option(None, "--source", help="The original dump, to sample original values from."),
) -> None:
    """Check an anonymized database; exit 4 with the findings when it fails."""
    from anonymization import load_rules, run_gate
    from anonymization.sampling import baseline_from_dump
    from phoenix.config import get_settings

    admin, db = parse_dsn(dsn)
    key = get_settings().anon_key_bytes()
    ruleset = load_rules(rules)
    baseline = baseline_from_dump(source, ruleset, key) if source else None
    result = run_gate(admin, db, ruleset, key, baseline)
    Console().print(result.to_markdown())
    result.raise_if_failed()


def register(app: typer.Typer) -> None:
    app.command("anonymize")(anonymize_cmd)
    app.command("gate")(gate_cmd)
