"""Promotions and pricing (DOMAIN.md §5): the pure engine, the floor check, limits."""
