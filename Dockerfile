# syntax=docker/dockerfile:1
# session-service: a small image that runs as a non-root user.
#   docker build -t session-service .
#   docker run -p 8000:8000 --env-file prod.env session-service          (WORKERS=N for more)
ARG PYTHON_VERSION=3.11

# --- build: a virtual environment with the service and its dependencies, nothing else ---
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# Exactly the versions the tests passed with (`make lock`, compiled for Python 3.11 on Linux),
# in a layer of their own so a change to src/ reuses it; then the service without resolving.
COPY requirements/runtime.txt ./requirements/runtime.txt
RUN /opt/venv/bin/pip install -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/pip check \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

# --- runtime: the environment, the migrations, an unprivileged user; no build tools or caches ---
FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKERS=1 \
    LOG_FORMAT=json
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY alembic.ini ./
COPY alembic ./alembic
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["session-service"]
CMD ["serve"]
