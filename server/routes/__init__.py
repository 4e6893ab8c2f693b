"""One router per resource: decisions, feedback, customers, health, metrics."""
