"""Stores and their platform policies (DOMAIN.md §1)."""
