"""The static checks of deploy/k8s that tests/observability/test_manifests.py runs: parsing, selectors and
NetworkPolicy admission, and one `check_*` function per property (each raises AssertionError when it breaks)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
REDIS_UID = 999  # the docker-library redis image's `redis` user and group
RAY_ROLES = ("head", "actors", "learner")
FOREIGN = {"app": "other"}
NAME_ONLY = {"app.kubernetes.io/name": "ami"}  # the app name without a Ray component
PROMETHEUS = {"app.kubernetes.io/name": "prometheus"}
OPERATOR = {"app.kubernetes.io/name": "kuberay-operator", "app.kubernetes.io/component": "kuberay-operator"}

Docs = list[dict]


def texts() -> dict[str, str]:
    return {f.name: f.read_text() for f in sorted([*K8S.glob("*.yaml"), *K8S.glob("*.yml")])}


def parse(files: dict[str, str]) -> Docs:
    out = []
    for name, text in files.items():
        try:
            out += [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as e:
            raise AssertionError(f"{name} does not parse: {e}") from None
    return out


# ----------------------------------------------------------------------------------------------- helpers
def one(docs: Docs, kind: str) -> dict:
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"{len(found)} {kind} documents"
    return found[0]


def pods(docs: Docs) -> dict[str, dict]:
    """role -> pod template ({"metadata": {"labels": ...}, "spec": ...}) of every pod the manifests create."""
    rc, job = one(docs, "RayCluster")["spec"], one(docs, "RayJob")["spec"]
    out = {"redis": one(docs, "StatefulSet")["spec"]["template"], "head": rc["headGroupSpec"]["template"],
           "submitter": job["submitterPodTemplate"]}
    out.update({g["groupName"]: g["template"] for g in rc["workerGroupSpecs"]})
    return out


def labels(pod: dict) -> dict[str, str]:
    return (pod.get("metadata") or {}).get("labels") or {}


def containers(pod: dict) -> list[dict]:
    return pod["spec"].get("initContainers", []) + pod["spec"]["containers"]


def redis_container(docs: Docs) -> dict:
    found = [c for c in one(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"] if c["name"] == "redis"]
    assert len(found) == 1
    return found[0]


def redis_conf(docs: Docs) -> dict[str, str]:
    """redis.conf of the ConfigMap as directive -> value; a directive given twice keeps the last (as Redis does)."""
    conf = {}
    for line in one(docs, "ConfigMap")["data"]["redis.conf"].splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            conf[key.lower()] = value.strip()
    return conf


def k8s_bytes(q: str | int) -> int:
    """A Kubernetes memory quantity (8Gi, 512Mi, 1G, 1500M, 1e9, 1024) in bytes."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?(?:[eE]\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?", str(q))
    assert m, f"not a memory quantity: {q!r}"
    scale = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
             "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}[m[2]]
    return int(float(m[1]) * scale)


def redis_bytes(v: str) -> int:
    """A redis.conf memory size (6gb, 6g, 512mb, 100k, 1000) in bytes: k/m/g are powers of 1000, kb/mb/gb of 1024."""
    m = re.fullmatch(r"(\d+)(k|kb|m|mb|g|gb)?", v.strip().lower())
    assert m, f"not a redis memory size: {v!r}"
    return int(m[1]) * {None: 1, "k": 10**3, "kb": 2**10, "m": 10**6, "mb": 2**20, "g": 10**9, "gb": 2**30}[m[2]]


def selects(selector: dict | None, pod_labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (an empty selector selects everything)."""
    selector = selector or {}
    if any(pod_labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        ok = {"In": key in pod_labels and pod_labels[key] in values,
              "NotIn": key not in pod_labels or pod_labels[key] not in values,
              "Exists": key in pod_labels, "DoesNotExist": key not in pod_labels}[op]
        if not ok:
            return False
    return True


def policies(docs: Docs) -> Docs:
    return [d for d in docs if d.get("kind") == "NetworkPolicy"]


def isolating(docs: Docs, target: dict) -> Docs:
    """The NetworkPolicies that restrict ingress to pod template `target`."""
    out = []
    for p in policies(docs):
        spec = p["spec"]
        types = spec.get("policyTypes") or ["Ingress"]  # the API's default always includes Ingress
        if "Ingress" in types and selects(spec.get("podSelector"), labels(target)):
            out.append(p)
    return out


def port_numbers(rule_port: dict, target: dict) -> range:
    port = rule_port.get("port")
    if port is None:
        return range(1, 65536)
    if isinstance(port, str):  # a named port of the target's containers
        named = {p.get("name"): p["containerPort"] for c in containers(target) for p in c.get("ports", [])}
        assert port in named, f"port name {port!r} not on the target pod"
        port = named[port]
    return range(port, rule_port.get("endPort", port) + 1)


def peer_admits(peer: dict, source: dict[str, str], other_namespace: bool) -> bool:
    if "ipBlock" in peer:
        return True  # an address range can hold any pod
    if "namespaceSelector" not in peer and other_namespace:
        return False  # a bare podSelector means the policy's own namespace
    # a namespaceSelector is taken to match every namespace: these checks never assume a namespace's labels
    return "podSelector" not in peer or selects(peer["podSelector"], source)


def allowed(docs: Docs, target: dict, source: dict[str, str], port: int, other_namespace: bool = False) -> bool:
    """May a pod labelled `source` open a TCP connection to `port` of pod template `target`?"""
    isolated = isolating(docs, target)
    if not isolated:
        return True
    for p in isolated:
        for rule in p["spec"].get("ingress") or []:
            ports = rule.get("ports")
            if ports and not any(port in port_numbers(rp, target) and rp.get("protocol", "TCP") == "TCP"
                                 for rp in ports):
                continue
            if not rule.get("from") or any(peer_admits(peer, source, other_namespace) for peer in rule["from"]):
                return True
    return False


# ------------------------------------------------------------------------------------------------ checks
def check_parse(files: dict[str, str]) -> None:
    docs = parse(files)
    assert docs and all(isinstance(d, dict) for d in docs)
    seen = set()
    for d in docs:
        assert d.get("apiVersion") and d.get("kind"), d
        if d["kind"] != "Kustomization":
            name = (d.get("metadata") or {}).get("name")
            assert name, f"a {d['kind']} without metadata.name"
            assert (d["kind"], name) not in seen, f"{d['kind']} {name} defined twice"
            seen.add((d["kind"], name))


def check_redis_entrypoint(docs: Docs) -> None:
    c = redis_container(docs)
    assert "command" not in c, "`command` replaces the redis image's entrypoint (no step-down from root)"
    args = c.get("args") or []
    assert args, "the redis container needs args: redis-server and its config file"
    # what docker-entrypoint.sh turns into `redis-server ...`: redis-server itself, a first `-x` flag or a *.conf
    assert args[0] == "redis-server" or args[0].startswith("-") or args[0].endswith(".conf"), args
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in one(docs, "StatefulSet")["spec"]["template"]["spec"]["volumes"]}
    config_vol = next(n for n, v in vols.items() if v.get("configMap", {}).get("name") ==
                      one(docs, "ConfigMap")["metadata"]["name"])
    assert f"{mounts[config_vol]}/redis.conf" in args, "redis-server must read the ConfigMap's redis.conf"


def check_redis_memory(docs: Docs) -> None:
    conf = redis_conf(docs)
    assert "maxmemory" in conf, "without maxmemory Redis grows until the kernel OOM-kills the pod"
    maxmemory = redis_bytes(conf["maxmemory"])
    limit = k8s_bytes(redis_container(docs)["resources"]["limits"]["memory"])
    assert 0 < maxmemory < limit
    # headroom for fragmentation, client buffers and the AOF-rewrite fork's copy-on-write pages
    assert maxmemory <= 0.85 * limit, (maxmemory, limit)
    assert conf.get("maxmemory-policy") == "noeviction", "Redis must never evict replay keys by itself"


def check_redis_non_root(docs: Docs) -> None:
    pod = one(docs, "StatefulSet")["spec"]["template"]
    sc = pod["spec"].get("securityContext") or {}
    assert sc.get("runAsNonRoot") is True
    assert sc.get("runAsUser") == REDIS_UID and sc.get("fsGroup") == REDIS_UID, sc  # the PV stays writable
    for c in containers(pod):
        csc = c.get("securityContext") or {}
        assert csc.get("runAsUser", REDIS_UID) != 0 and not csc.get("privileged"), c["name"]
        assert csc.get("allowPrivilegeEscalation") is False, c["name"]


def check_redis_network(docs: Docs) -> None:
    p = pods(docs)
    redis = p["redis"]
    isolated = isolating(docs, redis)
    assert isolated, "no NetworkPolicy selects the redis pods"
    port = next(pt["containerPort"] for pt in redis_container(docs)["ports"] if pt["name"] == "redis")
    for pol in isolated:  # structure: every rule names the redis port and only podSelector peers (this namespace)
        for rule in pol["spec"].get("ingress") or []:
            assert rule.get("ports"), "a rule without ports opens every port"
            assert all(port_numbers(rp, redis) == range(port, port + 1) for rp in rule["ports"]), rule["ports"]
            assert rule.get("from"), "a rule without `from` admits every source"
            for peer in rule["from"]:
                assert set(peer) == {"podSelector"}, f"redis admits more than this namespace's pods: {peer}"
    for role in RAY_ROLES:  # behaviour: the run's Ray pods get in on the redis port and nowhere else
        assert allowed(docs, redis, labels(p[role]), port), role
        assert not allowed(docs, redis, labels(p[role]), port, other_namespace=True), role
        for other in (22, 6380, 8080, 16379, 65535):
            assert not allowed(docs, redis, labels(p[role]), other), (role, other)
    for name, src in {"submitter": labels(p["submitter"]), "redis": labels(redis), "foreign": FOREIGN,
                      "name only": NAME_ONLY, "prometheus": PROMETHEUS, "operator": OPERATOR}.items():
        for other_ns in (False, True):
            assert not allowed(docs, redis, src, port, other_namespace=other_ns), (name, other_ns)


def check_ray_network(docs: Docs) -> None:
    p = pods(docs)
    head = p["head"]
    named = {pt["name"]: pt["containerPort"] for pt in head["spec"]["containers"][0]["ports"]}
    gcs, dashboard, client = named["gcs-server"], named["dashboard"], named["client"]
    for role in RAY_ROLES:
        assert isolating(docs, p[role]), f"no NetworkPolicy selects the Ray {role} pods"
    for src in RAY_ROLES:  # Ray needs every port between its own pods (GCS, raylets, object managers, workers)
        for dst in RAY_ROLES:
            for port in (gcs, dashboard, client, 10002, 45000):
                assert allowed(docs, p[dst], labels(p[src]), port), (src, dst, port)
    assert allowed(docs, head, labels(p["submitter"]), dashboard), "the RayJob submitter needs the job API"
    assert allowed(docs, head, OPERATOR, dashboard, other_namespace=True), "KubeRay polls the job API"
    for role in RAY_ROLES:
        assert allowed(docs, p[role], PROMETHEUS, named["metrics"], other_namespace=True), role
    assert allowed(docs, head, PROMETHEUS, named["ami-metrics"], other_namespace=True)
    denied = {"foreign": (FOREIGN, (gcs, dashboard, client, 10002)),
              "name only": (NAME_ONLY, (gcs, dashboard, client)),
              "redis": (labels(p["redis"]), (gcs, dashboard, client)),
              "submitter": (labels(p["submitter"]), (gcs, client)),
              "operator": (OPERATOR, (gcs, client)),
              "prometheus": (PROMETHEUS, (gcs, dashboard, client))}
    for name, (src, ports) in denied.items():
        for port in ports:
            for other_ns in (False, True):
                assert not allowed(docs, head, src, port, other_namespace=other_ns), (name, port, other_ns)
    for role in RAY_ROLES:  # the run's labels in another namespace are not the run
        assert not allowed(docs, head, labels(p[role]), gcs, other_namespace=True), role


REF = re.compile(r"\$(?:\{(\w+)\}|\((\w+)\)|(\w+))")
CREDENTIAL = [
    re.compile(r"\w+://[^:/@\s'\"]*:([^@\s'\"]+)@"),  # redis://user:PASSWORD@host
    re.compile(r"(?:--requirepass|--masterauth|--pass(?:word)?|(?<!\S)-a|(?<![\w-])AUTH)[\s=]+['\"]?([^\s'\"]+)",
               re.I),  # redis-server --requirepass X, redis-cli -a X / --pass X, AUTH X
    re.compile(r"(?<![^\s'\"])>([^\s'\"/&]\S*)"),  # an ACL rule's >password (`> file` is a redirect)
]


def command_lines(docs: Docs) -> list[tuple[str, str, dict]]:
    """(where, text, container that runs it) for every command, args, exec probe and the RayJob entrypoint."""
    out = []
    for role, pod in pods(docs).items():
        for c in containers(pod):
            parts = [*(c.get("command") or []), *(c.get("args") or [])]
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                parts += (c.get(probe) or {}).get("exec", {}).get("command") or []
            out.append((f"{role}/{c['name']}", " ".join(map(str, parts)), c))
    out.append(("RayJob entrypoint", one(docs, "RayJob")["spec"]["entrypoint"],
                pods(docs)["head"]["spec"]["containers"][0]))  # the job runs on the head
    return out


def check_no_password_literals(docs: Docs) -> None:
    """No password is written into a manifest: a credential on a command line is at most a reference to an env
    var from a Secret, and so is the password inside an env var's URL (`$(VAR)`, a var defined before it: only
    those does Kubernetes expand); password-named env vars come from Secrets."""
    for where, text, container in command_lines(docs):
        env = {e["name"]: e for e in container.get("env", [])}
        for pattern in CREDENTIAL:
            for m in pattern.finditer(text):
                value = m[1]
                if value == "%s":  # a printf placeholder: the value is an argument, checked as such
                    continue
                ref = REF.fullmatch(value)
                assert ref, f"{where}: a credential literal on the command line after {text[m.start():m.start(1)]!r}"
                var = next(g for g in ref.groups() if g)
                assert "secretKeyRef" in env.get(var, {}).get("valueFrom", {}), f"{where}: ${var} is not a Secret"
    for role, pod in pods(docs).items():
        for c in containers(pod):
            before: dict[str, dict] = {}
            for e in c.get("env", []):
                if re.search(r"PASS|SECRET|TOKEN|AUTH", e["name"], re.I):
                    assert "value" not in e and "secretKeyRef" in e.get("valueFrom", {}), f"{role}/{c['name']}"
                for m in CREDENTIAL[0].finditer(str(e.get("value", ""))):
                    ref = re.fullmatch(r"\$\((\w+)\)", m[1])
                    assert ref, f"{role}/{c['name']} env {e['name']}: a password literal in its URL"
                    assert "secretKeyRef" in before.get(ref[1], {}).get("valueFrom", {}), \
                        f"{role}/{c['name']} env {e['name']}: $({ref[1]}) is no Secret env var defined before it"
                before[e["name"]] = e


def check_no_secret_on_command_line(docs: Docs) -> None:
    """Not even a reference to a password on a command line: the shell (`${VAR}` in the RayJob's entrypoint, a
    `sh -c` script) or Kubernetes (`$(VAR)` in command/args) expands it into the argv, which `ps` shows to every
    user of the pod and Ray keeps in its job table; only a shell builtin's argument (printf's `%s`) stays in the
    shell. The RayJob's `ami train` finds Redis in the head's AMI_REDIS_URL instead."""
    for where, text, _ in command_lines(docs):
        for pattern in CREDENTIAL:
            for m in pattern.finditer(text):
                assert m[1] == "%s", f"{where}: a password on the command line after {text[m.start():m.start(1)]!r}"
        assert not re.search(r"--redis-url(?!-file)", text), f"{where}: --redis-url on the command line"
    head = pods(docs)["head"]["spec"]["containers"][0]
    assert "AMI_REDIS_URL" in {e["name"] for e in head.get("env", [])}, "the RayJob's ami train finds no Redis URL"


# ------------------------------------------------------------------------------------------------- tests
