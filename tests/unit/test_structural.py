"""CRD structural schemas: validation messages as upstream's, defaulting, and the JSONPath subset."""
from apiserver.api import structural
from apiserver.api.jsonpath import find

SCHEMA = {"type": "object", "properties": {"spec": {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
    "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
    "mode": {"type": "string", "enum": ["a", "b"]},
    "port": {"x-kubernetes-int-or-string": True},
    "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
    "when": {"type": "string", "format": "date-time"},
    "opt": {"type": "string", "nullable": True},
    "nested": {"type": "object", "properties": {"kind": {"type": "string", "default": "Issuer"}}},
}}}}


def _messages(spec):
    return [c.render() for c in structural.validate(SCHEMA, {"apiVersion": "x/v1", "kind": "X",
                                                             "metadata": {"name": "n"}, "spec": spec})]


def test_valid_object_has_no_errors():
    assert _messages({"name": "abc", "replicas": 3, "mode": "a", "port": "http", "tags": ["x"],
                      "when": "2024-01-01T00:00:00Z", "opt": None}) == []
    assert _messages({"name": "abc", "port": 8080}) == []


def test_messages_are_upstreams():
    assert _messages({"name": "abc", "replicas": "3"}) == [
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"']
    assert _messages({}) == ["spec.name: Required value"]
    assert _messages({"name": "ABC"}) == ["spec.name: Invalid value: \"ABC\": spec.name in body should match '^[a-z]+$'"]
    assert _messages({"name": "abcdef"}) == ["spec.name: Too long: may not be more than 5 bytes"]
    assert _messages({"name": "a", "replicas": 0}) == [
        "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"]
    assert _messages({"name": "a", "replicas": 11}) == [
        "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"]
    assert _messages({"name": "a", "mode": "c"}) == ['spec.mode: Unsupported value: "c": supported values: "a", "b"']
    assert _messages({"name": "a", "tags": ["x", "y", "z"]}) == ["spec.tags: Too many: 3: must have at most 2 items"]
    assert _messages({"name": "a", "tags": [1]}) == [
        'spec.tags[0]: Invalid value: "integer": spec.tags[0] in body must be of type string: "integer"']
    assert _messages({"name": "a", "when": "yesterday"}) == [
        'spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"']
    assert _messages({"name": "a", "port": 1.5})[0].startswith('spec.port: Invalid value: "number"')


def test_defaults_fill_missing_fields_where_the_parent_exists():
    obj = {"spec": {"name": "a", "nested": {}}}
    structural.apply_defaults(SCHEMA, obj)
    assert obj["spec"]["replicas"] == 1 and obj["spec"]["nested"] == {"kind": "Issuer"}
    obj = {"spec": {"name": "a"}}
    structural.apply_defaults(SCHEMA, obj)
    assert "nested" not in obj["spec"]


def test_structural_errors_of_a_definition():
    path = "spec.versions[0].schema.openAPIV3Schema"
    assert structural.structural_errors(SCHEMA, path) == []
    errs = [c.render() for c in structural.structural_errors(
        {"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}, path)]
    assert errs == [f"{path}.properties[spec].type: Required value: must not be empty for specified object fields"]
    assert structural.structural_errors({"type": "string"}, path)[0].field == f"{path}.type"


def test_jsonpath_subset():
    obj = {"spec": {"items": [{"name": "a"}, {"name": "b"}]},
           "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]}}
    assert find(obj, ".spec.items[0].name") == ["a"]
    assert find(obj, ".spec.items[*].name") == ["a", "b"]
    assert find(obj, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert find(obj, "{.status.conditions[-1].type}") == ["Synced"]
    assert find(obj, ".spec.missing") == []
