"""Loading worlds: the seed world's arrays, and strict errors that name the file, the key and the rule."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from sendwise.models import Catalog, load_world
from sendwise.models.domain.world import WORLDS_DIR

SEED_TEXT = (WORLDS_DIR / "seed.toml").read_text(encoding="utf-8")
CHANNELS = "email, push, in_app, app_inbox, sms, whatsapp, web_push"


def edited_world(tmp_path: Path, *edits: tuple[str, str], name: str = "seed.toml") -> Path:
    """A copy of the seed world with each ``(old, new)`` text replaced exactly once."""
    text = SEED_TEXT
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in seed.toml"
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _table_block(header: str) -> str:
    """The text of one ``[header]`` table up to the next table."""
    start = SEED_TEXT.index(f"[{header}]")
    return SEED_TEXT[start:SEED_TEXT.index("\n[", start) + 1]


def test_seed_world_is_ready_for_the_engine() -> None:
    world = load_world("seed")
    catalog = world.catalog
    assert isinstance(catalog, Catalog)
    assert catalog.regions == ("NA", "EU", "CN", "LATAM", "ASIA", "IN", "ME")
    assert catalog.outcomes == ("click", "unsubscribe", "open")  # the seed world reports opens
    assert catalog.n_cells <= 400, "keep the cell count modest"
    assert world.value.shape == (3,) and world.value[0] > 0 > world.value[1] and world.value[2] == 0
    assert world.cost.shape == (len(catalog.regions), catalog.n_arms)
    assert np.all(world.cost[:, catalog.null_arm] == 0) and np.all(world.cost >= 0)
    assert world.cost[catalog.region_index("EU"), catalog.arm("sms", 12)] == pytest.approx(0.06)
    assert world.fixed_monthly_cost[catalog.channel_index("sms")] == 1000
    assert world.region_timezones["IN"] == "Asia/Kolkata" and world.utc_offset_hours[catalog.region_index("IN")] == 5.5
    assert world.playbook["fintech"] == ["email", 14]
    assert world.hour_curves.shape == (len(catalog.regions), len(catalog.channels), 24)
    assert world.hour_curves.max() == 1.0
    nightly_sms = world.hour_allowed[catalog.region_index("NA"), catalog.channel_index("sms")]
    assert nightly_sms.tolist() == [8 <= h < 21 for h in range(24)]
    np.testing.assert_allclose(world.campaign_weights.sum(axis=1), 1.0)
    gaming, fintech = catalog.industry_index("gaming"), catalog.industry_index("fintech")
    assert np.all(world.lift[gaming] == 1.13)
    assert world.lift[fintech, catalog.campaign_index("onboarding")].tolist() == [1.26, 1.26]
    assert world.click_value_multiplier[fintech, catalog.channel_index("email")] == 1.5
    shifts, probs = world.hour_shift_distribution()
    assert probs.sum() == pytest.approx(1.0) and probs[shifts == 0] == probs.max()


def test_world_loads_from_a_users_path(tmp_path: Path) -> None:
    world = load_world(edited_world(tmp_path, name="my_market.toml"))
    assert world.name == "my_market"
    assert load_world(str(world.path)).name == "my_market"


INVALID_WORLDS = [
    pytest.param((("[engagement.email]\n", "[engagement.fax]\necommerce = 0.1\n\n[engagement.email]\n"),),
                 f"seed.toml: [engagement] unknown key 'fax'; expected: {CHANNELS}", id="unknown-channel-table"),
    pytest.param((("ecommerce = 0.020  # Mailchimp 2019 click", "ecomerce = 0.020  # Mailchimp 2019 click"),),
                 "seed.toml: [engagement.email] unknown key 'ecomerce'; expected: ecommerce, gaming, fintech, "
                 "media, travel", id="misspelt-industry"),
    pytest.param(((_table_block("reach.sms"), ""),),
                 f"seed.toml: [reach] missing key 'sms'; expected: {CHANNELS}", id="missing-channel"),
    pytest.param((("EU = 0.06      # UK", "EU = -0.06      # UK"),),
                 "seed.toml: [cost.per_message.sms] EU = -0.06: cost must be a number >= 0", id="negative-cost"),
    pytest.param((("ecommerce = 0.020  # Mailchimp 2019 click", "ecommerce = 1.7  # Mailchimp 2019 click"),),
                 "seed.toml: [engagement.email] ecommerce = 1.7: rate must lie in [0, 1]", id="rate-above-one"),
    pytest.param((("LATAM = 0.95   # Brazil 98.9%", 'LATAM = "high"   # Brazil 98.9%'),),
                 'seed.toml: [reach.whatsapp] LATAM = "high": rate must lie in [0, 1]', id="rate-not-a-number"),
    pytest.param((('timezone = "Asia/Dubai"', 'timezone = "Gulf/Dubai"'),),
                 'seed.toml: [regions.ME] timezone = "Gulf/Dubai": must be an IANA time zone such as '
                 '"Europe/Berlin"', id="bad-timezone"),
    pytest.param((("NA = [8, 21]", "NA = [21, 8]"),),
                 "seed.toml: [quiet_hours.sms] NA = [21, 8]: must be [first, end] local hours, "
                 "0 <= first < end <= 24", id="inverted-quiet-hours"),
    pytest.param((('fintech = ["email", 14]', 'fintech = ["fax", 14]'),),
                 f'seed.toml: [playbook] fintech = ["fax", 14]: must be [channel, local hour 0-23] with a channel '
                 f"of {CHANNELS}", id="playbook-unknown-channel"),
    pytest.param((("share = 0.06                    # assumption", "share = 0.5  # assumption"),),
                 "seed.toml: [regions] shares sum to 1.44: they must sum to 1", id="shares-not-one"),
    pytest.param((("per_week_total = 5", "per_week_total = 0"),),
                 "seed.toml: [frequency_caps] per_week_total = 0: must be an integer in [1, 10000]", id="zero-cap"),
    pytest.param((("[playbook]", "[colour]\nred = 1\n\n[playbook]"),),
                 "seed.toml: top level unknown key 'colour'; expected: world, catalog, regions,", id="unknown-table"),
    pytest.param((("email = 0.30      # fit", "email = [0.30]      # fit"),),
                 "seed.toml: [fatigue.click_power] email = [0.3]: exponent must be a number >= 0",
                 id="list-not-number"),
    pytest.param((('click_multiplier = 2.0  # welcome', 'click_multiplier = 0.0  # welcome'),),
                 "seed.toml: [campaigns.onboarding] click_multiplier = 0.0: multiplier must be a number > 0",
                 id="zero-multiplier"),
    pytest.param((("[world]", "[world"),), "seed.toml: not valid TOML:", id="broken-toml"),
]


@pytest.mark.parametrize("edits, message", INVALID_WORLDS)
def test_bad_world_files_are_rejected_with_the_key_path(tmp_path: Path, edits: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        load_world(edited_world(tmp_path, *edits))


def test_unknown_world_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=re.escape("unknown world 'mars'; known: seed (or pass the path of a .toml")):
        load_world("mars")


def test_missing_world_file_says_which(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(FileNotFoundError, match=re.escape(f"world file {str(missing)!r} does not exist")):
        load_world(missing)


def test_every_number_in_the_seed_world_says_where_it_comes_from() -> None:
    """A line with a number needs a comment, unless the table header above it carries the source."""
    header_sourced = False
    for number, line in enumerate(SEED_TEXT.splitlines(), start=1):
        code = line.split("#", 1)[0]
        if code.strip().startswith("["):
            header_sourced = "#" in line
        elif re.search(r"=\s*[-\d\[{]", code) and not re.search(r"^\s*(\w+\s*=\s*\[\s*\"|channels|industries)", code):
            assert "#" in line or header_sourced, f"seed.toml line {number} has no source: {line!r}"
