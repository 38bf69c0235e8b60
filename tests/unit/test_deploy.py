"""The alert rules and the dashboard in deploy/ use only metrics the services export."""

import json
import re
from pathlib import Path

import yaml

from agent_service.metrics import AgentMetrics
from api_service.metrics import Metrics
from device_service.metrics import DeviceMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
_METRIC = re.compile(r"\blbaas_[a-z_]+")


_SERIES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported() -> set[str]:
    """Every series name the three services' registries export."""
    return {
        family.name + suffix
        for metrics in (Metrics(), AgentMetrics(), DeviceMetrics())
        for family in metrics.registry.collect()
        for suffix in _SERIES[family.type]
    }


def _used(expression: str) -> set[str]:
    return set(_METRIC.findall(expression))


def _balanced(expression: str) -> bool:
    depth = 0
    for character in expression:
        depth += {"(": 1, ")": -1, "{": 1, "}": -1}.get(character, 0)
        if depth < 0:
            return False
    return depth == 0


def test_every_alert_is_complete_and_uses_exported_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) >= 5
    known = exported()
    for alert in alerts:
        assert re.fullmatch(r"Lbaas[A-Za-z]+", alert["alert"])
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
        assert re.fullmatch(r"[0-9]+[smh]", alert["for"])
        assert _balanced(alert["expr"]), alert["expr"]
        used = _used(alert["expr"])
        assert used and used <= known, (alert["alert"], used - known)


def test_every_dashboard_panel_uses_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "lbaas.json").read_text())
    known = exported()
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(expressions) >= 12
    for expression in expressions:
        assert _balanced(expression), expression
        used = _used(expression)
        assert used and used <= known, (expression, used - known)
    covered = {name for e in expressions for name in _used(e)}
    assert len(covered) >= 12
