from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

import pytest

from bot.config import build_config, load_config
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_the_example_config_is_valid() -> None:
    config = load_config(ROOT / "config.example.toml", environ={"TELEGRAM_BOT_TOKEN": "1:x"})
    assert config.telegram is not None and config.telegram.token is not None
    assert "webui" in config.provider_settings()


def test_every_commented_provider_block_in_the_example_is_valid() -> None:
    text = (ROOT / "config.example.toml").read_text()
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("# [providers."):
            current = [line[2:]]
            blocks.append(current)
        elif current is not None and line.startswith("# "):
            current.append(line[2:])
        else:
            current = None
    docs = [tomllib.loads("\n".join(b)) for b in blocks if b]
    providers: dict[str, object] = {"webui": {"type": "echo"}}
    for doc in docs:
        providers.update(doc["providers"])
    env = {"SCENARIO_API_KEY": "k", "SCENARIO_API_SECRET": "s", "MODELSLAB_API_KEY": "m"}
    for value in list(providers.values()):
        if isinstance(value, dict) and value.get("type") == "comfyui":
            value.pop("workflow", None)  # the example path does not exist here
    config = build_config({"defaults": {"provider": "webui"}, "providers": providers},
                          environ=env)
    assert len(config.provider_settings()) == len(providers)


@pytest.mark.parametrize(("doc", "key"), [
    ({"credits": {"initial": -1}}, "credits.initial"),
    ({"defaults": {"strength": 3}}, "defaults.strength"),
    ({"telegram": {"tokn": "x"}}, "telegram.tokn"),
    ({"providers": {"x": {"type": "nope"}}}, "providers.x.type"),
    ({"providers": {"x": {"type": "a1111", "url": 5}}}, "providers.x.url"),
    ({"providers": {"x": {"type": "echo", "cots": 1}}}, "providers.x.cots"),
    ({"defaults": {"provider": "y"}, "providers": {"x": {"type": "echo"}}}, "defaults.provider"),
])
def test_a_bad_config_names_the_key(doc: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_config(doc, environ={})


def test_the_only_provider_is_the_default_without_naming_it() -> None:
    config = build_config({"providers": {"e": {"type": "echo"}, "f": {"type": "echo"}}},
                          environ={})
    assert config.defaults.provider == "e"


def test_secrets_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[discord]\n[defaults]\nprovider = "e"\n[providers.e]\ntype = "echo"\n')
    config = load_config(path, environ={"DISCORD_BOT_TOKEN": "s3cr3t-value"})
    assert config.discord is not None and config.discord.token is not None
    assert config.discord.token.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(config)


def test_a_gateway_s_discord_shards_come_from_the_file_or_the_environment() -> None:
    doc = {"providers": {"e": {"type": "echo"}}, "discord": {"shard_count": 4}}
    config = build_config(doc, environ={"IMG2IMG_DISCORD__SHARD_IDS": "[2, 3]",
                                        "DISCORD_BOT_TOKEN": "t"})
    assert config.discord is not None and config.discord.shard_ids == [2, 3]
    for shard_ids, count in (([4], 4), ([1, 1], 4), ([], 4), ([0], None)):
        with pytest.raises(ConfigError, match=r"discord: .*shard"):
            build_config({"providers": {"e": {"type": "echo"}}, "discord": {
                "shard_ids": shard_ids, "shard_count": count}}, environ={})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml", environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(None, environ={"IMG2IMG_CONFIG": str(tmp_path / "gone.toml")})


def test_payment_packs_are_checked_and_named_in_errors() -> None:
    packs = [{"id": "small", "credits": 100, "stars": 50, "discord_sku": 11},
             {"id": "big", "credits": 500, "discord_sku": 12}]
    config = build_config({"payments": {"enabled": True, "packs": packs}}, environ={})
    assert [p.id for p in config.payments.packs] == ["small", "big"]
    assert "/paysupport" in config.payments.terms_text
    with pytest.raises(ConfigError, match="packs: id small used more than once"):
        build_config({"payments": {"packs": [packs[0], {**packs[1], "id": "small"}]}}, environ={})
    with pytest.raises(ConfigError, match=r"payments.packs.0.credits"):
        build_config({"payments": {"packs": [{"id": "x", "credits": 0}]}}, environ={})


def test_a_providers_table_is_typed_by_its_type_and_written_out_whole() -> None:
    """Each table becomes its backend's settings class; dumping the config (as the benchmarks
    do to start a copy) keeps that class's own keys and warns about nothing."""
    config = build_config({"providers": {"webui": {"type": "a1111", "url": "http://webui:7860",
                                                    "cost": 3}}}, {})
    assert type(config.providers["webui"]).__name__ == "A1111Settings"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dumped = config.model_dump(mode="json")
    assert dumped["providers"]["webui"]["url"] == "http://webui:7860"
    again = build_config(dumped, {})
    assert again.providers["webui"] == config.providers["webui"]
