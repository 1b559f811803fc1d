"""`phoenix breed`: run one phoenix cycle now (the same flow the schedule runs)."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape


def breed(
    source: str = typer.Option(None, "--source", help="Dump file, mydumper dir or mysql://user@host/db (default: config `source`)."),
    rules: str = typer.Option(None, "--rules", help="Anonymization rules file (default: config `rules`)."),
    mode: str = typer.Option("auto", "--mode", help="auto | full | incremental: apply a live source's changes since "
                             "the last golden (incremental), restore it whole (full), or incremental where it can be."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Restore → anonymize → gate → snapshot → clone → flatten → publish → retire."""
    from flows._common import recorded_here
    from flows.breed import breed as breed_flow
    from phoenix.config import get_settings
    from phoenix.errors import InvalidInput
    from tasks.cycle import check_rules
    from tasks.sources.restore import check_source

    settings = get_settings()
    if mode not in ("auto", "full", "incremental"):
        raise InvalidInput(f"--mode {mode!r}: expected auto, full or incremental")
    if source or settings.source:  # not a dump at all, or rules that do not fit it: say so before a flow run starts
        check_source(source or str(settings.source))
        check_rules(source or str(settings.source), str(rules or settings.rules_path), settings.database)
    with recorded_here():
        result = breed_flow(source=source, rules=rules, mode=mode)
    if as_json:
        print(json.dumps(result, default=str))
        return
    err = Console(stderr=True)
    total = sum(result["steps"].values())
    err.print(f"[green]published[/] {escape(result['golden'])} ({result['mode']}: {escape(result['reason'])}) "
              f"in {total:.1f}s "
              + " · ".join(f"{k} {v:.1f}s" for k, v in result["steps"].items()))
    if result.get("skipped"):
        err.print("system schemas in the dump, not restored: " + escape(", ".join(result["skipped"])))


def register(app: typer.Typer) -> None:
    app.command("breed")(breed)
