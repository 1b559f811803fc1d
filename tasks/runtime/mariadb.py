"""One MariaDB/MySQL server process on a data directory: initialize, start, wait, stop.

Shared by the local runtime (environments, breeders) and by tests and benchmarks that
need a plain server. Servers run in their own session so they outlive the process that
started them; `mysqld.child`, written by us and never by the server, is the handle to
find them again (the server's own pid file is truncated and rewritten while it starts).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

from phoenix.db import AdminAccess, client_binary, quote
from phoenix.errors import ServerFailed
from phoenix.proc import daemon_env, pid_alive

__all__ = [
    "COMMON_ARGS",
    "PROFILES",
    "MariaDBServer",
    "client_binary",
    "free_port",
    "init_sql",
    "pid_alive",
    "pristine",
]

# Every profile shuts down slowly so a snapshot of the files starts without crash recovery.
# Environments keep ENV_LOG_SIZE; the breeder's restore profile has another size on purpose:
# `seal` starts it once with ENV_LOG_SIZE, and InnoDB writes a new, empty redo log instead
# of the one that recorded the restore (production's rows, in clear).
ENV_LOG_SIZE = "128M"
RESTORE_LOG_SIZE = "256M"
COMMON_ARGS = [
    "--innodb-fast-shutdown=0",
    f"--innodb-log-file-size={ENV_LOG_SIZE}",
    "--innodb-buffer-pool-dump-at-shutdown=0",
    "--innodb-buffer-pool-load-at-startup=0",
    "--skip-name-resolve",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    "--max-allowed-packet=1G",
]

PROFILES: dict[str, list[str]] = {
    # Fast import: nothing durable until the slow shutdown, no binlog, big buffers.
    "restore": [
        "--skip-log-bin",
        f"--innodb-log-file-size={RESTORE_LOG_SIZE}",
        # Interleaved AUTO_INCREMENT locks (safe without a binlog): with the default (1) an
        # INSERT … SELECT holds a table lock for the whole statement, which serialized the
        # anonymizer's parallel slices into a table with an AUTO_INCREMENT key (measured).
        "--innodb-autoinc-lock-mode=2",
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
        # Buffered writes (the slow shutdown still fsyncs everything): O_DIRECT, the
        # default, restored the 1 GB shop 4-6 s slower on btrfs (50.9/43.9/45.1 s vs 54.4/49.6 s).
        "--innodb-flush-method=fsync",
        "--innodb-buffer-pool-size=2G",
        "--innodb-log-buffer-size=64M",
        "--skip-performance-schema",
        "--max-connections=32",
        # A deleted or moved record's bytes are zeroed in its page at once: an incremental
        # cycle deletes rows in place, and their pseudonyms must not stay behind in free space.
        "--innodb-immediate-scrub-data-uncompressed=ON",
    ],
    # Small footprint so dozens run on one host.
    "environment": [
        "--innodb-buffer-pool-size=64M",
        "--innodb-log-buffer-size=4M",
        "--skip-performance-schema",
        "--max-connections=40",
        "--table-open-cache=256",
        "--table-definition-cache=256",
        "--key-buffer-size=1M",
        "--aria-pagecache-buffer-size=8M",
        "--thread-cache-size=4",
        "--tmp-table-size=16M",
        "--max-heap-table-size=16M",
    ],
    # Plain defaults (benchmarks compare against it).
    "default": [],
}


TMPDIR = "phoenix-tmp"  # beside the datadir, inside the breeder's image


def server_binary() -> str:
    for name in ("mariadbd", "mysqld"):
        path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
        if path:
            return path
    raise ServerFailed("no mariadbd/mysqld found: run `make install` (installs Debian's mariadb-server)")


# Below the kernel's ephemeral range (32768-60999 on Debian): a port picked there can be
# taken as the local end of any outgoing connection before the server binds it, or before
# a stopped environment starts again on the same port. 30000-32767 is Kubernetes' NodePort range.
_PORTS = range(20000, 30000)


def free_port() -> int:
    for port in random.sample(_PORTS, 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ServerFailed(
        f"no free TCP port on 127.0.0.1 in {_PORTS.start}-{_PORTS.stop - 1}: stop servers you do not need"
    )


def pristine(cache: Path) -> Path:
    """A data directory as `mariadb-install-db` makes it, once per server version: what every
    breeder holds before a byte of the source arrives (the forensic gate does not count text
    MariaDB itself ships as a leak)."""
    version = subprocess.run([server_binary(), "--version"], capture_output=True, text=True).stdout
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", version.split(" Ver ", 1)[-1].split(" for ")[0]).strip("-") or "unknown"
    target = cache / f"pristine-{slug}"
    if not (target / "mysql").is_dir():
        tmp = cache / f".pristine-{slug}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        MariaDBServer(tmp / "data", tmp / "run", 0, "restore").initialize()
        shutil.rmtree(target, ignore_errors=True)
        (tmp / "data").rename(target)
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass
class MariaDBServer:
    """A server whose files live in `datadir` and whose socket/pid/log live in `rundir`."""

    datadir: Path
    rundir: Path
    port: int
    profile: str = "environment"
    host: str = "127.0.0.1"

    @property
    def socket(self) -> Path:
        return self.rundir / "mysqld.sock"

    @property
    def pid_file(self) -> Path:
        return self.rundir / "mysqld.pid"

    @property
    def child_file(self) -> Path:
        return self.rundir / "mysqld.child"

    @property
    def log_file(self) -> Path:
        return self.rundir / "mysqld.err"

    @property
    def tmpdir(self) -> Path:
        """Sort files and on-disk temporary tables. A breeder's hold original values, so
        they live inside its image (removed by `seal`, their blocks wiped with the image's
        free space), never on the host; other servers use their run directory."""
        return self.datadir.parent / TMPDIR if self.profile == "restore" else self.rundir

    def admin(self) -> AdminAccess:
        # root over the unix socket authenticates by the OS user (unix_socket plugin).
        return AdminAccess(host=None, port=None, user="root", socket=self.socket)

    def query(self, *stmts: str) -> list[tuple]:
        """Run statements as root over the socket (autocommit); the last one's rows."""
        conn = pymysql.connect(**self.admin().pymysql_kwargs(), autocommit=True)
        try:
            rows: list[tuple] = []
            with conn.cursor() as cur:
                for stmt in stmts:
                    cur.execute(stmt)
                    rows = list(cur.fetchall())
            return rows
        finally:
            conn.close()

    def pid(self) -> int | None:
        # The server truncates its pid file before writing it: read there, it can be empty
        # for an instant while the server lives. The child file is replaced atomically.
        for handle in (self.child_file, self.pid_file):
            try:
                return int(handle.read_text().strip())
            except (OSError, ValueError):
                continue
        return None

    def running(self) -> bool:
        return pid_alive(self.pid())

    def initialize(self) -> None:
        """Create the system tables in an empty datadir; no-op if already there."""
        if (self.datadir / "mysql").is_dir():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        cmd = [
            "mariadb-install-db" if shutil.which("mariadb-install-db") else "mysql_install_db",
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--user=root",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ]
        before = set(self.datadir.iterdir())
        res = subprocess.run(cmd, capture_output=True, text=True, env=daemon_env())
        if res.returncode != 0:
            # Seen rarely on a loaded machine: a bare "[ERROR] Aborting" and nothing before it.
            # What the failed run wrote goes, and it is tried once more before it counts.
            for p in set(self.datadir.iterdir()) - before:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            time.sleep(1)
            res = subprocess.run(cmd, capture_output=True, text=True, env=daemon_env())
        if res.returncode != 0:
            raise ServerFailed(f"initializing {self.datadir} failed: {first_cause(res.stderr + res.stdout)}")

    def start(self, init_file: Path | None = None, extra_args: list[str] | None = None) -> int:
        """Start (idempotent: a live server is left alone) and return its pid."""
        if self.running():
            return self.pid()  # type: ignore[return-value]
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self._forget()
        self.socket.unlink(missing_ok=True)
        args = [
            server_binary(),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            f"--bind-address={self.host}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.log_file}",
            "--user=root",
            f"--tmpdir={self.tmpdir}",
            *COMMON_ARGS,
            *PROFILES[self.profile],
            *(extra_args or []),
        ]
        if init_file is not None:
            args.append(f"--init-file={init_file}")
        with open(os.devnull, "rb") as devnull, open(self.rundir / "mysqld.out", "ab") as out:
            proc = subprocess.Popen(
                args, stdin=devnull, stdout=out, stderr=out, start_new_session=True, env=daemon_env()
            )
        tmp = self.child_file.with_suffix(".tmp")
        tmp.write_text(f"{proc.pid}\n")
        tmp.replace(self.child_file)
        return proc.pid

    def wait_ready(
        self, timeout: float = 120.0, query: str = "SELECT COUNT(*) FROM information_schema.SCHEMATA"
    ) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.running():
                raise ServerFailed(f"server on {self.datadir} died while starting: {self._last_error()}")
            try:
                conn = pymysql.connect(unix_socket=str(self.socket), user="root", connect_timeout=2)
                try:
                    with conn.cursor() as cur:
                        cur.execute(query)
                        cur.fetchall()
                    return
                finally:
                    conn.close()
            except pymysql.MySQLError as exc:
                last = exc
                time.sleep(0.05)
        raise ServerFailed(
            f"server on {self.datadir} did not answer within {timeout:.0f}s ({last}); see {self.log_file}"
        )

    def stop(self, timeout: float = 600.0) -> None:
        """Slow shutdown; idempotent. SIGKILL only after `timeout` (then crash recovery follows)."""
        pid = self.pid()
        if pid is None or not pid_alive(pid):
            self._forget()
            return
        try:
            conn = pymysql.connect(unix_socket=str(self.socket), user="root", connect_timeout=2)
            try:
                with conn.cursor() as cur:
                    cur.execute("SET GLOBAL innodb_fast_shutdown=0")
                    cur.execute("SHUTDOWN")
            finally:
                conn.close()
        except pymysql.MySQLError:
            os.kill(pid, signal.SIGTERM)  # the server was started with innodb_fast_shutdown=0
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
            _reap(pid)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            raise ServerFailed(f"server on {self.datadir} did not shut down within {timeout:.0f}s and was killed")
        self._forget()

    def seal(self, timeout: float = 600.0) -> None:
        """After the slow shutdown: start once more with the environment's redo log size
        (InnoDB writes a fresh log, the old one with the restore's rows is deleted), no
        network, then shut down slowly again; remove the image's temporary directory.
        Idempotent: a sealed datadir is started and stopped once more."""
        if self.running():
            raise ServerFailed(f"server on {self.datadir} is still running: stop it before sealing")
        sealed = MariaDBServer(self.datadir, self.rundir, self.port, "environment", self.host)
        sealed.start(extra_args=["--skip-networking", f"--innodb-log-file-size={ENV_LOG_SIZE}"])
        sealed.wait_ready(timeout)
        sealed.stop(timeout)
        shutil.rmtree(self.datadir.parent / TMPDIR, ignore_errors=True)
        for leftover in self.datadir.rglob("#sql*"):  # orphans of an interrupted ALTER
            if leftover.is_file():
                leftover.unlink(missing_ok=True)

    def _forget(self) -> None:
        self.child_file.unlink(missing_ok=True)
        self.pid_file.unlink(missing_ok=True)

    def _last_error(self) -> str:
        try:
            return first_cause(self.log_file.read_text(errors="replace")) or f"see {self.log_file}"
        except OSError:
            return f"see {self.log_file}"


_OS_ERROR = re.compile(r"(?:failed with error|errno:?|Errcode:|OS error:?) ?(\d+)", re.IGNORECASE)


def first_cause(log: str) -> str:
    """The server's first [ERROR] line, not its last: that one is "Aborting", the first is
    why (e.g. "preallocating … failed with error 28"); an OS errno gets its name."""
    errors = [ln.split("[ERROR]", 1)[1].strip() for ln in log.splitlines() if "[ERROR]" in ln]
    if not errors:
        lines = log.strip().splitlines()
        return lines[-1] if lines else ""
    first = errors[0]
    m = _OS_ERROR.search(first)
    if m and 0 < int(m.group(1)) < 200:
        first += f" ({os.strerror(int(m.group(1)))})"
    return first


def _reap(pid: int) -> None:
    """Collect our own exited child so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def init_sql(credentials_user: str, password: str, databases: str | list[str]) -> str:
    """SQL for --init-file: the environment's account with all rights on its databases.
    Written to a 0600 file by the runtime; never logged."""
    pw = password.replace("\\", "\\\\").replace("'", "\\'")
    dbs = [databases] if isinstance(databases, str) else databases
    return (
        "".join(f"CREATE DATABASE IF NOT EXISTS {quote(db)};\n" for db in dbs)
        + f"CREATE USER IF NOT EXISTS '{credentials_user}'@'%' IDENTIFIED BY '{pw}';\n"
        # Unlocked: a golden may hold an account of that name made locked for a dump's DEFINER.
        f"ALTER USER '{credentials_user}'@'%' IDENTIFIED BY '{pw}' ACCOUNT UNLOCK;\n"
        + "".join(f"GRANT ALL PRIVILEGES ON {quote(db)}.* TO '{credentials_user}'@'%';\n" for db in dbs)
    )
