"""The environment's account has all rights on every database of its golden (a dump's own)
and on nothing else — on the local runtime (its init file) and on Kubernetes (the container's
init script, run here by a real shell against a real server)."""

from __future__ import annotations

import os
import subprocess

import pymysql
import pytest

from tasks.runtime.kubernetes.manifests import INIT_FILE
from tasks.runtime.mariadb import init_sql

DATABASES = ["crm", "shop`x"]  # a backtick in a name must stay a name


def _kube_init(tmp_path, user: str, password: str, main: str, others: list[str]) -> str:
    path = tmp_path / "init.sql"
    env = {"PATH": os.environ["PATH"], "MARIADB_ROOT_PASSWORD": "root-pw", "MARIADB_USER": user,
           "MARIADB_PASSWORD": password, "MARIADB_DATABASE": main}
    if others:
        env["MARIADB_OTHER_DATABASES"] = "\n".join(others)
    subprocess.run(["sh", "-c", INIT_FILE % {"init": str(path)}], env=env, check=True)
    return path.read_text()


@pytest.mark.parametrize("runtime", ["local", "kubernetes"])
def test_the_account_gets_every_database_and_nothing_else(mariadb, tmp_path, runtime):
    main, others = DATABASES[0], DATABASES[1:]
    sql = (init_sql("app", "pw-1", DATABASES) if runtime == "local"
           else _kube_init(tmp_path, "app", "pw-1", main, others))
    subprocess.run(["mariadb", *mariadb.admin().client_args()], input=sql.encode(), check=True,
                   env={**os.environ, **mariadb.admin().client_env()})
    admin = pymysql.connect(**mariadb.admin().pymysql_kwargs(), autocommit=True)
    with admin.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS other")
    admin.close()
    for db in DATABASES:
        conn = pymysql.connect(host="127.0.0.1", port=mariadb.port, user="app", password="pw-1", database=db)
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE t (id INT)")
        conn.close()
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host="127.0.0.1", port=mariadb.port, user="app", password="pw-1", database="other")


def test_without_other_databases_the_kubernetes_script_writes_what_it_always_did(tmp_path):
    sql = _kube_init(tmp_path, "app", "pw", "app", [])
    assert sql.count("GRANT ALL ON") == 2 and "GRANT ALL ON `app`.* TO 'app'@'%';" in sql
