"""`phoenix anonymize` and `phoenix gate`, for use outside the cycle."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import typer
from rich.console import Console
from rich.markup import escape

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
    ruleset = load_rules(rules).of(db)  # its `db.table` rules, and the unqualified ones
    err = Console(stderr=True)
    report = anonymize(admin, db, ruleset, key, progress=lambda t, d, n: err.print(f"[dim]{escape(t)}[/] {d:,}/{n:,}"))
    Console().print(report.to_markdown(), markup=False)


def gate_cmd(
    dsn: str = typer.Option(None, "--dsn",
                            help="mysql://user:password@host:port/db (or ?unix_socket=PATH): the SQL gate."),
    rules: Path = typer.Option(None, "--rules", help="Rules file (YAML); required with --dsn."),
    source: Path = typer.Option(None, "--source", help="The original dump, to sample original values from "
                                                       "(with --image: default the configured `source`)."),
    image: str = typer.Option(None, "--image", help="Audit a published golden (id or latest): search every byte "
                                                    "of its @base snapshot for originals sampled from --source."),
) -> None:
    """Check an anonymized database (--dsn) or every byte of a golden (--image); exit 4 when it fails."""
    if (dsn is None) == (image is None):
        raise ConfigError("phoenix gate: pass exactly one of --dsn (the SQL gate on a database) or "
                          "--image GENERATION (the forensic gate on a golden)")
    if image is not None:
        _gate_image(image, rules, source)
        return
    if rules is None:
        raise ConfigError("phoenix gate --dsn: missing --rules FILE (the rules the database was anonymized with)")
    _gate_dsn(dsn, rules, source)


def _gate_dsn(dsn: str, rules: Path, source: Path | None) -> None:
    from anonymization import load_rules, run_gate
    from anonymization.sampling import baseline_from_dump
    from phoenix.config import get_settings
    from tasks.sources.restore import dump_blocks

    admin, db = parse_dsn(dsn)
    key = get_settings().anon_key_bytes()
    ruleset = load_rules(rules).of(db)
    baseline = baseline_from_dump(dump_blocks(source), ruleset, key) if source else None
    result = run_gate(admin, db, ruleset, key, baseline)
    Console().print(result.to_markdown(), markup=False)
    result.raise_if_failed()


def _gate_image(image: str, rules: Path | None, source: Path | None) -> None:
    """Read-only: the originals stay in memory; only places, offsets and columns are printed."""
    from anonymization import load_rules
    from anonymization.sampling import baseline_from_dump
    from phoenix.config import get_settings
    from tasks.audit import ADVICE, audit
    from tasks.sources.restore import check_source, dump_blocks
    from tasks.storage import open_storage

    settings = get_settings()
    dump = source or (Path(settings.source) if settings.source else None)
    if dump is None or "://" in str(dump) or not dump.is_file():
        raise ConfigError(f"phoenix gate --image: {'no dump' if dump is None else repr(str(dump))} to sample "
                          "originals from: pass --source FILE (.sql, .sql.gz, .sql.zst) or set `source` to one")
    check_source(str(dump))  # not a dump at all: exit 2, as `breed` says it
    ruleset = load_rules(rules or settings.rules_path)  # its e-mail domain: pseudonyms are not leaks
    # Only the needles are used here, not the keyed hashes: the audit needs no anonymization key.
    baseline = baseline_from_dump(dump_blocks(dump), ruleset, os.urandom(32))
    with open_storage(settings) as storage:
        result = audit(storage, image, baseline.needles)
    Console().print(result.to_markdown(), markup=False)
    result.raise_if_failed(ADVICE)


def register(app: typer.Typer) -> None:
    app.command("anonymize")(anonymize_cmd)
    app.command("gate")(gate_cmd)
