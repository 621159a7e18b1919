"""Customers, their accounts, consents and Messenger links (filled by the linking work)."""
