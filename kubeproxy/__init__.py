"""kubeling: kubeproxy."""
