"""A dump that names its databases (`mysqldump --databases …`, `--all-databases`) breeds
into them: restore, inline anonymization, gate, report, golden metadata, environment."""

from __future__ import annotations

import json
import os
import subprocess

import pymysql

from tasks import catalog
from tasks.schema import Meta
from tests.conftest import run_phoenix

N = 120
RULES = """\
tables:
  customers:
    columns: {email: email, first_name: first_name, last_name: last_name}
"""


def _sql(server, *stmts: str) -> None:
    conn = pymysql.connect(**server.admin().pymysql_kwargs(), autocommit=True)
    with conn.cursor() as cur:
        for s in stmts:
            cur.execute(s)
    conn.close()


def _shop(server, db: str) -> None:
    rows = ", ".join(f"({i}, 'kunde.{db}{i}@mailbox-{i % 7}.de', 'Vorname{i}x', 'Nachname{i}y')" for i in range(1, N + 1))
    _sql(server, f"CREATE DATABASE `{db}`",
         f"CREATE TABLE `{db}`.customers (id INT PRIMARY KEY, email VARCHAR(120) NOT NULL, first_name VARCHAR(60), "
         "last_name VARCHAR(60), UNIQUE KEY email (email))",
         f"CREATE TABLE `{db}`.audit (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT, what VARCHAR(20))",
         f"CREATE TRIGGER `{db}`.customers_ai AFTER INSERT ON `{db}`.customers FOR EACH ROW "
         f"INSERT INTO `{db}`.audit (customer_id, what) VALUES (NEW.id, 'insert')",
         f"INSERT INTO `{db}`.customers VALUES {rows}",
         f"CREATE FUNCTION `{db}`.greeting(n VARCHAR(60)) RETURNS VARCHAR(80) DETERMINISTIC RETURN CONCAT('Hi ', n)")


def _dump(server, path, *args: str):
    with open(path, "wb") as out:
        subprocess.run(["mariadb-dump", *server.admin().client_args(), "--routines", "--triggers", *args],
                       stdout=out, check=True, env={**os.environ, **server.admin().client_env()})
    return path


def _spawn(name: str, generation: str) -> dict:
    res = run_phoenix("spawn", name, "--generation", generation, "--recreate", "--json")
    assert res.returncode == 0, res.stderr[-1500:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _as_env(info: dict, db: str, sql: str) -> list[tuple]:
    conn = pymysql.connect(host=info["host"], port=info["port"], user=info["user"], password=info["password"],
                           database=db)
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = list(cur.fetchall())
    conn.close()
    return rows


def test_a_databases_dump_breeds_into_its_own_database_anonymized_inline(mariadb, storage_local, tmp_path):
    _shop(mariadb, "shopx")
    dump = _dump(mariadb, tmp_path / "shopx.sql", "--databases", "shopx")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    res = run_phoenix("breed", "--source", str(dump), "--rules", str(rules), "--json")
    assert res.returncode == 0, res.stderr[-2500:]
    assert "Traceback" not in res.stderr
    result = json.loads(res.stdout.strip().splitlines()[-1])
    gen = result["golden"]
    assert result["databases"] == ["shopx"] and result["rows"]["customers"] == N
    assert json.loads(storage_local.get_meta(gen, Meta.DATABASES)) == ["shopx"]
    assert gen == catalog.latest(storage_local)
    info = _spawn("dbs-one", gen)
    try:
        assert info["database"] == "shopx" and info["databases"] == ["shopx"]
        emails = {e for (e,) in _as_env(info, "shopx", "SELECT email FROM customers")}
        assert len(emails) == N and not any(e.startswith("kunde.") for e in emails)
        names = {n for (n,) in _as_env(info, "shopx", "SELECT first_name FROM customers")}
        assert not any(n.startswith("Vorname") for n in names)
        # the dump's other objects came along and work for the environment's own account
        assert _as_env(info, "shopx", "SELECT greeting('x')") == [("Hi x",)]
        assert [r[0] for r in _as_env(info, "shopx", "SHOW TRIGGERS")] == ["customers_ai"]
        assert _as_env(info, "shopx", "SELECT COUNT(*) FROM audit") == [(N,)]
    finally:
        run_phoenix("teardown", "dbs-one")
    # the rows were pseudonymized on their way in (the run's report says so)
    report = _breed_report(result["golden"])
    assert "customers | 120 |" in report and "rows rewritten during the restore" in report
    assert "- databases: `shopx`" in report


def _breed_report(golden: str) -> str:
    """The breed run's markdown artifact, read from the Prefect API."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read() -> str:
        async with get_client() as client:
            arts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["breed-report"])))
            for a in sorted(arts, key=lambda a: a.created, reverse=True):
                if golden in (a.data or ""):
                    return a.data
        return ""

    return asyncio.run(read())
