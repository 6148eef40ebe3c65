"""Go-formatted values in messages (kubeling/api/gofmt.py) and the field errors built with them."""
from __future__ import annotations

from apiserver.api import validation
from kubeling.api.errors import duplicate, invalid, invalid_error, not_supported
from kubeling.api.gofmt import GoStruct, Typed, field_value, go_syntax, go_value, quote
from kubeling.api.resources import lookup


def test_percent_v_formats_like_fmt():
    assert go_value({"b": "2", "a": "1"}) == "map[a:1 b:2]"
    assert go_value(["10.96.200.200", "10.96.0.1"]) == "[10.96.200.200 10.96.0.1]"
    assert go_value({"k": [1, None, True, "s"]}) == "map[k:[1 <nil> true s]]"
    assert go_value("plain") == "plain"
    assert [go_value(f) for f in (0.5, 100.0, 123456.0, 1e6, 1234567.0, 1e-5, 0.0001)] == \
        ["0.5", "100", "123456", "1e+06", "1.234567e+06", "1e-05", "0.0001"]


def test_percent_q_quotes_like_strconv():
    assert quote('say "hi"\\') == '"say \\"hi\\"\\\\"'
    assert quote("a\nb\tc\x01\x7f") == '"a\\nb\\tc\\x01\\x7f"'
    assert quote("café \u00a0") == '"café \\u00a0"'


def test_percent_sharp_v_shows_go_types():
    assert go_syntax({"app": "b", "tier": "web"}) == 'map[string]string{"app":"b", "tier":"web"}'
    assert go_syntax(["a", "b"]) == '[]string{"a", "b"}'
    assert go_syntax(None, "[]string") == "[]string(nil)"
    assert go_syntax(Typed(None, "map[string]string")) == "map[string]string(nil)"
    assert go_syntax([80, 443], "[]int32") == "[]int32{80, 443}"
    assert go_syntax(GoStruct("v1.X", (("Name", "n", "string"), ("Items", None, "[]string")))) == \
        'v1.X{Name:"n", Items:[]string(nil)}'


def test_field_values_follow_field_error_body():
    """apimachinery 1.32 field.Error: nil -> "null", numbers and bools %v, strings %q, the rest %#v."""
    assert field_value(None) == '"null"'
    assert field_value(3) == "3" and field_value(True) == "true" and field_value(1.5) == "1.5"
    assert field_value('a"b') == '"a\\"b"'
    assert field_value({"app": "b"}) == 'map[string]string{"app":"b"}'
    assert invalid("spec.clusterIPs", ["10.96.200.200"], "x").message == 'Invalid value: []string{"10.96.200.200"}: x'
    assert duplicate("p", "a").message == 'Duplicate value: "a"'
    assert not_supported("p", "X", ["A", "B"]).message == 'Unsupported value: "X": supported values: "A", "B"'


def _deployment(selector: dict, labels: dict | None) -> dict:
    tpl_meta = {} if labels is None else {"labels": labels}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad", "namespace": "d"},
            "spec": {"selector": selector, "template": {"metadata": tpl_meta, "spec": {
                "containers": [{"name": "c", "image": "nginx"}]}}}}


def _message(obj: dict, old: dict | None = None) -> str:
    causes = validation.validate(lookup("apps", "v1", "deployments"), obj, old)
    return invalid_error("apps", "Deployment", "bad", causes).message


def test_selector_mismatch_reads_as_upstream():
    assert _message(_deployment({"matchLabels": {"app": "a"}}, {"app": "b"})) == (
        'Deployment.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"b"}: `selector` does not match template `labels`')
    assert "Invalid value: map[string]string(nil): `selector`" in _message(_deployment({"matchLabels": {"app": "a"}}, None))


def test_immutable_selector_reads_as_upstream():
    old = _deployment({"matchLabels": {"app": "a"}}, {"app": "a", "v": "1"})
    new = _deployment({"matchLabels": {"app": "a", "v": "1"}}, {"app": "a", "v": "1"})
    assert _message(new, old) == (
        'Deployment.apps "bad" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
        'map[string]string{"app":"a", "v":"1"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: '
        'field is immutable')
    expr = _deployment({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]}, {"app": "a"})
    assert 'MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"app", ' \
           'Operator:"In", Values:[]string{"a"}}}}: field is immutable' in _message(expr, old)
