# img2img-bot: built from the wheel, non-root, state in the /data volume.
#   docker build -t img2img-bot .
#   docker run -d -v img2img-data:/data -e TELEGRAM_BOT_TOKEN=... img2img-bot

# Stage 1: the wheel, built exactly as CI builds it (.ci/run).
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY adapters ./adapters
COPY storage ./storage
RUN pip wheel --quiet --no-deps --wheel-dir dist .

# Stage 2: the runtime.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    IMG2IMG_STORAGE__URL=sqlite:////data/img2img.db \
    IMG2IMG_HTTP__ENABLED=true \
    IMG2IMG_HTTP__HOST=0.0.0.0 \
    IMG2IMG_HTTP__PORT=8080
WORKDIR /src
# Dependencies first, from pyproject.toml alone: a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install --quiet -r requirements.txt
# Then the bot itself, from the wheel (its dependencies are already there).
COPY --from=wheel /src/dist ./dist
RUN pip install --quiet dist/img2img_bot-*.whl \
    && rm -rf dist requirements.txt pyproject.toml \
    && useradd --create-home --uid 10001 img2img \
    && mkdir -p /data \
    && chown img2img /data

USER img2img
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['IMG2IMG_HTTP__PORT'], timeout=4)"]
CMD ["img2img-bot", "run"]
