"""The generator's dump restores into a real MariaDB and looks like production."""

from __future__ import annotations

import gzip
import hashlib
import subprocess

import pymysql
import pytest
import zstandard

from tests.generator.fixtures import make_shop_dump

TABLES = {"customers", "addresses", "products", "orders", "order_items", "payments",
          "newsletter_subscribers", "support_tickets", "login_events"}


def _plain(path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def _restore(server, sql: bytes, database: str) -> pymysql.Connection:
    subprocess.run(["mariadb", f"--socket={server.socket}", "-uroot", "-e", f"CREATE DATABASE `{database}`"], check=True)
    res = subprocess.run(["mariadb", f"--socket={server.socket}", "-uroot", database], input=sql, capture_output=True)
    assert res.returncode == 0, res.stderr.decode()[:500]
    return pymysql.connect(unix_socket=str(server.socket), user="root", database=database)


def _q(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_cli_dump_restores_into_any_database_with_the_whole_schema(tmp_path, mariadb):
    out = tmp_path / "x.sql.zst"
    res = subprocess.run([".venv/bin/phoenix", "generate", "--scale", "1", "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    sql = _plain(out)
    assert b"CREATE DATABASE" not in sql and b"\nUSE " not in sql
    conn = _restore(mariadb, sql, "some_other_name")
    tables = {r[0] for r in _q(conn, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'")}
    assert tables == TABLES
    for t in TABLES:
        assert _q(conn, f"SELECT COUNT(*) FROM `{t}`")[0][0] > 0, t
    fks = _q(conn, "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE constraint_schema = DATABASE()")[0][0]
    assert fks >= 7
    assert _q(conn, "SELECT COUNT(*) FROM information_schema.views WHERE table_schema = DATABASE()")[0][0] == 1
    assert [r[0] for r in _q(conn, "SHOW TRIGGERS")] == ["orders_after_insert"]
    # production-like relations
    overlap = _q(conn, "SELECT COUNT(*) FROM newsletter_subscribers n JOIN customers c ON c.email = n.email")[0][0]
    total = _q(conn, "SELECT COUNT(*) FROM newsletter_subscribers")[0][0]
    assert 0.5 * total < overlap < total
    assert _q(conn, "SELECT COUNT(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.customer_email <> c.email")[0][0] == 0
    assert _q(conn, "SELECT COUNT(*) FROM support_tickets WHERE body REGEXP '[a-z0-9.-]+@[a-z0-9.-]+'")[0][0] > 0
    assert _q(conn, "SELECT COUNT(*) FROM customers WHERE JSON_VALID(profile) = 0")[0][0] == 0
    assert _q(conn, "SELECT COUNT(*) FROM customers WHERE phone IS NULL")[0][0] > 0
    assert _q(conn, "SELECT COUNT(*) FROM login_events WHERE ip LIKE '%:%'")[0][0] > 0
    # the trigger works after the restore
    before = _q(conn, "SELECT loyalty_points FROM customers WHERE id = 1")[0][0]
    _q(conn, "INSERT INTO orders (customer_id, customer_name, customer_email, status, total_cents, ordered_at) "
             "VALUES (1, 'x', 'x@example.invalid', 'new', 12345, NOW())")
    assert _q(conn, "SELECT loyalty_points FROM customers WHERE id = 1")[0][0] == before + 123
    conn.close()


def test_same_seed_same_content_other_seed_other_content(tmp_path):
    a = make_shop_dump(tmp_path / "a.sql.gz", seed=7)
    b = make_shop_dump(tmp_path / "b.sql.zst", seed=7)
    c = make_shop_dump(tmp_path / "c.sql", seed=8)
    digest = [hashlib.sha256(_plain(p)).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1] != digest[2]


@pytest.mark.parametrize("args, message", [
    (["--scale", "0"], "--scale"),
    (["--scale", "1", "--out-fmt"], "No such option"),
])
def test_bad_arguments(tmp_path, args, message):
    out = tmp_path / "x.sql"
    res = subprocess.run([".venv/bin/phoenix", "generate", "--out", str(out), *args], capture_output=True, text=True)
    assert res.returncode != 0 and message in res.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_unknown_extension_and_unwritable_path(tmp_path):
    res = subprocess.run([".venv/bin/phoenix", "generate", "--out", str(tmp_path / "x.sql.bz2")], capture_output=True, text=True)
    assert res.returncode == 2 and "unknown format" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = subprocess.run([".venv/bin/phoenix", "generate", "--out", "/proc/x.sql"], capture_output=True, text=True)
    assert res.returncode != 0 and "/proc/x.sql" in res.stderr
    assert not list(tmp_path.iterdir())
