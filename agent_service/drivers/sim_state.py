"""Where simulated appliances keep their configuration and journal.

On disk (``<root>/<host>/loadbalancers/<lb_id>.json`` and
``<root>/<host>/journal.jsonl``) the state outlives the agent process and other
processes (tests) can read it; in memory it lasts as long as the driver.
"""

import asyncio
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol
from uuid import UUID

from shared.messages import Counters, LoadBalancerSpec

JournalEvent = Literal[
    "apply_started",
    "apply_done",
    "apply_failed",
    "apply_superseded",
    "delete_started",
    "delete_done",
    "delete_failed",
]
JournalEntry = dict[str, object]


def journal_entry(
    event: JournalEvent, loadbalancer_id: UUID, generation: int | None
) -> JournalEntry:
    return {
        "event": event,
        "loadbalancer_id": str(loadbalancer_id),
        "generation": generation,
        "at": datetime.now(UTC).isoformat(),
    }


class ApplianceState(Protocol):
    async def record(
        self, host: str, event: JournalEvent, loadbalancer_id: UUID, generation: int | None
    ) -> None: ...

    async def save(self, host: str, spec: LoadBalancerSpec) -> None: ...

    async def remove(self, host: str, loadbalancer_id: UUID) -> None: ...

    def loadbalancers(self, host: str) -> dict[UUID, LoadBalancerSpec]: ...

    def loadbalancer(self, host: str, loadbalancer_id: UUID) -> LoadBalancerSpec | None: ...

    def journal(self, host: str) -> list[JournalEntry]: ...

    def counters(self, host: str) -> dict[UUID, Counters]: ...


class MemoryApplianceState:
    def __init__(self) -> None:
        self._specs: dict[str, dict[UUID, LoadBalancerSpec]] = {}
        self._journals: dict[str, list[JournalEntry]] = {}

    async def record(
        self, host: str, event: JournalEvent, loadbalancer_id: UUID, generation: int | None
    ) -> None:
        self._journals.setdefault(host, []).append(
            journal_entry(event, loadbalancer_id, generation)
        )

    async def save(self, host: str, spec: LoadBalancerSpec) -> None:
        self._specs.setdefault(host, {})[spec.id] = spec

    async def remove(self, host: str, loadbalancer_id: UUID) -> None:
        self._specs.get(host, {}).pop(loadbalancer_id, None)

    def counters(self, host: str) -> dict[UUID, Counters]:
        """An appliance in memory carries no traffic."""
        return {}

    def loadbalancers(self, host: str) -> dict[UUID, LoadBalancerSpec]:
        return dict(self._specs.get(host, {}))

    def loadbalancer(self, host: str, loadbalancer_id: UUID) -> LoadBalancerSpec | None:
        return self._specs.get(host, {}).get(loadbalancer_id)

    def journal(self, host: str) -> list[JournalEntry]:
        return list(self._journals.get(host, []))


class FileApplianceState:
    """Files under ``root``; several agent processes may share it.

    Specs are replaced atomically (temporary file + rename); each journal line
    is one ``O_APPEND`` write followed by ``fsync``, so concurrent writers do
    not interleave lines.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _loadbalancers_dir(self, host: str) -> Path:
        return self.root / host / "loadbalancers"

    def counters_path(self, host: str) -> Path:
        """``{lb id: counters}`` of the appliance's traffic; tests write it to simulate traffic."""
        return self.root / host / "counters.json"

    def counters(self, host: str) -> dict[UUID, Counters]:
        path = self.counters_path(host)
        if not path.exists():
            return {}
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {UUID(lb_id): Counters.model_validate(value) for lb_id, value in raw.items()}

    def journal_path(self, host: str) -> Path:
        return self.root / host / "journal.jsonl"

    def spec_path(self, host: str, loadbalancer_id: UUID) -> Path:
        return self._loadbalancers_dir(host) / f"{loadbalancer_id}.json"

    async def record(
        self, host: str, event: JournalEvent, loadbalancer_id: UUID, generation: int | None
    ) -> None:
        line = json.dumps(journal_entry(event, loadbalancer_id, generation)) + "\n"
        await asyncio.to_thread(_append_line, self.journal_path(host), line)

    async def save(self, host: str, spec: LoadBalancerSpec) -> None:
        path = self.spec_path(host, spec.id)
        await asyncio.to_thread(_write_atomically, path, spec.model_dump_json(indent=2))

    async def remove(self, host: str, loadbalancer_id: UUID) -> None:
        await asyncio.to_thread(self.spec_path(host, loadbalancer_id).unlink, missing_ok=True)

    def loadbalancers(self, host: str) -> dict[UUID, LoadBalancerSpec]:
        folder = self._loadbalancers_dir(host)
        if not folder.is_dir():
            return {}
        specs = (
            LoadBalancerSpec.model_validate_json(p.read_bytes()) for p in folder.glob("*.json")
        )
        return {spec.id: spec for spec in specs}

    def loadbalancer(self, host: str, loadbalancer_id: UUID) -> LoadBalancerSpec | None:
        try:
            raw = self.spec_path(host, loadbalancer_id).read_bytes()
        except FileNotFoundError:
            return None
        return LoadBalancerSpec.model_validate_json(raw)

    def journal(self, host: str) -> list[JournalEntry]:
        path = self.journal_path(host)
        if not path.exists():
            return []
        with path.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
