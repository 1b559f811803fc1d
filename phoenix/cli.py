"""The `phoenix` command line. Thin: parses, calls the flows/tasks, prints.

Every PhoenixError becomes one line on stderr and its exit code; no tracebacks.
"""

from __future__ import annotations

import importlib
import sys

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
_COMMAND_MODULES = ("stack", "generate", "anonymize", "breed", "envs", "ci")


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


def main() -> None:
    try:
        app()
    except PhoenixError as err:
        print(f"phoenix: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("phoenix: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
