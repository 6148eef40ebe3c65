"""kubeling: scheduler."""
