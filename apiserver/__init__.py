"""kubeling: apiserver."""
