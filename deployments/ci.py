"""The CI client: start a deployment through the Prefect API, wait for the run's final
state, and read its result. A failed, crashed or cancelled run is an error carrying the
run's own message — never trust a process exit code (`prefect flow-run execute` exits 0
when the flow fails)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from phoenix.errors import ConfigError, InvalidInput, RunFailed

# How often the client asks for the run's state. Prefect's default (5 s) alone cost a CI
# spawn 2.4 s at the median, against 0.8 s at 1 s (bench/spawn.py --only ci); two GETs a
# second are nothing for the server.
POLL_SECONDS = 0.5


@dataclass
class RunOutcome:
    flow_run_id: str
    name: str
    state: str
    result: dict


def api_url() -> str:
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        raise ConfigError("PREFECT_API_URL is not set: point it at the Prefect server that runs Phoenix "
                          "(e.g. http://127.0.0.1:4200/api)")
    return url


@contextlib.contextmanager
def reaching(url: str) -> Iterator[None]:
    """The Prefect API unreachable, refusing or timing out: one line, exit 5 (the run did not complete)."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    try:
        yield
    except PrefectHTTPStatusError as exc:  # it answered (an httpx.HTTPError too: caught first)
        status = exc.response.status_code if exc.response is not None else "?"
        detail = _detail(exc)
        if status in (409, 422) and "Validation failed" in detail:  # the parameter schema refused it: no run
            raise InvalidInput(f"the deployment refused the run's parameters ({detail}): see "
                               "`phoenix ci spawn --help` for the accepted forms") from None
        raise RunFailed(f"the Prefect API at {url} answered HTTP {status}: check PREFECT_API_URL and "
                        "PREFECT_API_KEY") from exc
    except (httpx.HTTPError, OSError) as exc:
        raise RunFailed(f"the Prefect API at {url} is not reachable ({type(exc).__name__}): "
                        "check PREFECT_API_URL and that the server runs") from exc


def _detail(exc) -> str:
    """The server's reason, on one line and short (it names the parameter and the pattern)."""
    try:
        detail = exc.response.json().get("detail", "")
    except Exception:
        detail = ""
    return " ".join(str(detail).split()).removeprefix("Error creating flow run: ")[:300]


def run(deployment: str, parameters: dict, timeout: float = 900.0, poll_interval: float = POLL_SECONDS) -> RunOutcome:
    """`deployment` is 'flow/deployment' (e.g. 'spawn/spawn')."""
    url = api_url()
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    with reaching(url):
        try:
            fr = run_deployment(name=deployment, parameters=parameters, timeout=timeout,
                                poll_interval=poll_interval)
        except ObjectNotFound:
            raise RunFailed(f"deployment {deployment!r} not found on {url}: "
                            "register them with `phoenix stack up` or `prefect deploy --all`") from None
    state = fr.state
    if state is None or not state.is_final():
        raise RunFailed(f"flow run {fr.name} did not finish within {timeout:.0f}s (state "
                        f"{state.type.value if state else 'unknown'}); see the Prefect UI")
    if not state.is_completed():
        raise RunFailed(f"flow run {fr.name} ended {state.type.value}: {(state.message or '').strip()}")
    with reaching(url):
        result = state.result(raise_on_failure=True)
        if hasattr(result, "__await__"):
            import asyncio

            result = asyncio.run(result)  # type: ignore[arg-type]
    return RunOutcome(flow_run_id=str(fr.id), name=fr.name, state=state.type.value,
                      result=result if isinstance(result, dict) else {"value": result})


def write_dotenv(path: Path, info: dict, base_domain: str) -> None:
    """GitLab dotenv report: no password in it (it would be visible to every job)."""
    lines = {
        "DYNAMIC_ENVIRONMENT_URL": f"https://{info['id']}.{base_domain}",
        "PHOENIX_ENV": info["id"],
        "DB_HOST": info["host"],
        "DB_PORT": str(info["port"]),
        "DB_NAME": info["database"],
        "DB_USER": info["user"],
    }
    path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
