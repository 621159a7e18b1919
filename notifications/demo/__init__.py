"""The demo: a seeded bank on the sandbox, and a core-banking simulator that feeds it.

Only `seed_demo` and `simulate_core` use this package; the product never imports it.
"""
