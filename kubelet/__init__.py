"""kubeling: kubelet."""
