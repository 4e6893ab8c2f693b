"""The heatmap says what is true and reads well: a cold start's basis, legend ticks, text contrast."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from sendwise.server import Settings
from sendwise.server.dashboard import (
    BELOW_ZERO_INK,
    HATCH,
    MIN_CONTRAST,
    PosteriorCell,
    SegmentPosterior,
    contrast_ratio,
    heatmap,
    heatmap_legend,
)
from tests.support.api import customer, decide, event, feedback
from tests.support.app import Clock, serve

SEED_SEGMENT = {"region": "NA", "industry": "ecommerce", "campaign_type": "cart_reminder"}  # in the seed world
POSTERIOR = "/v1/segments/{region}/{industry}/{campaign_type}/posterior".format(**SEED_SEGMENT)
CELL_TEXT = re.compile(r'<g class="cell[^"]*"[^>]*>.*?dominant-baseline="middle">([^<]*)</text>', re.DOTALL)


def _cold(make_settings: Callable[..., Settings], prior_trials: float) -> Settings:
    """A fresh server on the seed world's prior, reproducible decisions."""
    return make_settings(world="seed", model_uri=None, prior_trials=prior_trials, decision_seed=3)


def test_a_flat_prior_with_no_feedback_shows_no_number_until_feedback_arrives(
        make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(_cold(make_settings, prior_trials=0), clock) as client:
        cold = client.get(POSTERIOR).json()
        assert (cold["basis"], cold["best"]) == ("none", None)
        page = client.get("/dashboard", params=SEED_SEGMENT)
        texts = CELL_TEXT.findall(page.text)
        assert len(texts) == len(cold["cells"]) and set(texts) == {"—"}, "a flat prior has no number to show"
        assert "No data yet." in page.text and "below 0: no message wins" not in page.text
        (decision,) = decide(client, customer(**SEED_SEGMENT))
        assert decision["channel"] != "none", "the seeded draw must send a message for this test to learn from"
        assert feedback(client, event(decision, "clicked", "click-1", at=clock.now)) == ["applied"]
        learned = client.get(POSTERIOR).json()
        assert learned["basis"] == "posterior"
        page = client.get("/dashboard", params=SEED_SEGMENT)
        assert "—" not in CELL_TEXT.findall(page.text) and "No data yet." not in page.text


def test_an_informed_prior_with_no_feedback_is_labelled_the_prior(make_settings: Callable[..., Settings],
                                                                  clock: Clock) -> None:
    with serve(_cold(make_settings, prior_trials=2), clock) as client:
        body = client.get(POSTERIOR).json()
        assert body["basis"] == "prior"
        values = {round(c["net_value"], 3) for c in body["cells"]}
        assert len(values) > 10, f"the world prior tells options apart; got only {sorted(values)}"
        page = client.get("/dashboard", params=SEED_SEGMENT)
        assert "No feedback yet:" in page.text and 'class="heatmap prior"' in page.text


@pytest.mark.parametrize("top", [1.0, 0.2178, 0.0526, 0.002, 0.00004])
def test_legend_ticks_are_distinct_and_start_at_zero(top: float) -> None:
    labels = [label for _, label in heatmap_legend(top)]
    ticks, hatch = labels[:-1], labels[-1]
    assert len(set(ticks)) == len(ticks) == 5, f"repeated legend ticks for a best of {top}: {ticks}"
    assert set(ticks[0]) <= {".", "0"} and hatch == "below 0: no message wins"


def test_without_a_positive_option_the_legend_has_no_ramp() -> None:
    assert heatmap_legend(0.0) == [("url(#below-zero)", "below 0: no message wins")]
    assert [label for _, label in heatmap_legend(0.0, no_data=True)] == ["— no data yet: a flat prior and no feedback"]


def test_every_cell_text_contrasts_with_its_fill() -> None:
    """Values from -0.1 to the best (0.2), so every shade of the ramp and the hatch appear."""
    values = np.linspace(-0.1, 0.2, 24 * 7)
    cells = [PosteriorCell(channel=f"ch{i // 24}", hour=i % 24, net_value=v, ci_low=v - 0.01, ci_high=v + 0.01)
             for i, v in enumerate(values)]
    posterior = SegmentPosterior(region="NA", industry="ecommerce", campaign_type="broadcast", model_version="v",
                                 credible_level=0.9, channels=[f"ch{i}" for i in range(7)], cells=cells,
                                 best=cells[-1], basis="posterior")
    drawn = heatmap(posterior)
    for cell in drawn.cells:
        backgrounds = HATCH if cell.below else (cell.fill,)
        worst = min(contrast_ratio(cell.ink, background) for background in backgrounds)
        assert worst >= MIN_CONTRAST, f"{cell.text} in {cell.ink} on {backgrounds}: contrast {worst:.2f}"
    (best,) = [c for c in drawn.cells if c.best]
    assert contrast_ratio(best.ink, best.fill) >= 7.0, "the best cell, the darkest, must read at a glance"
    assert {c.ink for c in drawn.cells if c.below} == {BELOW_ZERO_INK}


@pytest.mark.parametrize("first, second, ratio", [("#000000", "#ffffff", 21.0), ("#777777", "#777777", 1.0),
                                                  ("#ffffff", "#767676", 4.54)])
def test_contrast_ratio_matches_wcag(first: str, second: str, ratio: float) -> None:
    assert contrast_ratio(first, second) == pytest.approx(ratio, abs=0.01)
