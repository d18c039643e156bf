"""SKUs: the catalogue of each store."""
