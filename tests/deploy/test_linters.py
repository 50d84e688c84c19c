"""The deploy/ files pass the tools their platforms check them with: hadolint (Dockerfile),
kubernetes-validate (manifests, a current Kubernetes), systemd-analyze verify (the unit), nginx -t
(the site with the tuning), and a Supervisor that parses the program."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.stack import DEPLOY, SHIPPED_UPSTREAM_PORTS, hard_open_files, site_config, tool
from tests.support.servers import free_port, in_ci

#: The Kubernetes release the manifests are checked against.
KUBERNETES = "1.37.0"
SYSTEMD_UNITS = Path("/usr/lib/systemd/system")


def scripts(name: str) -> Path:
    return Path(sys.executable).parent / name


def test_hadolint_passes_the_dockerfile() -> None:
    binary = tool("hadolint", scripts("hadolint"))
    result = subprocess.run(
        [binary, "--failure-threshold", "info", str(DEPLOY / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_kubernetes_validate_passes_the_manifests() -> None:
    binary = tool("kubernetes-validate", scripts("kubernetes-validate"))
    manifests = sorted(str(p) for p in (DEPLOY / "kubernetes").glob("*.yaml"))
    result = subprocess.run(
        [binary, "--strict", "--kubernetes-version", KUBERNETES, *manifests], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == 8, result.stdout
    assert "WARN" not in result.stdout + result.stderr


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    binary = tool("systemd-analyze")
    if not SYSTEMD_UNITS.is_dir():
        message = f"{SYSTEMD_UNITS} is missing: systemd's own units are needed to verify against"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    # A root holding systemd's units, the unit, and an executable where ExecStart points.
    root = tmp_path / "root"
    shutil.copytree(SYSTEMD_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(DEPLOY / "systemd" / "revurb.service", root / "etc/systemd/system")
    executable = root / "srv/revurb/venv/bin/revurb"
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    result = subprocess.run(
        [binary, "verify", f"--root={root}", "revurb.service"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""  # a bad line is only a warning: there must be none


def test_nginx_accepts_the_site_with_the_tuning(tmp_path: Path) -> None:
    binary = tool("nginx", Path("/usr/sbin/nginx"))
    (tmp_path / "conf.d").mkdir()
    shutil.copy(DEPLOY / "nginx" / "nginx.conf", tmp_path / "nginx.conf")
    (tmp_path / "conf.d" / "revurb.conf").write_text(site_config(free_port(), SHIPPED_UPSTREAM_PORTS))
    where = f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;"
    result = subprocess.run(
        [binary, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"), "-g", where],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    problems = [line for line in result.stderr.splitlines() if "[emerg]" in line or "[warn]" in line]
    # The machine may allow fewer open files than the tuning asks for; nginx says so and goes on.
    allowed = f"exceed open file resource limit: {hard_open_files()}"
    assert [line for line in problems if allowed not in line] == []
