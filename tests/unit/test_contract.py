"""The shared contract: routing, names, message schemas, settings."""

import uuid
import zlib
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from api_service.settings import ApiSettings
from shared.messages import Command, DeviceSpec, LoadBalancerSpec, Result
from shared.settings import CommonSettings
from shared.status import CommandAction, OperationStatus, Outcome, ProvisioningStatus
from shared.topology import Names, shard_for


def test_shard_is_crc32_of_the_device_id_modulo_shards() -> None:
    device = uuid.uuid4()
    assert shard_for(device, 7) == zlib.crc32(str(device).encode()) % 7
    assert shard_for(str(device), 7) == shard_for(device, 7)
    assert {shard_for(uuid.uuid4(), 4) for _ in range(200)} == {0, 1, 2, 3}


def test_every_name_starts_with_the_prefix() -> None:
    names = Names("run-1", 3)
    every = [
        *names.command_queues,
        names.commands_exchange,
        names.results_exchange,
        names.results_queue,
        names.status_exchange,
        names.status_queue,
        names.providers_exchange,
        names.providers_queue,
        names.dead_exchange,
        names.dead_queue,
    ]
    assert all(name.startswith("run-1.") for name in every)
    assert names.command_queues == ["run-1.commands.0", "run-1.commands.1", "run-1.commands.2"]


def _command() -> Command:
    lb, device = uuid.uuid4(), uuid.uuid4()
    return Command(
        op_id=uuid.uuid4(),
        device_id=device,
        loadbalancer_id=lb,
        generation=3,
        action=CommandAction.APPLY,
        driver="noop",
        device=DeviceSpec(
            id=device, name="d", driver="noop", management_url="noop://d", report_secret="r" * 32
        ),
        result_secret="s" * 43,
        spec=LoadBalancerSpec(
            id=lb,
            project_id="p",
            admin_state_up=True,
            vip_address="10.0.0.1",
            generation=3,
        ),
        issued_at=datetime.now(UTC),
    )


def test_command_round_trips_and_carries_its_schema_version() -> None:
    command = _command()
    wire = command.model_dump_json()
    assert '"schema_version":3' in wire
    assert Command.model_validate_json(wire) == command


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(schema_version=1),
        lambda d: d.update(extra_field=1),
        lambda d: d.update(action="explode"),
        lambda d: d.update(generation=0),
        lambda d: d.pop("spec"),
    ],
)
def test_incompatible_commands_are_rejected(mutate: object) -> None:
    data = _command().model_dump(mode="json")
    mutate(data)  # type: ignore[operator]
    with pytest.raises(ValidationError):
        Command.model_validate(data)


def test_result_error_text_is_bounded() -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValidationError):
        Result(
            op_id=uuid.uuid4(),
            device_id=uuid.uuid4(),
            loadbalancer_id=uuid.uuid4(),
            generation=1,
            result_secret="s" * 43,
            outcome=Outcome.ERROR,
            error="x" * 5000,
            agent_id="a",
            started_at=now,
            finished_at=now,
        )


def test_statuses() -> None:
    assert ProvisioningStatus.PENDING_UPDATE.is_pending
    assert not ProvisioningStatus.ERROR.is_pending
    assert not OperationStatus.TIMED_OUT.is_final
    assert OperationStatus.SUPERSEDED.is_final


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LBAAS_DATABASE_URL", "postgresql://me@db.example:5433/lb")
    monkeypatch.setenv("LBAAS_QUEUE_PREFIX", "blue")
    monkeypatch.setenv("LBAAS_COMMAND_SHARDS", "8")
    monkeypatch.setenv("LBAAS_PENDING_TIMEOUT", "2.5")
    settings = ApiSettings()
    assert settings.database_url == "postgresql+asyncpg://me@db.example:5433/lb"
    assert (settings.queue_prefix, settings.command_shards, settings.pending_timeout) == (
        "blue",
        8,
        2.5,
    )


@pytest.mark.parametrize("prefix", ["", "a b", "x\n", "-lead", "p" * 65])
def test_bad_queue_prefix_is_refused(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    monkeypatch.setenv("LBAAS_QUEUE_PREFIX", prefix)
    with pytest.raises(ValidationError):
        CommonSettings()
