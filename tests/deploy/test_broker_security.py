"""Who may write which topic: in production only a TLS listener that authenticates each client
(SCRAM) and ACLs by which a service writes its own topic and dead-letter topic alone, reads what
its code reacts to and joins its own groups; the embedded broker listens on loopback only."""

from __future__ import annotations

import importlib
import socket
from pathlib import Path

from test_manifests import Doc, containers, env_names, named, of_kind, render

from tandem.settings import TOPIC_OWNERS
from tandem_cli.broker import EmbeddedBroker, free_port

#: What each deployable reads, from its own code (the reactions it registers).
READS = {
    "incidents": lambda: importlib.import_module("incidents.consumers").REACTIONS.topics,
    "changes": lambda: importlib.import_module("changes.consumers").REACTIONS.topics,
    "deployments": lambda: importlib.import_module("deployments.consumers").REACTIONS.topics,
    "dashboard": lambda: importlib.import_module("dashboard.feed").TOPICS,
    "catalog": lambda: importlib.import_module("catalog.consumers").REACTIONS.topics,
    "notifier": lambda: importlib.import_module("notifier.consumers").REACTIONS.topics,
}


def _grants(user: Doc) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl.get("type", "allow") == "allow"
        resource = acl["resource"]
        key = (resource["type"], resource.get("name", ""))
        out.setdefault(key, set()).update(acl["operations"])
    return out


def test_production_brokers_take_only_authenticated_tls_clients_with_acls() -> None:
    kafka = named(render("prod"), "Kafka", "tandem")["spec"]
    for listener in kafka["kafka"]["listeners"]:
        assert listener["tls"] is True, listener["name"]
        assert listener["authentication"]["type"] == "scram-sha-512", listener["name"]
    assert kafka["kafka"]["authorization"]["type"] == "simple"
    assert "userOperator" in kafka["entityOperator"]


def test_each_service_writes_only_its_own_topics_and_reads_what_it_reacts_to() -> None:
    docs = render("prod")
    users = {u["metadata"]["name"]: u for u in of_kind(docs, "KafkaUser")}
    assert set(users) == {f"tandem-{s}" for s in READS}
    for service, reads in READS.items():
        grants = _grants(users[f"tandem-{service}"])
        writable = {name for (kind, name), ops in grants.items()
                    if kind == "topic" and ops & {"Write", "All", "Create", "Delete", "Alter"}}
        owns = service in TOPIC_OWNERS
        assert writable == ({f"tandem.{service}", f"tandem.{service}.dlq"} if owns else set())
        readable = {name for (kind, name), ops in grants.items()
                    if kind == "topic" and "Read" in ops}
        expected = {f"tandem.{t}" for t in reads()} | ({f"tandem.{service}"} if owns else set())
        assert readable == expected, service
        groups = {name for (kind, name) in grants if kind == "group"}
        assert groups == ({f"tandem-{service}-"} if owns else set()), service
        assert all("All" not in ops for ops in grants.values())


def test_each_service_connects_as_its_own_user_over_tls() -> None:
    docs = render("prod")
    for service in READS:
        deployment = named(docs, "Deployment", service)
        app = deployment["spec"]["template"]["spec"]["containers"][0]
        env = env_names(app)
        assert env["TANDEM_KAFKA_SASL_USERNAME"]["value"] == f"tandem-{service}"
        password = env["TANDEM_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password == {"name": f"tandem-{service}", "key": "password"}
        mounts = {m["mountPath"] for m in app["volumeMounts"]}
        assert "/etc/tandem/kafka-ca" in mounts
        # No other container of the pod holds Kafka credentials.
        others = [c for c in containers(deployment) if c is not app]
        assert all("TANDEM_KAFKA_SASL_PASSWORD" not in env_names(c) for c in others)


def test_the_embedded_broker_listens_on_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    broker = EmbeddedBroker(port, log_path=tmp_path / "tansu.log")
    broker.start()
    try:
        assert broker.process is not None
        listening = _listening_addresses(port)
        assert listening == {"127.0.0.1"}, listening
        outside = _an_address_of_this_host()
        if outside is not None:
            with socket.socket() as s:
                s.settimeout(1)
                assert s.connect_ex((outside, port)) != 0
    finally:
        broker.stop()


def _listening_addresses(port: int) -> set[str]:
    """The local addresses a TCP socket listens on for ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                if len(address) == 8:
                    found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
                else:
                    found.add(address)
    return found


def _an_address_of_this_host() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: it only picks a route
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else str(address)
