"""kubeling: controllers."""
