"""Prices at the megapixel edge: the default size of every backend costs what /help quotes.

A job is priced by the megapixels of its output (``cost x ceil(MP)``), so a size snapped just
above a megapixel would cost twice what the user was shown. For every backend's size rules and
common photo shapes, the chosen size costs no more than the backend's preferred area, and
exactly the quote /help and /providers show.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import pytest

from bot.config import CreditsConfig, DefaultsConfig
from bot.credits import Credits
from bot.options import Overrides
from bot.providers.base import Provider
from bot.providers.scenario import ScenarioProvider
from bot.settings import Layers, resolve
from bot.sizing import megapixel_units, output_size
from bot.stored_settings import ChatPolicy
from storage.base import Storage
from tests.core.every_backend import BACKENDS, every_backend

# Photo shapes people send (width, height) and the ``--ar`` values they ask for.
SHAPES = [(1, 1), (4, 3), (3, 4), (3, 2), (2, 3), (16, 9), (9, 16), (21, 9)]
PHOTOS = [(w * 160, h * 160) for w, h in SHAPES] + [(640, 480), (4032, 3024), (1920, 1080)]


@pytest.fixture
async def providers() -> AsyncIterator[dict[str, Provider]]:
    async with every_backend() as built:
        yield built


CREDITS = Credits(CreditsConfig(), cast(Storage, None))  # pricing reads no storage


def charged(provider: Provider, name: str, photo: tuple[int, int],
            aspect: tuple[int, int] | None = None) -> tuple[int, int, int]:
    """(width, height, price) the core resolves for one image of ``photo``, as a job would."""
    resolved = resolve(prompt="a cat", layers=Layers(request=Overrides(aspect=aspect)),
                       defaults=DefaultsConfig(provider=name), styles={}, policy=ChatPolicy(),
                       providers={name: provider}, input_size=photo, max_side=2048)
    params = resolved.params
    return params.width, params.height, CREDITS.price(provider.settings.cost, params)


@pytest.mark.parametrize("name", sorted(BACKENDS))
async def test_no_default_size_costs_more_than_the_preferred_area(
        providers: dict[str, Provider], name: str) -> None:
    provider = providers[name]
    rules = provider.rules
    ceiling = provider.settings.cost * megapixel_units(rules.preferred_area, 1)
    quote = CREDITS.quote(provider.settings.cost, rules)
    assert quote <= ceiling
    for photo in PHOTOS:
        width, height, price = charged(provider, name, photo)
        assert price == quote, (name, photo, (width, height))
    for shape in SHAPES:
        width, height, price = charged(provider, name, (800, 800), aspect=shape)
        assert price == quote, (name, shape, (width, height))
        assert (width, height) in rules.allowed_sizes or (
            width % rules.multiple == 0 and height % rules.multiple == 0)


def test_a_640x480_photo_at_one_megapixel_stays_one_credit() -> None:
    # The case that cost 2 credits: rounding both sides up gave 1184x888 (1.003 MP).
    size = output_size((640, 480), ScenarioProvider.size_rules)
    assert size[0] * size[1] <= 1024 * 1024 and megapixel_units(*size) == 1
    assert abs(size[0] / size[1] - 4 / 3) < 0.01 and size[0] * size[1] > 0.99 * 1024 * 1024


def test_a_size_asked_above_a_megapixel_is_priced_as_asked() -> None:
    rules = ScenarioProvider.size_rules
    assert megapixel_units(*output_size((1, 1), rules, size=(1536, 1024))) == 2
    assert output_size((1, 1), rules, size=(1000, 1000)) == (1000, 1000)
