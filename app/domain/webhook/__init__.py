"""Webhooks: subscriptions to the event feed, delivered by a worker in every process."""
