"""The other source kinds, against real servers: a live server read with mysqldump, and a
mydumper directory restored with myloader."""

from __future__ import annotations

import subprocess

import pymysql
import pytest

from phoenix.errors import SourceInvalid
from tasks.runtime.mariadb import MariaDBServer, free_port
from tasks.sources.restore import RestoreError, describe, restore


def _count(server, db, table="customers"):
    conn = pymysql.connect(**server.admin().pymysql_kwargs(), database=db)
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{table}`")
        n = cur.fetchone()[0]
    conn.close()
    return n


@pytest.fixture
def production(tmp_path, shop_dump):
    """A second server playing production, with the shop database and a read-only account."""
    server = MariaDBServer(tmp_path / "prod-data", tmp_path / "prod-run", free_port(), "restore")
    server.initialize()
    server.start()
    server.wait_ready()
    restore(str(shop_dump), server.admin(), "shop")
    conn = pymysql.connect(**server.admin().pymysql_kwargs(), autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE USER 'reader'@'%' IDENTIFIED BY 'reader-pw'")
        cur.execute("GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES, EVENT ON shop.* TO 'reader'@'%'")
        cur.execute("GRANT PROCESS, RELOAD ON *.* TO 'reader'@'%'")
    conn.close()
    yield server
    server.stop()


def test_live_server_is_streamed_with_mysqldump(production, mariadb, monkeypatch):
    from phoenix.config import get_settings

    monkeypatch.setenv("PHOENIX_SOURCE_PASSWORD", "reader-pw")
    get_settings.cache_clear()  # a setting: read once per process, as a flow run's process does
    url = f"mysql://reader@127.0.0.1:{production.port}/shop"
    try:
        report = restore(url, mariadb.admin(), "app")
    finally:
        monkeypatch.delenv("PHOENIX_SOURCE_PASSWORD")
        get_settings.cache_clear()
    assert report.kind == "live" and report.bytes_read > 0
    assert _count(mariadb, "app") == _count(production, "shop")
    assert "reader-pw" not in describe(url) and "reader-pw" not in report.source


def test_a_password_in_the_source_url_is_refused(mariadb):
    with pytest.raises(RestoreError, match="PHOENIX_SOURCE_PASSWORD") as err:
        restore("mysql://reader:secret@127.0.0.1:1/shop", mariadb.admin(), "app")
    assert "secret" not in str(err.value)


def test_mydumper_directory_is_restored_with_myloader(production, mariadb, tmp_path):
    out = tmp_path / "mydumper"
    subprocess.run(["mydumper", f"--socket={production.socket}", "--user=root", "--database=shop",
                    f"--outputdir={out}", "--threads=2"], check=True, capture_output=True)
    report = restore(str(out), mariadb.admin(), "app")
    assert report.kind == "mydumper"
    assert _count(mariadb, "app") == _count(production, "shop")
    assert _count(mariadb, "app", "order_items") == _count(production, "shop", "order_items")


def test_a_directory_that_is_not_a_mydumper_dump(mariadb, tmp_path):
    with pytest.raises(SourceInvalid, match="not a mydumper dump") as err:
        restore(str(tmp_path), mariadb.admin(), "app")
    assert err.value.exit_code == 2
