"""The `phoenix` command line. Thin: parses, calls the flows/tasks, prints.

Every PhoenixError becomes one line on stderr and its exit code; no tracebacks.
"""

from __future__ import annotations

import importlib
import os
import sys

# Before anything imports prefect (it reads its settings once): no Prefect server or client
# Phoenix runs phones home — the ephemeral one a flow run falls back to with the stack down included.
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

import typer

from phoenix.errors import PhoenixError

app = typer.Typer(
    name="phoenix",
    help="Disposable integration environments cloned from an anonymized golden image.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# One module per command group; each owns its commands (see phoenix/commands/).
_COMMAND_MODULES = ("stack", "generate", "anonymize", "breed", "envs", "ci", "demo")


def _register_all() -> None:
    for mod in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"phoenix.commands.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name == f"phoenix.commands.{mod}":
                continue  # group not built yet
            raise
        module.register(app)


_register_all()


def _use_local_prefect() -> None:
    """Point flows at the local stack's Prefect server when it runs and nothing else is
    configured, so `phoenix breed` shows up in the same UI as the scheduled runs."""
    if os.environ.get("PREFECT_API_URL"):
        return
    from infra.local import prefect as local_prefect
    from phoenix.config import get_settings

    settings = get_settings()
    if local_prefect.status(settings):
        for key, value in local_prefect.client_env(settings).items():
            os.environ.setdefault(key, value)


def _unreachable_prefect(exc: BaseException) -> bool:
    """Whether a flow run started in-process failed because its Prefect API did not answer
    (Prefect raises a bare RuntimeError for it, the httpx error as its cause or context)."""
    import httpx

    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, httpx.TransportError) or "Failed to reach API" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _run_app() -> None:
    """Click's usage errors (an unknown flag, a missing argument, a bad choice) as one line
    like every other error, instead of its boxed usage text; the exit code stays 2."""
    from phoenix.errors import InvalidInput

    try:  # typer ≥ 0.25 carries its own copy of click
        from typer._click import exceptions as click
    except ImportError:
        from click import exceptions as click  # type: ignore[no-redef]

    try:
        code = app(standalone_mode=False)
    except click.NoArgsIsHelpError:  # `phoenix ci`: typer printed the group's help, as before
        sys.exit(2)
    except click.UsageError as err:
        where = err.ctx.command_path if err.ctx else "phoenix"
        raise InvalidInput(f"{err.format_message().rstrip('.')}: see `{where} --help`") from None
    except click.ClickException as err:
        raise PhoenixError(err.format_message(), exit_code=err.exit_code) from None
    except typer.Abort:
        raise KeyboardInterrupt from None
    sys.exit(code if isinstance(code, int) else 0)


def main() -> None:
    try:
        if not {"--help", "-h"} & set(sys.argv[1:]):
            from phoenix.config import get_settings

            get_settings()  # a bad config is exit 2 before any command starts a run
        _use_local_prefect()
        _run_app()
    except PhoenixError as err:
        print(f"phoenix: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except Exception as exc:  # errors a command did not map: one line, never a value
        import pymysql

        from phoenix.db import describe_mysql
        from phoenix.errors import RunFailed

        if isinstance(exc, pymysql.MySQLError):
            print(f"phoenix: error: database: {describe_mysql(exc)}", file=sys.stderr)
            sys.exit(1)
        if _unreachable_prefect(exc):
            url = os.environ.get("PREFECT_API_URL", "(unset: the stack's)")
            err = RunFailed(f"the Prefect API at {url} is not reachable: check PREFECT_API_URL and that "
                            "the server runs (`phoenix stack up`)")
            print(f"phoenix: error: {err}", file=sys.stderr)
            sys.exit(err.exit_code)
        raise
    except KeyboardInterrupt:
        print("phoenix: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
