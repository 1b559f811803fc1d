"""The `local` runtime: one mariadbd process per environment (or breeder) on this host.

State per server lives in `<home>/runtime/<name>/`: `server.json` (image, port, profile,
storage backend, labels), the pid file, socket and error log, and — mode 0600 — the environment's
credentials and the `--init-file` that (re)creates its account on every start, so a
reset keeps the same password. After an orchestrator restart everything is found
again from those files; a server whose pid is gone is reported `dead`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from pathlib import Path

import pymysql

from phoenix.config import Settings
from phoenix.errors import Stalled, StorageError
from phoenix.locks import file_lock
from phoenix.names import validate_name
from phoenix.proc import pid_alive, write_private
from tasks.runtime.base import (
    AdminAccess,
    Credentials,
    Endpoint,
    Profile,
    Runtime,
    ServerFailed,
    ServerNotFound,
    State,
    Volumes,
)
from tasks.runtime.mariadb import MariaDBServer, free_port, init_sql

_DATADIR = "mysql"  # inside the attached image


class LocalRuntime(Runtime):
    name = "local"

    def __init__(self, settings: Settings, storage: Volumes) -> None:
        self.settings, self.storage = settings, storage
        self.root = settings.home_dir / "runtime"
        self.root.mkdir(parents=True, exist_ok=True)

    # -- state on disk -------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        return self.root / validate_name(name, "server")

    def _lock(self, lock: str) -> contextlib.AbstractContextManager[bool]:
        return file_lock(self.root / f".{lock}.lock")

    def _state(self, name: str) -> dict | None:
        try:
            return json.loads((self._dir(name) / "server.json").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _server(self, state: dict) -> MariaDBServer:
        return MariaDBServer(Path(state["datadir"]), self._dir(state["name"]), state["port"], state["profile"])

    def _endpoint(self, state: dict) -> Endpoint:
        server = self._server(state)
        pid = server.pid()
        alive = pid_alive(pid)
        run_state: State
        if alive:
            run_state = "running" if server.socket.exists() else "starting"
        else:
            run_state = "stopped" if state.get("stopped") else "dead"
        return Endpoint(
            name=state["name"],
            image=state["image"],
            host="127.0.0.1",
            port=state["port"],
            state=run_state,
            profile=state["profile"],
            labels=dict(state.get("labels", {})),
            pid=pid if alive else None,
            socket=server.socket,
        )

    def _pick_port(self, name: str) -> int:
        """A free port not promised to another server of ours (caller holds the ports lock)."""
        taken = set()
        for d in self.root.iterdir():
            st = self._state(d.name) if d.is_dir() and d.name != name else None
            if st:
                taken.add(st["port"])
        for _ in range(100):
            port = free_port()
            if port not in taken:
                return port
        raise ServerFailed("no free TCP port on 127.0.0.1")

    # -- the contract --------------------------------------------------------------
    def start(
        self,
        name: str,
        image: str,
        *,
        profile: Profile,
        credentials: Credentials | None = None,
        labels: dict[str, str] | None = None,
    ) -> Endpoint:
        rundir = self._dir(name)
        with self._lock(f"server-{name}"):
            state = self._state(name)
            if state and state["image"] == image and self._server(state).running():
                return self._endpoint(state)
            path = self.storage.attach(image)
            rundir.mkdir(parents=True, exist_ok=True)
            if len(str(rundir / "mysqld.sock")) > 100:
                raise ServerFailed(
                    f"state directory {self.root} is too deep for a unix socket path: "
                    "set PHOENIX_HOME to a shorter path"
                )
            with self._lock("ports"):
                port = state["port"] if state and state["image"] == image else self._pick_port(name)
                state = {
                    "name": name,
                    "image": image,
                    "port": port,
                    "profile": profile,
                    "storage": self.storage.name,
                    "labels": dict(labels or {}),
                    "datadir": str(path / _DATADIR),
                }
                (rundir / "server.json").write_text(json.dumps(state, indent=2, sort_keys=True))
            server = self._server(state)
            server.initialize()  # a breeder starts empty; a clone already has its system tables
            if credentials is not None:
                write_private(
                    rundir / "credentials.json",
                    json.dumps(
                        {
                            "user": credentials.user,
                            "password": credentials.password,
                            "database": credentials.database,
                            "others": list(credentials.others),
                        }
                    ),
                )
            creds = self.credentials(name)
            init_file = None
            if creds is not None:
                init_file = rundir / "init.sql"
                write_private(init_file, init_sql(creds.user, creds.password, creds.databases))
            server.start(init_file=init_file)
            return self._endpoint(state)

    def wait_ready(self, name: str, timeout: float = 120.0) -> Endpoint:
        state = self._require(name)
        server = self._server(state)
        for attempt in range(3):
            try:
                server.wait_ready(timeout)
                break
            except ServerFailed:
                # Another process (not under our ports lock) took the port between our
                # pick and the server's bind: move to a fresh port and start again.
                if attempt == 2 or not _port_taken(server.log_file):
                    raise
                with self._lock("ports"):
                    state["port"] = self._pick_port(name)
                    (self._dir(name) / "server.json").write_text(json.dumps(state, indent=2, sort_keys=True))
                server = self._server(state)
                init = self._dir(name) / "init.sql"
                server.start(init_file=init if init.exists() else None)
        creds = self.credentials(name)
        if creds is not None:
            # The environment's own account over TCP, on its own database: what the app will do.
            try:
                conn = pymysql.connect(
                    host="127.0.0.1",
                    port=state["port"],
                    user=creds.user,
                    password=creds.password,
                    database=creds.database,
                    connect_timeout=5,
                )
                with conn.cursor() as cur:
                    cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
                conn.close()
            except pymysql.MySQLError as exc:
                raise ServerFailed(
                    f"server {name!r} answers, but its account cannot log in (error {exc.args[0] if exc.args else '?'})"
                ) from None
        return self._endpoint(state)

    def stop(self, name: str, timeout: float = 600.0) -> None:
        state = self._state(name)
        if state is None:
            return
        self._server(state).stop(timeout)
        state["stopped"] = True
        (self._dir(name) / "server.json").write_text(json.dumps(state, indent=2, sort_keys=True))

    def seal(self, name: str, timeout: float = 600.0) -> None:
        with self._lock(f"server-{name}"):
            self._server(self._require(name)).seal(timeout)

    def remove(self, name: str) -> None:
        state = self._state(name)
        if state is not None:
            self._server(state).stop()
            if self.storage.exists(state["image"]):
                _detach(self.storage, state["image"])  # on failure the state stays, for a retry
        shutil.rmtree(self._dir(name), ignore_errors=True)

    def get(self, name: str) -> Endpoint | None:
        state = self._state(name)
        return self._endpoint(state) if state else None

    def list(self) -> list[Endpoint]:
        """The servers on this runtime's storage backend. One home can hold servers of both
        backends (the test suite does): a reaper on one must not take the other's breeder for
        an orphan because its image is not in *its* storage."""
        out = []
        for d in sorted(self.root.iterdir()):
            if d.is_dir():
                state = self._state(d.name)
                if state and state.get("storage", self.storage.name) == self.storage.name:
                    out.append(self._endpoint(state))
        return out

    def credentials(self, name: str) -> Credentials | None:
        try:
            data = json.loads((self._dir(name) / "credentials.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return Credentials(
            user=data["user"],
            password=data["password"],
            database=data["database"],
            others=tuple(data.get("others", ())),
        )

    def admin(self, name: str) -> AdminAccess:
        return self._server(self._require(name)).admin()

    def _require(self, name: str) -> dict:
        state = self._state(name)
        if state is None:
            raise ServerNotFound(f"no server named {name!r} in {self.root}")
        return state


def _detach(storage: Volumes, image: str, attempts: int = 5) -> None:
    """Right after mariadbd exits, its filesystem can still be busy for a moment (seen
    under load with rbd-fuse): retry the unmount briefly, then report it."""
    for attempt in range(attempts):
        try:
            storage.detach(image)
            return
        except Stalled:
            raise  # the cluster does not answer: a retry a second later waits as long again
        except StorageError:
            if attempt == attempts - 1:
                raise
            time.sleep(1.0)


def _port_taken(log: Path) -> bool:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return False
    return "Address already in use" in text or "Bind on TCP/IP port" in text


def stop_all(settings: Settings, timeout: float = 600.0) -> list[str]:
    """Stop (slow shutdown) every server of this home, of either backend; returns their
    names. For `stack down`: a running server holds its clone's mount busy. Their clones
    and state stay: a re-spawn of the name starts the server again."""
    root = settings.home_dir / "runtime"
    stopped = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            state = json.loads((d / "server.json").read_text())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            continue
        server = MariaDBServer(Path(state["datadir"]), d, state["port"], state["profile"])
        if server.running():
            server.stop(timeout)
            stopped.append(state["name"])
    return stopped
