"""A bad setting stops each program at start-up, naming the variable and never its value."""

import os
import subprocess

import pytest

from tests.support.stack import BIN, free_port

SECRET_LOOKING = "hunter2-hunter2-hunter2"
GOOD_KEY = "x" * 43 + "="  # a Fernet key: 32 bytes in url-safe base64


def _start(program: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LBAAS_")}
    return subprocess.run(
        [str(BIN / program), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


API_CASES = [
    ({"LBAAS_BOOTSTRAP_ADMIN_TOKEN": SECRET_LOOKING[:20]}, "LBAAS_BOOTSTRAP_ADMIN_TOKEN"),
    ({"LBAAS_SECRET_KEYS": SECRET_LOOKING}, "LBAAS_SECRET_KEYS"),
    ({"LBAAS_SECRET_KEYS": ""}, "LBAAS_SECRET_KEYS"),
    ({"LBAAS_DATABASE_URL": f"mysql://root:{SECRET_LOOKING}@db/lbaas"}, "LBAAS_DATABASE_URL"),
    ({"LBAAS_AMQP_URL": f"http://guest:{SECRET_LOOKING}@mq/"}, "LBAAS_AMQP_URL"),
    ({"LBAAS_AMQP_URL": "amqp://mq:99999/"}, "LBAAS_AMQP_URL"),
    ({"LBAAS_PORT": "0"}, "LBAAS_PORT"),
    ({"LBAAS_RESERVED_MEMBER_NETWORKS": "10.0.0.0/8,nonsense"}, "LBAAS_RESERVED_MEMBER_NETWORKS"),
    ({"LBAAS_PENDING_TIMEOUT": "-1"}, "LBAAS_PENDING_TIMEOUT"),
    ({"LBAAS_LOG_LEVEL": "CHATTY"}, "LBAAS_LOG_LEVEL"),
    ({"LBAAS_STATUS_CODES": "sync"}, "LBAAS_STATUS_CODES"),
    ({"LBAAS_IDENTITY_TOKEN_TTL": "0"}, "LBAAS_IDENTITY_TOKEN_TTL"),
    ({"LBAAS_IDENTITY_REGION": "Region One"}, "LBAAS_IDENTITY_REGION"),
]


@pytest.mark.parametrize(("env", "variable"), API_CASES, ids=[c[1] for c in API_CASES])
def test_the_api_refuses_to_start(env: dict[str, str], variable: str) -> None:
    done = _start("lbaas-api", {"LBAAS_SECRET_KEYS": GOOD_KEY, **env}, "--port", str(free_port()))
    assert done.returncode != 0
    assert variable in done.stderr
    assert SECRET_LOOKING not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_the_api_refuses_to_start_without_its_secret_keys() -> None:
    done = _start("lbaas-api", {}, "--port", str(free_port()))
    assert done.returncode != 0
    assert "LBAAS_SECRET_KEYS" in done.stderr


AGENT_CASES = [
    ({"LBAAS_AMQP_URL": "rabbit"}, "LBAAS_AMQP_URL"),
    ({"LBAAS_AGENT_PREFETCH": "0"}, "LBAAS_AGENT_PREFETCH"),
    ({"LBAAS_DEVICE_CA_FILE": "/nonexistent/ca.pem"}, "LBAAS_DEVICE_CA_FILE"),
    ({"LBAAS_COMMAND_SHARDS": "many"}, "LBAAS_COMMAND_SHARDS"),
]


@pytest.mark.parametrize(("env", "variable"), AGENT_CASES, ids=[c[1] for c in AGENT_CASES])
def test_the_agent_refuses_to_start(env: dict[str, str], variable: str) -> None:
    done = _start("lbaas-agent", env)
    assert done.returncode != 0
    assert variable in done.stderr
    assert "Traceback" not in done.stderr


def test_the_device_daemon_refuses_to_start() -> None:
    done = _start(
        "lbaas-device",
        {"LBAAS_DEVICE_SECRET": SECRET_LOOKING, "LBAAS_DEVICE_TLS_CERT": "/nonexistent.pem"},
    )
    assert done.returncode != 0
    assert "LBAAS_DEVICE_TLS_CERT" in done.stderr
    assert SECRET_LOOKING not in done.stderr
