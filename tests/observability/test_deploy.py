"""deploy/: Prometheus configs pass promtool, manifests carry what KubeRay needs and agree with the Dockerfile
and the `ami` CLI, redis.conf is what we say it is, the dashboards are generated from the metric catalog."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import ray
import yaml

from ami.telemetry.metrics import CATALOG

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
DOCKERFILE = (DEPLOY / "docker/Dockerfile").read_text()


def docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if d]


def kinds() -> dict[str, dict]:
    return {d["kind"]: d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in docs(f.name)}


def containers(pod_spec: dict) -> list[dict]:
    return pod_spec.get("initContainers", []) + pod_spec["containers"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus-k8s.yml"])
def test_promtool_check_config(name: str) -> None:
    r = subprocess.run(["promtool", "check", "config", str(DEPLOY / "prometheus" / name)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_prometheus_discovers_ami_and_ray_without_target_lists() -> None:
    from ami.telemetry.prometheus_config import PLACEHOLDER, prometheus_config

    shipped = (DEPLOY / "prometheus/prometheus.yml").read_text()
    assert shipped == prometheus_config(PLACEHOLDER)  # the shipped file is the command's output: they never drift
    jobs = {j["job_name"]: j for j in yaml.safe_load(shipped)["scrape_configs"]}
    assert jobs["ami"]["file_sd_configs"][0]["files"] == [f"{PLACEHOLDER}/*.json"]
    assert jobs["ray"]["file_sd_configs"][0]["files"] == ["/tmp/ray/prom_metrics_service_discovery.json"]
    assert all("static_configs" not in j for j in jobs.values())


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_ami_prometheus_config_globs_this_users_directory(tmp_path: Path) -> None:
    sd = tmp_path / "sd"
    out = subprocess.run([sys.executable, "-m", "ami.cluster.cli", "prometheus-config"], capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin", "AMI_PROMETHEUS_SD_DIR": str(sd)}, check=True)
    jobs = {j["job_name"]: j for j in yaml.safe_load(out.stdout)["scrape_configs"]}
    assert jobs["ami"]["file_sd_configs"][0]["files"] == [f"{sd}/*.json"] and sd.is_dir()
    (tmp_path / "p.yml").write_text(out.stdout)
    r = subprocess.run(["promtool", "check", "config", str(tmp_path / "p.yml")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_manifest_parses() -> None:
    files = sorted((DEPLOY / "k8s").glob("*.yaml"))
    assert {f.name for f in files} >= {"raycluster.yaml", "rayjob.yaml", "redis.yaml", "monitoring.yaml"}
    for f in files:
        for d in docs(f.name):
            assert d.get("apiVersion") and d.get("kind"), f
    listed = yaml.safe_load((DEPLOY / "k8s/kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(f.name for f in files if f.name != "kustomization.yaml")


def test_raycluster_has_what_kuberay_requires() -> None:
    rc = kinds()["RayCluster"]
    spec = rc["spec"]
    assert rc["apiVersion"] == "ray.io/v1"
    assert spec["rayVersion"] == ray.__version__
    assert spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["metrics-export-port"] == "8080"
    ports = {p["name"]: p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]}
    assert ports["metrics"] == 8080 and "ami-metrics" in ports
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"actors", "learner"}
    for g in groups.values():
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        assert g["rayStartParams"]["metrics-export-port"] == "8080"
        assert g["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert groups["actors"]["maxReplicas"] > groups["actors"]["minReplicas"]
    learner = groups["learner"]["template"]["spec"]["containers"][0]
    assert learner["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert groups["learner"]["rayStartParams"]["num-gpus"] == "1"


def test_images_are_the_dockerfile_image() -> None:
    assert re.search(r'org\.opencontainers\.image\.title="ami"', DOCKERFILE)
    assert f'org.opencontainers.image.version="{VERSION}"' in DOCKERFILE
    assert "torch==2.13.0" in DOCKERFILE and "download.pytorch.org/whl/cpu" in DOCKERFILE
    assert f'"ray[default]=={ray.__version__}"' in DOCKERFILE
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for pkg in setuptools["packages"]:  # each installed package's folder (ami.agent lives in agent/)
        folder = setuptools["package-dir"].get(pkg, pkg)
        assert f"COPY {folder} ./{folder}" in DOCKERFILE, pkg
    py = re.search(r"^FROM python:(\d+\.\d+)", DOCKERFILE, re.M).group(1)
    assert py in ("3.11", "3.12")  # pyproject: requires-python >=3.11,<3.13
    k = kinds()
    pods = [k["RayCluster"]["spec"]["headGroupSpec"]["template"]["spec"],
            *(g["template"]["spec"] for g in k["RayCluster"]["spec"]["workerGroupSpecs"]),
            k["RayJob"]["spec"]["submitterPodTemplate"]["spec"]]
    images = {c["image"] for p in pods for c in containers(p)}
    assert images == {f"ami:{VERSION}", f"ami:{VERSION}-cuda"}
    assert all(c["image"].startswith("redis:7") for c in containers(k["StatefulSet"]["spec"]["template"]["spec"]))


def test_rayjob_runs_ami_train_with_the_cli() -> None:
    job = kinds()["RayJob"]
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == kinds()["RayCluster"]["metadata"]["name"]
    argv = shlex.split(job["spec"]["entrypoint"])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert argv[0] == "ami" and scripts["ami"] == "ami.cluster.cli:main"
    from ami.cluster.cli import _parser

    a = _parser().parse_args(argv[1:])  # raises on a flag the CLI does not know
    assert a.cmd == "train" and a.backend == "ray" and a.ray_address == "auto"
    assert a.redis_url is None and a.redis_url_file is None  # from the head's AMI_REDIS_URL, off the command line
    ports = {p["name"]: p["containerPort"] for p in
             kinds()["RayCluster"]["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]}
    assert a.metrics_port == ports["ami-metrics"]
    sd = kinds()["ScrapeConfig"]["spec"]["httpSDConfigs"][0]["url"]
    assert sd == f"http://{kinds()['RayCluster']['metadata']['name']}-head-svc:{a.metrics_port}/sd"
    head_env = {e["name"]: e for e in kinds()["RayCluster"]["spec"]["headGroupSpec"]["template"]["spec"]
                ["containers"][0]["env"]}
    assert head_env["AMI_REDIS_URL"]["value"] == "redis://ami:$(REDIS_PASSWORD)@ami-redis:6379/0"


def _conf(text: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))


def test_redis_conf_and_statefulset() -> None:
    local = _conf((DEPLOY / "redis/redis.conf").read_text())
    assert local["bind"] == "127.0.0.1 -::1" and local["protected-mode"] == "yes"
    k = kinds()
    kube = _conf(k["ConfigMap"]["data"]["redis.conf"])
    for c in (local, kube):
        assert c["appendonly"] == "yes" and c["appendfsync"] == "everysec" and c["maxmemory-policy"] == "noeviction"
    assert kube["aclfile"] == "/acl/users.acl"
    sts = k["StatefulSet"]
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    refs = [e["valueFrom"]["secretKeyRef"]["name"] for c in containers(sts["spec"]["template"]["spec"])
            for e in c.get("env", []) if "valueFrom" in e]
    assert refs and set(refs) == {"ami-redis"}
    assert "Secret" not in k, "no password ships in the manifests"
    assert k["Service"]["metadata"]["name"] == "ami-redis"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_redis_conf_starts(tmp_path: Path) -> None:
    import socket
    import time

    import redis

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen(["redis-server", str(DEPLOY / "redis/redis.conf"), "--port", str(port), "--dir",
                          str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        c = redis.Redis(port=port, socket_connect_timeout=0.5)
        for _ in range(50):
            try:
                c.ping()
                break
            except redis.ConnectionError:
                assert p.poll() is None, "redis-server exited"
                time.sleep(0.1)
        assert c.config_get("appendonly")["appendonly"] == "yes"
        assert c.config_get("appendfsync")["appendfsync"] == "everysec"
        c.close()
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_dashboards_are_generated_from_the_catalog() -> None:
    r = subprocess.run([sys.executable, str(DEPLOY / "grafana/generate.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    sys.path.insert(0, str(DEPLOY / "grafana"))
    import generate

    dashes = [json.loads(f.read_text()) for f in sorted((DEPLOY / "grafana/dashboards").glob("*.json"))]
    assert {d["uid"] for d in dashes} == {"ami-overview", "ami-world-model", "ami-replay", "ami-weights",
                                          "ami-actors", "ami-goals"}
    assert generate.check_catalog(dashes, CATALOG) == []  # every name known, every metric shown
    for d in dashes:
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)) and all(p["targets"] for p in d["panels"])
    actor = next(d for d in dashes if d["uid"] == "ami-actors")
    assert {v["name"] for v in actor["templating"]["list"]} == {"datasource", "env_id", "actor_id"}


def test_catalog_names_follow_the_convention() -> None:
    names = [s.name for s in CATALOG]
    assert len(names) == len(set(names))
    for s in CATALOG:
        assert re.fullmatch(r"ami_(actor|learner|replay|weights|driver)_[a-z0-9_]+", s.name), s.name
        assert s.name.endswith("_total") == (s.kind == "counter"), s.name
        assert s.kind != "histogram" or s.name.endswith("_seconds"), s.name


def test_grafana_provisioning() -> None:
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/ami.yml").read_text())["datasources"][0]
    assert ds["type"] == "prometheus"
    prov = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/ami.yml").read_text())["providers"]
    assert any(p["name"] == "ami" and p["type"] == "file" for p in prov)
