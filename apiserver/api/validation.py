"""Validation of the served kinds with Kubernetes' field paths and messages (the common rules).

`validate(resource, obj, old)` returns field causes; the apiserver turns them into 422 Invalid.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography import x509

from kubeling.api import quantity
from kubeling.api.cron import CronError, parse as parse_schedule
from kubeling.api.errors import Cause, duplicate, forbidden, invalid, not_supported, required
from kubeling.api.gofmt import GoStruct, Typed, quote
from kubeling.api.resources import Resource

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
               "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                   "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
NAME_PART_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                 "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                 "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
PORT_MSG = "must be between 1 and 65535, inclusive"
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
PROTOCOLS = ["SCTP", "TCP", "UDP"]

Validator = Callable[[dict, "dict | None"], list[Cause]]


def _name_rule(plural: str) -> tuple[re.Pattern, str, int]:
    if plural == "namespaces":
        return DNS1123_LABEL, LABEL_MSG, 63
    if plural == "services":
        return DNS1035_LABEL, DNS1035_MSG, 63
    return DNS1123_SUBDOMAIN, SUBDOMAIN_MSG, 253


def _qualified_name(key: str, path: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    out = []
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        out.append(invalid(path, key, "prefix part " + SUBDOMAIN_MSG))
    if not name or len(name) > 63 or not LABEL_NAME.match(name):
        msg = "name part must be no more than 63 characters" if len(name) > 63 else NAME_PART_MSG
        out.append(invalid(path, key, msg))
    return out


def labels(lbls: Any, path: str) -> list[Cause]:
    if lbls is None:
        return []
    if not isinstance(lbls, dict):
        return [invalid(path, lbls, "must be a map of strings")]
    out: list[Cause] = []
    for k, v in lbls.items():
        out += _qualified_name(str(k), path)
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
            out.append(invalid(path, v, "must be no more than 63 characters" if isinstance(v, str) and len(v) > 63
                               else LABEL_VALUE_MSG))
    return out


def metadata(r: Resource, obj: dict) -> list[Cause]:
    meta = obj.get("metadata") or {}
    out: list[Cause] = []
    name = meta.get("name")
    if not name:
        out.append(required("metadata.name", "name or generateName is required"))
    elif r.plural in NAME_CHECKS:
        out += [invalid("metadata.name", name, m) for m in NAME_CHECKS[r.plural](name)]
    else:
        rx, msg, limit = _name_rule(r.plural)
        if not isinstance(name, str) or not rx.match(name):
            out.append(invalid("metadata.name", name, msg))
        elif len(name) > limit:
            out.append(invalid("metadata.name", name, f"must be no more than {limit} characters"))
    out += labels(meta.get("labels"), "metadata.labels")
    ann = meta.get("annotations")
    if ann is not None:
        if not isinstance(ann, dict):
            out.append(invalid("metadata.annotations", ann, "must be a map of strings"))
        else:
            for k, v in ann.items():
                out += _qualified_name(str(k), "metadata.annotations")
                if not isinstance(v, str):
                    out.append(invalid(f"metadata.annotations", v, "must be a string"))
            if sum(len(k) + len(str(v)) for k, v in ann.items()) > 256 * 1024:
                out.append(Cause("FieldValueTooLong", "Too long: must have at most 262144 bytes", "metadata.annotations"))
    return out


def _port(value: Any, path: str, required_: bool = True) -> list[Cause]:
    if value is None or value == 0:
        return [required(path)] if required_ else []
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        return [invalid(path, value, PORT_MSG)]
    return []


def _int_or_string_port(value: Any, path: str) -> list[Cause]:
    if isinstance(value, str):
        if not DNS1123_LABEL.match(value) or not re.search("[a-z]", value) or len(value) > 15:
            return [invalid(path, value, "must contain at least one letter (a-z)" if not re.search("[a-z]", value)
                            else "must be no more than 15 characters" if len(value) > 15 else LABEL_MSG)]
        return []
    return _port(value, path)


def containers(items: Any, path: str, names: set[str], need: bool) -> list[Cause]:
    if not items:
        return [required(path)] if need else []
    if not isinstance(items, list):
        return [invalid(path, items, "must be a list")]
    out: list[Cause] = []
    for i, c in enumerate(items):
        p = f"{path}[{i}]"
        if not isinstance(c, dict):
            out.append(invalid(p, c, "must be an object"))
            continue
        name = c.get("name")
        if not name:
            out.append(required(f"{p}.name"))
        elif not isinstance(name, str) or not DNS1123_LABEL.match(name):
            out.append(invalid(f"{p}.name", name, LABEL_MSG))
        elif name in names:
            out.append(duplicate(f"{p}.name", name))
        else:
            names.add(name)
        if not c.get("image"):
            out.append(required(f"{p}.image"))
        port_names: set[str] = set()
        for j, port in enumerate(c.get("ports") or []):
            pp = f"{p}.ports[{j}]"
            out += _port(port.get("containerPort"), f"{pp}.containerPort")
            if port.get("hostPort"):
                out += _port(port.get("hostPort"), f"{pp}.hostPort")
            if port.get("protocol") not in (None, *PROTOCOLS):
                out.append(not_supported(f"{pp}.protocol", port.get("protocol"), PROTOCOLS))
            if port.get("name"):
                if port["name"] in port_names:
                    out.append(duplicate(f"{pp}.name", port["name"]))
                port_names.add(port["name"])
        for j, e in enumerate(c.get("env") or []):
            n = e.get("name") if isinstance(e, dict) else None
            if not n:
                out.append(required(f"{p}.env[{j}].name"))
            elif not ENV_NAME.match(n):
                out.append(invalid(f"{p}.env[{j}].name", n, "a valid environment variable name must consist of "
                                   "alphabetic characters, digits, '_', '-', or '.', and must not start with a digit "
                                   "(e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for "
                                   "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"))
        if c.get("imagePullPolicy") not in (None, "Always", "IfNotPresent", "Never"):
            out.append(not_supported(f"{p}.imagePullPolicy", c["imagePullPolicy"], ["Always", "IfNotPresent", "Never"]))
    return out


def pod_spec(spec: Any, path: str, restart_policies: list[str] | None = None) -> list[Cause]:
    if not isinstance(spec, dict):
        return [required(path)]
    names: set[str] = set()
    out = containers(spec.get("containers"), f"{path}.containers", names, True)
    out += containers(spec.get("initContainers"), f"{path}.initContainers", names, False)
    vols: set[str] = set()
    for i, v in enumerate(spec.get("volumes") or []):
        n = v.get("name") if isinstance(v, dict) else None
        if not n:
            out.append(required(f"{path}.volumes[{i}].name"))
        elif not DNS1123_LABEL.match(n):
            out.append(invalid(f"{path}.volumes[{i}].name", n, LABEL_MSG))
        elif n in vols:
            out.append(duplicate(f"{path}.volumes[{i}].name", n))
        vols.add(n or "")
    for key in ("containers", "initContainers"):
        for i, c in enumerate(spec.get(key) or []):
            for j, m in enumerate((c.get("volumeMounts") or []) if isinstance(c, dict) else []):
                if m.get("name") not in vols:
                    out.append(Cause("FieldValueNotFound", f'Not found: "{m.get("name")}"',
                                     f"{path}.{key}[{i}].volumeMounts[{j}].name"))
                if not m.get("mountPath"):
                    out.append(required(f"{path}.{key}[{i}].volumeMounts[{j}].mountPath"))
    allowed = restart_policies or ["Always", "OnFailure", "Never"]
    rp = spec.get("restartPolicy")
    if rp is None and restart_policies:
        out.append(required(f"{path}.restartPolicy", "valid values: " + ", ".join(f'"{v}"' for v in allowed)))
    elif rp is not None and rp not in allowed:
        out.append(not_supported(f"{path}.restartPolicy", rp, allowed))
    if spec.get("dnsPolicy") not in (None, "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"):
        out.append(not_supported(f"{path}.dnsPolicy", spec["dnsPolicy"],
                                 ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]))
    tg = spec.get("terminationGracePeriodSeconds")
    if tg is not None and (not isinstance(tg, int) or tg < 0):
        out.append(invalid(f"{path}.terminationGracePeriodSeconds", tg, "must be greater than or equal to 0"))
    return out


def _pod(obj: dict, old: dict | None) -> list[Cause]:
    out = pod_spec(obj.get("spec"), "spec")
    if old is not None:
        a, b = dict(obj.get("spec") or {}), dict(old.get("spec") or {})
        for spec in (a, b):
            for k in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "ephemeralContainers"):
                spec.pop(k, None)
            for key in ("containers", "initContainers"):
                spec[key] = [{**c, "image": None} for c in spec.get(key) or [] if isinstance(c, dict)]
        if a.get("nodeName") is None and "nodeName" in b:
            a["nodeName"] = b["nodeName"]
        if a != b:
            out.append(forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`,"
                                 "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                                 "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                                 "(allow it to be set to 1 if it was previously negative)"))
    status = obj.get("status") or {}
    for field in ("podIPs", "hostIPs"):
        for i, entry in enumerate(status.get(field) or []):
            out += _ip((entry or {}).get("ip"), f"status.{field}[{i}].ip")
    for field in ("podIP", "hostIP"):
        if status.get(field):
            out += _ip(status[field], f"status.{field}")
    return out


def _selector_value(sel: Any) -> GoStruct:
    """A workload's selector as upstream's messages show it: the metav1.LabelSelector struct (%#v)."""
    sel = sel if isinstance(sel, dict) else {}
    exprs = sel.get("matchExpressions")
    reqs = None if not isinstance(exprs, list) else [GoStruct("v1.LabelSelectorRequirement", (
        ("Key", e.get("key", ""), "string"), ("Operator", e.get("operator", ""), "v1.LabelSelectorOperator"),
        ("Values", e.get("values"), "[]string"))) for e in exprs if isinstance(e, dict)]
    return GoStruct("v1.LabelSelector", (("MatchLabels", sel.get("matchLabels"), "map[string]string"),
                                         ("MatchExpressions", reqs, "[]v1.LabelSelectorRequirement")))


def _workload(kind: str, restart: list[str] | None = None, check_template_labels: bool = True) -> Validator:
    def run(obj: dict, old: dict | None) -> list[Cause]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [required("spec")]
        out: list[Cause] = []
        sel = spec.get("selector")
        tpl = spec.get("template") or {}
        given_labels = (tpl.get("metadata") or {}).get("labels")
        tlabels = given_labels or {}
        if kind != "Job" or spec.get("manualSelector"):
            if not sel:
                out.append(required("spec.selector"))
            elif not (sel.get("matchLabels") or sel.get("matchExpressions")):
                out.append(invalid("spec.selector", _selector_value(sel), f"empty selector is invalid for {kind.lower()}"))
            elif check_template_labels:
                from kubeling.api.selectors import selector_from_object
                s = selector_from_object(sel)
                if s is not None and not s.matches(tlabels):
                    out.append(invalid("spec.template.metadata.labels", Typed(given_labels, "map[string]string"),
                                       "`selector` does not match template `labels`"))
        out += labels(tlabels, "spec.template.metadata.labels")
        replicas = spec.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
            out.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
        out += pod_spec(tpl.get("spec"), "spec.template.spec", restart)
        if kind == "Deployment":
            st = spec.get("strategy") or {}
            if st.get("type") not in (None, "RollingUpdate", "Recreate"):
                out.append(not_supported("spec.strategy.type", st.get("type"), ["Recreate", "RollingUpdate"]))
            ru = st.get("rollingUpdate") or {}
            if st.get("type") == "Recreate" and st.get("rollingUpdate"):
                out.append(forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
            if ru and str(ru.get("maxSurge")).rstrip("%") in ("0",) and str(ru.get("maxUnavailable")).rstrip("%") in ("0",):
                out.append(invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                                   "may not be 0 when `maxSurge` is 0"))
        if old is not None and kind in ("Deployment", "ReplicaSet", "DaemonSet", "Job"):
            if (old.get("spec") or {}).get("selector") != sel:
                out.append(invalid("spec.selector", _selector_value(sel), "field is immutable"))
        return out
    return run


def _not_negative(spec: dict, key: str, path: str) -> list[Cause]:
    """ValidateNonnegativeField on an int field (absent is Go's zero)."""
    value = spec.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


def _replicationcontroller(obj: dict, old: dict | None) -> list[Cause]:
    """ValidateReplicationControllerSpec: a map selector that must be non-empty and match the
    template's labels, which must be a full pod template with restartPolicy Always."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    out = _not_negative(spec, "minReadySeconds", "spec.minReadySeconds")
    sel = spec.get("selector")
    if not sel:
        out.append(required("spec.selector"))
    out += _not_negative(spec, "replicas", "spec.replicas")
    tpl = spec.get("template")
    if not isinstance(tpl, dict):
        return out + [required("spec.template")]
    given = (tpl.get("metadata") or {}).get("labels")
    if isinstance(sel, dict) and sel and any((given or {}).get(k) != v for k, v in sel.items()):
        out.append(invalid("spec.template.metadata.labels", Typed(given, "map[string]string"),
                           "`selector` does not match template `labels`"))
    out += labels(given, "spec.template.labels")
    out += pod_spec(tpl.get("spec"), "spec.template.spec")
    tspec = tpl.get("spec") if isinstance(tpl.get("spec"), dict) else {}
    if tspec.get("restartPolicy") not in (None, "Always"):
        out.append(not_supported("spec.template.spec.restartPolicy", tspec["restartPolicy"], ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        out.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                             "activeDeadlineSeconds in ReplicationController is not Supported"))
    return out


STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
               "minReadySeconds")
STS_POLICIES = ("OrderedReady", "Parallel")
STS_STRATEGIES = ("RollingUpdate", "OnDelete")
STS_RETENTION = ["Retain", "Delete"]


def _semantic(value: Any) -> Any:
    """apiequality.Semantic's view of JSON: empty and absent slices, maps and strings are equal."""
    if isinstance(value, dict):
        return {k: v for k, v in ((k, _semantic(v)) for k, v in value.items()) if v not in (None, {}, [], "")}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def _rolling_value(ru: Any, pointer: str) -> GoStruct:
    """A RollingUpdateStatefulSetStrategy pointer as %#v shows it (a nested pointer shows its
    address upstream; `&` is how the outermost one reads)."""
    ru = ru if isinstance(ru, dict) else {}
    return GoStruct(f"{pointer}apps.RollingUpdateStatefulSetStrategy", (
        ("Partition", ru.get("partition", 0), "int32"),
        ("MaxUnavailable", Typed(None, "*intstr.IntOrString") if ru.get("maxUnavailable") is None
         else ru["maxUnavailable"], "*intstr.IntOrString")))


def _statefulset(obj: dict, old: dict | None) -> list[Cause]:
    """ValidateStatefulSetSpec (+ ValidateStatefulSetUpdate). Upstream checks only the template's
    labels and annotations, not its pod spec (volume mounts may name volumeClaimTemplates); an
    absent serviceName is accepted by the 1.32 server."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    out: list[Cause] = []
    policy = spec.get("podManagementPolicy")
    if not policy:
        out.append(required("spec.podManagementPolicy"))
    elif policy not in STS_POLICIES:
        out.append(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = spec.get("updateStrategy") if isinstance(spec.get("updateStrategy"), dict) else {}
    ru = strategy.get("rollingUpdate")
    if not strategy.get("type"):
        out.append(required("spec.updateStrategy"))
    elif strategy["type"] == "OnDelete":
        if ru is not None:
            out.append(invalid("spec.updateStrategy.rollingUpdate", _rolling_value(ru, "&"),
                               "only allowed for updateStrategy 'RollingUpdate'"))
    elif strategy["type"] == "RollingUpdate":
        if isinstance(ru, dict):
            out += _not_negative(ru, "partition", "spec.updateStrategy.rollingUpdate.partition")
            mu = ru.get("maxUnavailable")
            if mu is not None and str(mu).rstrip("%") in ("0",):
                out.append(invalid("spec.updateStrategy.rollingUpdate.maxUnavailable", mu, "cannot be 0"))
    else:
        out.append(invalid("spec.updateStrategy", GoStruct("apps.StatefulSetUpdateStrategy", (
            ("Type", strategy["type"], "apps.StatefulSetUpdateStrategyType"),
            ("RollingUpdate", _rolling_value(ru, "*") if isinstance(ru, dict) else
             Typed(None, "*apps.RollingUpdateStatefulSetStrategy"), "*apps.RollingUpdateStatefulSetStrategy"))),
            "must be 'RollingUpdate' or 'OnDelete'"))
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    for key in ("whenDeleted", "whenScaled"):
        value = (retention or {}).get(key) if isinstance(retention, dict) else None
        if value not in (None, *STS_RETENTION):
            out.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}", value, STS_RETENTION))
    out += _not_negative(spec, "replicas", "spec.replicas")
    out += _not_negative(spec, "minReadySeconds", "spec.minReadySeconds")
    if isinstance(spec.get("ordinals"), dict):
        out += _not_negative(spec["ordinals"], "start", "spec.ordinals.start")
    sel = spec.get("selector")
    tpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    given = (tpl.get("metadata") or {}).get("labels")
    if sel is None:
        out.append(required("spec.selector"))
    elif not (sel.get("matchLabels") or sel.get("matchExpressions")):
        out.append(invalid("spec.selector", _selector_value(sel), "empty selector is invalid for statefulset"))
    else:
        from kubeling.api.selectors import selector_from_object
        s = selector_from_object(sel)
        if s is not None and not s.matches(given or {}):
            out.append(invalid("spec.template.metadata.labels", Typed(given, "map[string]string"),
                               "`selector` does not match template `labels`"))
    out += labels(given, "spec.template.labels")
    tspec = tpl.get("spec") if isinstance(tpl.get("spec"), dict) else {}
    if tspec.get("restartPolicy", "") != "Always":
        out.append(not_supported("spec.template.spec.restartPolicy", tspec.get("restartPolicy", ""), ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        out.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                             "activeDeadlineSeconds in StatefulSet is not Supported"))
    if old is not None:
        ospec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        mine = {k: v for k, v in spec.items() if k not in STS_MUTABLE}
        theirs = {k: v for k, v in ospec.items() if k not in STS_MUTABLE}
        if _semantic(mine) != _semantic(theirs):
            out.append(forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                                 "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                                 "'minReadySeconds' are forbidden"))
    return out


def _service(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    typ = spec.get("type", "ClusterIP")
    types = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
    if typ not in types:
        out.append(not_supported("spec.type", typ, types))
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    if not ports and typ != "ExternalName" and not headless:
        out.append(required("spec.ports"))
    names: set[str] = set()
    for i, p in enumerate(ports):
        pp = f"spec.ports[{i}]"
        if not isinstance(p, dict):
            out.append(invalid(pp, p, "must be an object"))
            continue
        if len(ports) > 1 and not p.get("name"):
            out.append(required(f"{pp}.name"))
        if p.get("name"):
            if p["name"] in names:
                out.append(duplicate(f"{pp}.name", p["name"]))
            names.add(p["name"])
        out += _port(p.get("port"), f"{pp}.port")
        if p.get("protocol") not in (None, *PROTOCOLS):
            out.append(not_supported(f"{pp}.protocol", p["protocol"], PROTOCOLS))
        if "targetPort" in p:
            out += _int_or_string_port(p["targetPort"], f"{pp}.targetPort")
        if p.get("nodePort") and typ not in ("NodePort", "LoadBalancer"):
            out.append(forbidden(f"{pp}.nodePort", "may not be used when `type` is 'ClusterIP'"))
    if typ == "ExternalName" and not spec.get("externalName"):
        out.append(required("spec.externalName"))
    ip = spec.get("clusterIP")
    for i, cip in enumerate(spec.get("clusterIPs") or ([ip] if ip else [])):
        if not (i == 0 and cip == "None"):
            out += _ip(cip, f"spec.clusterIPs[{i}]")
    for i, eip in enumerate(spec.get("externalIPs") or []):
        out += _ip(eip, f"spec.externalIPs[{i}]")
    if spec.get("loadBalancerIP"):
        out += _ip(spec["loadBalancerIP"], "spec.loadBalancerIP")
    if old is not None:
        oip = (old.get("spec") or {}).get("clusterIP")
        if oip and ip and oip != ip and typ != "ExternalName":
            out.append(invalid("spec.clusterIPs[0]", [ip], "may not change once set"))
    sa = spec.get("sessionAffinity")
    if sa not in (None, "None", "ClientIP"):
        out.append(not_supported("spec.sessionAffinity", sa, ["ClientIP", "None"]))
    return out


def _ip(value: Any, path: str, family: int = 0) -> list[Cause]:
    """IsValidIP (family 0), IsValidIPv4Address (4) or IsValidIPv6Address (6)."""
    try:
        addr = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        addr = None
    if addr is None or family and addr.version != family:
        return [invalid(path, value, f"must be a valid IPv{family} address" if family else IP_MSG)]
    return []


def _endpoints(obj: dict, old: dict | None) -> list[Cause]:
    out: list[Cause] = []
    for i, subset in enumerate(obj.get("subsets") or []):
        for field in ("addresses", "notReadyAddresses"):
            for j, a in enumerate((subset or {}).get(field) or []):
                out += _ip((a or {}).get("ip"), f"subsets[{i}].{field}[{j}].ip")
    return out


def _data_keys(field: str) -> Validator:
    def run(obj: dict, old: dict | None) -> list[Cause]:
        out: list[Cause] = []
        total = 0
        for f in (field, "binaryData") if field == "data" else (field, "stringData"):
            d = obj.get(f)
            if d is None:
                continue
            if not isinstance(d, dict):
                out.append(invalid(f, d, "must be a map"))
                continue
            for k, v in d.items():
                if not CONFIG_KEY.match(k) or len(k) > 253:
                    out.append(invalid(f"{f}[{k}]", k, CONFIG_KEY_MSG))
                if v is not None and not isinstance(v, str):
                    out.append(invalid(f"{f}[{k}]", v, "must be a string"))
                total += len(k) + len(str(v or ""))
        if total > 1024 * 1024:
            out.append(Cause("FieldValueTooLong", "Too long: must have at most 1048576 bytes", ""))
        if old is not None and old.get("immutable") and any(obj.get(f) != old.get(f) for f in (field, "binaryData")):
            out.append(forbidden("", f"field is immutable when `immutable` is set"))
        return out
    return run


def _hpa(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    ref = spec.get("scaleTargetRef") or {}
    if not ref.get("kind"):
        out.append(required("spec.scaleTargetRef.kind"))
    if not ref.get("name"):
        out.append(required("spec.scaleTargetRef.name"))
    mn, mx = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if isinstance(mn, int) and mn < 1:
        out.append(invalid("spec.minReplicas", mn, "must be greater than or equal to 1"))
    if not isinstance(mx, int) or mx < 1:   # an absent maxReplicas decodes as 0
        out.append(invalid("spec.maxReplicas", mx, "must be greater than 0"))
    if isinstance(mn, int) and isinstance(mx, int) and mx < mn:
        out.append(invalid("spec.maxReplicas", mx, "must be greater than or equal to `minReplicas`"))
    return out


def _event(obj: dict, old: dict | None) -> list[Cause]:
    if not obj.get("involvedObject"):
        return [required("involvedObject")]
    return []


def _endpointslice(obj: dict, old: dict | None) -> list[Cause]:
    at = obj.get("addressType")
    if at not in ("IPv4", "IPv6", "FQDN"):
        return [not_supported("addressType", at, ["FQDN", "IPv4", "IPv6"])]
    if at == "FQDN":
        return []
    out: list[Cause] = []
    for i, ep in enumerate(obj.get("endpoints") or []):
        for j, a in enumerate((ep or {}).get("addresses") or []):
            out += _ip(a, f"endpoints[{i}].addresses[{j}]", 4 if at == "IPv4" else 6)
    return out


def _pvc(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    if not spec.get("accessModes"):
        out.append(required("spec.accessModes", "at least 1 access mode is required"))
    if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
        out.append(required("spec.resources[storage]"))
    return out



def _nonnegative(spec: dict, path: str, *keys: str) -> list[Cause]:
    """ValidateNonnegativeField for the optional integer fields named."""
    return [invalid(f"{path}.{k}", spec[k], "must be greater than or equal to 0") for k in keys
            if isinstance(spec.get(k), int) and not isinstance(spec[k], bool) and spec[k] < 0]


POD_FAILURE_ACTIONS = ["Count", "FailIndex", "FailJob", "Ignore"]
EXIT_CODE_OPERATORS = ["In", "NotIn"]
CONDITION_STATUSES = ["False", "True", "Unknown"]


def _pod_failure_policy(spec: dict, path: str) -> list[Cause]:
    """validatePodFailurePolicy: each rule an action and exactly one of onExitCodes/onPodConditions."""
    out: list[Cause] = []
    for i, rule in enumerate((spec.get("podFailurePolicy") or {}).get("rules") or []):
        rp = f"{path}.rules[{i}]"
        action = rule.get("action")
        if not action:
            out.append(required(f"{rp}.action", "valid values: [" + " ".join(f'"{a}"' for a in POD_FAILURE_ACTIONS) + "]"))
        elif action == "FailIndex":
            if spec.get("backoffLimitPerIndex") is None:
                out.append(invalid(f"{rp}.action", action, "requires the backoffLimitPerIndex to be set"))
        elif action not in POD_FAILURE_ACTIONS:
            out.append(not_supported(f"{rp}.action", action, POD_FAILURE_ACTIONS))
        codes, conds = rule.get("onExitCodes"), rule.get("onPodConditions")
        if codes is not None:
            op = codes.get("operator")
            if not op:
                out.append(required(f"{rp}.onExitCodes.operator", 'valid values: ["In" "NotIn"]'))
            elif op not in EXIT_CODE_OPERATORS:
                out.append(not_supported(f"{rp}.onExitCodes.operator", op, EXIT_CODE_OPERATORS))
            values = codes.get("values") or []
            if not values:
                out.append(invalid(f"{rp}.onExitCodes.values", Typed(values or None, "[]int32"), "at least one value is required"))
            for j, v in enumerate(values):
                if op == "In" and v == 0:
                    out.append(invalid(f"{rp}.onExitCodes.values[{j}]", v, "must not be 0 for the In operator"))
                if j and isinstance(v, int) and isinstance(values[j - 1], int) and v <= values[j - 1]:
                    out.append(invalid(f"{rp}.onExitCodes.values[{j}]", v, "must be ordered" if v != values[j - 1]
                                       else "must be unique"))
        for j, pattern in enumerate(conds or []):
            st = pattern.get("status")
            if not st:
                out.append(required(f"{rp}.onPodConditions[{j}].status", 'valid values: ["False" "True" "Unknown"]'))
            elif st not in CONDITION_STATUSES:
                out.append(not_supported(f"{rp}.onPodConditions[{j}].status", st, CONDITION_STATUSES))
        if codes is not None and conds:
            out.append(Cause("FieldValueInvalid", "Invalid value: specifying both OnExitCodes and OnPodConditions is not supported", rp))
        if codes is None and not conds:
            out.append(Cause("FieldValueInvalid", "Invalid value: specifying one of OnExitCodes and OnPodConditions is required", rp))
    return out


def _index_intervals(text: str, completions: int) -> int:
    """validateIndexesFormat: the number of indexes in "1,3-5", raising ValueError(upstream's text)."""
    total, last = 0, None
    for part in text.split(",") if text else []:
        limits = part.split("-")
        if len(limits) > 2:
            raise ValueError(f"the fragment {quote(part)} violates the requirement that an index interval can have "
                             "at most two parts separated by '-'")
        bounds = []
        for limit in limits:
            if not re.fullmatch(r"[+-]?[0-9]+", limit) or not -2**31 <= int(limit) < 2**31:
                raise ValueError(f"cannot convert string to integer for index: {quote(limit)}")
            x = int(limit)
            if x >= completions:
                raise ValueError(f"too large index: {quote(limit)}")
            if last is not None and last >= x:
                raise ValueError(f"non-increasing order, previous: {last}, current: {x}")
            last = x
            bounds.append(x)
        total += bounds[-1] - bounds[0] + 1
    return total


def _success_policy(spec: dict, path: str) -> list[Cause]:
    """validateSuccessPolicy: Indexed Jobs only; each rule names indexes, a count, or both, within
    the Job's completions."""
    policy, completions = spec["successPolicy"], spec.get("completions") or 0
    rules = policy.get("rules") or []
    if spec.get("completionMode") != "Indexed":
        value = GoStruct("batch.SuccessPolicy", (("Rules", [GoStruct("batch.SuccessPolicyRule", (
            ("SucceededIndexes", Typed(r.get("succeededIndexes"), "*string"), "*string"),
            ("SucceededCount", Typed(r.get("succeededCount"), "*int32"), "*int32"))) for r in rules],
            "[]batch.SuccessPolicyRule"),))
        return [invalid(path, value, "requires indexed completion mode")]
    if not rules:
        return [required(f"{path}.rules", "at least one rules must be specified when the successPolicy is specified")]
    out: list[Cause] = []
    if len(rules) > 20:
        out.append(Cause("FieldValueTooMany", f"Too many: {len(rules)}: must have at most 20 items", f"{path}.rules"))
    for i, rule in enumerate(rules):
        rp, text, count = f"{path}.rules[{i}]", rule.get("succeededIndexes"), rule.get("succeededCount")
        if text is None and count is None:
            out.append(required(rp, "at least one of succeededCount or succeededIndexes must be specified"))
        total = None
        if text is not None:
            try:
                total = _index_intervals(text, completions)
            except ValueError as e:
                out.append(invalid(f"{rp}.succeededIndexes", text, f"error parsing succeededIndexes: {e}"))
        if isinstance(count, int):
            if count < 0:
                out.append(invalid(f"{rp}.succeededCount", count, "must be greater than or equal to 0"))
            elif count > completions:
                out.append(invalid(f"{rp}.succeededCount", count, f"must be less than or equal to {completions} "
                                   "(the number of specified completions)"))
            elif total is not None and count > total:
                out.append(invalid(f"{rp}.succeededCount", count, f"must be less than or equal to {total} "
                                   "(the number of indexes in the specified succeededIndexes field)"))
    return out


def job_spec(spec: dict, path: str) -> list[Cause]:
    """validateJobSpec's rules beyond the pod template (shared by Jobs and CronJob job templates)."""
    out = _nonnegative(spec, path, "parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                       "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes")
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        out.append(not_supported(f"{path}.completionMode", mode, ["NonIndexed", "Indexed"]))
    if mode == "Indexed":
        if spec.get("completions") is None:
            out.append(required(f"{path}.completions", "when completion mode is Indexed"))
        if isinstance(spec.get("parallelism"), int) and spec["parallelism"] > 100000:
            out.append(invalid(f"{path}.parallelism", spec["parallelism"],
                               "must be less than or equal to 100000 when completion mode is Indexed"))
    else:
        for key in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(key) is not None:
                out.append(invalid(f"{path}.{key}", spec[key], "requires indexed completion mode"))
    if spec.get("successPolicy") is not None:
        out += _success_policy(spec, f"{path}.successPolicy")
    if spec.get("podFailurePolicy") is not None:
        out += _pod_failure_policy(spec, f"{path}.podFailurePolicy")
        rp = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
        if rp == "OnFailure":
            out.append(invalid(f"{path}.template.spec.restartPolicy", rp,
                               'only "Never" is supported when podFailurePolicy is specified'))
    return out


def _job_restart_policy(causes: list[Cause], path: str) -> list[Cause]:
    """A Job's pods must not restart: an unset (defaulted Always) restartPolicy reads as required."""
    unsupported_always = 'Unsupported value: "Always": '
    return [required(path, 'valid values: "OnFailure", "Never"')
            if c.field == path and c.message.startswith(unsupported_always) else c for c in causes]


def _job(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec")
    out = _job_restart_policy(_workload("Job", ["OnFailure", "Never"])(obj, old), "spec.template.spec.restartPolicy")
    if not isinstance(spec, dict):
        return out
    out += job_spec(spec, "spec")
    name, completions = (obj.get("metadata") or {}).get("name") or "", spec.get("completions")
    if spec.get("completionMode") == "Indexed" and isinstance(completions, int) and completions > 0:
        hostname = f"{name}-{completions - 1}"
        if len(hostname) > 63 or not DNS1123_LABEL.match(hostname):
            out.append(invalid("metadata.name", name, f"will not able to create pod with invalid DNS label: {hostname}"))
    if old is not None:
        old_spec = old.get("spec") or {}
        if completions != old_spec.get("completions"):
            # validateCompletions: only an Indexed Job may change it, together with parallelism
            if spec.get("completionMode") != "Indexed":
                out.append(invalid("spec.completions", completions, "field is immutable"))
            elif completions is not None and completions != spec.get("parallelism"):
                out.append(invalid("spec.completions", completions, "can only be modified in tandem with spec.parallelism"))
        for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex"):
            if spec.get(key) != old_spec.get(key):
                out.append(invalid(f"spec.{key}", spec.get(key), "field is immutable"))
    return out


TIME_ZONE_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")


def _time_zone(tz: Any) -> list[Cause]:
    """validateTimeZone: an IANA name the controller can load."""
    if tz == "":
        return [invalid("spec.timeZone", tz, "timeZone must be nil or non-empty string")]
    if not isinstance(tz, str) or any(p in (".", "..") or p.startswith("-") or not TIME_ZONE_PART.match(p)
                                      for p in tz.split("/")):
        return [invalid("spec.timeZone", tz, f"unknown time zone {tz}")]
    if tz.lower() == "local":
        return [invalid("spec.timeZone", tz, "timeZone must be an explicit time zone as defined in "
                        "https://www.iana.org/time-zones")]
    if tz != "UTC":
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            return [invalid("spec.timeZone", tz, f"unknown time zone {tz}")]
    return []


def _cronjob(obj: dict, old: dict | None) -> list[Cause]:
    """ValidateCronJobCreate/Update: schedule (robfig's parser), time zone, policy, job template."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec.schedule")]
    out: list[Cause] = []
    old_spec = (old or {}).get("spec") or {}
    schedule = spec.get("schedule")
    if not schedule:
        out.append(required("spec.schedule"))
    else:
        try:
            parse_schedule(schedule)
        except CronError as e:
            out.append(invalid("spec.schedule", schedule, str(e)))
        if "TZ" in schedule and "TZ" in str(old_spec.get("schedule") or "") and spec.get("timeZone") is not None:
            out.append(invalid("spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
        elif "TZ" in schedule and "TZ" not in str(old_spec.get("schedule") or ""):
            out.append(invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    out += _nonnegative(spec, "spec", "startingDeadlineSeconds")
    if "timeZone" in spec and spec["timeZone"] is not None and (old is None or old_spec.get("timeZone") != spec["timeZone"]):
        out += _time_zone(spec["timeZone"])
    policy = spec.get("concurrencyPolicy")
    if not policy:
        out.append(required("spec.concurrencyPolicy"))
    elif policy not in ("Allow", "Forbid", "Replace"):
        out.append(not_supported("spec.concurrencyPolicy", policy, ["Allow", "Forbid", "Replace"]))
    tspec = (spec.get("jobTemplate") or {}).get("spec") or {}
    out += job_spec(tspec, "spec.jobTemplate.spec")
    tpl = tspec.get("template") or {}
    out += labels((tpl.get("metadata") or {}).get("labels"), "spec.jobTemplate.spec.template.metadata.labels")
    out += _job_restart_policy(pod_spec(tpl.get("spec"), "spec.jobTemplate.spec.template.spec", ["OnFailure", "Never"]),
                               "spec.jobTemplate.spec.template.spec.restartPolicy")
    if tspec.get("selector") is not None:
        out.append(invalid("spec.jobTemplate.spec.selector", _selector_value(tspec["selector"]),
                           "`selector` will be auto-generated"))
    if tspec.get("manualSelector"):
        out.append(not_supported("spec.jobTemplate.spec.manualSelector", tspec["manualSelector"], ["nil", "false"]))
    out += _nonnegative(spec, "spec", "successfulJobsHistoryLimit", "failedJobsHistoryLimit")
    name = (obj.get("metadata") or {}).get("name") or ""
    if old is None and isinstance(name, str) and len(name) > 52:
        out.append(invalid("metadata.name", name, "must be no more than 52 characters"))
    return out


def _int_or_string(v: Any) -> GoStruct:
    """An intstr.IntOrString as upstream's messages show it (%#v)."""
    is_str = isinstance(v, str)
    return GoStruct("intstr.IntOrString", (("Type", 1 if is_str else 0, "intstr.Type"),
                                           ("IntVal", 0 if is_str else v, "int32"), ("StrVal", v if is_str else "", "string")))


PERCENT = re.compile(r"^[0-9]+%$")


def _positive_int_or_percent(v: Any, path: str) -> list[Cause]:
    """ValidatePositiveIntOrPercent and IsNotMoreThan100Percent."""
    if isinstance(v, str):
        if not PERCENT.match(v):
            return [invalid(path, _int_or_string(v), "a valid percent string must be a numeric string followed by an "
                            "ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")]
        if int(v[:-1]) > 100:
            return [invalid(path, _int_or_string(v), "must not be greater than 100%")]
        return []
    if isinstance(v, int) and not isinstance(v, bool):
        return [invalid(path, v, "must be greater than or equal to 0")] if v < 0 else []
    return [invalid(path, v, "must be an integer or percentage (e.g '5%')")]


def _label_selector(sel: Any, path: str) -> list[Cause]:
    """ValidateLabelSelector: operators, values present or absent as the operator needs, label syntax."""
    if not isinstance(sel, dict):
        return []
    out = labels(sel.get("matchLabels"), f"{path}.matchLabels")
    for i, e in enumerate(sel.get("matchExpressions") or []):
        ep = f"{path}.matchExpressions[{i}]"
        op, values = e.get("operator"), e.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                out.append(required(f"{ep}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                out.append(forbidden(f"{ep}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            out.append(invalid(f"{ep}.operator", op, "not a valid selector operator"))
        out += _qualified_name(str(e.get("key") or ""), f"{ep}.key")
    return out


def _pdb(obj: dict, old: dict | None) -> list[Cause]:
    """ValidatePodDisruptionBudgetSpec."""
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    lo, hi = spec.get("minAvailable"), spec.get("maxUnavailable")
    if lo is not None and hi is not None:
        out.append(invalid("spec.minAvailable", _int_or_string(lo), "minAvailable and maxUnavailable cannot be both set"))
    if lo is not None:
        out += _positive_int_or_percent(lo, "spec.minAvailable")
    if hi is not None:
        out += _positive_int_or_percent(hi, "spec.maxUnavailable")
    out += _label_selector(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in ("AlwaysAllow", "IfHealthyBudget"):
        out.append(not_supported("spec.unhealthyPodEvictionPolicy", policy, ["AlwaysAllow", "IfHealthyBudget"]))
    return out

KIND_RULES: dict[str, Validator] = {
    "pods": _pod,
    "deployments": _workload("Deployment"),
    "replicasets": _workload("ReplicaSet"),
    "daemonsets": _workload("DaemonSet", ["Always"]),
    "jobs": _job,
    "cronjobs": _cronjob,
    "poddisruptionbudgets": _pdb,
    "replicationcontrollers": _replicationcontroller,
    "statefulsets": _statefulset,
    "services": _service,
    "configmaps": _data_keys("data"),
    "secrets": _data_keys("data"),
    "horizontalpodautoscalers": _hpa,
    "events": _event,
    "endpointslices": _endpointslice,
    "endpoints": _endpoints,
    "persistentvolumeclaims": _pvc,
}


# ResourceQuota, LimitRange (pkg/apis/core/validation), PriorityClass (pkg/apis/scheduling/validation)

QUOTA_NAMES = frozenset(("pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
                         "persistentvolumeclaims", "services.nodeports", "services.loadbalancers", "cpu", "memory",
                         "ephemeral-storage", "requests.cpu", "requests.memory", "requests.storage",
                         "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage"))
INTEGER_NAMES = frozenset(("pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
                           "persistentvolumeclaims", "services.nodeports", "services.loadbalancers"))
QUOTA_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
                "CrossNamespacePodAffinity")
# the quota names each scope may constrain (helper.IsResourceQuotaScopeValidForResource)
_POD_OBJECT_NAMES = frozenset(("pods", "count/pods"))
_POD_COMPUTE_NAMES = frozenset(("cpu", "memory", "limits.cpu", "limits.memory", "requests.cpu", "requests.memory"))
SCOPE_NAMES = {"Terminating": _POD_OBJECT_NAMES | _POD_COMPUTE_NAMES,
               "NotTerminating": _POD_OBJECT_NAMES | _POD_COMPUTE_NAMES,
               "BestEffort": _POD_OBJECT_NAMES, "NotBestEffort": _POD_OBJECT_NAMES | _POD_COMPUTE_NAMES,
               "PriorityClass": _POD_OBJECT_NAMES | _POD_COMPUTE_NAMES,
               "CrossNamespacePodAffinity": _POD_OBJECT_NAMES}


def _standard_quota_name(name: str) -> bool:
    return name in QUOTA_NAMES or name.startswith(("hugepages-", "requests.hugepages-", "limits.hugepages-"))


def _quantity_value(name: str, value: Any, path: str) -> list[Cause]:
    """ValidateResourceQuantityValue: parsable, not negative, whole for object counts."""
    try:
        q = quantity.parse(value)
    except ValueError as e:
        return [invalid(path, value, str(e))]
    out = []
    if q < 0:
        out.append(invalid(path, str(value), "must be greater than or equal to 0"))
    if (name in INTEGER_NAMES or name.startswith("count/")) and q != q.to_integral_value():
        out.append(invalid(path, str(value), "must be an integer"))
    return out


def _quota_list(rl: Any, path: str) -> list[Cause]:
    out: list[Cause] = []
    for name, value in (rl if isinstance(rl, dict) else {}).items():
        p = f"{path}[{name}]"
        if "/" not in name and not _standard_quota_name(name):
            out.append(invalid(p, name, "must be a standard resource for quota"))
        out += _quantity_value(name, value, p)
    return out


def _resource_quota(obj: dict, old: dict | None) -> list[Cause]:
    """ValidateResourceQuota: hard names and amounts, scopes (and their pairing with hard names),
    the scope selector."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    out = _quota_list(spec.get("hard"), "spec.hard")
    scopes = spec.get("scopes") or []
    shown = Typed(scopes, "[]core.ResourceQuotaScope")
    for scope in scopes:
        if scope not in QUOTA_SCOPES:
            out.append(invalid("spec.scopes", shown, "unsupported scope"))
        for name in sorted(spec.get("hard") or {}):
            if _standard_quota_name(name) and scope in SCOPE_NAMES and name not in SCOPE_NAMES[scope]:
                out.append(invalid("spec.scopes", shown, "unsupported scope applied to resource"))
    for pair in (("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating")):
        if all(s in scopes for s in pair):
            out.append(invalid("spec.scopes", shown, "conflicting scopes"))
    for i, e in enumerate((spec.get("scopeSelector") or {}).get("matchExpressions") or []):
        path = f"spec.scopeSelector.matchExpressions[{i}]"
        if e.get("scopeName") not in QUOTA_SCOPES:
            out.append(invalid(f"{path}.scopeName", e.get("scopeName"), "unsupported scope"))
        op, values = e.get("operator"), e.get("values") or []
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            out.append(not_supported(f"{path}.operator", op, ["DoesNotExist", "Exists", "In", "NotIn"]))
        elif op in ("In", "NotIn") and not values:
            out.append(required(f"{path}.values", "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
        elif op in ("Exists", "DoesNotExist") and values:
            out.append(invalid(f"{path}.values", Typed(values, "[]string"), "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"))
    return out + _quota_list(status.get("hard"), "status.hard") + _quota_list(status.get("used"), "status.used")


LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")


def _limit_range(obj: dict, old: dict | None) -> list[Cause]:
    """ValidateLimitRange: one item per type, amounts valid, Pod items without defaults, and
    min <= defaultRequest <= default <= max with a ratio of at least 1."""
    out: list[Cause] = []
    seen: set[str] = set()
    for i, item in enumerate((obj.get("spec") or {}).get("limits") or []):
        path = f"spec.limits[{i}]"
        typ = item.get("type")
        if typ in seen:
            out.append(duplicate(f"{path}.type", typ))
        seen.add(typ)
        parts = {k: item.get(k) or {} for k in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")}
        for k, rl in parts.items():
            for name, value in rl.items():
                out += _quantity_value(name, value, f"{path}.{k}[{name}]")
        if typ == "Pod":
            for k in ("default", "defaultRequest"):
                if parts[k]:
                    out.append(forbidden(f"{path}.{k}", "may not be specified when `type` is 'Pod'"))
        if out:
            continue
        q = {k: {n: quantity.parse(v) for n, v in rl.items()} for k, rl in parts.items()}
        names = sorted(set().union(*(rl for rl in parts.values())))
        for n in names:
            lo, hi, d, dr, ratio = (q[k].get(n) for k in ("min", "max", "default", "defaultRequest", "maxLimitRequestRatio"))
            s = {k: parts[k].get(n) for k in parts}
            if lo is not None and hi is not None and lo > hi:
                out.append(invalid(f"{path}.min[{n}]", s["min"], f"min value {s['min']} is greater than max value {s['max']}"))
            if dr is not None and lo is not None and lo > dr:
                out.append(invalid(f"{path}.defaultRequest[{n}]", s["defaultRequest"], f"min value {s['min']} is greater than default request value {s['defaultRequest']}"))
            if dr is not None and hi is not None and dr > hi:
                out.append(invalid(f"{path}.defaultRequest[{n}]", s["defaultRequest"], f"default request value {s['defaultRequest']} is greater than max value {s['max']}"))
            if dr is not None and d is not None and dr > d:
                out.append(invalid(f"{path}.defaultRequest[{n}]", s["defaultRequest"], f"default request value {s['defaultRequest']} is greater than default limit value {s['default']}"))
            if d is not None and lo is not None and lo > d:
                out.append(invalid(f"{path}.default[{n}]", s["min"], f"min value {s['min']} is greater than default value {s['default']}"))
            if d is not None and hi is not None and d > hi:
                out.append(invalid(f"{path}.default[{n}]", s["max"], f"default value {s['default']} is greater than max value {s['max']}"))
            if ratio is not None and ratio < 1:
                out.append(invalid(f"{path}.maxLimitRequestRatio[{n}]", s["maxLimitRequestRatio"], f"ratio {s['maxLimitRequestRatio']} is less than 1"))
    return out


SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
HIGHEST_USER_PRIORITY = 1000000000


def _priority_class(obj: dict, old: dict | None) -> list[Cause]:
    """ValidatePriorityClass (+Update): reserved system- names, the user ceiling, preemptionPolicy;
    value and preemptionPolicy immutable."""
    name, value = (obj.get("metadata") or {}).get("name") or "", obj.get("value") or 0
    out: list[Cause] = []
    if name.startswith("system-"):
        err = None
        if name not in SYSTEM_PRIORITY_CLASSES:
            err = f"{name} is not a known system priority class"
        elif value != SYSTEM_PRIORITY_CLASSES[name]:
            err = f"value of {name} PriorityClass must be {SYSTEM_PRIORITY_CLASSES[name]}"
        elif obj.get("globalDefault"):
            err = f"globalDefault of {name} PriorityClass must be false"
        if err:
            out.append(forbidden("metadata.name", "priority class names with 'system-' prefix are reserved for system "
                                                  f"use only. error: {err}"))
    elif value > HIGHEST_USER_PRIORITY:
        out.append(forbidden("value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"))
    policy = obj.get("preemptionPolicy")
    if policy is not None and policy not in ("Never", "PreemptLowerPriority"):
        out.append(not_supported("preemptionPolicy", policy, ["Never", "PreemptLowerPriority"]))
    if old is not None:
        if value != (old.get("value") or 0):
            out.append(forbidden("value", "may not be changed in an update."))
        if obj.get("preemptionPolicy") != old.get("preemptionPolicy"):
            out.append(invalid("preemptionPolicy", obj.get("preemptionPolicy"), "field is immutable"))
    return out


KIND_RULES.update({
    "resourcequotas": _resource_quota,
    "limitranges": _limit_range,
    "priorityclasses": _priority_class,
})


# --- networking, storage, RBAC, certificates, node (engineer E's kinds) ---------------------------

def path_segment_name(name: str) -> list[str]:
    """path.IsValidPathSegmentName: what RBAC names must satisfy (they may hold ':')."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


# Kinds whose names are not DNS subdomains (upstream's nameFn for ValidateObjectMeta).
NAME_CHECKS: dict[str, Callable[[str], list[str]]] = {
    "roles": path_segment_name, "clusterroles": path_segment_name,
    "rolebindings": path_segment_name, "clusterrolebindings": path_segment_name,
    "certificatesigningrequests": lambda name: [],   # "We don't care what you call your certificate requests."
    "apiservices": path_segment_name,   # and `version.group` (checked with the spec)
}

WILDCARD_SUBDOMAIN_MSG = ("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, "
                          "which must consist of lower case alphanumeric characters, '-' or '.' and end with an "
                          "alphanumeric character (e.g. '*.example.com', regex used for validation is "
                          "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
IMMUTABLE = "field is immutable"


def _subdomain(value: Any, path: str) -> list[Cause]:
    """IsDNS1123Subdomain, one cause per message."""
    if not isinstance(value, str) or not DNS1123_SUBDOMAIN.match(value):
        return [invalid(path, value, SUBDOMAIN_MSG)]
    return [invalid(path, value, "must be no more than 253 characters")] if len(value) > 253 else []


def _dns_label(value: Any, path: str) -> list[Cause]:
    """IsDNS1123Label (NameIsDNSLabel), one cause per message."""
    out = []
    if isinstance(value, str) and len(value) > 63:
        out.append(invalid(path, value, "must be no more than 63 characters"))
    if not isinstance(value, str) or not DNS1123_LABEL.match(value):
        out.append(invalid(path, value, LABEL_MSG))
    return out


def _port_name(name: str, path: str) -> list[Cause]:
    """IsValidPortName (an IANA_SVC_NAME), every message that applies."""
    msgs = []
    if len(name) > 15:
        msgs.append("must be no more than 15 characters")
    if not re.fullmatch(r"[-a-z0-9]+", name):
        msgs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", name):
        msgs.append("must contain at least one letter (a-z)")
    if "--" in name:
        msgs.append("must not contain consecutive hyphens (--)")
    if name.startswith("-") or name.endswith("-"):
        msgs.append("must not begin or end with a hyphen (-)")
    return [invalid(path, name, m) for m in msgs]


def _port_number(value: Any, path: str) -> list[Cause]:
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535
    return [] if ok else [invalid(path, value, PORT_MSG)]


def _immutable(obj: dict, old: dict | None, *path: str) -> list[Cause]:
    """ValidateImmutableField on update: the new value, "field is immutable"."""
    if old is None:
        return []
    new_value, old_value = obj, old
    for key in path:
        new_value = new_value.get(key) if isinstance(new_value, dict) else None
        old_value = old_value.get(key) if isinstance(old_value, dict) else None
    return [] if new_value == old_value else [invalid(".".join(path), new_value, IMMUTABLE)]


# Ingress, IngressClass, NetworkPolicy (pkg/apis/networking/validation)

INGRESS_PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]
INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
INVALID_PATH_SUFFIXES = ("/..", "/.")


def _typed_local_ref(ref: dict, path: str) -> list[Cause]:
    """validateIngressTypedLocalObjectReference (resource backends, IngressClass parameters)."""
    out: list[Cause] = []
    if ref.get("apiGroup") is not None:
        out += _subdomain(ref["apiGroup"], f"{path}.apiGroup")
    for key in ("kind", "name"):
        if not ref.get(key):
            out.append(required(f"{path}.{key}", f"{key} is required"))
        else:
            out += [invalid(f"{path}.{key}", ref[key], m) for m in path_segment_name(ref[key])]
    return out


def _ingress_backend(backend: dict, path: str) -> list[Cause]:
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return [invalid(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        return _typed_local_ref(resource, f"{path}.resource")
    if not isinstance(service, dict):
        return [invalid(path, "", "resource or service backend is required")]
    out: list[Cause] = []
    name = service.get("name")
    if not name:
        out.append(required(f"{path}.service.name"))
    elif not DNS1035_LABEL.match(name) or len(name) > 63:
        out.append(invalid(f"{path}.service.name", name, DNS1035_MSG if not DNS1035_LABEL.match(name)
                           else "must be no more than 63 characters"))
    port = service.get("port") or {}
    port_name, number = port.get("name") or "", port.get("number") or 0
    if port_name and number:
        out.append(invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        out += _port_name(port_name, f"{path}.service.port.name")
    elif number:
        out += _port_number(number, f"{path}.service.port.number")
    else:
        out.append(required(path, "port name or number is required"))
    return out


def _ingress_path(p: dict, path: str) -> list[Cause]:
    path_type, value = p.get("pathType"), p.get("path") or ""
    if path_type is None:
        return [required(f"{path}.pathType", "pathType must be specified")]
    out: list[Cause] = []
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            out.append(invalid(f"{path}.path", value, "must be an absolute path"))
        out += [invalid(f"{path}.path", value, f"must not contain '{s}'") for s in INVALID_PATH_SEQUENCES if s in value]
        out += [invalid(f"{path}.path", value, f"cannot end with '{s}'") for s in INVALID_PATH_SUFFIXES
                if value.endswith(s)]
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            out.append(invalid(f"{path}.path", value, "must be an absolute path"))
    else:
        out.append(not_supported(f"{path}.pathType", path_type, INGRESS_PATH_TYPES))
    return out + _ingress_backend(p.get("backend") or {}, f"{path}.backend")


def _dns_host(host: str, path: str) -> list[Cause]:
    """IsWildcardDNS1123Subdomain for a host holding '*', IsDNS1123Subdomain for the others."""
    if "*" in host:
        ok = host.startswith("*.") and DNS1123_SUBDOMAIN.match(host[2:])
        return [] if ok else [invalid(path, host, WILDCARD_SUBDOMAIN_MSG)]
    return _subdomain(host, path)


def _ingress_host(host: str, path: str) -> list[Cause]:
    try:
        ipaddress.ip_address(host)
        out = [invalid(path, host, "must be a DNS name, not an IP address")]
    except ValueError:
        out = []
    return out + _dns_host(host, path)


def _ingress(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    rules = spec.get("rules") or []
    out: list[Cause] = []
    if not rules and spec.get("defaultBackend") is None:
        out.append(invalid("spec", Typed(spec.get("rules"), "[]networking.IngressRule"),
                           "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        out += _ingress_backend(spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(rules):
        rp = f"spec.rules[{i}]"
        if rule.get("host"):
            out += _ingress_host(rule["host"], f"{rp}.host")
        http = rule.get("http")
        if http is not None:
            paths = http.get("paths") or []
            if not paths:
                out.append(required(f"{rp}.http.paths"))
            for j, p in enumerate(paths):
                out += _ingress_path(p, f"{rp}.http.paths[{j}]")
    for i, tls in enumerate(spec.get("tls") or []):
        for j, host in enumerate(tls.get("hosts") or []):
            out += _dns_host(host, f"spec.tls[{i}].hosts[{j}]")
        if tls.get("secretName"):
            out += _subdomain(tls["secretName"], f"spec.tls[{i}].secretName")
    if spec.get("ingressClassName") is not None:
        out += _subdomain(spec["ingressClassName"], "spec.ingressClassName")
    annotation = ((obj.get("metadata") or {}).get("annotations") or {}).get("kubernetes.io/ingress.class")
    if old is None and annotation is not None and spec.get("ingressClassName") not in (None, annotation):
        out.append(invalid("annotations.kubernetes.io/ingress.class", annotation,
                           "must match `ingressClassName` when both are specified"))
    return out


def _ingress_class(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    controller = spec.get("controller") or ""
    out: list[Cause] = []
    if len(controller) > 250:
        out.append(Cause("FieldValueTooLong", "Too long: may not be more than 250 bytes", "spec.controller"))
    host, _, rest = controller.partition("/")
    if not controller:
        out.append(required("spec.controller"))
    elif not host or not rest:
        out.append(invalid("spec.controller", controller, 'must be a domain-prefixed path (such as "acme.io/foo")'))
    else:
        out += _subdomain(host, "spec.controller")
    params = spec.get("parameters")
    if isinstance(params, dict):
        out += _typed_local_ref(params, "spec.parameters")
        scope = params.get("scope")
        if scope is None:
            out.append(required("spec.parameters.scope"))
        elif scope not in ("Cluster", "Namespace"):
            out.append(not_supported("spec.parameters.scope", scope, ["Cluster", "Namespace"]))
        elif scope == "Namespace" and params.get("namespace") is None:
            out.append(required("spec.parameters.namespace", "`parameters.scope` is set to 'Namespace'"))
        elif scope == "Cluster" and params.get("namespace") is not None:
            out.append(forbidden("spec.parameters.namespace", "`parameters.scope` is set to 'Cluster'"))
    return out + _immutable(obj, old, "spec", "controller")


def _network_policy_port(port: dict, path: str) -> list[Cause]:
    out: list[Cause] = []
    if port.get("protocol") not in (None, "TCP", "UDP", "SCTP"):
        out.append(not_supported(f"{path}.protocol", port["protocol"], ["TCP", "UDP", "SCTP"]))
    value, end = port.get("port"), port.get("endPort")
    if isinstance(value, int):
        out += _port_number(value, f"{path}.port")
        if end is not None:
            if isinstance(end, int) and end < value:
                out.append(invalid(f"{path}.endPort", value, "must be greater than or equal to `port`"))
            out += _port_number(end, f"{path}.endPort")
    elif isinstance(value, str):
        if end is not None:
            out.append(invalid(f"{path}.endPort", end, "may not be specified when `port` is non-numeric"))
        out += _port_name(value, f"{path}.port")
    elif end is not None:
        out.append(invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified"))
    return out


def _network_policy_peer(peer: dict, path: str) -> list[Cause]:
    given = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(k) is not None]
    if not given:
        return [required(path, "must specify a peer")]
    out: list[Cause] = []
    for key in ("podSelector", "namespaceSelector"):
        out += _label_selector(peer.get(key), f"{path}.{key}")
    block = peer.get("ipBlock")
    if block is not None:
        if not block.get("cidr"):
            out.append(required(f"{path}.ipBlock.cidr"))
        else:
            try:
                ipaddress.ip_network(block["cidr"], strict=False)
            except ValueError:
                out.append(invalid(f"{path}.ipBlock.cidr", block["cidr"],
                                   "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
        if len(given) > 1:
            out.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return out


def _network_policy(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    out = _label_selector(spec.get("podSelector"), "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            rp = f"spec.{direction}[{i}]"
            for j, port in enumerate(rule.get("ports") or []):
                out += _network_policy_port(port, f"{rp}.ports[{j}]")
            for j, peer in enumerate(rule.get(peers) or []):
                out += _network_policy_peer(peer, f"{rp}.{peers}[{j}]")
    types = spec.get("policyTypes") or []
    if len(types) > 2:
        return out + [invalid("spec.policyTypes", Typed(types, "[]networking.PolicyType"),
                              "may not specify more than two policyTypes")]
    out += [not_supported(f"spec.policyTypes[{i}]", t, ["Ingress", "Egress"])
            for i, t in enumerate(types) if t not in ("Ingress", "Egress")]
    return out


# StorageClass (pkg/apis/storage/validation)

def _storage_class(obj: dict, old: dict | None) -> list[Cause]:
    out: list[Cause] = []
    provisioner = obj.get("provisioner") or ""
    if not provisioner:
        out.append(required("provisioner"))
    else:
        out += _qualified_name(provisioner.lower(), "provisioner")
    params = obj.get("parameters") or {}
    if len(params) > 512:
        out.append(Cause("FieldValueTooLong", "Too long: may not be more than 512 bytes", "parameters"))
    out += [invalid("parameters", k, "field can not be empty.") for k in params if not k]
    policy = obj.get("reclaimPolicy")
    if policy and policy not in ("Delete", "Retain"):
        out.append(not_supported("reclaimPolicy", policy, ["Delete", "Retain"]))
    mode = obj.get("volumeBindingMode")
    if mode is None:
        out.append(required("volumeBindingMode"))
    elif mode not in ("Immediate", "WaitForFirstConsumer"):
        out.append(not_supported("volumeBindingMode", mode, ["Immediate", "WaitForFirstConsumer"]))
    if old is not None:
        if (old.get("parameters") or {}) != params:
            out.append(forbidden("parameters", "updates to parameters are forbidden."))
        if (old.get("provisioner") or "") != provisioner:
            out.append(forbidden("provisioner", "updates to provisioner are forbidden."))
        if old.get("reclaimPolicy") != policy:
            out.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        out += _immutable(obj, old, "volumeBindingMode")
    return out


# RBAC (pkg/apis/rbac/validation)

RBAC_GROUP = "rbac.authorization.k8s.io"


def _policy_rules(obj: dict, namespaced: bool) -> list[Cause]:
    """ValidatePolicyRule for each rule."""
    out: list[Cause] = []
    for i, rule in enumerate(obj.get("rules") or []):
        rp = f"rules[{i}]"
        if not rule.get("verbs"):
            out.append(required(f"{rp}.verbs", "verbs must contain at least one value"))
        urls = rule.get("nonResourceURLs") or []
        if urls:
            value = Typed(urls, "[]string")
            if namespaced:
                out.append(invalid(f"{rp}.nonResourceURLs", value,
                                   "namespaced rules cannot apply to non-resource URLs"))
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                out.append(invalid(f"{rp}.nonResourceURLs", value,
                                   "rules cannot apply to both regular resources and non-resource URLs"))
            continue
        if not rule.get("apiGroups"):
            out.append(required(f"{rp}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            out.append(required(f"{rp}.resources", "resource rules must supply at least one resource"))
    return out


def _role(namespaced: bool) -> Validator:
    def run(obj: dict, old: dict | None) -> list[Cause]:
        out = _policy_rules(obj, namespaced)
        aggregation = obj.get("aggregationRule")
        if not namespaced and aggregation is not None:
            selectors = aggregation.get("clusterRoleSelectors") or []
            if not selectors:
                out.append(required("aggregationRule.clusterRoleSelectors",
                                    "at least one clusterRoleSelector required if aggregationRule is non-nil"))
            for i, selector in enumerate(selectors):
                out += _label_selector(selector, f"aggregationRule.clusterRoleSelectors[{i}]")
        return out
    return run


def _subject(subject: dict, namespaced: bool, path: str) -> list[Cause]:
    """ValidateRoleBindingSubject (after SetDefaults_Subject filled the API group)."""
    name, kind, group = subject.get("name") or "", subject.get("kind"), subject.get("apiGroup") or ""
    out = [] if name else [required(f"{path}.name")]
    if kind == "ServiceAccount":
        if name:
            out += _subdomain(name, f"{path}.name")
        if group:
            out.append(not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            out.append(required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != RBAC_GROUP:
            out.append(not_supported(f"{path}.apiGroup", group, [RBAC_GROUP]))
    else:
        out.append(not_supported(f"{path}.kind", kind or "", ["ServiceAccount", "User", "Group"]))
    return out


def _role_ref_value(ref: dict) -> GoStruct:
    return GoStruct("rbac.RoleRef", tuple((go, ref.get(key) or "", "string")
                                          for go, key in (("APIGroup", "apiGroup"), ("Kind", "kind"), ("Name", "name"))))


def _binding(namespaced: bool) -> Validator:
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]

    def run(obj: dict, old: dict | None) -> list[Cause]:
        ref = obj.get("roleRef") or {}
        out: list[Cause] = []
        if (ref.get("apiGroup") or "") != RBAC_GROUP:
            out.append(not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [RBAC_GROUP]))
        if ref.get("kind") not in kinds:
            out.append(not_supported("roleRef.kind", ref.get("kind") or "", kinds))
        if not ref.get("name"):
            out.append(required("roleRef.name"))
        else:
            out += [invalid("roleRef.name", ref["name"], m) for m in path_segment_name(ref["name"])]
        for i, subject in enumerate(obj.get("subjects") or []):
            out += _subject(subject, namespaced, f"subjects[{i}]")
        if old is not None and _role_ref_value(old.get("roleRef") or {}) != _role_ref_value(ref):
            out.append(invalid("roleRef", _role_ref_value(ref), "cannot change roleRef"))
        return out
    return run


# CertificateSigningRequest (pkg/apis/certificates/validation)

KEY_USAGES = sorted([
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement", "data encipherment",
    "cert sign", "crl sign", "encipher only", "decipher only", "any", "server auth", "client auth", "code signing",
    "email protection", "s/mime", "ipsec end system", "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
    "microsoft sgc", "netscape sgc"])
CONDITION_STATUSES_TFU = ["True", "False", "Unknown"]
_PEM_CSR = re.compile(rb"-----BEGIN ([^-]+)-----\r?\n(.*?)-----END \1-----", re.S)


def _go_bytes(data: bytes) -> str:
    """%#v of a []byte, as field.Invalid shows spec.request."""
    return "[]byte{" + ", ".join(f"0x{b:x}" for b in data) + "}" if data else "[]byte(nil)"


def csr_request_error(data: bytes) -> str | None:
    """certificates.ParseCSR plus CheckSignature: why the PEM request is unusable, None when it is fine."""
    block = _PEM_CSR.search(data)
    if block is None or block.group(1) != b"CERTIFICATE REQUEST":
        return "PEM block type must be CERTIFICATE REQUEST"
    try:
        request = x509.load_pem_x509_csr(block.group(0))
    except ValueError:
        return "x509: malformed certificate request"
    return None if request.is_signature_valid else "x509: signature verification failure"


def _signer_name(name: str) -> list[Cause]:
    if not name:
        return [required("spec.signerName")]
    domain, _, rest = name.partition("/")
    if not rest or "/" in rest:
        return [invalid("spec.signerName", name,
                        "must be a fully qualified domain and path of the form 'example.com/signer-name'")]
    return _subdomain(domain, "spec.signerName")


def _csr(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    try:
        data = base64.b64decode(spec.get("request") or "", validate=True)
    except (binascii.Error, ValueError):
        data = b""
    problem = csr_request_error(data)
    if problem is not None:
        out.append(Cause("FieldValueInvalid", f"Invalid value: {_go_bytes(data)}: {problem}", "spec.request"))
    usages = spec.get("usages") or []
    if not usages:
        out.append(required("spec.usages"))
    seen: set[str] = set()
    for i, usage in enumerate(usages):
        if usage not in KEY_USAGES:
            out.append(not_supported(f"spec.usages[{i}]", usage, KEY_USAGES))
        if usage in seen:
            out.append(duplicate(f"spec.usages[{i}]", usage))
        seen.add(usage)
    if spec.get("signerName") == "kubernetes.io/legacy-unknown":
        out.append(invalid("spec.signerName", spec["signerName"], "the legacy signerName is not allowed via this "
                           "API version"))
    else:
        out += _signer_name(spec.get("signerName") or "")
    seconds = spec.get("expirationSeconds")
    if isinstance(seconds, int) and seconds < 600:
        out.append(invalid("spec.expirationSeconds", seconds,
                           "may not specify a duration less than 600 seconds (10 minutes)"))
    kinds: set[str] = set()
    conditions = (obj.get("status") or {}).get("conditions") or []
    for i, cond in enumerate(conditions):
        cp, ctype, status = f"status.conditions[{i}]", cond.get("type") or "", cond.get("status") or ""
        if not ctype:
            out.append(required(f"{cp}.type"))
        if status not in CONDITION_STATUSES_TFU:
            out.append(not_supported(f"{cp}.status", status, CONDITION_STATUSES_TFU))
        if ctype in ("Approved", "Denied") and status != "True":
            out.append(invalid(f"{cp}.status", status, f"{ctype} condition may only be set to True"))
        if ctype in kinds:
            out.append(duplicate(f"{cp}.type", ctype))
        kinds.add(ctype)
    if {"Approved", "Denied"} <= kinds:   # upstream's value also shows each condition's timestamps
        value = [GoStruct("certificates.CertificateSigningRequestCondition", tuple(
            (go, c.get(key) or "", typ) for go, key, typ in (("Type", "type", "certificates.RequestConditionType"),
                                                             ("Status", "status", "core.ConditionStatus"),
                                                             ("Reason", "reason", "string"),
                                                             ("Message", "message", "string")))) for c in conditions]
        out.append(invalid("status.conditions", Typed(value, "[]certificates.CertificateSigningRequestCondition"),
                           "Approved and Denied conditions are mutually exclusive"))
    return out

# Admission webhook configurations (pkg/apis/admissionregistration/validation)

REVIEW_VERSIONS = ["v1", "v1beta1"]
SIDE_EFFECTS = ["None", "NoneOnDryRun"]


def _webhook_client(cc: dict, path: str) -> list[Cause]:
    url, service = cc.get("url"), cc.get("service")
    if (url is None) == (service is None):
        return [required(path, "exactly one of url or service is required")]
    if service is None:
        scheme = url.partition("://")[0] if "://" in url else ""
        return [] if scheme == "https" else [invalid(f"{path}.url", scheme, "'https' is the only allowed URL scheme")]
    out: list[Cause] = []
    for key in ("name", "namespace"):
        if not service.get(key):
            out.append(required(f"{path}.service.{key}", f"service {key} is required"))
    if service.get("path") and not service["path"].startswith("/"):
        out.append(invalid(f"{path}.service.path", service["path"], "must start with a '/'"))
    port = service.get("port")
    if port is not None and _port_number(port, ""):
        out.append(invalid(f"{path}.service.port", port, f"port is not valid: {PORT_MSG}"))
    return out


def _webhook_configuration(mutating: bool) -> Validator:
    def run(obj: dict, old: dict | None) -> list[Cause]:
        out: list[Cause] = []
        seen: set[str] = set()
        for i, hook in enumerate(obj.get("webhooks") or []):
            hp = f"webhooks[{i}]"
            name = hook.get("name") or ""
            if not name:
                out.append(required(f"{hp}.name"))
            else:
                out += _subdomain(name, f"{hp}.name")
                if len(name.split(".")) < 3:
                    out.append(invalid(f"{hp}.name", name, "should be a domain with at least three segments "
                                       "separated by dots"))
                if name in seen:
                    out.append(duplicate(f"{hp}.name", name))
                seen.add(name)
            versions = hook.get("admissionReviewVersions") or []
            if not versions:
                out.append(required(f"{hp}.admissionReviewVersions",
                                    "must specify one of " + ", ".join(REVIEW_VERSIONS)))
            elif not set(versions) & set(REVIEW_VERSIONS):
                out.append(invalid(f"{hp}.admissionReviewVersions", Typed(versions, "[]string"),
                                   "must include at least one of " + ", ".join(REVIEW_VERSIONS)))
            effects = hook.get("sideEffects")
            if effects is None:
                out.append(required(f"{hp}.sideEffects", "must specify one of " + ", ".join(SIDE_EFFECTS)))
            elif effects not in SIDE_EFFECTS:
                out.append(not_supported(f"{hp}.sideEffects", effects, SIDE_EFFECTS))
            for key, allowed in (("failurePolicy", ["Fail", "Ignore"]), ("matchPolicy", ["Equivalent", "Exact"])):
                if hook.get(key) is not None and hook[key] not in allowed:
                    out.append(not_supported(f"{hp}.{key}", hook[key], allowed))
            if mutating and hook.get("reinvocationPolicy") not in (None, "IfNeeded", "Never"):
                out.append(not_supported(f"{hp}.reinvocationPolicy", hook["reinvocationPolicy"],
                                         ["IfNeeded", "Never"]))
            timeout = hook.get("timeoutSeconds")
            if isinstance(timeout, int) and not 1 <= timeout <= 30:
                out.append(invalid(f"{hp}.timeoutSeconds", timeout, "the timeout value must be between 1 and 30 "
                                   "seconds"))
            out += _webhook_client(hook.get("clientConfig") or {}, f"{hp}.clientConfig")
        return out
    return run

# VolumeAttachment (pkg/apis/storage/validation), PodTemplate (pkg/apis/core/validation)

def _volume_attachment(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    source = spec.get("source") or {}
    out = [] if spec.get("attacher") else [required("spec.attacher")]
    pv, inline = source.get("persistentVolumeName"), source.get("inlineVolumeSpec")
    exactly_one = "must specify exactly one of inlineVolumeSpec and persistentVolumeName"
    if pv is None and inline is None:
        out.append(required("spec.source", exactly_one))
    elif pv is not None and inline is not None:
        out.append(forbidden("spec.source", exactly_one))
    elif pv is not None and not pv:
        out.append(required("spec.source.persistentVolumeName", "must specify non empty persistentVolumeName"))
    return out + _subdomain(spec.get("nodeName") or "", "spec.nodeName")


def _pod_template(obj: dict, old: dict | None) -> list[Cause]:
    template = obj.get("template") or {}
    return (labels((template.get("metadata") or {}).get("labels"), "template.metadata.labels")
            + pod_spec(template.get("spec"), "template.spec"))

# APIService (kube-aggregator's validation), CSIDriver (pkg/apis/storage/validation)

def _api_service(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    group, version = spec.get("group") or "", spec.get("version") or ""
    name = (obj.get("metadata") or {}).get("name")
    out: list[Cause] = []
    if name and not path_segment_name(name) and name != f"{version}.{group}":
        out.append(invalid("metadata.name", name, f'must be `spec.version+"."+spec.group`: "{version}.{group}"'))
    if not group and version != "v1":
        out.append(required("spec.group", "only v1 may have an empty group and it better be legacy kube"))
    if group:
        out += _subdomain(group, "spec.group")
    if not DNS1035_LABEL.match(version) or len(version) > 63:
        out.append(invalid("spec.version", version, DNS1035_MSG if not DNS1035_LABEL.match(version)
                           else "must be no more than 63 characters"))
    for key, limit in (("groupPriorityMinimum", 20000), ("versionPriority", 1000)):
        value = spec.get(key) or 0
        if not isinstance(value, int) or not 0 < value <= limit:
            out.append(invalid(f"spec.{key}", value, f"must be positive and less than {limit}"))
    if spec.get("service") is None:
        if spec.get("caBundle"):
            size = len(base64.b64decode(spec["caBundle"], validate=False))
            out.append(invalid("spec.caBundle", f"{size} bytes", "local APIServices may not have a caBundle"))
        if spec.get("insecureSkipTLSVerify"):
            out.append(invalid("spec.insecureSkipTLSVerify", True,
                               "local APIServices may not have insecureSkipTLSVerify"))
    return out


def _csi_driver(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    policy = spec.get("fsGroupPolicy")
    if policy is not None and policy not in ("File", "None", "ReadWriteOnceWithFSType"):
        out.append(not_supported("spec.fsGroupPolicy", policy, ["File", "None", "ReadWriteOnceWithFSType"]))
    out += [not_supported(f"spec.volumeLifecycleModes[{i}]", mode, ["Ephemeral", "Persistent"])
            for i, mode in enumerate(spec.get("volumeLifecycleModes") or []) if mode not in ("Ephemeral", "Persistent")]
    return out + _immutable(obj, old, "spec", "attachRequired") + _immutable(obj, old, "spec", "volumeLifecycleModes")


# RuntimeClass (pkg/apis/node/validation)

def _runtime_class(obj: dict, old: dict | None) -> list[Cause]:
    return _dns_label(obj.get("handler") or "", "handler") + _immutable(obj, old, "handler")


KIND_RULES.update({
    "ingresses": _ingress,
    "ingressclasses": _ingress_class,
    "networkpolicies": _network_policy,
    "storageclasses": _storage_class,
    "roles": _role(True),
    "clusterroles": _role(False),
    "rolebindings": _binding(True),
    "clusterrolebindings": _binding(False),
    "certificatesigningrequests": _csr,
    "runtimeclasses": _runtime_class,
    "apiservices": _api_service,
    "csidrivers": _csi_driver,
    "volumeattachments": _volume_attachment,
    "podtemplates": _pod_template,
    "validatingwebhookconfigurations": _webhook_configuration(False),
    "mutatingwebhookconfigurations": _webhook_configuration(True),
})


def validate(resource: Resource, obj: dict, old: dict | None = None) -> list[Cause]:
    out = metadata(resource, obj)
    rule = None if resource.custom else KIND_RULES.get(resource.plural)   # a CRD may reuse a built-in plural
    if rule is not None:
        out += rule(obj, old)
    if old is not None:
        for k in ("name", "namespace", "uid"):
            if (old.get("metadata") or {}).get(k) != (obj.get("metadata") or {}).get(k):
                out.append(invalid(f"metadata.{k}", (obj.get("metadata") or {}).get(k), "field is immutable"))
    return out
