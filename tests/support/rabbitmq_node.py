"""A private RabbitMQ node for tests that stop or restart the broker.

The machine's own node (``rabbit@localhost`` on 127.0.0.1:5672, distribution port
25672) is shared and must never be stopped. Tests that need to take the broker away
start a second node beside it with :class:`PrivateRabbitMQ`: its own node name,
AMQP port, distribution port, data, logs and configuration, all under one base
directory. It shares the machine's Erlang cookie and epmd, so ``rabbitmqctl -n NODE``
reaches it.

Debian's ``rabbitmq-server`` wrapper switches to the ``rabbitmq`` user, so the node
can only be started by root, and the ``rabbitmq`` user must be able to reach the base
directory: use a directory created with :func:`tempfile.mkdtemp` (its parents ``/`` and
``/tmp`` are traversable), not pytest's ``tmp_path`` (``/tmp/pytest-of-root`` is 0700).
:meth:`PrivateRabbitMQ.in_temp_dir` does that.

Everything here is synchronous (subprocesses with timeouts, sockets); async tests call
it through :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pwd
import random
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

__all__ = ["PrivateRabbitMQ", "RabbitMQNodeError", "allocate_port", "release_port"]

_log = logging.getLogger(__name__)

_HOST: Final = "127.0.0.1"
_RABBITMQ_USER: Final = "rabbitmq"
_SBIN_PATH: Final = "/usr/sbin:/sbin"
# Ports a private node must never take: epmd, the machine node's AMQP(S), management
# and distribution ports, and the CLI tools' distribution range (35672-35682).
_RESERVED_PORTS: Final = frozenset({4369, 5671, 5672, 15672, 25672, *range(35672, 35683)})
_POLL_INTERVAL_S: Final = 0.1
_LOG_TAIL_LINES: Final = 40

# Ports handed out by this process, so that two nodes created back to back (before either
# listens) never get the same one.
_allocated_ports: set[int] = set()
_allocated_ports_lock = threading.Lock()
# Nodes created by this process and not destroyed yet: killed at interpreter exit.
_live_nodes: set[PrivateRabbitMQ] = set()


class RabbitMQNodeError(RuntimeError):
    """The private node could not be started or stopped as asked."""


class PrivateRabbitMQ:
    """A throwaway RabbitMQ node with its own port and data, beside the machine's node.

    The node keeps its name, ports and data directory for its whole life, so
    :meth:`start` after :meth:`stop` brings back the same broker at the same
    :attr:`url`, with its durable queues (quorum queues included) and persistent
    messages. :meth:`destroy` stops it, kills whatever is left of it and deletes
    ``base_dir``, which belongs to the node: do not keep anything else in it.
    """

    def __init__(self, base_dir: Path) -> None:
        reason = self.unavailable_reason()
        if reason is not None:
            raise RabbitMQNodeError(reason)
        self._base_dir = base_dir.resolve()
        _check_reachable_by_rabbitmq(self._base_dir)
        self._node = f"lbaas-private-{uuid.uuid4().hex[:12]}@localhost"
        self._port = allocate_port()
        self._dist_port = allocate_port()
        self._mnesia_dir = self._base_dir / "mnesia"
        self._log_dir = self._base_dir / "log"
        self._config_file = self._base_dir / "rabbitmq.conf"
        self._plugins_file = self._base_dir / "enabled_plugins"
        self._pid_file = self._base_dir / "rabbitmq.pid"
        self._launch_output = self._base_dir / "rabbitmq-server.out"
        self._crash_dump = self._base_dir / "erl_crash.dump"
        self._destroyed = False
        _live_nodes.add(self)

    @classmethod
    def in_temp_dir(cls, prefix: str = "lbaas-rabbitmq-") -> PrivateRabbitMQ:
        """A node whose base directory is a new :func:`tempfile.mkdtemp` directory."""
        return cls(Path(tempfile.mkdtemp(prefix=prefix)))

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why no private node can be started here (for ``pytest.skip``), or None."""
        if _which("rabbitmq-server") is None or _which("rabbitmqctl") is None:
            return "rabbitmq-server is not installed (apt-get install rabbitmq-server)"
        try:
            pwd.getpwnam(_RABBITMQ_USER)
        except KeyError:
            return f"there is no {_RABBITMQ_USER!r} user"
        if os.geteuid() != 0:
            return "a private RabbitMQ node can only be started as root (Debian's wrapper)"
        return None

    # ------------------------------------------------------------------ properties

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def node_name(self) -> str:
        """The Erlang node name, e.g. ``lbaas-private-0123456789ab@localhost``."""
        return self._node

    @property
    def port(self) -> int:
        """The AMQP port on 127.0.0.1; the same across restarts."""
        return self._port

    @property
    def dist_port(self) -> int:
        """The Erlang distribution port (may change on a restart if it was taken)."""
        return self._dist_port

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{_HOST}:{self._port}/"

    @property
    def log_file(self) -> Path:
        return self._log_dir / f"{self._node}.log"

    @property
    def running(self) -> bool:
        """Whether any OS process of this node is alive (it may still be booting)."""
        return bool(self._node_pids())

    # ------------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 60) -> None:
        """Start the node and return once an AMQP client can log in to vhost ``/``.

        Idempotent: returns at once if the node already answers. On failure (timeout,
        node died while booting) every process of the node is killed before raising.
        """
        if self._destroyed:
            raise RabbitMQNodeError("this node was destroyed")
        deadline = time.monotonic() + timeout
        if self._node_pids():
            if _amqp_login(self._port, timeout=2.0):
                return
            raise RabbitMQNodeError(
                f"node {self._node} is already running but does not answer on port {self._port}"
            )
        if _port_open(self._port):
            raise RabbitMQNodeError(
                f"port {self._port} of node {self._node} is taken by another process"
            )
        if not _port_free(self._dist_port, reuse_addr=True):
            # Unlike the AMQP port, nobody depends on the distribution port staying put.
            release_port(self._dist_port)
            self._dist_port = allocate_port()
        self._prepare_files()
        began = time.monotonic()
        try:
            self._launch(deadline)
            self._wait_until_usable(deadline)
        except BaseException:
            self._kill_node_processes()
            raise
        _log.info(
            "private RabbitMQ node %s up on port %d in %.1fs",
            self._node,
            self._port,
            time.monotonic() - began,
        )

    def stop(self, timeout: float = 30) -> None:
        """Stop the node gracefully (``rabbitmqctl stop``) and wait until it is gone.

        Returns once the AMQP port is closed and no process of the node is left, so that
        :meth:`start` can follow at once. If the node does not stop in time it is killed
        and :class:`RabbitMQNodeError` is raised.
        """
        if not self._node_pids():
            return
        deadline = time.monotonic() + timeout
        ctl = _which("rabbitmqctl")
        assert ctl is not None  # checked in __init__
        try:
            result = subprocess.run(
                [ctl, "-q", "-n", self._node, "stop"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=max(1.0, deadline - time.monotonic()),
                check=False,
            )
            ctl_failure = (
                f"rabbitmqctl stop exited {result.returncode}: {result.stderr.strip()}"
                if result.returncode != 0
                else None
            )
        except subprocess.TimeoutExpired:
            ctl_failure = "rabbitmqctl stop timed out"
        if _poll_until(deadline, self._is_gone):
            if ctl_failure is not None:
                _log.warning("node %s stopped anyway (%s)", self._node, ctl_failure)
            return
        self._kill_node_processes()
        raise RabbitMQNodeError(
            f"node {self._node} did not stop within {timeout}s and was killed"
            + (f" ({ctl_failure})" if ctl_failure else "")
        )

    def destroy(self) -> None:
        """Stop the node if it runs, kill anything left of it, delete ``base_dir``.

        Safe to call more than once and after a failed :meth:`start`.
        """
        try:
            if self._node_pids():
                try:
                    self.stop(timeout=15)
                except (RabbitMQNodeError, OSError, subprocess.SubprocessError) as exc:
                    _log.warning("stopping node %s before removal: %s", self._node, exc)
        finally:
            self._kill_node_processes()
            self._destroyed = True
            _live_nodes.discard(self)
            release_port(self._port)
            release_port(self._dist_port)
            if self._base_dir.exists():
                shutil.rmtree(self._base_dir)

    def __repr__(self) -> str:
        return f"PrivateRabbitMQ(node={self._node!r}, port={self._port}, base_dir={self._base_dir})"

    # ------------------------------------------------------------------ internals

    def _env(self) -> dict[str, str]:
        # Start from a clean slate: no RABBITMQ_* setting of the caller leaks in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env["PATH"] = f"{env.get('PATH', '/usr/bin:/bin')}:{_SBIN_PATH}"
        env.update(
            RABBITMQ_NODENAME=self._node,
            RABBITMQ_NODE_PORT=str(self._port),
            RABBITMQ_DIST_PORT=str(self._dist_port),
            RABBITMQ_MNESIA_BASE=str(self._mnesia_dir),
            RABBITMQ_LOG_BASE=str(self._log_dir),
            # RabbitMQ 3.10 (Debian) accepts the path with or without ".conf"; measured
            # both. The full file name is the documented form.
            RABBITMQ_CONFIG_FILE=str(self._config_file),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self._plugins_file),
            RABBITMQ_PID_FILE=str(self._pid_file),
            # Keep the machine's /etc/rabbitmq/advanced.config and conf.d/ out (neither
            # file exists here, so the node runs on rabbitmq.conf alone).
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self._base_dir / "advanced.config"),
            RABBITMQ_CONFIG_FILES=str(self._base_dir / "conf.d"),
            # The VM runs in /var/lib/rabbitmq, the machine node's home: a crash dump of
            # ours must not land there.
            ERL_CRASH_DUMP=str(self._crash_dump),
        )
        return env

    def _prepare_files(self) -> None:
        self._base_dir.mkdir(parents=True, exist_ok=True)
        self._mnesia_dir.mkdir(exist_ok=True)
        self._log_dir.mkdir(exist_ok=True)
        self._config_file.write_text(
            f"listeners.tcp.default = {_HOST}:{self._port}\nloopback_users = none\n"
        )
        self._plugins_file.write_text("[].\n")
        self._pid_file.unlink(missing_ok=True)
        self._crash_dump.unlink(missing_ok=True)
        entry = pwd.getpwnam(_RABBITMQ_USER)
        _chown_tree(self._base_dir, entry.pw_uid, entry.pw_gid)

    def _launch(self, deadline: float) -> None:
        server = _which("rabbitmq-server")
        assert server is not None  # checked in __init__
        # Output to a file, not a pipe: the detached VM must not hold our pipe open.
        with self._launch_output.open("wb") as out:
            try:
                result = subprocess.run(
                    [server, "-detached"],
                    env=self._env(),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=max(1.0, deadline - time.monotonic()),
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise RabbitMQNodeError(
                    f"rabbitmq-server -detached did not return in time\n{self._diagnostics()}"
                ) from exc
        if result.returncode != 0:
            raise RabbitMQNodeError(
                f"rabbitmq-server -detached exited {result.returncode}\n{self._diagnostics()}"
            )

    def _wait_until_usable(self, deadline: float) -> None:
        absent_checks = 0
        next_liveness_check = time.monotonic()
        while True:
            if _amqp_login(self._port, timeout=2.0):
                return
            now = time.monotonic()
            if now >= deadline:
                raise RabbitMQNodeError(
                    f"node {self._node} did not accept AMQP logins on port {self._port} "
                    f"in time\n{self._diagnostics()}"
                )
            if now >= next_liveness_check:
                next_liveness_check = now + 0.5
                absent_checks = 0 if self._node_pids() else absent_checks + 1
                if absent_checks >= 2:
                    raise RabbitMQNodeError(
                        f"node {self._node} exited while starting\n{self._diagnostics()}"
                    )
            time.sleep(_POLL_INTERVAL_S)

    def _is_gone(self) -> bool:
        return not _port_open(self._port) and not self._node_pids()

    def _node_pids(self) -> list[int]:
        """PIDs of this node's processes: the VM and its helpers, not a shared epmd.

        Found by the unique ``RABBITMQ_NODENAME`` in their environment, so they are found
        even when the pid file was never written (a start that failed half-way).
        """
        marker = f"RABBITMQ_NODENAME={self._node}".encode()
        return [pid for pid in _pids_with_env_entry(marker) if _comm(pid) != "epmd"]

    def _kill_node_processes(self, grace: float = 5.0) -> None:
        pids = self._node_pids()
        if not pids:
            return
        _log.warning("killing what is left of node %s: pids %s", self._node, pids)
        for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            for pid in self._node_pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            if _poll_until(time.monotonic() + wait_s, lambda: not self._node_pids()):
                return
        raise RabbitMQNodeError(f"could not kill node {self._node}: {self._node_pids()}")

    def _diagnostics(self) -> str:
        parts: list[str] = []
        slogan = _crash_dump_slogan(self._crash_dump)
        if slogan is not None:
            parts.append(f"--- the VM crashed ({self._crash_dump}): {slogan}")
        for path in (self._launch_output, self.log_file):
            try:
                lines = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            if lines:
                tail = "\n".join(lines[-_LOG_TAIL_LINES:])
                parts.append(f"--- last lines of {path}:\n{tail}")
        return "\n".join(parts) or f"(no output; see {self._log_dir})"


# ---------------------------------------------------------------------- helpers


def _which(command: str) -> str | None:
    return shutil.which(command, path=f"{os.environ.get('PATH', '')}:{_SBIN_PATH}")


def _crash_dump_slogan(path: Path) -> str | None:
    """The ``Slogan:`` line of an Erlang crash dump: why the VM died."""
    try:
        with path.open(errors="replace") as dump:
            for _, line in zip(range(10), dump, strict=False):
                if line.startswith("Slogan:"):
                    return line.removeprefix("Slogan:").strip()
    except OSError:
        pass
    return None


def _check_reachable_by_rabbitmq(base_dir: Path) -> None:
    """Fail early if the rabbitmq user cannot traverse the parents of ``base_dir``."""
    entry = pwd.getpwnam(_RABBITMQ_USER)
    groups = {entry.pw_gid} | {g for g in os.getgrouplist(_RABBITMQ_USER, entry.pw_gid)}
    for parent in base_dir.parents:
        try:
            st = parent.stat()
        except FileNotFoundError:  # made later by start(), as root with mode 0755
            continue
        if st.st_uid == entry.pw_uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid in groups:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            raise RabbitMQNodeError(
                f"the {_RABBITMQ_USER!r} user cannot enter {parent} (mode "
                f"{stat.filemode(st.st_mode)}), so a node cannot live under {base_dir}: "
                "use a directory made by tempfile.mkdtemp() (PrivateRabbitMQ.in_temp_dir())"
            )


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def _ephemeral_port_floor() -> int:
    try:
        low = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]
        return int(low)
    except (OSError, ValueError, IndexError):
        return 32768


def _port_free(port: int, *, reuse_addr: bool = False) -> bool:
    """Whether nothing is bound to ``port`` on any IPv4 address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if reuse_addr:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def allocate_port() -> int:
    """A free TCP port below the ephemeral range, so client sockets never take it.

    A node's AMQP port must stay free while the node is stopped between a stop() and a
    start(); ports from the ephemeral range could meanwhile be used by outgoing
    connections.
    """
    floor = _ephemeral_port_floor()
    with _allocated_ports_lock:
        if floor > 12000:
            candidates = list(range(10000, floor))
            random.shuffle(candidates)
            for port in candidates[:500]:
                if port in _RESERVED_PORTS or port in _allocated_ports:
                    continue
                if _port_free(port):
                    _allocated_ports.add(port)
                    return port
        while True:  # odd port range: let the kernel choose
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("0.0.0.0", 0))
                port = int(sock.getsockname()[1])
            if port not in _RESERVED_PORTS and port not in _allocated_ports:
                _allocated_ports.add(port)
                return port


def release_port(port: int) -> None:
    with _allocated_ports_lock:
        _allocated_ports.discard(port)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((_HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def _poll_until(deadline: float, condition: Callable[[], bool]) -> bool:
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL_S / 2)


def _iter_pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def _pids_with_env_entry(entry: bytes) -> list[int]:
    pids: list[int] = []
    for pid in _iter_pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if entry in environ.split(b"\0"):
            pids.append(pid)
    return pids


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


# --------------------------------------------------------- AMQP 0-9-1 handshake

_FRAME_METHOD: Final = 1
_FRAME_END: Final = b"\xce"


def _shortstr(value: bytes) -> bytes:
    return struct.pack("!B", len(value)) + value


def _longstr(value: bytes) -> bytes:
    return struct.pack("!I", len(value)) + value


def _send_method(sock: socket.socket, class_id: int, method_id: int, args: bytes) -> None:
    payload = struct.pack("!HH", class_id, method_id) + args
    sock.sendall(struct.pack("!BHI", _FRAME_METHOD, 0, len(payload)) + payload + _FRAME_END)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _recv_method(sock: socket.socket) -> tuple[int, int, bytes]:
    """The next method frame on channel 0 as (class id, method id, arguments)."""
    while True:
        frame_type, _channel, size = struct.unpack("!BHI", _recv_exactly(sock, 7))
        payload = _recv_exactly(sock, size)
        if _recv_exactly(sock, 1) != _FRAME_END:
            raise ValueError("bad AMQP frame end")
        if frame_type == _FRAME_METHOD:
            class_id, method_id = struct.unpack("!HH", payload[:4])
            return class_id, method_id, payload[4:]
        # heartbeats and anything else: skip


def _expect(sock: socket.socket, class_id: int, method_id: int) -> bytes:
    got_class, got_method, args = _recv_method(sock)
    if (got_class, got_method) != (class_id, method_id):
        raise ValueError(
            f"expected AMQP method {class_id}.{method_id}, got {got_class}.{got_method}"
        )
    return args


def _amqp_login(port: int, timeout: float) -> bool:
    """Whether guest/guest can open vhost ``/`` on 127.0.0.1:port (AMQP 0-9-1).

    The listener opens a little before the node can serve; a completed
    Connection.Open proves the broker, its users and its default vhost are ready.
    """
    try:
        with socket.create_connection((_HOST, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            _expect(sock, 10, 10)  # Connection.Start
            start_ok = (
                struct.pack("!I", 0)  # client properties: empty table
                + _shortstr(b"PLAIN")
                + _longstr(b"\x00guest\x00guest")
                + _shortstr(b"en_US")
            )
            _send_method(sock, 10, 11, start_ok)
            tune = _expect(sock, 10, 30)  # Connection.Tune
            channel_max, frame_max, _heartbeat = struct.unpack("!HIH", tune[:8])
            _send_method(sock, 10, 31, struct.pack("!HIH", channel_max, frame_max, 0))
            _send_method(sock, 10, 40, _shortstr(b"/") + _shortstr(b"") + b"\x00")
            _expect(sock, 10, 41)  # Connection.OpenOk
            _send_method(sock, 10, 50, struct.pack("!H", 200) + _shortstr(b"bye") + b"\0\0\0\0")
            _expect(sock, 10, 51)  # Connection.CloseOk
            return True
    except (OSError, ValueError, struct.error):
        return False


# ------------------------------------------------------------------- safety net


@atexit.register
def _kill_forgotten_nodes() -> None:
    """Never leave a node running when the test process exits without destroy()."""
    for node in list(_live_nodes):
        try:
            node.destroy()
        except Exception:  # best effort at exit: report and go on with the others
            _log.exception("destroying forgotten private RabbitMQ node %s", node.node_name)
