"""No secret in the environment of a server Phoenix starts, and no telemetry (issue 17)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO, run_phoenix
from tests.faults.conftest import environ_of

SECRETS = ("PHOENIX_ANON_KEY", "PHOENIX_SOURCE_PASSWORD")

def test_no_secret_in_the_environ_of_an_environment_server_or_the_prefect_server(settings, local_golden,
                                                                                  prefect_server):
    from tasks.runtime.factory import open_runtime
    from tasks.storage import open_storage

    env = {"PHOENIX_SOURCE_PASSWORD": "not-a-real-password-42"}
    res = run_phoenix("spawn", "faults/environ", "--ttl", "30m", env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    try:
        with open_storage(settings) as st, open_runtime(settings, st) as rt:
            from phoenix.names import env_id

            pid = rt.get(env_id("faults/environ")).pid
        from infra.local import prefect as local_prefect

        server = local_prefect.status(settings)["pid"]  # now: other tests restart the server mid-session
        for p in (pid, server):
            environ = environ_of(p)
            assert not [k for k in SECRETS if k in environ], (p, sorted(environ))
        assert environ_of(server).get("PREFECT_SERVER_ANALYTICS_ENABLED") == "false"
        from infra.local import worker

        running = worker.status(settings)
        if running:  # the worker runs flows: it keeps the key, and no telemetry either
            environ = environ_of(running["pid"])
            assert "PHOENIX_ANON_KEY" in environ and environ.get("PREFECT_SERVER_ANALYTICS_ENABLED") == "false"
    finally:
        run_phoenix("teardown", "faults/environ")


def test_the_cli_turns_prefect_telemetry_off_before_prefect_reads_its_settings():
    code = ("import phoenix.cli; from prefect.settings import PREFECT_SERVER_ANALYTICS_ENABLED as a; "
            "print(a.value())")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_SERVER_ANALYTICS_ENABLED"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=120)
    assert res.stdout.strip() == "False", res.stderr[-2000:]
