# img2img-bot: slim image, non-root, state in the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    IMG2IMG_CONFIG=/data/config.toml

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY adapters ./adapters
COPY storage ./storage
RUN pip install . \
    && useradd --create-home --uid 10001 img2img \
    && mkdir -p /data \
    && chown img2img /data

USER img2img
# storage.url = "sqlite:///data/img2img.db" is relative to / here, i.e. inside the volume.
WORKDIR /
VOLUME ["/data"]
CMD ["img2img-bot", "run"]
