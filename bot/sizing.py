"""Output sizes: from the input's aspect ratio or the request, within a provider's rules."""

from __future__ import annotations

import math

from bot.models import SizeRules


def snap(value: float, multiple: int, low: int, high: int) -> int:
    """``value`` rounded to the nearest multiple, kept within [low, high] (also multiples)."""
    low_m = math.ceil(low / multiple) * multiple
    high_m = max(low_m, math.floor(high / multiple) * multiple)
    return int(min(high_m, max(low_m, round(value / multiple) * multiple)))


def _fit_area(width: float, height: float, max_area: int) -> tuple[float, float]:
    if width * height <= max_area:
        return width, height
    scale = math.sqrt(max_area / (width * height))
    return width * scale, height * scale


def output_size(
    input_size: tuple[int, int],
    rules: SizeRules,
    *,
    size: tuple[int, int] | None = None,
    aspect: tuple[int, int] | None = None,
    max_side: int | None = None,
) -> tuple[int, int]:
    """The size to generate at.

    An explicit ``size`` is kept as close as the rules allow; otherwise the ratio (``aspect``
    or the input's) is rendered at the provider's preferred area. ``max_side`` is a chat cap.
    """
    if size is not None:
        width, height = float(size[0]), float(size[1])
        ratio = width / height
    else:
        ratio = aspect[0] / aspect[1] if aspect else input_size[0] / max(1, input_size[1])
        ratio = min(4.0, max(0.25, ratio))
        height = math.sqrt(rules.preferred_area / ratio)
        width = height * ratio
    top = min(rules.max_side, max_side or rules.max_side)
    if max(width, height) > top:
        scale = top / max(width, height)
        width, height = width * scale, height * scale
    width, height = _fit_area(width, height, rules.max_area)
    # The price step of the area aimed at; rounding off float noise keeps 1024² at one unit.
    budget = megapixel_units(round(width * height), 1)
    if rules.allowed_sizes:
        fitting = [s for s in rules.allowed_sizes if megapixel_units(*s) <= budget]
        return min(fitting or rules.allowed_sizes,
                   key=lambda s: (abs(math.log((s[0] / s[1]) / ratio)),
                                  abs(s[0] * s[1] - width * height)))
    snapped_w = snap(width, rules.multiple, rules.min_side, top)
    snapped_h = snap(height, rules.multiple, rules.min_side, top)
    while snapped_w * snapped_h > rules.max_area and min(snapped_w, snapped_h) > rules.min_side:
        if snapped_w >= snapped_h:
            snapped_w -= rules.multiple
        else:
            snapped_h -= rules.multiple
    if megapixel_units(snapped_w, snapped_h) <= budget:
        return snapped_w, snapped_h
    return _within_budget(width, height, rules, top, budget) or (snapped_w, snapped_h)


def _within_budget(width: float, height: float, rules: SizeRules, top: int,
                   budget: int) -> tuple[int, int] | None:
    """The valid size nearest in shape and area to ``width`` x ``height`` that costs no more.

    Rounding both sides to the nearest multiple can step over a megapixel (640x480 at 1 MP
    rounds to 1184x888, 1.003 MP), which would double the price the user was shown.
    """
    low = math.ceil(rules.min_side / rules.multiple) * rules.multiple
    high = max(low, top // rules.multiple * rules.multiple)
    ratio, area = width / height, width * height
    best: tuple[float, tuple[int, int]] | None = None
    for w in range(low, high + 1, rules.multiple):
        exact = w / ratio
        for h in {math.floor(exact / rules.multiple) * rules.multiple,
                  math.ceil(exact / rules.multiple) * rules.multiple}:
            if not low <= h <= high or w * h > rules.max_area:
                continue
            if megapixel_units(w, h) > budget:
                continue
            score = abs(math.log(w / h / ratio)) + abs(math.log(w * h / area))
            if best is None or score < best[0]:
                best = (score, (w, h))
    return best[1] if best else None


def megapixel_units(width: int, height: int) -> int:
    """Price units: ceil of the area in megapixels, where 1 megapixel is 1024 x 1024."""
    return max(1, math.ceil(width * height / (1024 * 1024)))
