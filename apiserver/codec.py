"""Content negotiation: decoding request bodies (JSON, YAML, protobuf) and choosing the response form."""
from __future__ import annotations

from dataclasses import dataclass

import orjson
import yaml

from kubeling.api.errors import StatusError, bad_request

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_body(body: bytes, content_type: str | None) -> dict:
    """Request body -> object dict; 400 for malformed input, 415 for an unknown type."""
    mt = media_type(content_type) or JSON
    if mt == JSON or mt == "*/*":
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise bad_request(f"couldn't get version/kind; json parse error: {e}") from None
    elif mt in (YAML, "application/x-yaml", "text/yaml"):
        try:
            obj = yaml.safe_load(body)
        except yaml.YAMLError as e:
            raise bad_request(f"error converting YAML to JSON: {str(e).splitlines()[0]}") from None
    elif mt == PROTOBUF:
        from apiserver.api.protobuf import decode_object
        try:
            obj = decode_object(body)
        except ValueError as e:
            raise bad_request(f"unable to decode protobuf body: {e}") from None
    else:
        raise StatusError(415, "UnsupportedMediaType",
                          f'the body of the request was in an unknown format - accepted media types include: '
                          f'application/json, application/yaml, application/vnd.kubernetes.protobuf')
    if not isinstance(obj, dict):
        raise bad_request("Object 'Kind' is missing in '" + body[:100].decode(errors="replace") + "'")
    return obj


@dataclass(frozen=True)
class Target:
    """What the client asked the response to be."""
    form: str = "json"          # json | yaml | table | partial
    table_version: str = "v1"


def negotiate(accept: str | None) -> Target:
    if not accept:
        return Target()
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        mt = fields[0].lower()
        params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        if mt in (JSON, "*/*", "application/*"):
            as_ = params.get("as")
            if as_ == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
                return Target("table", params["v"])
            if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList") and params.get("g") == "meta.k8s.io":
                return Target("partial", params.get("v", "v1"))
            if as_ is None:
                return Target("json")
        elif mt == YAML and "as" not in params:
            return Target("yaml")
    raise StatusError(406, "NotAcceptable", "only the following media types are accepted: application/json, "
                      "application/yaml, application/vnd.kubernetes.protobuf")


def dumps(obj: object, target: Target | None = None) -> tuple[bytes, str]:
    if target is not None and target.form == "yaml":
        return yaml.safe_dump(obj, sort_keys=False).encode(), YAML
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE), JSON   # Go's json.Encoder ends with a newline


def deepcopy(obj: dict) -> dict:
    return orjson.loads(orjson.dumps(obj))
