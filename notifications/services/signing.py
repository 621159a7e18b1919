"""Kept for the bank callbacks, which sign what they send the way the API checks it."""

from core.api.signing import signature_for

__all__ = ["signature_for"]
