"""Async Kubernetes client shared by every component: REST, informers, work queues, leader election, events."""
from .config import ClientConfig, load_kubeconfig
from .rest import ApiError, Client

__all__ = ["ApiError", "Client", "ClientConfig", "load_kubeconfig"]
