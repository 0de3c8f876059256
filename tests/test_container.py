"""The Dockerfile and compose.yaml, checked by parsing (no Docker engine on these machines)."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from session_service.core.settings import Settings, production_problems

ROOT = Path(__file__).resolve().parents[1]


def stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split by FROM."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    found: list[list[str]] = []
    for line in instructions:
        if line.upper().startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(line)
    return found


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


KEY_SETTINGS = ("SERVICE_API_KEYS", "ADMIN_API_KEYS", "SIGNING_KEYS")
# Compose interpolation: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}.
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """`value` as `docker compose` resolves it from `env`; a missing `:?` variable fails."""

    def resolve(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        found = env.get(name)
        if found:
            return found
        if op and op.endswith("?"):
            pytest.fail(f"compose needs {name}: {arg}")
        return arg if op else ""

    return _VARIABLE.sub(resolve, value)


def strong_keys() -> dict[str, str]:
    """What an operator exports: a JSON list with one long random key per setting."""
    return {name: json.dumps([secrets.token_hex(32)]) for name in KEY_SETTINGS}


class TestDockerfile:
    def test_multi_stage_with_a_slim_runtime(self) -> None:
        all_stages = stages()
        assert len(all_stages) >= 2
        final = all_stages[-1]
        assert re.match(r"FROM python:\S+-slim AS runtime", final[0])

    def test_runs_as_a_non_root_user(self) -> None:
        final = stages()[-1]
        users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
        assert users
        assert users[-1].split(":")[0] not in {"0", "root"}

    def test_health_check_and_entry_point(self) -> None:
        final = " ".join(stages()[-1])
        assert "HEALTHCHECK" in final
        assert "/healthz" in final
        assert 'ENTRYPOINT ["session-service"]' in final
        assert 'CMD ["serve"]' in final
        assert "WORKERS=" in final  # workers configurable by the environment

    def test_no_build_tools_or_caches_in_the_final_stage(self) -> None:
        final = stages()[-1]
        joined = " ".join(final)
        assert "pip install" not in joined
        assert "apt-get install" not in joined
        copies = [line for line in final if line.upper().startswith("COPY ")]
        assert any("--from=build /opt/venv" in line for line in copies)
        for line in copies:
            assert " src" not in line
            assert " tests" not in line
        build = " ".join(stages()[0])
        assert "PIP_NO_CACHE_DIR=1" in build
        assert "__pycache__" in build

    def test_installs_the_runtime_lock_file_then_the_package_without_deps(self) -> None:
        build = stages()[0]
        lock = "requirements/runtime.txt"
        assert (ROOT / lock).is_file()
        copies = [i for i, line in enumerate(build) if line.startswith("COPY ") and lock in line]
        installs = [line for line in build if line.startswith("RUN ") and "pip install" in line]
        from_lock = [i for i, line in enumerate(build) if f"pip install -r {lock}" in line]
        assert copies
        assert from_lock
        assert copies[0] < from_lock[0]
        # Everything else installs without resolving, so the lock file's versions stand.
        others = [line for line in installs if f"-r {lock}" not in line]
        assert others
        for line in others:
            assert re.search(r"pip install --no-deps \.(\s|$)", line), line
        assert build.index(others[-1]) > from_lock[0]

    def test_migrations_ship_with_the_image(self) -> None:
        final = " ".join(stages()[-1])
        assert "COPY alembic.ini" in final
        assert "COPY alembic ./alembic" in final


class TestCompose:
    def test_the_parts_operators_run(self) -> None:
        services = compose()["services"]
        assert {"postgres", "redis", "minio", "migrate", "session-service"} <= set(services)

    def test_one_worker_per_container(self) -> None:
        """Metrics are per process: with two workers, /metrics answered for either one."""
        environment = compose()["services"]["session-service"]["environment"]
        assert environment.get("WORKERS", "1") == "1"

    def test_migrations_run_once_before_the_app(self) -> None:
        services = compose()["services"]
        assert services["migrate"]["command"] == ["migrate", "upgrade"]
        depends = services["session-service"]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services["session-service"]["environment"]["AUTO_MIGRATE"] == "false"

    @pytest.mark.parametrize("service", ["session-service", "migrate"])
    def test_the_environment_passes_the_production_checks(
        self, service: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Read as the container reads it: from the environment, the keys the operator's.
        operator = strong_keys()
        for key, value in compose()["services"][service]["environment"].items():
            monkeypatch.setenv(key, interpolate(str(value), operator))
        settings = Settings()
        assert settings.environment == "production"
        assert production_problems(settings, workers=settings.workers) == []
        assert settings.rate_limits.storage_uri.startswith("redis://")
        assert settings.storage.backend == "s3"
        assert settings.database.url.startswith("postgresql+asyncpg://")
        assert [key.get_secret_value() for key in settings.admin_api_keys] == json.loads(
            operator["ADMIN_API_KEYS"]
        )

    @pytest.mark.parametrize("service", ["session-service", "migrate"])
    def test_no_key_is_committed(self, service: str) -> None:
        environment = compose()["services"][service]["environment"]
        for name in KEY_SETTINGS:
            assert environment[name] == f"${{{name}:?set {name}}}", name
        text = (ROOT / "compose.yaml").read_text()
        assert "example-" not in text
        assert not re.search(r"_KEYS:\s*['\"]?\[", text)  # no inline JSON list of keys

    def test_the_keys_are_required(self) -> None:
        environment = compose()["services"]["session-service"]["environment"]
        with pytest.raises(pytest.fail.Exception, match="compose needs ADMIN_API_KEYS"):
            interpolate(str(environment["ADMIN_API_KEYS"]), {})


class TestComposeStorage:
    def test_browsers_reach_minio_at_its_published_port(self) -> None:
        services = compose()["services"]
        environment = services["session-service"]["environment"]
        public = urlsplit(environment["S3_PUBLIC_ENDPOINT_URL"])
        assert urlsplit(environment["S3_ENDPOINT_URL"]).hostname == "minio"
        assert public.hostname == "127.0.0.1"
        published = {str(port).rsplit(":", 2)[-2] for port in services["minio"]["ports"]}
        assert str(public.port) in published
        origin = services["minio"]["environment"]["MINIO_API_CORS_ALLOW_ORIGIN"]
        assert origin == environment["PUBLIC_BASE_URL"]
