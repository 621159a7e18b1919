"""A local stand-in for Messenger and the Graph API; mounted only when SANDBOX_ENABLED."""
