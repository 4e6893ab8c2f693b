"""The catalogs and worlds tests decide in."""

from __future__ import annotations

from functools import cache

from sendwise.models import Catalog, World, load_world

# The server tests' catalog: 2 regions × 2 industries × 2 campaign types.
CATALOG = Catalog(regions=("NA", "EU"), industries=("ecommerce", "gaming"),
                  campaign_types=("broadcast", "cart_reminder"))


@cache
def seed_world() -> World:
    """The embedded seed world, loaded once."""
    return load_world("seed")
