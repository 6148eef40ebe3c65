"""kubeling: etcdnode."""
