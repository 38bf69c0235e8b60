"""Talking to HAProxy itself: ``haproxy -c``, its CLI sockets, ``show proc`` and ``show stat``.

HAProxy is always run with a minimal environment, so that nothing of the
daemon's own (secrets included) can be expanded into a configuration.
"""

import asyncio
import csv
import io
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

MINIMAL_ENVIRONMENT = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
CLI_TIMEOUT = 5.0


class HaproxyError(Exception):
    """HAProxy refused something; the message is HAProxy's own."""


class Unconfirmed(Exception):
    """HAProxy did not show, within the deadline, that a start or reload succeeded or failed."""


@dataclass(frozen=True)
class Check:
    ok: bool
    runnable: bool
    """False when the configuration is valid but has no listener to serve (exit code 2)."""
    message: str


async def check_config(binary: str, path: Path) -> Check:
    """``haproxy -c -f PATH``: 0 valid, 2 valid without listeners, anything else invalid."""
    process = await asyncio.create_subprocess_exec(
        binary,
        "-c",
        "-f",
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=MINIMAL_ENVIRONMENT,
    )
    output, _ = await process.communicate()
    code = process.returncode
    message = alerts(output.decode(errors="replace"))
    return Check(ok=code in (0, 2), runnable=code == 0, message=message)


_PREFIX = re.compile(r"\[(?:ALERT|WARNING|NOTICE)\]\s*\(\d+\)\s*:\s*")


def alerts(output: str) -> str:
    """HAProxy's ``[ALERT]`` lines, without their prefix (the last lines when it has none)."""
    lines = [line for line in output.splitlines() if "[ALERT]" in line]
    return "\n".join(_PREFIX.sub("", line) for line in lines or output.strip().splitlines()[-5:])


async def cli(socket_path: Path, command: str) -> str:
    """One command on a master or stats socket.

    The master socket answers only once the client has shut its write side.
    """
    async with asyncio.timeout(CLI_TIMEOUT):
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
        try:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            return (await reader.read()).decode(errors="replace")
        finally:
            writer.close()


@dataclass(frozen=True)
class Processes:
    """``show proc`` on the master socket."""

    master: int
    reloads: int
    failed: int
    workers: frozenset[int]


def parse_show_proc(text: str) -> Processes | None:
    """``None`` for an empty answer (the master is re-executing itself during a reload)."""
    master = reloads = failed = None
    workers: set[int] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or not fields[0].isdigit():
            continue
        if fields[1] == "master":
            master, reloads = int(fields[0]), int(fields[2])
            failed = int(line.split("[failed:", 1)[1].split("]", 1)[0]) if "[failed:" in line else 0
        elif fields[1] == "worker":
            workers.add(int(fields[0]))
    if master is None or reloads is None or failed is None:
        return None
    return Processes(master, reloads, failed, frozenset(workers))


def parse_show_stat(text: str) -> list[dict[str, str]]:
    """``show stat`` CSV (its header starts with ``# ``) as one dict per proxy or server."""
    body = text.removeprefix("# ")
    return [dict(row) for row in csv.DictReader(io.StringIO(body)) if row.get("pxname")]


def process_alive(pid: int, config: Path) -> bool:
    """``pid`` is a live (not zombie) HAProxy process running ``config``: pid files lie."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X") and _runs(cmdline, config)


def processes_of(config: Path) -> list[int]:
    """Every live process (master or worker) running ``config``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and process_alive(int(entry.name), config):
            pids.append(int(entry.name))
    return pids


def _runs(cmdline: list[bytes], config: Path) -> bool:
    if not cmdline or not os.path.basename(cmdline[0]).startswith(b"haproxy"):
        return False
    target = str(config).encode()
    return any(arg == b"-f" and value == target for arg, value in itertools.pairwise(cmdline))
