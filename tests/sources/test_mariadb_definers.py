"""A MariaDB dump (real `mariadb-dump --routines --triggers` output) whose trigger, view and
routine have a DEFINER the breeder lacks: the objects work for an environment's own account
after the restore, on both paths, as for a MySQL 8 dump (the definer made as a locked account)."""

from __future__ import annotations

import subprocess

import pymysql
import pytest

from tasks.runtime.mariadb import MariaDBServer, free_port
from tasks.sources.restore import restore

SOURCE = ["CREATE DATABASE shop", "CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'", "GRANT ALL ON shop.* TO 'app'@'%'",
          "CREATE TABLE shop.t (id int PRIMARY KEY, note varchar(40))", "CREATE TABLE shop.audit (id int)",
          "USE shop",
          "CREATE DEFINER='app'@'%' TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW INSERT INTO audit VALUES (NEW.id)",
          "CREATE DEFINER='app'@'%' SQL SECURITY DEFINER VIEW v AS SELECT id FROM t",
          "CREATE DEFINER='app'@'%' PROCEDURE p() SELECT COUNT(*) FROM t",
          "INSERT INTO t VALUES (1, 'DEFINER=`rowvalue`@`%` is only data')"]


def _query(server, sql, db=None, user=None):
    kw = server.admin().pymysql_kwargs() if user is None else {"host": "127.0.0.1", "port": server.port,
                                                                "user": user, "password": "pw"}
    conn = pymysql.connect(**kw, database=db, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def maria_dump(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("definers")
    server = MariaDBServer(tmp / "data", tmp / "run", free_port(), "restore")
    server.initialize()
    server.start()
    server.wait_ready()
    try:
        conn = pymysql.connect(**server.admin().pymysql_kwargs(), autocommit=True)
        for sql in SOURCE:
            conn.query(sql)
        conn.close()
        dump = tmp / "maria.sql"
        with open(dump, "wb") as out:
            subprocess.run(["mariadb-dump", f"--socket={server.socket}", "--user=root", "--routines", "--triggers",
                            "shop"], stdout=out, check=True)
    finally:
        server.stop()
    return dump


@pytest.mark.parametrize("jobs", [1, 2], ids=["client", "statements"])
def test_objects_of_a_missing_definer_work_for_the_environments_account(mariadb, maria_dump, jobs):
    restore(str(maria_dump), mariadb.admin(), "app", jobs=jobs)
    _query(mariadb, "CREATE USER 'envuser'@'%' IDENTIFIED BY 'pw'")
    _query(mariadb, "GRANT ALL PRIVILEGES ON `app`.* TO 'envuser'@'%'")
    _query(mariadb, "INSERT INTO t VALUES (2, 'x')", db="app", user="envuser")  # the trigger runs as `app`
    assert _query(mariadb, "SELECT id FROM audit ORDER BY id", db="app") == [(1,), (2,)]  # 1: the source's
    assert _query(mariadb, "SELECT COUNT(*) FROM v", db="app", user="envuser") == [(2,)]
    assert _query(mariadb, "CALL p()", db="app", user="envuser") == [(2,)]
    # made locked, without a password; a row's text that reads like a definer made no account
    assert _query(mariadb, "SELECT User, JSON_VALUE(Priv, '$.account_locked') FROM mysql.global_priv "
                           "WHERE User IN ('app', 'rowvalue')") == [("app", "1")]
    assert _query(mariadb, "SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'app'") == [("app@%",)]
