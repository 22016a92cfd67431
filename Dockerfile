# ticketwar application image: web (granian), ws (uvicorn), Celery worker and beat share it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 1000 ticketwar
# The runtime packages only (requirements-dev.txt is the workshop: tests, load tests, tools).
COPY requirements.txt .
RUN pip install -r requirements.txt
# The application only: .dockerignore lets in its packages, templates, static files and
# translations, and leaves out tests, load tests, tools, docs and any .env file.
COPY . .
# Static files are collected at build time and served by WhiteNoise.
RUN TICKETWAR_ENV=production SECRET_KEY=build-only-not-a-secret-build-only-not-a-secret \
    ALLOWED_HOSTS=build SITE_URL=https://build.invalid python manage.py collectstatic --noinput -v 0 \
    && mkdir -p /tmp/prometheus && chown ticketwar /tmp/prometheus
USER ticketwar
EXPOSE 8000 8001
# The web process (HTTP); docker-compose.yml gives ws, worker and beat their own commands.
# Connection limits and idle time sized for the opening's crowd (docs/DEPLOYMENT.md, "Connections
# at the opening"), as in the Procfile; the shell raises the open-file limit first.
CMD ["sh", "-c", "ulimit -Sn \"$(ulimit -Hn)\"; exec python -m granian --interface wsgi --host 0.0.0.0 --port 8000 --workers 2 --blocking-threads 8 --backlog 4096 --backpressure 4096 --http1-header-read-timeout 60000 --no-ws --no-access-log --log-level warning --workers-kill-timeout 5 ticketwar.wsgi:application"]
