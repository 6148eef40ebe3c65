"""Malformed patches of every type are the client's error: a 4xx Status, never a crash or a 5xx."""
from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeling.api.errors import StatusError
from apiserver.api.managedfields import server_side_apply
from apiserver.api.patch import apply_patch

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
                                                   "env": [{"name": "A", "value": "1"}]}],
                                   "tolerations": [{"key": "k", "operator": "Exists"}]}}},
}
KIND = ("apps/v1", "Deployment")
DIRECTIVES = ["$patch", "$retainKeys", "$setElementOrder/containers", "$setElementOrder/env",
              "$deleteFromPrimitiveList/args", "$setElementOrder/tolerations", "$unknown"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(
    ["replace", "delete", "merge", "bogus", "", "name", "c", "image"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(DIRECTIVES + ["name", "image", "env", "containers", "value", "key"]),
                    inner, max_size=3)), max_leaves=8)


def _with_directives(data: st.DataObject) -> dict:
    """A patch of the Deployment with directives planted at every level a real patch would use."""
    container = data.draw(st.dictionaries(st.sampled_from(DIRECTIVES + ["name", "env", "ports", "image"]), values,
                                          max_size=4))
    pod_spec = data.draw(st.dictionaries(st.sampled_from(DIRECTIVES + ["containers", "tolerations"]), values,
                                         max_size=3))
    pod_spec.setdefault("containers", [container])
    return {"spec": {"template": {"spec": pod_spec}}, **data.draw(st.dictionaries(st.sampled_from(DIRECTIVES),
                                                                                   values, max_size=2))}


def _client_error_or_object(fn) -> None:
    """A result (the handler turns a non-object into its own 400) or a 4xx Status; nothing else."""
    try:
        fn()
    except StatusError as e:
        assert 400 <= e.code < 500, (e.code, e.message)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.data())
def test_strategic_merge_directives(data):
    body = orjson.dumps(_with_directives(data))
    _client_error_or_object(lambda: apply_patch("application/strategic-merge-patch+json", DEPLOYMENT, body, KIND))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(values)
def test_merge_and_json_patch(patch):
    body = orjson.dumps(patch)
    _client_error_or_object(lambda: apply_patch("application/merge-patch+json", DEPLOYMENT, body, KIND))
    _client_error_or_object(lambda: apply_patch("application/json-patch+json", DEPLOYMENT, body, KIND))


ops = st.fixed_dictionaries({"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus"]),
                             "path": st.sampled_from(["/spec/replicas", "/spec/template/spec/containers/0",
                                                      "/spec/template/spec/containers/-", "/nope/x", "", "x", "/"])},
                            optional={"value": values, "from": st.sampled_from(["/spec", "/metadata/labels", "bad"])})


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(ops, max_size=4))
def test_json_patch_operations(patch):
    body = orjson.dumps(patch)
    _client_error_or_object(lambda: apply_patch("application/json-patch+json", DEPLOYMENT, body, KIND))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.data())
def test_server_side_apply_configurations(data):
    applied = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
               **_with_directives(data)}
    _client_error_or_object(lambda: server_side_apply(DEPLOYMENT, applied, "fuzz", False, "2026-01-01T00:00:00Z"))


def test_unknown_directive_is_a_bad_request():
    body = b'{"metadata":{"$patch":"bogus"}}'
    try:
        apply_patch("application/strategic-merge-patch+json", DEPLOYMENT, body, KIND)
    except StatusError as e:
        assert (e.code, e.reason, e.message) == (400, "BadRequest",
                                                 "unknown patch type: bogus in map: map[$patch:bogus]")
    else:
        raise AssertionError("an unknown $patch directive was accepted")
