"""Label and field selector parsing and matching, as Kubernetes' query strings use them."""
import pytest

from kubeling.api.errors import StatusError
from kubeling.api.selectors import (parse_field_selector, parse_label_selector, selector_from_object,
                                    selector_to_string)

LABELS = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize("text,want", [
    ("", True), ("app=web", True), ("app==web", True), ("app!=web", False), ("app=db", False),
    ("app in (web,db)", True), ("app notin (web)", False), ("app notin (db)", True),
    ("missing notin (x)", True), ("missing!=x", True), ("tier", True), ("!tier", False), ("!missing", True),
    ("app=web,tier in (front, back),!missing", True), ("app=web,env=dev", False),
])
def test_label_selector_matching(text, want):
    assert parse_label_selector(text).matches(LABELS) is want


@pytest.mark.parametrize("bad", ["=web,", "app in web", "app in (a", "a b", "-bad=1", "app=has space x"])
def test_label_selector_errors_are_bad_requests(bad):
    with pytest.raises(StatusError) as e:
        parse_label_selector(bad)
    assert e.value.code == 400 and e.value.reason == "BadRequest"


def test_empty_value_is_allowed():
    assert parse_label_selector("app=").matches({"app": ""})


def test_label_selector_object_and_string():
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}
    assert selector_from_object(sel).matches(LABELS)
    assert not selector_from_object({"matchLabels": {"app": "db"}}).matches(LABELS)
    assert selector_from_object(None) is None
    assert selector_to_string(sel) == "app=web,tier in (front)"


def test_field_selectors():
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}
    assert parse_field_selector("spec.nodeName=n1,status.phase!=Failed", "pods").matches(pod)
    assert not parse_field_selector("metadata.name==q", "pods").matches(pod)
    assert parse_field_selector("spec.nodeName=", "pods").matches({"metadata": {}, "spec": {}})
    assert parse_field_selector("metadata.name=p", "pods").exact("metadata.name") == "p"
    with pytest.raises(StatusError) as e:
        parse_field_selector("spec.nodeName=n1", "configmaps")
    assert e.value.code == 400 and e.value.message == "field label not supported: spec.nodeName"
    secret = {"metadata": {"name": "s"}, "type": "Opaque"}
    assert parse_field_selector("type=Opaque", "secrets").matches(secret)
    ev = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}}
    assert parse_field_selector("involvedObject.kind=Pod,involvedObject.name=p", "events").matches(ev)
