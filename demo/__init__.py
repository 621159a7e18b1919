"""The demo: a seeded bank on the sandbox, and a core-banking simulator that feeds it.

Only its commands (`run_demo`, `seed_demo`, `simulate_core`) use this package; the product
never imports it.
"""
