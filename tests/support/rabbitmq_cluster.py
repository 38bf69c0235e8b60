"""A private three-node RabbitMQ cluster for fault tests that lose a node.

The machine's own node (``rabbit@localhost``: AMQP 127.0.0.1:5672, distribution port
25672, the machine's epmd on 4369 and the ``rabbitmq`` user's Erlang cookie) is shared
and must never be stopped, nor joined. :class:`RabbitMQCluster` starts its nodes beside
it, sharing nothing with it:

- its own ``HOME`` holding an ``.erlang.cookie`` (mode 400), read by the servers and by
  ``rabbitmqctl``, so no machine node can talk to ours nor ours to it;
- its own epmd (``epmd -port P -address 127.0.0.1``, run in the foreground: its pid is
  ours) and ``ERL_EPMD_PORT=P`` for every Erlang VM of the cluster, so Erlang never
  starts an ``epmd -daemon`` that outlives the test;
- per node: a name, an AMQP port, a distribution port, data, logs, a configuration
  file (``listeners.tcp.default = 127.0.0.1:<port>``, ``loopback_users = none``) and an
  empty ``rabbitmq-env.conf`` (the system one says ``NODENAME=rabbit@localhost``);
- the CLI's own distribution listener pinned to a private block of ports.

Every port is taken below the ephemeral range (32768+) and outside 35672-35682, the
range ``rabbitmqctl`` listens in by default. The servers are started from
``/usr/lib/rabbitmq/bin`` directly: the ``/usr/sbin`` wrappers switch to the
``rabbitmq`` user and its HOME, hence to the machine's cookie. They run as the calling
user (root is fine) in the foreground, as children of this process.

Quorum queues get a member on every node (``quorum_cluster_size`` is set to the
cluster's size) and their leader on the node the declaring client is connected to.

Measured here (RabbitMQ 3.10.8, two busy cores): the cluster is up and joined in
21-25 s (13-15 s for the three nodes booting in parallel, 7-10 s to join); a clean
stop of a node takes 1.6-3 s; a node started again on its data is back in the cluster
in 6-10 s (3.4-5.2 s on an idle machine), after a stop or a ``kill -9`` alike.
When *every* node is stopped, a node started alone waits for its peers and serves no
AMQP: start them together, one thread each (``asyncio.gather`` of
``asyncio.to_thread(node.start)``): 16 s.

Everything here is synchronous (subprocesses with timeouts, sockets); async tests call
it through :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import string
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final
from urllib.parse import quote

from tests.support.rabbitmq_node import (
    _HOST,
    _LOG_TAIL_LINES,
    _POLL_INTERVAL_S,
    _RESERVED_PORTS,
    _allocated_ports,
    _allocated_ports_lock,
    _amqp_login,
    _comm,
    _crash_dump_slogan,
    _ephemeral_port_floor,
    _pids_with_env_entry,
    _poll_until,
    _port_free,
    _port_open,
    allocate_port,
    release_port,
)

__all__ = ["ClusterNode", "RabbitMQCluster", "RabbitMQClusterError"]

_log = logging.getLogger(__name__)

_RABBITMQ_BIN: Final = Path("/usr/lib/rabbitmq/bin")
_SERVER: Final = _RABBITMQ_BIN / "rabbitmq-server"
_CTL: Final = _RABBITMQ_BIN / "rabbitmqctl"
# Concurrent rabbitmqctl runs each need a port of this block.
_CTL_PORT_COUNT: Final = 10
_DIST_ON_LOOPBACK: Final = "-kernel inet_dist_use_interface {127,0,0,1}"
# The environment entry carried by every process of a cluster (epmd, nodes, CLI runs).
_MARKER: Final = "LBAAS_RABBITMQ_CLUSTER"

# Clusters created by this process and not destroyed yet: destroyed at interpreter exit.
_live_clusters: set[RabbitMQCluster] = set()


class RabbitMQClusterError(RuntimeError):
    """The private cluster, or one of its nodes, could not be started or stopped as asked."""


class ClusterNode:
    """One node of a :class:`RabbitMQCluster`: a name, an AMQP port, its data.

    The name, AMQP port and data directory never change, so :meth:`start` after
    :meth:`stop` or :meth:`kill` brings back the same member, at the same :attr:`url`,
    with its durable queues and quorum replicas. Not thread-safe for one node; distinct
    nodes may be started or stopped from distinct threads.
    """

    def __init__(self, cluster: RabbitMQCluster, index: int) -> None:
        self._cluster = cluster
        self.index = index
        self.name = f"lbaas-{cluster.id}-{index + 1}@localhost"
        self.port = allocate_port()
        self.dist_port = allocate_port()
        self.dir = cluster.base_dir / f"node{index + 1}"
        self._mnesia_dir = self.dir / "mnesia"
        self._log_dir = self.dir / "log"
        self._config_file = self.dir / "rabbitmq.conf"
        self._advanced_config = self.dir / "advanced.config"
        self._plugins_file = self.dir / "enabled_plugins"
        self._pid_file = self.dir / "rabbitmq.pid"
        self._output = self.dir / "rabbitmq-server.out"
        self._crash_dump = self.dir / "erl_crash.dump"
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def url(self) -> str:
        """``amqp://guest:guest@127.0.0.1:PORT/`` (vhost ``/``); the same across restarts."""
        return self.url_for()

    def url_for(self, vhost: str = "/") -> str:
        path = "" if vhost == "/" else quote(vhost, safe="")
        return f"amqp://guest:guest@{_HOST}:{self.port}/{path}"

    @property
    def log_file(self) -> Path:
        return self._log_dir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        """Whether any OS process of this node is alive (it may still be booting)."""
        return bool(self._pids())

    # ------------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 90) -> None:
        """Start the node on its data; return once it is back in the cluster.

        Back means: guest can log in over AMQP, and ``cluster_status`` on a running peer
        (on the node itself if no peer runs) lists it among the running nodes. Returns
        at once if the node already answers. On failure every process of the node is
        killed before raising.
        """
        if self._cluster.destroyed:
            raise RabbitMQClusterError(f"node {self.name}: its cluster was destroyed")
        deadline = time.monotonic() + timeout
        began = time.monotonic()
        self._launch()
        try:
            self._wait_for_amqp(deadline)
            self._wait_until_clustered(deadline)
        except BaseException:
            self._kill_processes()
            raise
        _log.info("node %s back in %.1fs", self.name, time.monotonic() - began)

    def stop(self, timeout: float = 30) -> None:
        """Stop the node cleanly (``rabbitmqctl -n NODE stop``) and wait until it is gone.

        Returns once its AMQP and distribution ports are closed and no process of it is
        left. If it does not stop in time it is killed and the error is raised.
        """
        if not self.running:
            return
        deadline = time.monotonic() + timeout
        try:
            self._cluster.rabbitmqctl(
                "stop", node=self.index, timeout=max(1.0, deadline - time.monotonic())
            )
            failure = None
        except (RabbitMQClusterError, subprocess.TimeoutExpired) as exc:
            failure = str(exc)
        if _poll_until(deadline, self._is_gone):
            if failure is not None:
                _log.warning("node %s stopped anyway (%s)", self.name, failure)
            self._reap()
            return
        self._kill_processes()
        raise RabbitMQClusterError(
            f"node {self.name} did not stop within {timeout}s and was killed"
            + (f" ({failure})" if failure else "")
        )

    def kill(self, timeout: float = 15) -> None:
        """``kill -9`` the node's Erlang VM (no clean shutdown); return once it is gone."""
        beams = [pid for pid in self._pids() if _comm(pid).startswith("beam")]
        if not beams:
            if self.running:  # booting, before the VM: no beam yet
                self._kill_processes()
            return
        for pid in beams:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not _poll_until(time.monotonic() + timeout, self._is_gone):
            self._kill_processes()
        self._reap()

    def __repr__(self) -> str:
        return f"ClusterNode(name={self.name!r}, port={self.port}, running={self.running})"

    # ------------------------------------------------------------------ internals

    def _env(self) -> dict[str, str]:
        env = self._cluster._env()
        env.update(
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self._mnesia_dir),
            RABBITMQ_LOG_BASE=str(self._log_dir),
            RABBITMQ_CONFIG_FILE=str(self._config_file),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self._advanced_config),
            # Keep the machine's /etc/rabbitmq/conf.d/ out.
            RABBITMQ_CONFIG_FILES=str(self.dir / "conf.d"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self._plugins_file),
            RABBITMQ_PID_FILE=str(self._pid_file),
            # Distribution on loopback only, as the machine's node does.
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=_DIST_ON_LOOPBACK,
            ERL_CRASH_DUMP=str(self._crash_dump),
        )
        return env

    def _prepare_files(self) -> None:
        self._mnesia_dir.mkdir(parents=True, exist_ok=True)
        self._log_dir.mkdir(exist_ok=True)
        self._config_file.write_text(
            f"listeners.tcp.default = {_HOST}:{self.port}\nloopback_users = none\n"
        )
        # No rabbitmq.conf key for it in 3.10: the default group size is 3 whatever
        # the cluster's size; make it "every node".
        size = len(self._cluster.nodes)
        self._advanced_config.write_text(f"[{{rabbit, [{{quorum_cluster_size, {size}}}]}}].\n")
        self._plugins_file.write_text("[].\n")
        self._pid_file.unlink(missing_ok=True)
        self._crash_dump.unlink(missing_ok=True)

    def _launch(self) -> None:
        """Start the server in the foreground, as our child, unless it already runs."""
        if self.running:
            return
        self._reap()
        # A second server for a running node would delete its pid file and fail: check
        # the ports too, not only our processes.
        for what, port in (("AMQP", self.port), ("distribution", self.dist_port)):
            if _port_open(port):
                raise RabbitMQClusterError(
                    f"the {what} port {port} of node {self.name} is taken by another process"
                )
        if not _port_free(self.dist_port, reuse_addr=True):
            # Peers find it through epmd: it need not stay put, unlike the AMQP port.
            release_port(self.dist_port)
            self.dist_port = allocate_port()
        self._prepare_files()
        with self._output.open("ab") as out:
            self._process = subprocess.Popen(
                [str(_SERVER)],
                env=self._env(),
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Out of our process group: a Ctrl-C of the test run is for pytest, whose
                # atexit hook then destroys the cluster.
                start_new_session=True,
            )

    def _wait_for_amqp(self, deadline: float) -> None:
        while not _amqp_login(self.port, timeout=2.0):
            if self._process is not None and self._process.poll() is not None:
                raise RabbitMQClusterError(
                    f"node {self.name} exited ({self._process.returncode}) while starting\n"
                    f"{self.diagnostics()}"
                )
            if time.monotonic() >= deadline:
                raise RabbitMQClusterError(
                    f"node {self.name} did not accept AMQP logins on port {self.port} in "
                    f"time (are all its peers stopped? start them together)\n"
                    f"{self.diagnostics()}"
                )
            time.sleep(_POLL_INTERVAL_S)

    def _wait_until_clustered(self, deadline: float) -> None:
        last_error = ""
        while True:
            peers = [n for n in self._cluster.nodes if n is not self and n.running] or [self]
            for peer in peers:
                try:
                    if self.name in self._cluster.running_nodes(peer.index, timeout=10):
                        return
                    last_error = f"{peer.name} does not list it as running"
                except (RabbitMQClusterError, subprocess.TimeoutExpired) as exc:
                    last_error = str(exc)
            if time.monotonic() >= deadline:
                raise RabbitMQClusterError(
                    f"node {self.name} did not rejoin the cluster in time: {last_error}"
                )
            time.sleep(_POLL_INTERVAL_S * 3)

    def _is_gone(self) -> bool:
        return not _port_open(self.port) and not _port_open(self.dist_port) and not self._pids()

    def _pids(self) -> list[int]:
        """This node's processes (wrapper shell, VM, its helpers), by their environment."""
        marker = f"RABBITMQ_NODENAME={self.name}".encode()
        return [pid for pid in _pids_with_env_entry(marker) if _comm(pid) != "epmd"]

    def _reap(self) -> None:
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
            if self._process.returncode is not None:
                self._process = None

    def _signal_vm(self, sig: signal.Signals) -> None:
        for pid in self._pids():
            if _comm(pid).startswith("beam"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def _kill_processes(self, grace: float = 3.0) -> None:
        if self._pids():
            _log.warning("killing what is left of node %s: pids %s", self.name, self._pids())
        _kill_all(self._pids, grace)
        self._reap()

    def diagnostics(self) -> str:
        """The crash dump's slogan and the tails of the server's output and log."""
        parts: list[str] = []
        slogan = _crash_dump_slogan(self._crash_dump)
        if slogan is not None:
            parts.append(f"--- the VM crashed ({self._crash_dump}): {slogan}")
        for path in (self._output, self.log_file):
            try:
                lines = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            if lines:
                tail = "\n".join(lines[-_LOG_TAIL_LINES:])
                parts.append(f"--- last lines of {path}:\n{tail}")
        return "\n".join(parts) or f"(no output; see {self.dir})"


class RabbitMQCluster:
    """A throwaway RabbitMQ cluster of private nodes on 127.0.0.1, guest/guest usable.

    Made by :meth:`start`; :meth:`destroy` (also run at interpreter exit) stops it,
    kills whatever is left of it and deletes :attr:`base_dir`, which belongs to it.
    """

    def __init__(self, base_dir: Path, size: int) -> None:
        """Lay out the cluster; nothing runs yet. Use :meth:`start`."""
        if size < 1:
            raise ValueError(f"a cluster needs at least one node, not {size}")
        reason = self.unavailable_reason()
        if reason is not None:
            raise RabbitMQClusterError(reason)
        self.id = uuid.uuid4().hex[:10]
        self.base_dir = base_dir.resolve()
        self._home = self.base_dir / "home"
        self._conf_env_file = self.base_dir / "rabbitmq-env.conf"
        self._epmd_log = self.base_dir / "epmd.out"
        self._lock = threading.Lock()
        self._destroyed = False
        self.epmd_port = allocate_port()
        self._ctl_ports = _allocate_port_block(_CTL_PORT_COUNT)
        self._epmd: subprocess.Popen[bytes] | None = None
        self.nodes: list[ClusterNode] = []
        self.nodes = [ClusterNode(self, i) for i in range(size)]
        _live_clusters.add(self)

    @classmethod
    def start(cls, size: int = 3, timeout: float = 120) -> RabbitMQCluster:
        """A new cluster in a :func:`tempfile.mkdtemp` directory, all nodes up and joined."""
        cluster = cls(Path(tempfile.mkdtemp(prefix="lbaas-rabbitmq-cluster-")), size)
        try:
            cluster._boot(time.monotonic() + timeout)
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why no private cluster can be started here (for ``pytest.skip``), or None."""
        if not os.access(_SERVER, os.X_OK) or not os.access(_CTL, os.X_OK):
            return f"{_SERVER} is not installed (apt-get install rabbitmq-server)"
        if shutil.which("epmd") is None:
            return "epmd is not installed (erlang-base)"
        return None

    # ------------------------------------------------------------------- public API

    @property
    def destroyed(self) -> bool:
        return self._destroyed

    def urls(self, vhost: str = "/") -> list[str]:
        """``amqp://guest:guest@127.0.0.1:PORT/vhost`` for each node, in node order."""
        return [node.url_for(vhost) for node in self.nodes]

    def rabbitmqctl(self, *args: str, node: int = 0, timeout: float = 60) -> str:
        """Run ``rabbitmqctl -n NODE ARGS`` against ``nodes[node]``; return its stdout.

        Raises :class:`RabbitMQClusterError` with the command's stderr if it fails, and
        :class:`subprocess.TimeoutExpired` if it does not return within ``timeout``.
        """
        if self._destroyed:
            raise RabbitMQClusterError(f"cluster {self.id} was destroyed")
        command = [str(_CTL), "-n", self.nodes[node].name, *args]
        result = subprocess.run(
            command,
            env=self._env(),
            cwd=self.base_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RabbitMQClusterError(
                f"{' '.join(command[1:])} exited {result.returncode}: "
                f"{(result.stderr.strip() or result.stdout.strip())[:3000]}"
            )
        return result.stdout

    def running_nodes(self, node: int = 0, timeout: float = 30) -> list[str]:
        """The running members of the cluster, as ``nodes[node]`` sees them."""
        out = self.rabbitmqctl("cluster_status", "--formatter", "json", node=node, timeout=timeout)
        status = json.loads(out)
        running: list[str] = status.get("running_nodes", [])
        return running

    def destroy(self) -> None:
        """Stop every node and the epmd, kill leftovers, delete :attr:`base_dir`.

        Safe to call more than once and after a failed start. The nodes get a SIGTERM
        (a clean shutdown in RabbitMQ) together, then a SIGKILL after a few seconds.
        """
        with self._lock:
            if self._destroyed:
                return
            self._destroyed = True
        try:
            for node in self.nodes:
                node._signal_vm(signal.SIGTERM)
            all_gone = _poll_until(
                time.monotonic() + 10, lambda: not any(n.running for n in self.nodes)
            )
            if not all_gone:
                _log.warning("cluster %s: nodes did not stop on SIGTERM", self.id)
            for node in self.nodes:
                node._kill_processes(grace=2.0)
            if self._epmd is not None:
                self._epmd.terminate()
                try:
                    self._epmd.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._epmd.kill()
                    self._epmd.wait(timeout=5)
            # Anything else of ours: a rabbitmqctl run that hung, a node helper.
            _kill_all(self._marked_pids, grace=2.0)
        finally:
            _live_clusters.discard(self)
            for node in self.nodes:
                release_port(node.port)
                release_port(node.dist_port)
            for port in (self.epmd_port, *self._ctl_ports):
                release_port(port)
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"RabbitMQCluster(id={self.id!r}, nodes={self.nodes!r})"

    # ------------------------------------------------------------------ internals

    def _env(self) -> dict[str, str]:
        """The environment shared by the cluster's epmd, servers and CLI runs."""
        # A clean slate: no RABBITMQ_* nor Erlang setting of the caller leaks in.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RABBITMQ_", "ERL_")) and k != _MARKER
        }
        env.update(
            {
                _MARKER: self.id,
                "HOME": str(self._home),
                "ERL_EPMD_PORT": str(self.epmd_port),
                "RABBITMQ_CONF_ENV_FILE": str(self._conf_env_file),
                "RABBITMQ_CTL_DIST_PORT_MIN": str(self._ctl_ports[0]),
                "RABBITMQ_CTL_DIST_PORT_MAX": str(self._ctl_ports[-1]),
                "RABBITMQ_CTL_ERL_ARGS": _DIST_ON_LOOPBACK,
            }
        )
        return env

    def _boot(self, deadline: float) -> None:
        began = time.monotonic()
        self._home.mkdir(parents=True)
        cookie = self._home / ".erlang.cookie"
        alphabet = string.ascii_uppercase
        cookie.write_text("".join(secrets.choice(alphabet) for _ in range(32)))
        cookie.chmod(0o400)
        self._conf_env_file.write_text("")
        self._start_epmd(deadline)
        for node in self.nodes:
            node.dir.mkdir()

        def launch(node: ClusterNode) -> None:
            node._launch()
            node._wait_for_amqp(deadline)

        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            for future in [pool.submit(launch, node) for node in self.nodes]:
                future.result()
        booted = time.monotonic()
        first, joiners = self.nodes[0], self.nodes[1:]

        def ctl(node: ClusterNode, *args: str) -> None:
            self.rabbitmqctl(*args, node=node.index, timeout=max(1.0, deadline - time.monotonic()))

        # stop_app, join_cluster, start_app: the joins one at a time (each changes the
        # cluster's schema), the rest in parallel.
        with ThreadPoolExecutor(max_workers=max(1, len(joiners))) as pool:
            for future in [pool.submit(ctl, node, "stop_app") for node in joiners]:
                future.result()
            for node in joiners:
                ctl(node, "join_cluster", first.name)
            for future in [pool.submit(ctl, node, "start_app") for node in joiners]:
                future.result()
        names = {node.name for node in self.nodes}
        if not _poll_until(deadline, lambda: names <= set(self.running_nodes())):
            missing = names - set(self.running_nodes())
            raise RabbitMQClusterError(f"nodes {sorted(missing)} are not in the cluster")
        for node in self.nodes:
            node._wait_for_amqp(deadline)
        _log.info(
            "private RabbitMQ cluster %s: %d nodes up in %.1fs, joined in %.1fs more",
            self.id,
            len(self.nodes),
            booted - began,
            time.monotonic() - booted,
        )

    def _start_epmd(self, deadline: float) -> None:
        epmd = shutil.which("epmd")
        assert epmd is not None  # checked in __init__
        with self._epmd_log.open("wb") as out:
            self._epmd = subprocess.Popen(
                [epmd, "-port", str(self.epmd_port), "-address", _HOST],
                env=self._env(),
                cwd=self.base_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        epmd_process = self._epmd

        def listening() -> bool:
            if epmd_process.poll() is not None:
                return True
            return _port_open(self.epmd_port)

        _poll_until(deadline, listening)
        if epmd_process.poll() is not None or not _port_open(self.epmd_port):
            log = self._epmd_log.read_text(errors="replace").strip()
            raise RabbitMQClusterError(
                f"epmd did not listen on port {self.epmd_port} "
                f"(exit {epmd_process.poll()}): {log or 'no output'}"
            )

    def _marked_pids(self) -> list[int]:
        return _pids_with_env_entry(f"{_MARKER}={self.id}".encode())


# ---------------------------------------------------------------------- helpers


def _kill_all(pids: Callable[[], list[int]], grace: float) -> None:
    """SIGTERM, then SIGKILL, what ``pids()`` finds, until it finds nothing."""
    for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        found = pids()
        if not found:
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if _poll_until(time.monotonic() + wait_s, lambda: not pids()):
            return
    raise RabbitMQClusterError(f"could not kill processes {pids()}")


def _allocate_port_block(count: int) -> list[int]:
    """``count`` consecutive free ports below the ephemeral range, none reserved."""
    floor = _ephemeral_port_floor()
    with _allocated_ports_lock:
        for _ in range(200):
            first = secrets.randbelow(max(1, floor - 10000 - count)) + 10000
            block = list(range(first, first + count))
            if any(p in _RESERVED_PORTS or p in _allocated_ports for p in block):
                continue
            if all(_port_free(p) for p in block):
                _allocated_ports.update(block)
                return block
    raise RabbitMQClusterError(f"no block of {count} free ports below {floor}")


@atexit.register
def _destroy_forgotten_clusters() -> None:
    """Never leave a cluster running when the test process exits without destroy()."""
    for cluster in list(_live_clusters):
        try:
            cluster.destroy()
        except Exception:  # best effort at exit: report and go on with the others
            _log.exception("destroying forgotten private RabbitMQ cluster %s", cluster.id)
