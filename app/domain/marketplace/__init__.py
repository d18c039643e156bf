"""Marketplace sync: platform payload adapters, canonical snapshots, review queue, ship-back."""
