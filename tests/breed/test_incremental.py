"""The incremental cycle against a real source server with row-based binary logging: the
golden it makes equals a full cycle's of the same source state; erased customers are gone
to the byte; what it cannot apply makes `auto` breed in full and `incremental` fail, both
saying where and why; a killed apply leaves `latest` unchanged."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pymysql
import pytest

from tasks import catalog
from tasks.schema import Meta
from tests.conftest import run_phoenix

PASSWORD = "reader-pw-not-secret"
BINLOG = ["--log-bin=mysql-bin", "--server-id=1", "--binlog-format=ROW", "--binlog-row-image=FULL",
          "--binlog-row-metadata=FULL"]


@pytest.fixture(scope="module")
def source(tmp_path_factory, shop_dump):
    """The shop as production: a server with binary logging, a reader with what a dump and a
    binlog client need."""
    from tasks.runtime.mariadb import MariaDBServer, free_port

    root = tmp_path_factory.mktemp("source")
    server = MariaDBServer(root / "data", root / "run", free_port(), "environment")
    server.initialize()
    server.start(extra_args=BINLOG)
    server.wait_ready()
    server.query("CREATE DATABASE shop",
         f"CREATE USER reader@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'",
         "GRANT SELECT, RELOAD, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT, REPLICATION SLAVE, BINLOG MONITOR "
         "ON *.* TO reader@'127.0.0.1'")
    with subprocess.Popen(["zstd", "-dc", str(shop_dump)], stdout=subprocess.PIPE) as unzip:
        subprocess.run(["mariadb", *server.admin().client_args(), "shop"], stdin=unzip.stdout, check=True)
    yield server
    server.stop()


@pytest.fixture(scope="module", autouse=True)
def _rules_without_scrub(tmp_path_factory):
    """The shop rules with the support tickets left out (`truncate`): with a free-text scrub,
    every change of a name or e-mail changes the scrub's dictionary, and so breeds in full
    (test_changed_free_text_…); these tests are about what an incremental cycle does."""
    from tests.conftest import REPO

    shop = (REPO / "anonymization/rules/shop.yaml").read_text()
    head, tickets = shop.split("  support_tickets:\n", 1)
    rest = tickets.split("\n  login_events:", 1)[1]
    path = tmp_path_factory.mktemp("rules") / "shop-no-tickets.yaml"
    path.write_text(head + "  support_tickets: {truncate: true}\n  login_events:" + rest)
    old = os.environ.get("PHOENIX_RULES")
    os.environ["PHOENIX_RULES"] = str(path)
    yield path
    if old is None:
        os.environ.pop("PHOENIX_RULES", None)
    else:
        os.environ["PHOENIX_RULES"] = old


@pytest.fixture(autouse=True)
def _latest_as_it_was(storage_local, storage_rbd):
    """These goldens come from the live source: removed after each test, so the suite's later
    tests (which take `latest` for the dump's golden) never find one of them there."""
    before = {st: {g.id for g in catalog.generations(st)} for st in (storage_local, storage_rbd)}
    yield
    for st, ids in before.items():
        for g in catalog.generations(st):
            if g.id not in ids and g.clones == 0:
                catalog.remove_generation(st, g.id)


def _url(server) -> str:
    return f"mysql://reader@127.0.0.1:{server.port}/shop"


def _breed(server, mode: str, backend: str = "local", env: dict | None = None, *args: str):
    return run_phoenix("breed", "--source", _url(server), "--mode", mode, "--json", *args, backend=backend,
                       env={"PHOENIX_SOURCE_PASSWORD": PASSWORD, **(env or {})})


def _bred(server, mode: str, backend: str = "local", *args: str) -> dict:
    res = _breed(server, mode, backend, None, *args)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _churn(server, *args: str) -> dict:
    dsn = f"mysql://root@localhost/shop?unix_socket={server.socket}"
    res = run_phoenix("churn", "--dsn", dsn, "--json", *args)
    assert res.returncode == 0, res.stderr[-1500:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _scan(storage, image: str, values: set[str]) -> list:
    from anonymization.forensic import Needles, scan

    needles = Needles()
    for v in values:
        needles.add(v, "customers.email")
    try:
        return scan(storage.extents(image), needles, target=image).findings
    finally:
        storage.detach(image)


def test_an_incremental_golden_equals_a_full_one_and_erased_customers_are_gone(source, backend, storage):
    first = _bred(source, "full", backend)
    assert first["mode"] == "full" and storage.get_meta(first["golden"], Meta.POSITION)
    emails = dict(source.query("SELECT id, email FROM shop.customers"))

    churned = _churn(source, "--fraction", "0.02", "--seed", "7")
    assert churned["erased"] and churned["counts"]["orders"] > 0
    erased = set(churned["erased"])
    pseudonyms = _pseudonyms(first["golden"], erased, backend)  # before the third cycle retires the first golden
    assert len(pseudonyms) == len(erased)
    assert len(_scan(storage, first["golden"], pseudonyms)) >= len(erased)  # the scan finds them where they are
    second = _bred(source, "auto", backend)
    assert second["mode"] == "incremental", second["reason"]
    applied = second["applied"]
    assert applied["app.customers"]["update"] > 0 and applied["app.customers"]["delete"] > 0
    assert applied["app.orders"]["insert"] > 0 and applied["app.order_items"]["insert"] > 0
    assert second["positions"][0] != second["positions"][1] and 0 < second["lag"] < 600

    full = _bred(source, "full", backend)  # the same source state, restored whole
    assert full["mode"] == "full"
    assert second["checksums"] == full["checksums"]
    assert second["rows"] and set(second["checksums"]) >= {"customers", "orders", "addresses"}

    # The erased customers' originals and pseudonyms: not in any byte of the new golden.
    assert _scan(storage, second["golden"], {emails[i] for i in erased} | pseudonyms) == []


def _pseudonyms(golden: str, ids: set[int], backend: str) -> set[str]:
    res = run_phoenix("spawn", f"erase-{backend}", "--generation", golden, "--recreate", "--json",
                      backend=backend)
    assert res.returncode == 0, res.stderr[-1500:]
    info = json.loads(res.stdout.strip().splitlines()[-1])
    try:
        conn = pymysql.connect(host=info["host"], port=info["port"], user=info["user"], password=info["password"],
                               database="app")
        with conn.cursor() as cur:
            cur.execute(f"SELECT email FROM customers WHERE id IN ({','.join(map(str, ids))})")
            return {e for (e,) in cur.fetchall()}
    finally:
        run_phoenix("teardown", f"erase-{backend}", backend=backend)


def test_ddl_makes_auto_breed_in_full_and_incremental_fail_with_its_position(source, storage_local):
    _bred(source, "full")
    before = catalog.latest(storage_local)
    source.query("CREATE TABLE shop.coupons (id INT PRIMARY KEY, code VARCHAR(20))")
    failed = _breed(source, "incremental")
    assert failed.returncode == 1
    line = failed.stderr.strip().splitlines()[-1]
    assert line.startswith("phoenix: error: DDL (CREATE …) in the source's binary log at mysql-bin.")
    assert catalog.latest(storage_local) == before
    assert not catalog.images(storage_local, catalog.Kind.BREEDER)

    fell = _bred(source, "auto")
    assert fell["mode"] == "full" and "fell back" in fell["reason"] and "DDL" in fell["reason"]
    assert "mysql-bin." in fell["reason"]
    source.query("DROP TABLE shop.coupons")


def test_changed_free_text_or_rules_or_purged_binlogs_mean_a_full_cycle(source, storage_local, tmp_path):
    from tests.conftest import REPO

    shop = str(REPO / "anonymization/rules/shop.yaml")  # support_tickets.body: scrub
    _bred(source, "full", "local", "--rules", shop)
    _churn(source, "--fraction", "0.01", "--seed", "11", "--tickets")
    fell = _bred(source, "auto", "local", "--rules", shop)
    assert fell["mode"] == "full" and "free text" in fell["reason"]
    # a name or e-mail the scrub's dictionary holds changed: texts that did not change may scrub anew
    source.query("UPDATE shop.customers SET email = CONCAT('x', email) WHERE id = 3")
    fell = _bred(source, "auto", "local", "--rules", shop)
    assert fell["mode"] == "full" and "dictionary" in fell["reason"], fell["reason"]

    rules = tmp_path / "rules.yaml"  # the same rules and one more: the last golden's pseudonyms no longer fit
    rules.write_text(Path(os.environ["PHOENIX_RULES"]).read_text().replace("      sku: keep", "      sku: hash"))
    refused = _breed(source, "incremental", "local", None, "--rules", str(rules))
    assert refused.returncode == 1 and "the rules or the key changed" in refused.stderr.strip().splitlines()[-1]

    source.query("FLUSH BINARY LOGS", "FLUSH BINARY LOGS", "PURGE BINARY LOGS BEFORE NOW() + INTERVAL 1 DAY")
    failed = _breed(source, "incremental", "local", None, "--rules", shop)
    assert failed.returncode == 1 and "purged" in failed.stderr.strip().splitlines()[-1]
    assert not catalog.images(storage_local, catalog.Kind.BREEDER)  # refused before any breeder existed


def test_an_apply_killed_leaves_latest_unchanged_and_the_next_cycle_succeeds(source, storage_local):
    _bred(source, "full")
    before = catalog.latest(storage_local)
    _churn(source, "--fraction", "0.01", "--seed", "13")
    killed = _breed(source, "incremental", env={"PHOENIX_FAULT_KILL_AFTER": "apply"})
    assert killed.returncode == -9
    assert catalog.latest(storage_local) == before
    again = _bred(source, "auto")
    assert again["mode"] == "incremental" and catalog.latest(storage_local) == again["golden"] != before


def test_an_original_the_apply_let_through_fails_the_gate_and_latest_stays(source, storage_local):
    _bred(source, "full")
    before = catalog.latest(storage_local)
    _churn(source, "--fraction", "0.01", "--seed", "17")
    leaked = _breed(source, "incremental", env={"PHOENIX_FAULT_SKIP": "apply_rules"})
    assert leaked.returncode == 4, leaked.stderr[-1500:]
    assert "original value(s) survive in customers." in leaked.stderr.strip().splitlines()[-1]
    assert catalog.latest(storage_local) == before
    assert not catalog.images(storage_local, catalog.Kind.BREEDER)
