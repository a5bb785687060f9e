"""WCAG AA contrast for the colour pairs the stylesheet actually uses, in both themes.

Read from static/css/mailroom.css itself, so changing a colour there re-runs the check.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[2] / "static" / "css" / "mailroom.css"

TEXT = 4.5  # WCAG 1.4.3, normal-size text
NON_TEXT = 3.0  # WCAG 1.4.11, input borders and the focus ring

# (foreground, background, minimum): every pair a template puts together.
PAIRS = [
    ("text", "bg", TEXT),
    ("text", "surface", TEXT),
    ("text", "info-bg", TEXT),  # messages, current navigation item
    ("text", "ok-bg", TEXT),
    ("text", "err-bg", TEXT),
    ("text", "warn-bg", TEXT),
    ("muted", "surface", TEXT),
    ("muted", "bg", TEXT),
    ("accent", "surface", TEXT),  # links
    ("accent", "bg", TEXT),
    ("accent-text", "accent", TEXT),  # primary buttons
    ("danger-text", "danger", TEXT),  # destructive buttons
    ("danger", "surface", TEXT),
    ("danger", "err-bg", TEXT),  # red badges, field errors
    ("ok", "ok-bg", TEXT),  # green badges
    ("warn", "warn-bg", TEXT),
    ("input-border", "surface", NON_TEXT),
    ("focus", "surface", NON_TEXT),
    ("focus", "bg", NON_TEXT),
]


def palette(block: str) -> dict[str, str]:
    return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", block))


def themes() -> dict[str, dict[str, str]]:
    css = CSS.read_text()
    light = palette(css[css.index(":root {") : css.index("@media (prefers-color-scheme: dark)")])
    system_dark = palette(css[css.index(':root:not([data-theme="light"])') : css.index(':root[data-theme="dark"]')])
    chosen_dark = palette(css[css.index(':root[data-theme="dark"]') : css.index("* {")])
    return {"light": light, "dark": {**light, **chosen_dark}, "system-dark": {**light, **system_dark}}


def luminance(hex_colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_matches_wcag():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def test_both_dark_palettes_are_the_same():
    # One for "follow the system", one for "chosen in the toggle": they must not drift apart.
    all_themes = themes()
    assert all_themes["dark"] == all_themes["system-dark"]


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize(("fg", "bg", "minimum"), PAIRS)
def test_it_meets_wcag_aa(theme, fg, bg, minimum):
    colours = themes()[theme]
    ratio = contrast(colours[fg], colours[bg])
    assert ratio >= minimum, f"{theme}: --{fg} {colours[fg]} on --{bg} {colours[bg]} is {ratio:.2f}:1"
