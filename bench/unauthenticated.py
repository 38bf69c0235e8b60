"""Benchmark: what unauthenticated senders cost everyone else.

Starts its own database, queue prefix and ``lbaas-api`` (real processes, real PostgreSQL),
then measures ``GET /healthz`` alone (the baseline, same run) and while three senders
POST 1 MiB bodies with a wrong token as fast as they are answered, and counts how the
API answered the senders (401 until their address's failed-authentication budget is
spent, 429 after). Prints a table and writes ``bench-results/unauthenticated.json``.

    python -m bench.unauthenticated [--samples 500] [--senders 3]
"""

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.latency import percentiles_ms
from tests.support.stack import Api, isolated, running

BODY = b'{"loadbalancer": {"name": "' + b"x" * (1 << 20) + b'"}}'
MAX_SENDS = 20_000
"""Each sender stops after this many requests even if the measurement has not ended."""


async def _healthz(http: httpx.AsyncClient, samples: int) -> list[float]:
    took = []
    for _ in range(samples):
        start = time.perf_counter()
        response = await http.get("/healthz")
        took.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return took


async def _sender(url: str, done: asyncio.Event, answers: Counter[int]) -> None:
    headers = {"X-Auth-Token": "not-a-token-" + "0" * 32, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(MAX_SENDS):
            if done.is_set():
                return
            response = await http.post("/v2/lbaas/loadbalancers", content=BODY, headers=headers)
            answers[response.status_code] += 1


async def main(samples: int, senders: int) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="lbaas-bench-"))
    async with isolated() as isolation:
        api = Api(isolation.api_env(log_level="WARNING"), logs)
        async with running(api), httpx.AsyncClient(base_url=api.url, timeout=30) as http:
            api.start()
            await api.wait_ready("/readyz")
            await _healthz(http, 50)  # warm-up
            alone = await _healthz(http, samples)
            done, answers = asyncio.Event(), Counter[int]()
            tasks = [asyncio.create_task(_sender(api.url, done, answers)) for _ in range(senders)]
            try:
                loaded = await _healthz(http, samples)
            finally:
                done.set()
                await asyncio.gather(*tasks)
    under, baseline = percentiles_ms(loaded), percentiles_ms(alone)
    return {
        "senders": senders,
        "healthz_alone": baseline,
        "healthz_under_senders": under,
        "p50_ratio": under["p50_ms"] / baseline["p50_ms"],
        "sender_answers": {str(code): count for code, count in sorted(answers.items())},
    }


def print_table(report: dict[str, Any]) -> None:
    print(f"{'GET /healthz':<40}{'n':>6}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}")
    for key, label in (
        ("healthz_alone", "alone (baseline)"),
        ("healthz_under_senders", f"with {report['senders']} unauthenticated 1 MiB senders"),
    ):
        row = report[key]
        print(
            f"{label:<40}{row['n']:>6}{row['p50_ms']:>10.1f}{row['p90_ms']:>10.1f}"
            f"{row['p99_ms']:>10.1f}"
        )
    print(f"\np50 under senders / alone: {report['p50_ratio']:.1f}x")
    print(f"answers to the senders: {report['sender_answers']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-results/unauthenticated.json"))
    args = parser.parse_args()
    report = asyncio.run(main(args.samples, args.senders))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"\nwritten to {args.out}")
