# drain: Heroku log drain. Build: docker build -t drain .
# Run:   docker run -e DATABASE_URL=postgres://... -e DRAIN_USERNAME=... -e DRAIN_PASSWORD=... \
#          -e PORT=8000 -p 8000:8000 drain
# The container runs `drain serve`; with DATABASE_URL set it binds 0.0.0.0:$PORT and expects a
# migrated database: run `docker run ... drain migrate` first (Heroku: the release phase).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000

RUN useradd --create-home --uid 10001 drain
WORKDIR /app
COPY pyproject.toml README.md ./
COPY drain ./drain
COPY sql ./sql
RUN pip install . && rm -rf /app/build

USER drain
EXPOSE 8000
# Exec form: SIGTERM reaches drain directly (graceful shutdown, the writer flushes).
# `drain serve` reads $PORT (and every other setting) from the environment at run time.
CMD ["drain", "serve"]
