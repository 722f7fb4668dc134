"""Configuration from the environment alone: IMG2IMG_<SECTION>__<KEY>, no file needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import build_config, load_config
from bot.errors import ConfigError
from bot.providers.base import HttpProviderSettings


def test_every_section_can_come_from_variables() -> None:
    config = load_config(None, environ={
        "IMG2IMG_STORAGE__URL": "sqlite:///x/bot.db",
        "IMG2IMG_TELEGRAM__API_BASE": "http://127.0.0.1:9",
        "IMG2IMG_TELEGRAM__TOKEN": "777:from-the-env",
        "IMG2IMG_CREDITS__OWNERS": '["telegram:1"]',
        "IMG2IMG_LIMITS__MAX_QUEUE": "7",
        "IMG2IMG_PROVIDERS__WEBUI__TYPE": "a1111",
        "IMG2IMG_PROVIDERS__WEBUI__URL": "http://webui:7860",
        "IMG2IMG_HTTP__ENABLED": "true",
        "IMG2IMG_LOGGING__FORMAT": "json",
    })
    assert config.storage.url == "sqlite:///x/bot.db"
    assert config.telegram is not None and config.telegram.api_base == "http://127.0.0.1:9"
    assert config.telegram.token is not None
    assert config.telegram.token.get_secret_value() == "777:from-the-env"
    assert "from-the-env" not in repr(config)
    assert config.credits.owners == ["telegram:1"] and config.limits.max_queue == 7
    webui = config.provider_settings()["webui"]
    assert isinstance(webui, HttpProviderSettings) and webui.url == "http://webui:7860"
    assert config.defaults.provider == "webui"
    assert config.http.enabled and config.logging.format == "json"


def test_a_variable_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[limits]\nmax_queue = 3\nmax_side = 1024\n[providers.e]\ntype = "echo"\n')
    config = load_config(path, environ={"IMG2IMG_LIMITS__MAX_QUEUE": "9"})
    assert (config.limits.max_queue, config.limits.max_side) == (9, 1024)


@pytest.mark.parametrize(("environ", "named"), [
    ({"IMG2IMG_LIMITS__MAX_QUEUE": "lots"}, "IMG2IMG_LIMITS__MAX_QUEUE"),
    ({"IMG2IMG_LIMITS__MAX_QUEU": "3"}, "IMG2IMG_LIMITS__MAX_QUEU"),
    ({"IMG2IMG_LIMIT__MAX_QUEUE": "3"}, "IMG2IMG_LIMIT__MAX_QUEUE"),
    ({"IMG2IMG_CREDITS__OWNERS": "[not json"}, "IMG2IMG_CREDITS__OWNERS: not valid JSON"),
    ({"IMG2IMG_PROVIDERS__W__TYPE": "a1111", "IMG2IMG_PROVIDERS__W__URL": "http://w",
      "IMG2IMG_PROVIDERS__W__COST": "-4"}, "IMG2IMG_PROVIDERS__W__COST"),
    ({"IMG2IMG_DEFAULTS__PROVIDER": "nope"}, "IMG2IMG_DEFAULTS__PROVIDER"),
])
def test_a_bad_value_names_its_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_config(None, environ=environ)


def test_other_img2img_variables_are_not_settings() -> None:
    config = load_config(None, environ={"IMG2IMG_TEST_POSTGRES_URL": "postgresql://x/y",
                                        "IMG2IMG_PROVIDERS__E__TYPE": "echo"})
    assert config.defaults.provider == "e"


def test_a_bad_file_value_still_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"limits\.max_queue"):
        build_config({"limits": {"max_queue": 0}}, environ={"IMG2IMG_LIMITS__MAX_SIDE": "512"})


def test_a_platform_token_alone_turns_the_platform_on() -> None:
    config = load_config(None, environ={"TELEGRAM_BOT_TOKEN": "1234567:token-from-env"})
    assert config.telegram is not None and config.telegram.token is not None
    assert config.discord is None
    config = load_config(None, environ={"DISCORD_BOT_TOKEN": "discord-token-from-env"})
    assert config.discord is not None and config.telegram is None


def test_without_providers_the_bot_picks_a_backend_and_says_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.backends

    monkeypatch.setattr(bot.backends, "local_extra_installed", lambda: False)
    config = load_config(None, environ={})
    assert config.defaults.provider == "horde"
    assert config.provider_settings()["horde"].type == "horde"
    assert "anonymous key" in config.backend_reason
    assert "the local extra (diffusers) is not installed" in config.backend_reason
    assert "IMG2IMG_PROVIDERS__NAME__TYPE" in config.backend_reason
    monkeypatch.setattr(bot.backends, "local_extra_installed", lambda: True)
    monkeypatch.setattr(bot.backends, "gpu_present", lambda: True)
    config = load_config(None, environ={})
    assert config.defaults.provider == "local"
    assert config.provider_settings()["local"].type == "diffusers"
    assert "GPU" in config.backend_reason
    monkeypatch.setattr(bot.backends, "gpu_present", lambda: False)
    config = load_config(None, environ={"HORDE_API_KEY": "my-horde-key"})
    assert "no GPU was found" in config.backend_reason and "HORDE_API_KEY" in config.backend_reason


def test_a_configured_provider_is_the_backend(tmp_path: Path) -> None:
    config = load_config(None, environ={"IMG2IMG_PROVIDERS__E__TYPE": "echo"})
    assert config.defaults.provider == "e" and "e (echo" in config.backend_reason
