"""Business rules and services; no HTTP here."""
