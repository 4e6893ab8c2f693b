"""MLOps: MLflow tracking, comparison (``compare``), tuning, the pyfunc flavour, the registry and its promotion gate.

Builds on every other room of ``sendwise.models``. MLflow loads on first use of a name below: importing
it takes seconds, and a server that only decides never needs it (``model_uri`` imports no MLflow).
"""

from importlib import import_module

from .model_uri import ModelUri, is_registry_uri

_LAZY = {
    "PolicyModel": "mlflow_model",
    "alias_version": "registry",
    "compare_latest": "compare",
    "plot_comparison": "compare",
    "load_registered_policy": "registry",
    "log_evaluation": "tracking",
    "log_lift": "tracking",
    "log_simulation": "tracking",
    "promote": "registry",
    "register_policy": "registry",
    "set_alias": "registry",
    "tune_policy": "tuning",
}

__all__ = ["ModelUri", "is_registry_uri", *sorted(_LAZY)]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
