"""The compose stack end to end: a load balancer through the API in its container, real
traffic through HAProxy in the device container, and an API restart that loses nothing.

Run by ``scripts/compose-test.sh`` (``make test-compose``), which builds the images, starts
the stack on the host's network and passes it here through ``LBAAS_COMPOSE_*`` variables:
the file's name keeps it out of the default ``make test`` run (which has no engine).
Traffic stays on 127.0.0.0/8: the backend is a small HTTP server on 127.0.0.1, reached by
the device container over the host's network, and the VIPs come from a 127.x.y.0/24.
"""

import contextlib
import os
import secrets
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import pytest

T = TypeVar("T")

API = os.environ.get("LBAAS_COMPOSE_API", "")
TOKEN = os.environ.get("LBAAS_COMPOSE_ADMIN_TOKEN", "")
COMPOSE = shlex.split(os.environ.get("LBAAS_COMPOSE_COMMAND", "docker compose"))
LISTENER_PORT = 8080
HEALTH_PATH = "/health"
NAME = f"compose-{secrets.token_hex(4)}"


def eventually(check: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """``check()`` until it returns something other than None, every 0.25 s, or fail."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
        except (httpx.HTTPError, OSError) as exc:
            result, last = None, exc
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s (last error: {last!r})")
        time.sleep(0.25)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Backend:
    """An HTTP server on 127.0.0.1 answering a word of its own to any GET; it counts the
    requests other than health checks."""

    def __init__(self) -> None:
        self.word = f"compose-backend-{secrets.token_hex(4)}"
        self.hits = 0
        word = self.word.encode()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != HEALTH_PATH:
                    backend.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(word)))
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # a health check that hung up
                    self.wfile.write(word)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Backend":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def api() -> Iterator[httpx.Client]:
    if not API or not TOKEN:
        pytest.fail("run by scripts/compose-test.sh: LBAAS_COMPOSE_API and _ADMIN_TOKEN unset")
    with httpx.Client(base_url=API, headers={"X-Auth-Token": TOKEN}, timeout=40) as client:
        yield client


@pytest.fixture
def backend() -> Iterator[Backend]:
    with Backend() as backend:
        yield backend


def compose(*args: str, timeout: float) -> None:
    subprocess.run([*COMPOSE, *args], check=True, timeout=timeout)


def wait_active(api: httpx.Client, lb_id: str, timeout: float = 60) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        response = api.get(
            f"/v2/lbaas/loadbalancers/{lb_id}", params={"wait_for": "ACTIVE", "timeout": 10}
        )
        assert response.status_code == 200, response.text
        lb: dict[str, Any] = response.json()["loadbalancer"]
        assert lb["provisioning_status"] != "ERROR", lb
        return lb if lb["provisioning_status"] == "ACTIVE" else None

    return eventually(settled, timeout=timeout, what=f"load balancer {lb_id} ACTIVE")


def wait_served(url: str, word: str, timeout: float = 30) -> str:
    """GET ``url`` until it answers ``word``: HAProxy in the device container carried it."""

    def served() -> str | None:
        answer = httpx.get(url, timeout=2)
        return answer.text if answer.status_code == 200 and answer.text == word else None

    return eventually(served, timeout=timeout, what=f"{url} answering {word!r}")


def wait_ready(api: httpx.Client, timeout: float = 60) -> None:
    eventually(
        lambda: True if api.get("/readyz", timeout=2).status_code == 200 else None,
        timeout=timeout,
        what="the API ready",
    )


def http_listener(port: int, backend: Backend) -> dict[str, Any]:
    return {
        "protocol": "HTTP",
        "protocol_port": port,
        "default_pool": {
            "protocol": "HTTP",
            "lb_algorithm": "ROUND_ROBIN",
            "members": [{"address": "127.0.0.1", "protocol_port": backend.port}],
            "healthmonitor": {
                "type": "HTTP",
                "delay": 1,
                "timeout": 1,
                "max_retries": 1,
                "url_path": HEALTH_PATH,
            },
        },
    }


def test_load_balancer_through_the_stack_survives_an_api_restart(
    api: httpx.Client, backend: Backend
) -> None:
    wait_ready(api)
    devices = api.get("/v2/lbaas/devices").json()["devices"]
    assert [d["name"] for d in devices] == ["local-haproxy"], devices

    # A load balancer with its whole tree: 202, then ACTIVE once the agent applied it.
    created = api.post(
        "/v2/lbaas/loadbalancers",
        json={
            "loadbalancer": {
                "name": NAME,
                "listeners": [http_listener(LISTENER_PORT, backend)],
            }
        },
    )
    assert created.status_code == 202, created.text
    lb_id = created.json()["loadbalancer"]["id"]
    lb = wait_active(api, lb_id)
    vip = lb["vip_address"]

    # Real traffic: the VIP, bound by HAProxy in the device container, to the backend.
    wait_served(f"http://{vip}:{LISTENER_PORT}/", backend.word)
    assert backend.hits > 0

    # The API restarts: what it stored is still there, and a new change still works (the
    # new process publishes the command and consumes its result).
    started = time.monotonic()
    compose("restart", "api", timeout=90)
    wait_ready(api)
    print(f"API restarted and ready in {time.monotonic() - started:.1f} s")
    again = api.get(f"/v2/lbaas/loadbalancers/{lb_id}")
    assert again.status_code == 200, again.text
    assert again.json()["loadbalancer"]["provisioning_status"] == "ACTIVE"
    assert again.json()["loadbalancer"]["vip_address"] == vip
    listed = api.get("/v2/lbaas/loadbalancers", params={"name": NAME}).json()
    assert [found["id"] for found in listed["loadbalancers"]] == [lb_id]
    wait_served(f"http://{vip}:{LISTENER_PORT}/", backend.word, timeout=10)

    listeners = api.get("/v2/lbaas/listeners", params={"loadbalancer_id": lb_id}).json()
    pool_id = listeners["listeners"][0]["default_pool_id"]
    with Backend() as other:
        added = api.post(
            f"/v2/lbaas/pools/{pool_id}/members",
            json={"member": {"address": "127.0.0.1", "protocol_port": other.port}},
        )
        assert added.status_code == 202, added.text
        wait_active(api, lb_id)
        # Round robin: the new member gets requests too.
        wait_served(f"http://{vip}:{LISTENER_PORT}/", other.word)

    # And away: the device removes it, its VIP stops answering.
    deleted = api.delete(f"/v2/lbaas/loadbalancers/{lb_id}", params={"cascade": "true"})
    assert deleted.status_code == 202, deleted.text
    eventually(
        lambda: True if api.get(f"/v2/lbaas/loadbalancers/{lb_id}").status_code == 404 else None,
        timeout=60,
        what=f"load balancer {lb_id} deleted",
    )

    def refused() -> bool | None:
        try:
            httpx.get(f"http://{vip}:{LISTENER_PORT}/", timeout=2)
        except httpx.TransportError:
            return True
        return None

    eventually(refused, timeout=30, what=f"{vip}:{LISTENER_PORT} closed")
