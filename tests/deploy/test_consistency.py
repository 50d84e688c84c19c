"""The deploy/ files agree with each other and with the server's defaults: ports, probe paths,
grace periods, open-file limits. Changing one without the others fails here."""

from __future__ import annotations

import configparser
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from revurb.apps import App
from revurb.config import Settings
from tests.deploy.stack import DEPLOY, SHIPPED_UPSTREAM_PORTS, tool

DEFAULTS = Settings()
PING_INTERVAL = App(id="", key="", secret="").ping_interval
#: Every place that sets the open files limit sets this one number.
OPEN_FILES = 65536
LIVENESS, READINESS = "/up", "/ready"


def kubernetes(kind: str, name: str = "revurb") -> dict[str, Any]:
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document["kind"] == kind and document["metadata"]["name"] == name:
                return dict(document)
    raise AssertionError(f"no {kind} {name} in deploy/kubernetes")


def seconds(value: str) -> float:
    found = re.fullmatch(r"(\d+)s?", value.strip())
    assert found, value
    return float(found.group(1))


def nginx_directive(text: str, name: str) -> list[str]:
    return re.findall(rf"^\s*{name}\s+([^;]+);", text, re.MULTILINE)


def test_the_defaults_these_files_are_written_for() -> None:
    assert (DEFAULTS.port, DEFAULTS.metrics.port) == (8080, 9601)
    assert (DEFAULTS.drain_window, DEFAULTS.grace_period) == (5.0, 20.0)


def test_dockerfile() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.MULTILINE)
    assert re.search(r"^EXPOSE 8080 9601$", text, re.MULTILINE)
    assert "REVERB_SERVER_PORT=8080" in text and "REVURB_METRICS_PORT=9601" in text
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)  # the pods' runAsUser too
    assert f"'{LIVENESS}'" in text.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    assert re.search(r'^CMD \["revurb", "start"\]$', text, re.MULTILINE)  # exec form: PID 1 gets SIGTERM


def test_compose() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    nodes = {name: spec for name, spec in compose["services"].items() if name.startswith("revurb-")}
    ports = sorted(int(spec["environment"]["REVERB_SERVER_PORT"]) for spec in nodes.values())
    assert tuple(ports) == SHIPPED_UPSTREAM_PORTS  # what the nginx site proxies to
    metrics = {spec["environment"]["REVURB_METRICS_PORT"] for spec in nodes.values()}
    assert len(metrics) == len(nodes)  # one network namespace: one port each
    for spec in nodes.values():
        assert float(spec["environment"]["REVURB_GRACE_PERIOD"]) == DEFAULTS.grace_period
        assert float(spec["environment"]["REVURB_DRAIN_WINDOW"]) == DEFAULTS.drain_window
        assert seconds(spec["stop_grace_period"]) > DEFAULTS.grace_period
        assert spec["ulimits"]["nofile"] == {"soft": OPEN_FILES, "hard": OPEN_FILES}
        assert spec["network_mode"] == "service:nginx"
    assert compose["services"]["nginx"]["ulimits"]["nofile"]["hard"] == OPEN_FILES


def test_nginx() -> None:
    main = (DEPLOY / "nginx" / "nginx.conf").read_text()
    site = (DEPLOY / "nginx" / "revurb.conf").read_text()
    assert nginx_directive(main, "worker_rlimit_nofile") == [str(OPEN_FILES)]
    (connections,) = nginx_directive(main, "worker_connections")
    assert int(connections) * 2 == OPEN_FILES  # two descriptors per proxied WebSocket
    upstreams = [int(port) for port in re.findall(r"server 127\.0\.0\.1:(\d+)", site)]
    assert tuple(upstreams) == SHIPPED_UPSTREAM_PORTS
    websocket = site.split("location /app/", 1)[1].split("}", 1)[0]
    assert "proxy_set_header Upgrade $http_upgrade;" in websocket
    assert "proxy_set_header Connection $connection_upgrade;" in websocket
    assert seconds(nginx_directive(websocket, "proxy_read_timeout")[0]) > PING_INTERVAL
    assert "http_403" in nginx_directive(websocket, "proxy_next_upstream")[0]  # the drain's refusal
    assert re.search(r"location ~ \^/\(apps\|users\)/", site)


def test_supervisor() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string((DEPLOY / "supervisor" / "revurb.conf").read_text())
    assert int(parser["supervisord"]["minfds"]) == OPEN_FILES
    program = parser["program:revurb"]
    assert program["command"].endswith(f"--port {DEFAULTS.port}")
    assert int(program["stopwaitsecs"]) > DEFAULTS.grace_period
    assert program["stopsignal"] == "TERM"
    assert program["autorestart"] == "true"


def test_systemd() -> None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / "revurb.service").read_text())
    service = parser["Service"]
    assert service["ExecStart"].endswith(f"--port {DEFAULTS.port}")
    assert int(service["LimitNOFILE"]) == OPEN_FILES
    assert seconds(service["TimeoutStopSec"]) > DEFAULTS.grace_period
    assert service["Restart"] == "always"
    assert service["KillSignal"] == "SIGTERM"


def test_pm2() -> None:
    node = tool("node")
    script = "console.log(JSON.stringify(require(process.argv[1])))"
    path = str(DEPLOY / "pm2" / "ecosystem.config.js")
    loaded = subprocess.run(
        [node, "-e", script, path], capture_output=True, text=True, check=True, timeout=10
    )
    (app,) = json.loads(loaded.stdout)["apps"]
    assert app["args"].endswith(f"--port {DEFAULTS.port}")
    assert app["kill_timeout"] / 1000 > DEFAULTS.grace_period
    assert app["autorestart"] is True and app["interpreter"] == "none"


def test_kubernetes() -> None:
    config = kubernetes("ConfigMap")["data"]
    assert int(config["REVERB_SERVER_PORT"]) == DEFAULTS.port
    assert int(config["REVURB_METRICS_PORT"]) == DEFAULTS.metrics.port
    assert float(config["REVURB_GRACE_PERIOD"]) == DEFAULTS.grace_period
    assert float(config["REVURB_DRAIN_WINDOW"]) == DEFAULTS.drain_window
    pod = kubernetes("Deployment")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": DEFAULTS.port, "metrics": DEFAULTS.metrics.port}
    assert container["livenessProbe"]["httpGet"] == {"path": LIVENESS, "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": READINESS, "port": "http"}
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > pre_stop + DEFAULTS.grace_period
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(DEFAULTS.metrics.port)
    assert annotations["prometheus.io/path"] == "/metrics"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] == 10001
    service = {port["name"]: port for port in kubernetes("Service")["spec"]["ports"]}
    assert service["http"]["targetPort"] == "http" and service["metrics"]["targetPort"] == "metrics"


def test_the_server_reads_every_variable_the_files_set() -> None:
    from revurb.config import ENV_PATHS

    config = kubernetes("ConfigMap")["data"]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    names = set(config) | {
        name for spec in compose["services"].values() for name in spec.get("environment", {})
    }
    assert names <= set(ENV_PATHS), names - set(ENV_PATHS)


def test_docs_walk_through_every_file() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            assert f"deploy/{path.relative_to(DEPLOY)}" in guide, path
