"""Tests of the decision server through in-process apps: API, learning, guardrails, stores, dashboard."""
