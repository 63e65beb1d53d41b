"""Named experiments: one file each, registered as `experiment`."""
