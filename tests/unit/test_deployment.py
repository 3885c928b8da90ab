"""docker-compose.yml and its monitoring files hold together: every service runs a real
`salespulse` subcommand, every mounted file exists, Prometheus scrapes every process, and
the Grafana dashboard asks only for metrics the code exports. Where a compose client is
installed, it validates the file too."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.cli import cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
ALERTERS = sorted(name for name in COMPOSE["services"] if name.startswith("alerter-"))


def subcommands() -> set[str]:
    import typer.main

    return set(typer.main.get_command(cli).commands)  # type: ignore[attr-defined]


def test_every_salespulse_service_runs_an_existing_subcommand() -> None:
    commands = {name: service["command"].split()[1] for name, service in
                COMPOSE["services"].items()
                if str(service.get("command", "")).startswith("salespulse ")}
    assert {"api", "relay", "projector", *ALERTERS} <= set(commands)
    assert set(commands.values()) <= subcommands()


def test_the_alerters_share_the_tenants_one_index_each() -> None:
    environments = [COMPOSE["services"][name]["environment"] for name in ALERTERS]
    assert len(ALERTERS) >= 2
    assert {env["ALERTER_INSTANCES"] for env in environments} == {str(len(ALERTERS))}
    assert sorted(int(env["ALERTER_INDEX"]) for env in environments) == list(
        range(len(ALERTERS)))
    # The shared settings are merged in, not replaced by the alerters' own.
    assert all(env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092" for env in environments)


def test_every_mounted_file_exists() -> None:
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", ()):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)


def test_prometheus_scrapes_the_api_and_every_worker_on_its_metrics_port() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["salespulse-api"]["dns_sd_configs"][0]  # every replica, not one of them
    assert (api["names"], api["port"]) == (["api"], 8000)
    workers = jobs["salespulse-workers"]["dns_sd_configs"][0]
    port = int(COMPOSE["x-salespulse"]["environment"]["METRICS_PORT"])
    assert workers["port"] == port
    assert set(workers["names"]) == {"relay", "projector", *ALERTERS, "connectors"}


def exported_metrics() -> set[str]:
    names = set()
    for path in (ROOT / "services").rglob("*.py"):
        names |= set(re.findall(r'"(salespulse_[a-z_]+)"', path.read_text()))
    for path in (ROOT / "alerts").rglob("*.py"):
        names |= set(re.findall(r'"(salespulse_[a-z_]+)"', path.read_text()))
    return names


def test_the_grafana_dashboard_only_asks_for_exported_metrics() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/salespulse.json").read_text())
    asked = {re.sub(r"_(bucket|count|sum)$", "", name)
             for panel in dashboard["panels"] for target in panel["targets"]
             for name in re.findall(r"salespulse_[a-z_]+", target["expr"])}
    assert asked, "the dashboard has no queries"
    assert asked <= exported_metrics(), asked - exported_metrics()


@pytest.mark.skipif(not (shutil.which("docker-compose") or shutil.which("docker")),
                    reason="no compose client on this machine")
def test_a_compose_client_accepts_the_file() -> None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        if subprocess.run([*command, "version"], capture_output=True).returncode != 0:
            continue  # the docker client without its compose plugin
        done = subprocess.run([*command, "--profile", "monitoring", "config", "-q"], cwd=ROOT,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return
    pytest.skip("the docker client here has no compose plugin")


def test_the_image_carries_the_dashboards_chart_library_where_the_api_serves_it() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    served = re.search(r"^ECHARTS = (\S+)$", makefile, re.MULTILINE)
    assert served, "the Makefile names where echarts.min.js goes"
    assert re.search(r"COPY --from=charts \S+/echarts\.min\.js \\\s+" + re.escape(served[1]),
                     dockerfile), "the image build copies echarts.min.js elsewhere"
    assert "COPY dashboard/package.json dashboard/package-lock.json" in dockerfile


def test_prometheus_sends_the_metrics_token_the_api_expects() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    api = next(j for j in config["scrape_configs"] if j["job_name"] == "salespulse-api")
    default = re.fullmatch(r"\$\{METRICS_TOKEN:-(.+)\}",
                           COMPOSE["x-salespulse"]["environment"]["METRICS_TOKEN"])
    assert default is not None
    assert api["authorization"] == {"type": "Bearer", "credentials": default.group(1)}


def test_every_process_restarts_and_every_worker_checks_its_own_progress() -> None:
    from services.healthcheck import judge

    for name in ("api", "relay", "projector", *ALERTERS):
        service = {**COMPOSE["x-salespulse"], **COMPOSE["services"][name]}
        assert service["restart"] in ("unless-stopped", "always", "on-failure"), name
        assert service["healthcheck"]["test"], name
    for name in ("relay", "projector"):
        test = COMPOSE["services"][name]["healthcheck"]["test"]
        assert test == ["CMD", "python", "-m", "services.healthcheck", name]
    for name in ALERTERS:  # each checks its own share's unit
        test = COMPOSE["services"][name]["healthcheck"]["test"]
        index = COMPOSE["services"][name]["environment"]["ALERTER_INDEX"]
        assert test == ["CMD", "python", "-m", "services.healthcheck", f"alerter:{index}"]
    answer = {"progress": {"relay": {"state": "ok"}, "projector:0": {"state": "ok"},
                           "projector:1": {"state": "stalled"}, "alerter": {"state": "silent"}}}
    assert judge(answer, "relay")[0]
    assert judge(answer, "projector") == (False, "projector: projector:1 stalled")
    assert not judge(answer, "alerter")[0]
    assert judge({"status": "ok", "checks": {}}, "relay")[0]  # nothing reported: not stuck


def _replicas(name: str) -> str:
    """`deploy.replicas` of a service as written: a count or `${VARIABLE:-default}`."""
    return str(COMPOSE["services"][name].get("deploy", {}).get("replicas", 1))


def test_the_scaled_services_can_run_many_copies_side_by_side() -> None:
    # `--scale` (or deploy.replicas) starts copies of one definition: a fixed host port or a
    # container name would make the second copy fail to start.
    for name in ("api", "projector"):
        service = COMPOSE["services"][name]
        assert "ports" not in service and "container_name" not in service, name
        assert re.fullmatch(r"\$\{[A-Z_]+:-\d+\}", _replicas(name)), (name, _replicas(name))
    assert COMPOSE["services"]["api"]["expose"] == ["8000"]
    assert _replicas("relay") == "1"  # one by design: one reader of one notification log


def test_the_gateway_is_the_one_address_of_every_api_replica() -> None:
    gateway = COMPOSE["services"]["gateway"]
    assert gateway["image"].startswith("nginx:")  # the official image, configured by a file
    assert gateway["ports"] == ["8000:8000"]  # where the api's own port used to be
    assert gateway["depends_on"]["api"] == {"condition": "service_healthy"}
    [mount] = gateway["volumes"]
    source, target, mode = mount.split(":")
    assert (target, mode) == ("/etc/nginx/conf.d/default.conf", "ro")
    conf = (ROOT / source).read_text()
    assert re.search(r"^\s*listen 8000;", conf, re.MULTILINE)
    # Resolved again while running, so replicas added later get requests too.
    assert re.search(r"^resolver 127\.0\.0\.11\b", conf, re.MULTILINE)
    upstream = re.search(r"upstream (\w+) \{(.*?)\}", conf, re.DOTALL)
    assert upstream is not None
    assert re.search(r"^\s*server api:8000 resolve;", upstream[2], re.MULTILINE)
    assert re.search(r"^\s*zone ", upstream[2], re.MULTILINE)  # `resolve` wants a zone
    assert set(re.findall(r"proxy_pass http://(\w+);", conf)) == {upstream[1]}
    stream = re.search(r"location /v1/alerts/stream \{(.*?)\}", conf, re.DOTALL)
    assert stream is not None and "proxy_buffering off;" in stream[1]  # SSE as it comes


def test_the_scaling_recipe_in_the_docs_names_the_compose_file_variables() -> None:
    variables = {re.fullmatch(r"\$\{([A-Z_]+):-\d+\}", _replicas(name))[1]  # type: ignore[index]
                 for name in ("api", "projector")}
    for text in ((ROOT / "docs/ARCHITECTURE.md").read_text(),
                 (ROOT / "docker-compose.yml").read_text()):
        for variable in variables:
            assert f"{variable}=" in text, variable
        assert "--scale projector=" in text and "--scale api=" in text
