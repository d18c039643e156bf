"""The transactional outbox and the durable event feed (DOMAIN.md §7)."""
