"""StoreOps: the back office of shops selling on Chinese marketplaces."""
