"""The domain: the catalog of options, decision batches, worlds, populations and send times.

Imports nothing from the other rooms of ``sendwise.models``; every other room builds on it.
"""

from .batch import DecisionBatch, Outcomes, build_batch, check_same_rows
from .catalog import (
    DEFAULT_CHANNELS,
    DEFAULT_OUTCOMES,
    N_HOURS,
    NO_MESSAGE,
    OPEN,
    REVENUE,
    REVENUE_UNIT,
    Catalog,
    MaskCodeError,
    decode_mask,
    encode_mask,
)
from .economics import Economics, parse_budgets
from .population import (
    ContactHistory,
    Population,
    PriorSource,
    allowed_channels,
    customer_rates,
    draw_population,
    draw_triggers,
    segment_rate_table,
    world_prior,
)
from .timing import next_send_at, send_instants
from .world import N_WEEKDAYS, OBJECTIVES, WORLDS_DIR, Conversion, World, known_worlds, load_world

__all__ = [
    "DEFAULT_CHANNELS",
    "DEFAULT_OUTCOMES",
    "N_HOURS",
    "N_WEEKDAYS",
    "NO_MESSAGE",
    "OBJECTIVES",
    "OPEN",
    "REVENUE",
    "REVENUE_UNIT",
    "WORLDS_DIR",
    "Catalog",
    "Conversion",
    "ContactHistory",
    "DecisionBatch",
    "Economics",
    "MaskCodeError",
    "Outcomes",
    "Population",
    "PriorSource",
    "World",
    "allowed_channels",
    "build_batch",
    "check_same_rows",
    "customer_rates",
    "decode_mask",
    "draw_population",
    "draw_triggers",
    "encode_mask",
    "known_worlds",
    "load_world",
    "parse_budgets",
    "next_send_at",
    "segment_rate_table",
    "send_instants",
    "world_prior",
]
