"""Orders: intake, lifecycle, allocation (DOMAIN.md §2)."""
