"""Pictures: image grids, traversals, animations and training curves."""
