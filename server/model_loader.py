"""Where the served policy comes from, and how to tell when it changed.

``SENDWISE_MODEL_URI`` picks the source: ``models:/<name>@<alias>`` or ``models:/<name>/<version>``
(the MLflow registry, imported only here and only when used, so MLflow never sits on the request
path), or a path to a policy ``.npz``. Unset, the server starts from the world's prior: the
``hier_ts`` policy if it is registered, else ``ts``, priced by the world's sourced rates at
``SENDWISE_PRIOR_TRIALS`` pseudo-sends per cell and option (``sendwise.models.domain.population.world_prior``).
Each source names a version that is stable across restarts, because the loop inputs in the store are
kept per model version.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from sendwise.models import POLICIES, ModelUri, Policy, configure_verbosity, is_registry_uri, load_policy, load_world
from sendwise.models.policies import make_cold_start, takes_prior

from .settings import Settings

if TYPE_CHECKING:
    from sendwise.models.domain.world import World


def configured_registry_uri(settings: Settings) -> ModelUri | None:
    """The configured registry URI, parsed; None for a policy file, the prior, or a malformed ``models:/``
    URI (which :meth:`ModelLoader.load` reports)."""
    if not is_registry_uri(settings.model_uri):
        return None
    try:
        return ModelUri.parse(settings.model_uri)
    except ValueError:
        return None


def serving_world(settings: Settings) -> World | None:
    """The world of the prior and the serving rules, with the configured objective; None when unset."""
    return None if settings.world is None else load_world(settings.world).with_objective(settings.objective)


class ModelLoader:
    """Loads the configured policy and reports the version it would load now.

    MLflow's INFO lines and download bars stay hidden unless ``SENDWISE_LOG_LEVEL=debug``: a server
    started without ``sendwise serve`` (e.g. by uvicorn itself) is as quiet as one started with it.
    """

    def __init__(self, settings: Settings, world: World | None) -> None:
        configure_verbosity()
        self.settings = settings
        self.world = world

    @property
    def follows_alias(self) -> bool:
        """Whether the source can change while the server runs (a registry alias)."""
        uri = configured_registry_uri(self.settings)
        return uri is not None and uri.alias is not None

    def load(self) -> tuple[Policy, str]:
        """The policy and its version string; errors say what is wrong with the source."""
        uri = self.settings.model_uri
        if uri is None:
            return self._prior()
        if is_registry_uri(uri):
            registered = ModelUri.parse(uri)
            from sendwise.models.mlops.registry import load_registered_policy

            policy, version = load_registered_policy(registered)
            return policy, f"{registered.name}/{version}"
        path = Path(uri)
        policy = load_policy(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return policy, f"{path.name}@{digest}"

    def current_version(self) -> str | None:
        """For an alias source, the version string :meth:`load` would give now (asks the registry)."""
        uri = configured_registry_uri(self.settings)
        if uri is None or uri.alias is None:
            return None
        from sendwise.models.mlops.registry import alias_version

        version = alias_version(uri.name, uri.alias)
        if version is None:
            raise ValueError(f"model URI {self.settings.model_uri!r}: the registry has no such model or alias")
        return f"{uri.name}/{version}"

    def _prior(self) -> tuple[Policy, str]:
        if self.world is None:
            raise ValueError("SENDWISE_MODEL_URI is unset and SENDWISE_WORLD is none: there is no model to serve")
        name = self.settings.default_policy or ("hier_ts" if "hier_ts" in POLICIES else "ts")
        trials = self.settings.prior_trials
        informed = trials > 0 and takes_prior(name)
        policy = make_cold_start(name, self.world, seed=self.settings.seed, prior_trials=trials)
        prior = f"-world{trials:g}" if informed else ""
        prior += "" if self.world.objective == "clicks" else f"-{self.world.objective}"
        return policy, f"prior-{name}-{self.world.name}{prior}-seed{self.settings.seed}"
