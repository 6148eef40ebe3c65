"""kubeling: kubeling."""
