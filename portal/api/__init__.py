"""The portal's part of `/api/v1/`: the API-key principal and RFC 9457 problem details."""
