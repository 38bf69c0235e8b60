"""Private PostgreSQL 15 instances for tests that kill, restart or fail over the database.

The machine's own cluster (``15/main`` on port 5432) is shared and must never be
stopped. Tests that need to take PostgreSQL away start instances beside it:
:class:`PrivatePostgres` is one instance with its own data directory, port, socket
directory and log, all under one base directory; :class:`PostgresPair` is a primary
with a synchronous streaming standby, and :meth:`PostgresPair.fail_over` kills the
primary (``kill -9``) and promotes the standby.

``initdb`` refuses to run as root, so when this process is root every server binary runs
as the ``postgres`` user (``subprocess`` ``user=``/``group=``, like ``runuser -u postgres``)
in a base directory that user owns: use :meth:`PrivatePostgres.in_temp_dir` (a
:func:`tempfile.mkdtemp` directory handed to ``postgres``, on the tmpfs ``/dev/shm`` when
there is one), not pytest's ``tmp_path`` (``/tmp/pytest-of-root`` is 0700). ``initdb`` runs
once per process; each instance starts from a copy of that cluster.

The postmaster is started directly (``postgres -D DIR``) rather than by ``pg_ctl start``,
which daemonizes: being its parent, this process reaps it the moment it dies. A killed
postmaster nobody reaps stays a zombie (measured: ≈ 1.3 s here), and until then
``pg_ctl start`` on its directory fails ("another postmaster"). Readiness is what
``pg_ctl -w`` waits for: the status line of ``postmaster.pid`` (``ready`` or ``standby``).

Replication is synchronous (``synchronous_standby_names = '*'``, ``synchronous_commit =
on``): with asynchronous replication acknowledged commits were lost on failover (4 runs
in 22), see ``/work/shared/POSTGRES.md``. The primary gets the setting only once its
standby streams (before that, every commit hangs), and the standby gets ``''`` in its own
configuration up front, so that once promoted and alone it does not hang either.

Everything here is synchronous (subprocesses with timeouts, sockets); async tests call it
through :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.support.rabbitmq_node import _port_open, allocate_port, release_port

__all__ = ["PostgresNodeError", "PostgresPair", "PrivatePostgres"]

_log = logging.getLogger(__name__)

_HOST: Final = "127.0.0.1"
_SUPERUSER: Final = "postgres"
_OS_USER: Final = "postgres"
_BIN_DIR: Final = Path("/usr/lib/postgresql/15/bin")
_POLL_INTERVAL_S: Final = 0.02
_LOG_TAIL_LINES: Final = 40
_COMMAND_TIMEOUT_S: Final = 60.0
_IDENTIFIER: Final = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,62}\Z")

ConfigValue = str | int | bool
# What every instance runs with, on top of initdb's defaults. fsync is off for speed: a
# killed process loses nothing the OS already has, and these tests kill processes, not the
# machine. synchronous_commit stays on: the standby's acknowledgement is what it waits for.
# Dynamic shared memory in files of the data directory (pg_dynshmem), not in /dev/shm
# (posix): a killed postmaster leaves its segments behind, and they go with the directory.
_BASE_SETTINGS: Final[Mapping[str, ConfigValue]] = {
    "listen_addresses": _HOST,
    "wal_level": "replica",
    "max_wal_senders": 10,
    "max_replication_slots": 10,
    "wal_keep_size": "128MB",
    "wal_log_hints": True,
    "hot_standby": True,
    "fsync": False,
    "synchronous_commit": "on",
    "synchronous_standby_names": "",
    "dynamic_shared_memory_type": "mmap",
}

# Instances created by this process and not destroyed yet: destroyed at interpreter exit.
_live_instances: set[PrivatePostgres] = set()
# A cluster fresh from initdb, made once per process, that init() copies: initdb took
# 0.7 s in /dev/shm, a copy 0.05 s. Removed at interpreter exit.
_template_dir: Path | None = None
_template_lock = threading.Lock()
# Children of killed postmasters, orphans that PID 1 reaps when it gets to it (1 to 2 s
# here): waited for at interpreter exit, so that no ``[postgres] <defunct>`` outlives us.
_orphans: set[int] = set()


class PostgresNodeError(RuntimeError):
    """A private instance could not be set up, started, stopped or promoted as asked."""


class PrivatePostgres:
    """One private instance: own data dir, port, socket dir, log.

    The instance keeps its port and data directory for its whole life, so :meth:`start`
    after :meth:`stop` (or after :meth:`kill`: crash recovery) brings back the same
    database at the same :meth:`host_port`. :meth:`destroy` stops it, kills whatever is
    left of it and deletes ``base_dir``, which belongs to the instance: keep nothing else in
    it. The superuser is ``postgres`` with ``trust`` authentication, on 127.0.0.1 only.
    """

    def __init__(self, base_dir: Path, *, name: str | None = None) -> None:
        reason = self.unavailable_reason()
        if reason is not None:
            raise PostgresNodeError(reason)
        self._base_dir = base_dir.resolve()
        self._base_dir.mkdir(parents=True, exist_ok=True)
        self._port = allocate_port()
        self._name = name or f"lbaas-private-{self._port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._destroyed = False
        if os.geteuid() == 0:
            entry = pwd.getpwnam(_OS_USER)
            os.chown(self._base_dir, entry.pw_uid, entry.pw_gid)
        _live_instances.add(self)

    @classmethod
    def in_temp_dir(
        cls, prefix: str = "lbaas-postgres-", *, name: str | None = None
    ) -> PrivatePostgres:
        """An instance whose base directory is a new :func:`tempfile.mkdtemp` directory."""
        return cls(_owned_temp_dir(prefix), name=name)

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why no private instance can be started here (for ``pytest.skip``), or None."""
        for binary in ("initdb", "postgres", "pg_ctl", "pg_basebackup", "psql"):
            if not (_BIN_DIR / binary).is_file():
                return f"{_BIN_DIR / binary} is missing (apt-get install postgresql-15)"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(_OS_USER)
            except KeyError:
                return f"there is no {_OS_USER!r} user to run PostgreSQL as (initdb refuses root)"
        return None

    # ------------------------------------------------------------------ properties

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def data_dir(self) -> Path:
        return self._base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        """Where the Unix socket is (``unix_socket_directories``): the base directory."""
        return self._base_dir

    @property
    def log_file(self) -> Path:
        """The server's stderr (``logging_collector`` is off): every log line."""
        return self._base_dir / "postgres.log"

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1; the same across restarts."""
        return self._port

    @property
    def name(self) -> str:
        """``cluster_name``: in the processes' titles and the standby's application_name."""
        return self._name

    @property
    def running(self) -> bool:
        """Whether the postmaster this object started is alive (it may still be starting)."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The postmaster's PID while :attr:`running`."""
        return self._process.pid if self._process is not None and self.running else None

    def host_port(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"{_HOST}:{self._port}"

    def database_url(self, database: str, driver: str = "postgresql") -> str:
        """``DRIVER://postgres@127.0.0.1:PORT/DATABASE``: this instance only."""
        return f"{driver}://{_SUPERUSER}@{self.host_port()}/{database}"

    def admin_dsn(self) -> str:
        """:meth:`database_url` of the ``postgres`` database, for ``CREATE DATABASE``."""
        return self.database_url("postgres")

    # ------------------------------------------------------------------- lifecycle

    def init(self, settings: Mapping[str, ConfigValue] | None = None) -> None:
        """A new cluster in :attr:`data_dir`, configured (plus ``settings``).

        A copy of the process's template made by ``initdb -A trust -U postgres -E UTF8
        --locale=C`` (so every instance has the same system identifier, which only
        replication between unrelated clusters would notice).
        """
        self._check_not_destroyed()
        if self.data_dir.exists():
            raise PostgresNodeError(f"{self.data_dir} exists already")
        template = _template_cluster()
        self._run(["cp", "-a", str(template), str(self.data_dir)], what="copying the template")
        self.configure({**_BASE_SETTINGS, **self._own_settings(), **(settings or {})})

    def init_standby(self, primary: PrivatePostgres, slot: str) -> None:
        """Fill :attr:`data_dir` with a base backup of the running ``primary``.

        ``pg_basebackup -R -X stream -C -S SLOT``: a physical replication slot ``slot`` is
        created on the primary and the copy is set up to stream from it (``standby.signal``,
        ``primary_conninfo``). The copied configuration gets this instance's own port,
        socket directory and name, and ``synchronous_standby_names = ''``.
        """
        self._check_not_destroyed()
        if self.data_dir.exists():
            raise PostgresNodeError(f"{self.data_dir} exists already")
        _check_identifier(slot)
        self._run(
            [
                str(_BIN_DIR / "pg_basebackup"),
                "-h",
                _HOST,
                "-p",
                str(primary.port),
                "-U",
                _SUPERUSER,
                "-D",
                str(self.data_dir),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "-C",
                "-S",
                slot,
                "--no-sync",
            ],
            what="pg_basebackup",
        )
        self.configure({**self._own_settings(), "synchronous_standby_names": ""})

    def configure(self, settings: Mapping[str, ConfigValue]) -> None:
        """Append ``settings`` to ``postgresql.conf`` (the last occurrence of a name wins).

        Read at the next start, or at once for reloadable settings after :meth:`reload`.
        ``ALTER SYSTEM`` (``postgresql.auto.conf``) still overrides them.
        """
        lines = "".join(f"{key} = {_config_value(value)}\n" for key, value in settings.items())
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"\n# tests.support.postgres_node\n{lines}")

    def start(self, timeout: float = 30) -> None:
        """Start the postmaster and return once it accepts connections (as ``pg_ctl -w``).

        A standby counts as started once it accepts read-only connections. Idempotent:
        returns at once if the instance runs. On failure (timeout, the server exited)
        everything left of it is killed before raising, with the log's last lines.
        """
        self._check_not_destroyed()
        if self.running:
            return
        if not (self.data_dir / "PG_VERSION").exists():
            raise PostgresNodeError(f"no cluster in {self.data_dir}: init() first")
        if _port_open(self._port):
            raise PostgresNodeError(
                f"port {self._port} of {self._name} is taken by another process"
            )
        deadline = time.monotonic() + timeout
        began = time.monotonic()
        who = _as_postgres()
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [str(_BIN_DIR / "postgres"), "-D", str(self.data_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._base_dir,
                env=_environment(self._base_dir),
                start_new_session=True,  # a Ctrl-C of the test run is not a fast shutdown
                user=who.user,
                group=who.group,
                extra_groups=who.extra_groups,
            )
        try:
            self._wait_until_ready(deadline)
        except BaseException:
            self._kill_everything()
            raise
        _log.info(
            "private PostgreSQL %s up on port %d in %.2fs",
            self._name,
            self._port,
            time.monotonic() - began,
        )

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (SIGINT, as ``pg_ctl -m fast stop``) and wait until it is gone.

        Returns once the postmaster exited (it waits for its children), so :meth:`start`
        can follow at once. If it does not stop in time it is killed and
        :class:`PostgresNodeError` is raised.
        """
        process = self._process
        if process is None or process.poll() is not None:
            self._reap()
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_everything()
            raise PostgresNodeError(
                f"{self._name} did not stop within {timeout}s and was killed\n{self.log_tail()}"
            ) from None
        self._reap()
        _poll_until(time.monotonic() + 5, lambda: not self._server_pids())

    def kill(self) -> None:
        """``kill -9`` of the postmaster; returns once its port is closed and every process
        of the instance has exited (its children notice the postmaster's death in ≈ 50 ms).

        The postmaster is reaped at once; its children, orphans, stay zombies of PID 1 for
        1 to 2 s, which holds nothing. The data directory is left as a crash leaves it:
        :meth:`start` (crash recovery) can follow at once.
        """
        process = self._process
        if process is None or process.poll() is not None:
            self._reap()
            return
        _orphans.update(pid for pid in self._server_pids() if pid != process.pid)
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        process.wait(10)  # reaped at once: no zombie holds postmaster.pid's PID
        deadline = time.monotonic() + 10
        if not _poll_until(deadline, self._is_gone):
            self._kill_everything()
        self._reap()

    def promote(self, timeout: float = 30) -> None:
        """``pg_ctl promote -w``: end recovery and return once the server accepts writes."""
        if not self.running:
            raise PostgresNodeError(f"{self._name} is not running")
        self._run(
            [
                str(_BIN_DIR / "pg_ctl"),
                "promote",
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                str(max(1, round(timeout))),
            ],
            what="pg_ctl promote",
            timeout=timeout + 5,
        )

    def reload(self) -> None:
        """``pg_reload_conf()``: the postmaster and its children reread the configuration."""
        self.sql("SELECT pg_reload_conf()")

    def destroy(self) -> None:
        """Stop the instance if it runs, kill anything left of it, delete ``base_dir``.

        Safe to call more than once and after a failed :meth:`start`. The children of a
        postmaster killed earlier may still be zombies of PID 1 for a second or two: the
        process waits for them at exit, not here.
        """
        try:
            if self.running:
                try:
                    self.stop(timeout=15)
                except (PostgresNodeError, OSError, subprocess.SubprocessError) as exc:
                    _log.warning("stopping %s before removal: %s", self._name, exc)
        finally:
            self._kill_everything()
            self._remove_sysv_segment()
            self._destroyed = True
            _live_instances.discard(self)
            release_port(self._port)
            if self._base_dir.exists():
                shutil.rmtree(self._base_dir)

    def __repr__(self) -> str:
        return f"PrivatePostgres(name={self._name!r}, port={self._port}, base_dir={self._base_dir})"

    # ----------------------------------------------------------------------- SQL

    def sql(self, *statements: str, database: str = "postgres", timeout: float = 30) -> str:
        """Run each statement with ``psql`` (its own implicit transaction, so ``CREATE
        DATABASE`` and ``ALTER SYSTEM`` work) over the Unix socket; the rows, unaligned,
        ``|``-separated, one a line."""
        argv = [
            str(_BIN_DIR / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self._port),
            "-U",
            _SUPERUSER,
            "-d",
            database,
        ]
        for statement in statements:
            argv += ["-c", statement]
        return self._run(argv, what="psql", timeout=timeout, with_log=False).stdout.strip()

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE name`` (a plain identifier)."""
        _check_identifier(name)
        self.sql(f'CREATE DATABASE "{name}"')

    def is_in_recovery(self) -> bool:
        """``pg_is_in_recovery()``: True on a standby."""
        return self.sql("SELECT pg_is_in_recovery()") == "t"

    def log_tail(self) -> str:
        """The last lines of :attr:`log_file`, for error messages."""
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return f"(no log: {self.log_file})"
        tail = "\n".join(lines[-_LOG_TAIL_LINES:])
        return f"--- last lines of {self.log_file}:\n{tail}" if lines else "(empty log)"

    # ------------------------------------------------------------------ internals

    def _own_settings(self) -> dict[str, ConfigValue]:
        return {
            "port": self._port,
            "unix_socket_directories": str(self.socket_dir),
            "cluster_name": self._name,
        }

    def _check_not_destroyed(self) -> None:
        if self._destroyed:
            raise PostgresNodeError(f"{self._name} was destroyed")

    def _run(
        self,
        argv: Sequence[str],
        *,
        what: str,
        timeout: float = _COMMAND_TIMEOUT_S,
        with_log: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        try:
            return _run(argv, cwd=self._base_dir, what=f"{what} ({self._name})", timeout=timeout)
        except PostgresNodeError as exc:
            if not with_log:
                raise
            raise PostgresNodeError(f"{exc}\n{self.log_tail()}") from exc

    def _wait_until_ready(self, deadline: float) -> None:
        process = self._process
        assert process is not None
        pid_file = self.data_dir / "postmaster.pid"
        while True:
            code = process.poll()
            if code is not None:
                raise PostgresNodeError(
                    f"{self._name} exited {code} while starting\n{self.log_tail()}"
                )
            try:
                lines = pid_file.read_text().splitlines()
            except OSError:
                lines = []
            # Line 1 is the PID (a file left by a killed postmaster has another one), line 8
            # the status that pg_ctl -w waits for.
            if (
                len(lines) >= 8
                and lines[0].strip() == str(process.pid)
                and lines[7].strip() in ("ready", "standby")
                and _port_open(self._port)
            ):
                return
            if time.monotonic() >= deadline:
                raise PostgresNodeError(
                    f"{self._name} did not become ready on port {self._port} in time\n"
                    f"{self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL_S)

    def _reap(self) -> None:
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)

    def _is_gone(self) -> bool:
        return not _port_open(self._port) and not self._server_pids()

    def _server_pids(self) -> list[int]:
        """The postmaster and its children, found by their working directory (the data
        directory): found after the postmaster's death, when they are nobody's children."""
        return _pids_with_cwd(self.data_dir)

    def _kill_everything(self) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            self._reap()
        pids = self._server_pids()
        if not pids:
            return
        _orphans.update(pids)
        _log.warning("killing what is left of %s: pids %s", self._name, pids)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not _poll_until(time.monotonic() + 5, lambda: not self._server_pids()):
            raise PostgresNodeError(f"could not kill {self._name}: {self._server_pids()}")

    def _remove_sysv_segment(self) -> None:
        """Remove the small System V segment that a killed postmaster leaves (a clean
        shutdown removes its own, and a start after a kill reuses it): the one named in
        ``postmaster.pid``, created by that postmaster, attached by nobody."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            postmaster, shmid = int(lines[0]), int(lines[6].split()[1])
            table = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
        except (OSError, IndexError, ValueError):
            return
        for row in table:
            # key shmid perms size cpid lpid nattch ...
            fields = row.split()
            if fields[1:2] == [str(shmid)] and fields[4] == str(postmaster) and fields[6] == "0":
                try:
                    self._run(["ipcrm", "-m", str(shmid)], what="ipcrm", with_log=False)
                except PostgresNodeError as exc:
                    _log.warning("%s", exc)


class PostgresPair:
    """A primary and a synchronous streaming standby.

    :meth:`database_url` names both nodes with ``target_session_attrs=read-write``, so a
    client (the service's SQLAlchemy engine, or ``asyncpg.connect``) reaches whichever
    node is the primary. After :meth:`fail_over`, :attr:`primary` is the promoted node and
    :attr:`standby` the killed one (stopped; nothing streams to the new primary).
    """

    _SLOT: Final = "lbaas_standby"

    def __init__(self, primary: PrivatePostgres, standby: PrivatePostgres) -> None:
        self.primary = primary
        self.standby = standby
        # The URL keeps naming the nodes in their first order, whatever their roles.
        self._nodes = (primary, standby)

    @classmethod
    def start(cls, timeout: float = 60) -> PostgresPair:
        """Primary up, standby base-backed-up and streaming, replication synchronous."""
        deadline = time.monotonic() + timeout
        primary = PrivatePostgres.in_temp_dir()
        standby = PrivatePostgres.in_temp_dir()
        pair = cls(primary, standby)
        try:
            primary.init()
            primary.start(timeout=_left(deadline))
            standby.init_standby(primary, cls._SLOT)
            standby.start(timeout=_left(deadline))
            pair._wait_for_replication(deadline, sync_state=("async", "sync"))
            primary.sql(
                "ALTER SYSTEM SET synchronous_standby_names = '*'", "SELECT pg_reload_conf()"
            )
            # "sync" as seen by a new backend: the postmaster has reread its configuration
            # and signalled its children. But a commit waits for the standby only once the
            # checkpointer has reread it too (it publishes that flag in shared memory), and
            # it does so before it runs a checkpoint asked for after the signal: once this
            # CHECKPOINT returns, every commit is synchronous.
            pair._wait_for_replication(deadline, sync_state=("sync",))
            primary.sql("CHECKPOINT")
        except BaseException:
            pair.destroy()
            raise
        return pair

    def database_url(self, database: str, driver: str = "postgresql") -> str:
        """Both nodes, the writable one chosen at connect time.

        ``DRIVER://postgres@/DB?host=127.0.0.1,127.0.0.1&port=P1,P2&target_session_attrs=
        read-write``: the form that both SQLAlchemy's asyncpg dialect and plain
        ``asyncpg.connect`` understand, also once rendered by SQLAlchemy (``plain_dsn``).
        Repeated ``host=H:P`` parameters work in SQLAlchemy only: asyncpg keeps the last.
        """
        hosts = ",".join(_HOST for _ in self._nodes)
        ports = ",".join(str(node.port) for node in self._nodes)
        return (
            f"{driver}://{_SUPERUSER}@/{database}"
            f"?host={hosts}&port={ports}&target_session_attrs=read-write"
        )

    def admin_dsn(self) -> str:
        """A single-host DSN of the current primary's ``postgres`` database."""
        return self.primary.admin_dsn()

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE`` on the current primary (it reaches the standby as WAL)."""
        self.primary.create_database(name)

    def fail_over(self) -> float:
        """``kill -9`` the primary, promote the standby; the seconds both took.

        Returns once the promoted node accepts writes; :attr:`primary` and
        :attr:`standby` then swap. Do not :meth:`PrivatePostgres.start` the killed node
        again: it would come back as a second primary, and :meth:`database_url` would
        lead to whichever of the two answers first.
        """
        if not self.primary.running or not self.standby.running:
            raise PostgresNodeError("fail_over needs a running primary and standby")
        began = time.monotonic()
        self.primary.kill()
        self.standby.promote()
        took = time.monotonic() - began
        self.primary, self.standby = self.standby, self.primary
        _log.info("failed over to %s in %.2fs", self.primary.name, took)
        return took

    def destroy(self) -> None:
        """Destroy both instances; idempotent."""
        try:
            self.standby.destroy()
        finally:
            self.primary.destroy()

    def _wait_for_replication(self, deadline: float, sync_state: tuple[str, ...]) -> None:
        query = (
            "SELECT state || ' ' || sync_state FROM pg_stat_replication"
            f" WHERE application_name = {_literal(self.standby.name)}"
        )
        last = ""
        while True:
            last = self.primary.sql(query)
            state, _, sync = last.partition(" ")
            if state == "streaming" and sync in sync_state:
                return
            if not self.standby.running:
                raise PostgresNodeError(
                    f"standby {self.standby.name} exited\n{self.standby.log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise PostgresNodeError(
                    f"standby {self.standby.name} not streaming ({sync_state}) in time "
                    f"(pg_stat_replication: {last!r})\n{self.standby.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL_S)


# ---------------------------------------------------------------------- helpers


def _run(
    argv: Sequence[str], *, cwd: Path, what: str, timeout: float = _COMMAND_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run a binary as the postgres user (when we are root) in ``cwd``, which it owns."""
    who = _as_postgres()
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=_environment(cwd),
            timeout=timeout,
            check=False,
            user=who.user,
            group=who.group,
            extra_groups=who.extra_groups,
        )
    except subprocess.TimeoutExpired as exc:
        raise PostgresNodeError(f"{what} did not finish within {timeout}s") from exc
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip())[-3000:]
        raise PostgresNodeError(f"{what} exited {result.returncode}: {output}")
    return result


def _owned_temp_dir(prefix: str) -> Path:
    """A new :func:`tempfile.mkdtemp` directory, handed to the postgres user if we are root.

    In ``/dev/shm`` when there is one (tmpfs): copying a cluster there took 0.05 s against
    1.1 to 1.4 s in ``/tmp`` (ext4, the two cores busy), initdb 0.7 s against 1.9 s.
    """
    shm = Path("/dev/shm")
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(_OS_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _template_cluster() -> Path:
    global _template_dir
    with _template_lock:
        if _template_dir is None or not (_template_dir / "data" / "PG_VERSION").exists():
            base = _owned_temp_dir("lbaas-postgres-template-")
            argv = [str(_BIN_DIR / "initdb"), "-D", str(base / "data"), "-A", "trust"]
            argv += ["-U", _SUPERUSER, "-E", "UTF8", "--locale=C", "--no-sync"]
            try:
                _run(argv, cwd=base, what="initdb")
            except BaseException:
                shutil.rmtree(base, ignore_errors=True)
                raise
            _template_dir = base
        return _template_dir / "data"


@dataclass(frozen=True)
class _Identity:
    """``subprocess`` ``user``/``group``/``extra_groups``: None keeps ours."""

    user: int | None = None
    group: int | None = None
    extra_groups: list[int] | None = None


def _as_postgres() -> _Identity:
    """Who runs the binaries: the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return _Identity()
    entry = pwd.getpwnam(_OS_USER)
    return _Identity(entry.pw_uid, entry.pw_gid, [])


def _environment(home: Path) -> dict[str, str]:
    """The caller's environment without libpq's ``PG*`` settings (none may redirect a
    client to another server), ``HOME`` in the instance's directory."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(HOME=str(home), PGCONNECT_TIMEOUT="5", LC_ALL="C")
    return env


def _config_value(value: ConfigValue) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value)
    return _literal(value)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _check_identifier(name: str) -> None:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")


def _left(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic())


def _poll_until(deadline: float, condition: Callable[[], bool]) -> bool:
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL_S)


def _pids_with_cwd(directory: Path) -> list[int]:
    target = str(directory)
    pids: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
        except OSError:  # gone, or not ours to read
            continue
        if cwd == target:
            pids.append(int(entry.name))
    return pids


def _comm(pid: int) -> str:
    """The process's name, zombies included; "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


# ------------------------------------------------------------------- safety net


@atexit.register
def _destroy_forgotten_instances() -> None:
    """Never leave an instance running when the test process exits without destroy(),
    nor the template, nor zombies of killed postmasters' children."""
    for instance in list(_live_instances):
        try:
            instance.destroy()
        except Exception:  # best effort at exit: report and go on with the others
            _log.exception("destroying forgotten private PostgreSQL %s", instance.name)
    if _template_dir is not None:
        shutil.rmtree(_template_dir, ignore_errors=True)
    if not _poll_until(time.monotonic() + 5, _orphans_reaped):
        _log.warning("children of killed postmasters not reaped by PID 1: %s", _orphans)


def _orphans_reaped() -> bool:
    for pid in list(_orphans):
        if _comm(pid) != "postgres":  # gone (or its PID reused)
            _orphans.discard(pid)
    return not _orphans
