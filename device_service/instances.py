"""One HAProxy instance per load balancer: its directory, its process and its life cycle.

``<state>/<lb id hex>/`` holds ``haproxy.cfg`` (the running configuration),
``meta.json`` (generation, digest, epoch, counters carried across reloads),
the master and stats sockets, the pid file, the server-state file and
``haproxy.log`` (the master's output: why a start or reload failed). A
configuration HAProxy rejects is kept as ``haproxy.cfg.failed``.

The master runs in the foreground (``-W``, not ``-D``) in a session of its
own: it outlives ``lbaas-device`` as a daemon would, and its output, which
``-D`` would send to /dev/null, says why a reload failed.
"""

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from uuid import UUID

from device_service.haproxy import (
    CLI_TIMEOUT,
    MINIMAL_ENVIRONMENT,
    HaproxyError,
    Processes,
    Unconfirmed,
    alerts,
    check_config,
    cli,
    parse_show_proc,
    parse_show_stat,
    process_alive,
    processes_of,
)
from device_service.metrics import DeviceMetrics
from device_service.settings import DeviceSettings
from shared.device_api import (
    Applied,
    InstanceOut,
    InstanceStatus,
    ProxyCounters,
    ServerState,
    config_digest,
)

log = logging.getLogger(__name__)

CARRIED = ("stot", "bin", "bout", "ereq")
"""Frontend counters that a reload resets and the device carries over; ``scur`` is a gauge."""
MAX_LOG_BYTES = 1024 * 1024
_POLL = 0.02


class Rejected(Exception):
    """HAProxy rejected the configuration; the previous one keeps serving."""


class Superseded(Exception):
    """The instance holds a newer generation than the one put: nothing changes."""


_SECTIONS = frozenset({"defaults", "frontend", "backend"})
_FOREIGN_WORDS = frozenset(
    {
        "-f",
        "external-check",
        "errorfile",
        "errorloc",
        "errorloc302",
        "errorloc303",
        "ca-file",
        "crt",
        "crt-list",
        "crl-file",
        "file",
        "lf-file",
        "server-state-file",
        "socket",
    }
)
_EXPRESSIONS = frozenset({"%[dst_port]", "%[src]"})
"""The only log-format expressions the renderer writes."""
_BALANCES = frozenset({"roundrobin", "leastconn", "source", "hash src,concat(:,txn.src_port)"})
"""The algorithms the renderer writes: ``balance hash`` takes any sample expression."""


def _foreign(word: str) -> bool:
    """A word that reads a file or runs code: a keyword, a Lua fetch or action, a map
    converter, or a log-format expression the renderer does not write."""
    return (
        word in _FOREIGN_WORDS
        or word.startswith(("lua.", "lua-"))
        or ",map" in word
        or ",lua." in word
        or ("%[" in word and word not in _EXPRESSIONS)
    )


_QUOTED = re.compile(r"'[^']*'")
_WORDS = re.compile(r"\s*(?:(?:'[^']*'|[^\s'\"\\]+)(?=\s|\Z)\s*)*")
"""A line of words, each single-quoted whole or free of quotes and backslashes."""


def refuse_foreign(body: str) -> str | None:
    """Why ``body`` is not what the agent renders, or None (defence in depth).

    The agent only ever sends ``defaults``, ``frontend`` and ``backend``
    sections; its words are single-quoted whole (user values) or free of
    quotes and backslashes, and none reads a file or runs code on the device
    host. Even a caller with the secret gets nothing else past the daemon.
    """
    for number, line in enumerate(body.splitlines(), start=1):
        if line and not line[0].isspace() and line.split()[0] not in _SECTIONS:
            return f"line {number}: only defaults, frontend and backend sections are accepted"
        if not _WORDS.fullmatch(line):
            return f"line {number}: quotes and backslashes stand only around whole values"
        words = _QUOTED.sub("''", line).split()
        for word in words:
            if _foreign(word):
                return f"line {number}: {word!r} is not accepted on this device"
        if words[:1] == ["load-server-state-from-file"] and words[1:] != ["global"]:
            return f"line {number}: only load-server-state-from-file global is accepted"
        if words[:1] == ["balance"] and " ".join(words[1:]) not in _BALANCES:
            return f"line {number}: only balance {', '.join(sorted(_BALANCES))} are accepted"
    return None


@dataclass
class Meta:
    generation: int
    digest: str
    runnable: bool
    epoch: str = field(default_factory=lambda: uuid.uuid4().hex)
    carried: dict[str, dict[str, int]] = field(default_factory=dict)


class Instance:
    """The files and process of one load balancer. Callers hold :attr:`lock` around changes."""

    def __init__(
        self, settings: DeviceSettings, metrics: DeviceMetrics, loadbalancer_id: UUID
    ) -> None:
        self.id = loadbalancer_id
        self.settings = settings
        self.metrics = metrics
        self.dir = settings.state_dir / loadbalancer_id.hex
        self.lock = asyncio.Lock()
        self.users = 0
        self._process: asyncio.subprocess.Process | None = None

    config = property(lambda self: self.dir / "haproxy.cfg")
    candidate = property(lambda self: self.dir / "haproxy.cfg.new")
    previous = property(lambda self: self.dir / "haproxy.cfg.prev")
    failed = property(lambda self: self.dir / "haproxy.cfg.failed")
    meta_path = property(lambda self: self.dir / "meta.json")
    master_socket = property(lambda self: self.dir / "master.sock")
    stats_socket = property(lambda self: self.dir / "stats.sock")
    pid_file = property(lambda self: self.dir / "haproxy.pid")
    state_file = property(lambda self: self.dir / "server-state")
    log_file = property(lambda self: self.dir / "haproxy.log")

    def meta(self) -> Meta | None:
        try:
            return Meta(**json.loads(self.meta_path.read_text()))
        except FileNotFoundError:
            return None

    def master_pid(self) -> int | None:
        """The live master serving this instance, checked against ``/proc``, if any."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        return pid if process_alive(pid, self.config) else None

    def state(self, meta: Meta) -> str:
        if not meta.runnable:
            return "idle"
        return "running" if self.master_pid() is not None else "down"

    def describe(self, meta: Meta) -> InstanceOut:
        return InstanceOut(
            id=self.id, generation=meta.generation, digest=meta.digest, state=self.state(meta)
        )

    async def put(self, generation: int, body: str) -> Applied:
        """Make ``body`` the running configuration, or raise :class:`Rejected` and keep the old."""
        digest = config_digest(body)
        meta = self.meta()
        if meta is not None and meta.generation > generation:
            raise Superseded(f"holds generation {meta.generation}, newer than {generation}")
        if meta is not None and meta.digest == digest and self.state(meta) != "down":
            if meta.generation != generation:
                meta.generation = generation
                self._save(meta)
            return Applied(**self.describe(meta).model_dump(), changed=False)
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write(self.candidate, self._compose(body))
        check = await check_config(self.settings.haproxy, self.candidate)
        if not check.ok:
            self.candidate.replace(self.failed)
            raise Rejected(self._clean(check.message))
        new = Meta(generation, digest, check.runnable)
        if not check.runnable:
            self.candidate.replace(self.config)
            await self.stop()
        elif self.master_pid() is None:
            await self._activate(lambda: self._counted("start", self._start))
        else:
            if meta is not None:
                new.epoch, new.carried = meta.epoch, meta.carried
            await self._activate(lambda: self._counted("reload", lambda: self._reload(new)))
        self._save(new)
        self.failed.unlink(missing_ok=True)
        return Applied(**self.describe(new).model_dump(), changed=True)

    async def _activate(self, activate: Callable[[], Awaitable[None]]) -> None:
        """Put the candidate in place and activate it; on any failure put the previous one back.

        HAProxy's refusal becomes :class:`Rejected`; anything else (a timeout, a
        socket that did not answer) is raised as it is: the apply may be tried again.
        """
        had_previous = self.config.exists()
        if had_previous:
            shutil.copy2(self.config, self.previous)
        self.candidate.replace(self.config)
        try:
            await activate()
        except BaseException as exc:
            shutil.copy2(self.config, self.failed)
            if had_previous:
                self.previous.replace(self.config)
            else:
                self.config.unlink(missing_ok=True)
            if isinstance(exc, HaproxyError):
                raise Rejected(self._clean(str(exc))) from None
            raise

    async def ensure_running(self) -> None:
        """Start the instance if its configuration should run and no process serves it."""
        meta = self.meta()
        if meta is None or not meta.runnable or self.master_pid() is not None:
            return
        meta.epoch, meta.carried = uuid.uuid4().hex, {}
        await self._counted("restart", self._start)
        self._save(meta)

    async def _counted(self, kind: str, work: Callable[[], Awaitable[None]]) -> None:
        """``work`` (a start or reload), counted by how it went."""
        try:
            await work()
        except HaproxyError:
            self.metrics.reloads.labels(kind, "failed").inc()
            raise
        except Unconfirmed:
            self.metrics.reloads.labels(kind, "unconfirmed").inc()
            raise
        self.metrics.reloads.labels(kind, "confirmed").inc()

    async def _start(self) -> None:
        """Start a master, after making sure no other process runs this configuration."""
        for pid in processes_of(self.config):
            log.warning("killing a stray HAProxy process %d of %s", pid, self.id)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.master_socket.unlink(missing_ok=True)
        offset = _size(self.log_file)
        with self.log_file.open("ab") as output:
            self._process = await asyncio.create_subprocess_exec(
                self.settings.haproxy,
                "-W",
                "-S",
                f"{self.master_socket},mode,600",
                "-f",
                str(self.config),
                "-p",
                str(self.pid_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                env=MINIMAL_ENVIRONMENT,
                start_new_session=True,
            )
        process = self._process
        deadline = time.monotonic() + self.settings.reload_timeout
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise HaproxyError(self._log_since(offset) or "HAProxy exited at start")
            shown = await self._processes()
            if shown is not None and shown.workers:
                log.info("started HAProxy for %s (master %d)", self.id, shown.master)
                return
            await asyncio.sleep(_POLL)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise Unconfirmed(
            f"HAProxy showed no worker within {self.settings.reload_timeout:g} s of its start"
        )

    async def _reload(self, new: Meta) -> None:
        """Reload through the master socket; confirmed by a new worker and no new failure."""
        before = await self._processes()
        if before is None:
            raise Unconfirmed("the master socket did not answer before the reload")
        counters = await self._frontend_counters()
        await self._save_server_state()
        offset = _size(self.log_file)
        await cli(self.master_socket, "reload")
        deadline = time.monotonic() + self.settings.reload_timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(_POLL)
            shown = await self._processes()
            if shown is None:
                continue
            if shown.failed > before.failed:
                raise HaproxyError(self._log_since(offset) or "HAProxy failed to reload")
            if shown.reloads > before.reloads and shown.workers - before.workers:
                _carry(new, counters)
                return
        raise Unconfirmed(
            f"the reload showed no new worker within {self.settings.reload_timeout:g} s"
        )

    async def stop(self) -> None:
        """Soft-stop the master (listeners close at once), then kill whatever is left."""
        master = self.master_pid()
        if master is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(master, signal.SIGUSR1)
        await _exited(self.config, time.monotonic() + self.settings.stop_grace)
        for pid in processes_of(self.config):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._process is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLI_TIMEOUT):
                    await self._process.wait()
            self._process = None

    async def remove(self) -> None:
        await self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def status(self, meta: Meta) -> InstanceStatus:
        """Health and counters from the stats socket (none when no process runs)."""
        described = self.describe(meta)
        frontends: dict[str, ProxyCounters] = {}
        servers: dict[str, ServerState] = {}
        if described.state == "running":
            rows = parse_show_stat(await cli(self.stats_socket, "show stat"))
            for row in rows:
                if row.get("svname") == "FRONTEND":
                    carried = meta.carried.get(row["pxname"], {})
                    frontends[row["pxname"]] = ProxyCounters(
                        status=row.get("status", ""),
                        scur=_int(row, "scur"),
                        **{name: _int(row, name) + carried.get(name, 0) for name in CARRIED},
                    )
                elif row.get("type") == "2":
                    servers[row["svname"]] = ServerState(
                        backend=row["pxname"],
                        status=row.get("status", ""),
                        weight=_int(row, "weight"),
                        check_status=row.get("check_status", ""),
                    )
        return InstanceStatus(
            **described.model_dump(), epoch=meta.epoch, frontends=frontends, servers=servers
        )

    def trim_log(self) -> None:
        """HAProxy appends to its log (``O_APPEND``): truncating it in place is safe."""
        if _size(self.log_file) > MAX_LOG_BYTES:
            with self.log_file.open("r+b") as output:
                output.truncate(0)

    async def _processes(self) -> Processes | None:
        try:
            return parse_show_proc(await cli(self.master_socket, "show proc"))
        except (OSError, TimeoutError):
            return None

    async def _frontend_counters(self) -> dict[str, dict[str, int]]:
        rows = parse_show_stat(await cli(self.stats_socket, "show stat"))
        return {
            row["pxname"]: {name: _int(row, name) for name in CARRIED}
            for row in rows
            if row.get("svname") == "FRONTEND"
        }

    async def _save_server_state(self) -> None:
        """``show servers state`` into the server-state file, so health survives the reload."""
        _write(self.state_file, await cli(self.stats_socket, "show servers state"))

    def _compose(self, body: str) -> str:
        settings = self.settings
        lines = [
            "global",
            "    nbthread 1",
            f"    hard-stop-after {settings.hard_stop_after}s",
            f"    stats socket {self.stats_socket} mode 600 level admin",
            f"    server-state-file {self.state_file}",
        ]
        if settings.maxconn is not None:
            lines.append(f"    maxconn {settings.maxconn}")
        return "\n".join(lines) + "\n\n" + body

    def _save(self, meta: Meta) -> None:
        _write(self.meta_path, json.dumps(asdict(meta)))

    def _log_since(self, offset: int) -> str:
        with self.log_file.open("rb") as output:
            output.seek(offset)
            return alerts(output.read().decode(errors="replace"))

    def _clean(self, message: str) -> str:
        """HAProxy's message without the device's paths."""
        return message.replace(f"{self.dir}/", "")


class Instances:
    """Every instance of the device, created on demand and forgotten once removed and unused."""

    def __init__(self, settings: DeviceSettings, metrics: DeviceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._instances: dict[UUID, Instance] = {}

    @asynccontextmanager
    async def hold(
        self, loadbalancer_id: UUID, *, wait: float | None = None
    ) -> AsyncIterator[Instance]:
        """The instance, locked; ``TimeoutError`` when it stays locked longer than ``wait``."""
        instance = self._instances.get(loadbalancer_id)
        if instance is None:
            instance = self._instances[loadbalancer_id] = Instance(
                self.settings, self.metrics, loadbalancer_id
            )
        instance.users += 1
        try:
            async with asyncio.timeout(wait):
                await instance.lock.acquire()
            try:
                yield instance
            finally:
                instance.lock.release()
        finally:
            instance.users -= 1
            if instance.users == 0 and not instance.dir.exists():
                del self._instances[loadbalancer_id]

    def known(self) -> list[UUID]:
        """Every load balancer with a directory, sorted."""
        root = self.settings.state_dir
        found = []
        for entry in root.iterdir() if root.is_dir() else []:
            with contextlib.suppress(ValueError):
                if entry.is_dir() and len(entry.name) == 32:
                    found.append(UUID(hex=entry.name))
        return sorted(found)

    async def adopt(self) -> None:
        """At start: keep instances still running, start the others, drop half-made ones."""
        self.settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for loadbalancer_id in self.known():
            async with self.hold(loadbalancer_id) as instance:
                meta = instance.meta()
                if meta is None:
                    log.warning("removing %s: it has no complete configuration", instance.dir)
                    await instance.remove()
                    continue
                pid = instance.master_pid()
                if pid is not None:
                    log.info("adopted HAProxy for %s (master %d)", loadbalancer_id, pid)
                    continue
                await _restart(instance)

    async def supervise(self) -> None:
        """Forever: restart every instance whose process died."""
        while True:
            await asyncio.sleep(self.settings.supervise_interval)
            states: dict[str, int] = dict.fromkeys(("running", "idle", "down"), 0)
            for loadbalancer_id in self.known():
                existing = self._instances.get(loadbalancer_id)
                if existing is not None and existing.lock.locked():
                    continue
                try:
                    async with self.hold(loadbalancer_id) as instance:
                        instance.trim_log()
                        meta = instance.meta()
                        if meta is not None and instance.state(meta) == "down":
                            log.warning("HAProxy for %s is not running; restarting it", instance.id)
                            await _restart(instance)
                        if meta is not None:
                            states[instance.state(meta)] += 1
                except Exception:
                    log.exception("supervising %s failed", loadbalancer_id)
            for state, count in states.items():
                self.metrics.instances.labels(state).set(count)


async def _restart(instance: Instance) -> None:
    try:
        await instance.ensure_running()
    except (HaproxyError, Unconfirmed) as exc:
        log.error("HAProxy for %s did not start: %s", instance.id, instance._clean(str(exc)))


async def _exited(config: Path, deadline: float) -> None:
    """Until no process runs ``config`` or the deadline: they are not our children to wait on."""
    while time.monotonic() < deadline:
        if not processes_of(config):
            return
        await asyncio.sleep(_POLL * 5)


def _carry(meta: Meta, counters: dict[str, dict[str, int]]) -> None:
    for proxy, values in counters.items():
        carried = meta.carried.setdefault(proxy, {})
        for name, value in values.items():
            carried[name] = carried.get(name, 0) + value


def _int(row: dict[str, str], name: str) -> int:
    value = row.get(name) or "0"
    return int(value) if value.isdigit() else 0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically and durably."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as output:
        output.write(text)
        output.flush()
        os.fsync(output.fileno())
    temporary.replace(path)
