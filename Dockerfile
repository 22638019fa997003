# drain: Heroku log drain. Build: docker build -t drain .
# Run:   docker run -e DATABASE_URL=postgres://... -e DRAIN_USERNAME=... -e DRAIN_PASSWORD=... \
#          -e PORT=8000 -p 8000:8000 drain
# The container runs `drain serve`; with DATABASE_URL set it binds 0.0.0.0:$PORT and expects a
# migrated database: run `docker run ... drain migrate` first (Heroku: the release phase).

# Build stage: a C compiler for mypyc, which compiles the decode path (setup.py); the
# runtime image gets the finished virtual environment and no compiler.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY drain ./drain
COPY sql ./sql
RUN /opt/venv/bin/pip install . \
    && /opt/venv/bin/python -c "from drain import speedups; print(speedups.summary())"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PORT=8000
RUN useradd --create-home --uid 10001 drain
COPY --from=build /opt/venv /opt/venv
WORKDIR /app

USER drain
EXPOSE 8000
# Exec form: SIGTERM reaches drain directly (graceful shutdown, the writer flushes).
# `drain serve` reads $PORT (and every other setting) from the environment at run time.
CMD ["drain", "serve"]
