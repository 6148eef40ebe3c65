"""kubeling: kubedns."""
