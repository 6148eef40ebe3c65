"""Kinds a PUT may create (upstream's AllowCreateOnUpdate): written by controllers that do not read first."""
from __future__ import annotations

from . import Strategy


class CreateOnUpdate(Strategy):
    create_on_update = True


STRATEGIES = {("", "endpoints"): CreateOnUpdate, ("coordination.k8s.io", "leases"): CreateOnUpdate,
              ("discovery.k8s.io", "endpointslices"): CreateOnUpdate, ("", "events"): CreateOnUpdate}
