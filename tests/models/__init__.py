"""Tests of the models: domain, policies, off-policy evaluation, simulation and MLflow glue."""
