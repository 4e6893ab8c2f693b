"""End-to-end tests: real servers on loopback, crashes, concurrency, Redis, Chromium, the demo."""
