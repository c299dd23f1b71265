"""Static checks of deploy/k8s beyond test_deploy.py: Redis keeps its image's entrypoint, runs as non-root with a
maxmemory below its pod's memory limit and noeviction, NetworkPolicies let only the run's pods reach Redis and
Ray's ports, no password is written into a manifest and none reaches a command line, not even through a Secret
env var the shell or Kubernetes would expand there. Pure Python (pyyaml); nothing is started.

Every check is a function of the parsed manifests; `test_checks_catch_broken_manifests` feeds each one a copy with
the property broken and expects it to fail, so a check that has gone blind fails the suite too."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.observability.manifest_checks import (
    Docs,
    check_no_password_literals,
    check_no_secret_on_command_line,
    check_parse,
    check_ray_network,
    check_redis_entrypoint,
    check_redis_memory,
    check_redis_network,
    check_redis_non_root,
    k8s_bytes,
    one,
    parse,
    policies,
    redis_bytes,
    redis_container,
    texts,
)


@pytest.fixture(scope="module")
def manifests() -> Docs:
    return parse(texts())


def test_units_parse_as_kubernetes_and_redis_do() -> None:
    assert k8s_bytes("8Gi") == 8 << 30 and k8s_bytes("512Mi") == 512 << 20 and k8s_bytes("1G") == 10**9
    assert k8s_bytes(1024) == 1024 and k8s_bytes("1e3") == 1000 and k8s_bytes("2Ki") == 2048
    assert redis_bytes("6gb") == 6 << 30 and redis_bytes("6g") == 6 * 10**9 and redis_bytes("512MB") == 512 << 20
    assert redis_bytes("100k") == 100_000 and redis_bytes("1000") == 1000
    with pytest.raises(AssertionError):
        k8s_bytes("8GB")
    with pytest.raises(AssertionError):
        redis_bytes("6Gi")


def test_every_manifest_parses_with_unique_names() -> None:
    check_parse(texts())


def test_redis_keeps_the_image_entrypoint(manifests: Docs) -> None:
    check_redis_entrypoint(manifests)


def test_redis_maxmemory_below_the_limit_with_noeviction(manifests: Docs) -> None:
    check_redis_memory(manifests)


def test_redis_runs_as_the_images_redis_user(manifests: Docs) -> None:
    check_redis_non_root(manifests)


def test_only_the_runs_ray_pods_reach_redis(manifests: Docs) -> None:
    names = {p["metadata"]["name"] for p in policies(manifests)}
    assert names, "no NetworkPolicy in deploy/k8s"
    check_redis_network(manifests)


def test_ray_ports_only_for_the_run(manifests: Docs) -> None:
    check_ray_network(manifests)


def test_no_password_in_a_manifest(manifests: Docs) -> None:
    check_no_password_literals(manifests)


def test_no_password_on_a_command_line_not_even_a_reference(manifests: Docs) -> None:
    check_no_secret_on_command_line(manifests)


def _sts(d: Docs) -> dict:
    return one(d, "StatefulSet")["spec"]["template"]


def _set_conf(d: Docs, key: str, value: str | None) -> None:
    cm = one(d, "ConfigMap")["data"]
    lines = [ln for ln in cm["redis.conf"].splitlines() if not ln.startswith(f"{key} ")]
    cm["redis.conf"] = "\n".join(lines + ([f"{key} {value}"] if value is not None else []))


def _policy(d: Docs, name: str) -> dict:
    return next(p for p in policies(d) if p["metadata"]["name"] == name)


def _head_env(d: Docs) -> list[dict]:
    return one(d, "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]


def _env(d: Docs, name: str) -> dict:
    return next(e for e in _head_env(d) if e["name"] == name)


def _entrypoint(d: Docs, more: str) -> None:
    job = one(d, "RayJob")["spec"]
    job["entrypoint"] += more


MUTATIONS: dict[str, tuple[Callable[[Docs], None], Callable[[Docs], None]]] = {
    "command replaces the entrypoint": (lambda d: redis_container(d).update(command=["redis-server"]),
                                        check_redis_entrypoint),
    "no args": (lambda d: redis_container(d).pop("args"), check_redis_entrypoint),
    "args skip the config": (lambda d: redis_container(d).update(args=["redis-server"]), check_redis_entrypoint),
    "args run another program": (lambda d: redis_container(d).update(args=["sh", "-c", "redis-server x.conf"]),
                                 check_redis_entrypoint),
    "no maxmemory": (lambda d: _set_conf(d, "maxmemory", None), check_redis_memory),
    "maxmemory = limit": (lambda d: _set_conf(d, "maxmemory", "8gb"), check_redis_memory),
    "maxmemory > limit": (lambda d: _set_conf(d, "maxmemory", "9000mb"), check_redis_memory),
    "maxmemory without headroom": (lambda d: _set_conf(d, "maxmemory", "7900mb"), check_redis_memory),
    "limit lowered under maxmemory": (lambda d: redis_container(d)["resources"]["limits"].update(memory="4Gi"),
                                      check_redis_memory),
    "evicting policy": (lambda d: _set_conf(d, "maxmemory-policy", "allkeys-lru"), check_redis_memory),
    "no pod securityContext": (lambda d: _sts(d)["spec"].pop("securityContext"), check_redis_non_root),
    "runs as root": (lambda d: _sts(d)["spec"]["securityContext"].update(runAsUser=0), check_redis_non_root),
    "container as root": (lambda d: redis_container(d)["securityContext"].update(runAsUser=0),
                          check_redis_non_root),
    "no fsGroup": (lambda d: _sts(d)["spec"]["securityContext"].pop("fsGroup"), check_redis_non_root),
    "privilege escalation": (lambda d: redis_container(d)["securityContext"].pop("allowPrivilegeEscalation"),
                             check_redis_non_root),
    "no NetworkPolicy": (lambda d: d.__setitem__(slice(None), [x for x in d if x["kind"] != "NetworkPolicy"]),
                         check_redis_network),
    "policy selects other pods": (lambda d: _policy(d, "ami-redis")["spec"]["podSelector"]["matchLabels"].update(
        {"app.kubernetes.io/component": "cache"}), check_redis_network),
    "egress-only policy": (lambda d: _policy(d, "ami-redis")["spec"].update(policyTypes=["Egress"]),
                           check_redis_network),
    "redis rule without from": (lambda d: _policy(d, "ami-redis")["spec"]["ingress"][0].pop("from"),
                                check_redis_network),
    "redis rule without ports": (lambda d: _policy(d, "ami-redis")["spec"]["ingress"][0].pop("ports"),
                                 check_redis_network),
    "redis rule on another port": (lambda d: _policy(d, "ami-redis")["spec"]["ingress"][0]["ports"].append(
        {"protocol": "TCP", "port": 16379}), check_redis_network),
    "redis open to every namespace": (lambda d: _policy(d, "ami-redis")["spec"]["ingress"][0]["from"][0].update(
        namespaceSelector={}), check_redis_network),
    "redis open to an address range": (lambda d: _policy(d, "ami-redis")["spec"]["ingress"][0]["from"].append(
        {"ipBlock": {"cidr": "0.0.0.0/0"}}), check_redis_network),
    "redis open to the whole app": (lambda d: _policy(d, "ami-redis")["spec"]["ingress"][0]["from"][0][
        "podSelector"].pop("matchExpressions"), check_redis_network),
    "redis closed to the learner": (lambda d: _policy(d, "ami-redis")["spec"]["ingress"][0]["from"][0][
        "podSelector"]["matchExpressions"][0].update(values=["head", "actors"]), check_redis_network),
    "no Ray policy": (lambda d: d.remove(_policy(d, "ami-ray")), check_ray_network),
    "job API open to all": (lambda d: _policy(d, "ami-ray")["spec"]["ingress"][1].pop("from"), check_ray_network),
    "Prometheus may reach GCS": (lambda d: _policy(d, "ami-ray")["spec"]["ingress"][3]["ports"].append(
        {"protocol": "TCP", "port": 6379}), check_ray_network),
    "Prometheus rule on every port": (lambda d: _policy(d, "ami-ray")["spec"]["ingress"][3].pop("ports"),
                                      check_ray_network),
    "Ray pods cut off each other": (lambda d: _policy(d, "ami-ray")["spec"]["ingress"][0].update(
        ports=[{"protocol": "TCP", "port": 8080}]), check_ray_network),
    "no submitter rule": (lambda d: _policy(d, "ami-ray")["spec"]["ingress"].pop(1), check_ray_network),
    "password in the URL": (lambda d: _entrypoint(d, " --redis-url redis://ami:hunter2@ami-redis:6379/0"),
                            check_no_password_literals),
    "requirepass flag": (lambda d: redis_container(d)["args"].extend(["--requirepass", "hunter2"]),
                         check_no_password_literals),
    "redis-cli -a in a probe": (lambda d: redis_container(d)["readinessProbe"]["exec"].update(
        command=["redis-cli", "-a", "hunter2", "ping"]), check_no_password_literals),
    "ACL password literal": (lambda d: _sts(d)["spec"]["initContainers"][0].update(
        args=["printf 'user ami on >hunter2 ~ami:*\\n' > /acl/users.acl"]), check_no_password_literals),
    "password env as a value": (lambda d: _head_env(d).__setitem__(0, {"name": "REDIS_PASSWORD",
                                                                        "value": "hunter2"}),
                                check_no_password_literals),
    "URL refers to a plain env var": (lambda d: _entrypoint(d, " --redis-url redis://ami:${HOME}@ami-redis:6379/0"),
                                      check_no_password_literals),
    "URL env with a literal password": (lambda d: _env(d, "AMI_REDIS_URL").update(
        value="redis://ami:hunter2@ami-redis:6379/0"), check_no_password_literals),
    "URL env refers to a plain var": (lambda d: _env(d, "AMI_REDIS_URL").update(
        value="redis://ami:$(AMI_PROMETHEUS_SD_DIR)@ami-redis:6379/0"), check_no_password_literals),
    "URL env before its Secret var": (lambda d: _head_env(d).reverse(), check_no_password_literals),
    # the entrypoint as it was: the shell expands the Secret's value into ami's argv
    "Secret expanded into the entrypoint": (lambda d: _entrypoint(
        d, " --redis-url redis://ami:${REDIS_PASSWORD}@ami-redis:6379/0"), check_no_secret_on_command_line),
    "Secret expanded into args": (lambda d: redis_container(d)["args"].extend(["--requirepass", "$(REDIS_PASS)"]),
                                  check_no_secret_on_command_line),
    "--redis-url in the entrypoint": (lambda d: _entrypoint(d, " --redis-url redis://ami-redis:6379/0"),
                                      check_no_secret_on_command_line),
    "no AMI_REDIS_URL on the head": (lambda d: _head_env(d).remove(_env(d, "AMI_REDIS_URL")),
                                     check_no_secret_on_command_line),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_checks_catch_broken_manifests(manifests: Docs, name: str) -> None:
    mutate, check = MUTATIONS[name]
    broken = copy.deepcopy(manifests)
    mutate(broken)
    with pytest.raises(AssertionError):
        check(broken)


def test_parse_check_catches_bad_yaml_and_duplicates() -> None:
    files = texts()
    with pytest.raises(AssertionError, match="does not parse"):
        check_parse({**files, "redis.yaml": files["redis.yaml"] + "\n  bad: [indent\n"})
    with pytest.raises(AssertionError, match="defined twice"):
        check_parse({**files, "copy.yaml": files["redis.yaml"]})
