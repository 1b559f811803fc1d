"""A dump that names its databases (`mysqldump --databases …`, `--all-databases`) breeds
into them: restore, inline anonymization, gate, report, golden metadata, environment."""

from __future__ import annotations

import json
import os
import subprocess

import pymysql
import pytest

from tasks import catalog
from tasks.schema import Meta
from tests.conftest import run_phoenix

N = 120
RULES = """\
tables:
  customers:
    columns: {email: email, first_name: first_name, last_name: last_name}
"""


@pytest.fixture(autouse=True)
def _latest_as_it_was(storage_local):
    """These goldens hold other databases than the shop: removed after each test, so the suite's
    later tests (which take `latest` for the shop golden) never find one of them there."""
    before = {g.id for g in catalog.generations(storage_local)}
    yield
    for g in catalog.generations(storage_local):
        if g.id not in before and g.clones == 0:
            catalog.remove_generation(storage_local, g.id)


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


MULTI_RULES = """\
database: shopx
tables:
  customers:
    columns: {email: email, first_name: first_name, last_name: last_name}
databases:
  crm:
    tables:
      contacts: {columns: {phone: phone}}
"""


def _crm(server) -> None:
    rows = ", ".join(f"({i}, '+49 30 {7000000 + i * 37}')" for i in range(1, N + 1))
    _sql(server, "CREATE DATABASE crm", "CREATE TABLE crm.contacts (id INT PRIMARY KEY, phone VARCHAR(30))",
         f"INSERT INTO crm.contacts VALUES {rows}", "CREATE USER 'produser'@'%' IDENTIFIED BY 'not-for-breeders'")


def test_an_all_databases_dump_breeds_every_database_but_the_system_schemas(mariadb, storage_local, tmp_path):
    _shop(mariadb, "shopx")
    _crm(mariadb)
    dump = _dump(mariadb, tmp_path / "all.sql", "--all-databases")
    rules = tmp_path / "rules.yaml"
    rules.write_text(MULTI_RULES)
    res = run_phoenix("breed", "--source", str(dump), "--rules", str(rules), "--json")
    assert res.returncode == 0, res.stderr[-2500:]
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["databases"] == ["crm", "shopx"] and result["skipped"] == ["mysql"]
    assert result["rows"]["shopx.customers"] == N and result["rows"]["crm.contacts"] == N
    assert json.loads(storage_local.get_meta(result["golden"], Meta.DATABASES)) == ["crm", "shopx"]
    report = _breed_report(result["golden"])
    assert "- system schemas in the dump, not restored: `mysql`" in report
    assert "## Anonymization of `crm`" in report and "## Anonymization of `shopx`" in report
    crm, shop = report.split("## Anonymization of `crm`")[1].split("## Anonymization of `shopx`")
    assert "| contacts | 120 |" in crm and "| customers | 120 |" in shop.split("## GDPR gate")[0]
    assert "rows rewritten during the restore" in crm and "rows rewritten during the restore" in shop  # inline in both
    info = _spawn("dbs-all", result["golden"])
    try:
        assert info["database"] == "crm" and info["databases"] == ["crm", "shopx"]
        phones = {p for (p,) in _as_env(info, "crm", "SELECT phone FROM contacts")}
        assert len(phones) > 1 and not any(p.startswith("+49 30 7") for p in phones)
        emails = {e for (e,) in _as_env(info, "shopx", "SELECT email FROM customers")}
        assert len(emails) == N and not any(e.startswith("kunde.") for e in emails)
        # production's accounts did not come along: the breeder's own `mysql` schema is kept
        assert _as_env(info, "crm", "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES "
                       "WHERE GRANTEE LIKE '%produser%'") == [(0,)]
    finally:
        run_phoenix("teardown", "dbs-all")


def test_rules_naming_a_database_the_dump_lacks_fail_in_one_line_and_publish_nothing(mariadb, storage_local,
                                                                                      tmp_path):
    _shop(mariadb, "shopx")
    dump = _dump(mariadb, tmp_path / "shopx.sql", "--databases", "shopx")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES + "  billing.invoices: {columns: {iban: iban}}\n")
    before = catalog.latest(storage_local)
    res = run_phoenix("breed", "--source", str(dump), "--rules", str(rules))
    assert res.returncode == 2, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("phoenix: error: ") and "rules.yaml:4: database 'billing' is not in the source" in last
    assert "(it holds: shopx)" in last and "Traceback" not in res.stderr
    assert catalog.latest(storage_local) == before and catalog.images(storage_local, catalog.BREEDER) == []
