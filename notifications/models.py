"""Core-banking events, the outbox and delivery attempts (filled by the delivery work)."""
