"""API keys: creation, listing, revocation and the bootstrap admin key."""
