"""The Dockerfile and compose.yaml, checked by parsing (no Docker engine on these machines)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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

    def test_migrations_ship_with_the_image(self) -> None:
        final = " ".join(stages()[-1])
        assert "COPY alembic.ini" in final
        assert "COPY alembic ./alembic" in final


class TestCompose:
    def test_the_parts_operators_run(self) -> None:
        services = compose()["services"]
        assert {"postgres", "redis", "minio", "migrate", "session-service"} <= set(services)

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
        # Read as the container reads it: from the environment.
        for key, value in compose()["services"][service]["environment"].items():
            monkeypatch.setenv(key, str(value))
        settings = Settings()
        assert settings.environment == "production"
        assert production_problems(settings, workers=settings.workers) == []
        assert settings.rate_limit_storage_uri.startswith("redis://")
        assert settings.storage_backend == "s3"
        assert settings.database_url.startswith("postgresql+asyncpg://")
