"""Validation of the served kinds with Kubernetes' field paths and messages (the common rules).

`validate(resource, obj, old)` returns field causes; the apiserver turns them into 422 Invalid.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable

from kubeling.api.errors import Cause, duplicate, forbidden, invalid, not_supported, required
from kubeling.api.gofmt import GoStruct, Typed
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


def _nonnegative(spec: dict, key: str, path: str) -> list[Cause]:
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
    out = _nonnegative(spec, "minReadySeconds", "spec.minReadySeconds")
    sel = spec.get("selector")
    if not sel:
        out.append(required("spec.selector"))
    out += _nonnegative(spec, "replicas", "spec.replicas")
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
            out += _nonnegative(ru, "partition", "spec.updateStrategy.rollingUpdate.partition")
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
    out += _nonnegative(spec, "replicas", "spec.replicas")
    out += _nonnegative(spec, "minReadySeconds", "spec.minReadySeconds")
    if isinstance(spec.get("ordinals"), dict):
        out += _nonnegative(spec["ordinals"], "start", "spec.ordinals.start")
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


KIND_RULES: dict[str, Validator] = {
    "pods": _pod,
    "deployments": _workload("Deployment"),
    "replicasets": _workload("ReplicaSet"),
    "daemonsets": _workload("DaemonSet", ["Always"]),
    "jobs": _workload("Job", ["OnFailure", "Never"]),
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


def validate(resource: Resource, obj: dict, old: dict | None = None) -> list[Cause]:
    out = metadata(resource, obj)
    rule = KIND_RULES.get(resource.plural)
    if rule is not None:
        out += rule(obj, old)
    if old is not None:
        for k in ("name", "namespace", "uid"):
            if (old.get("metadata") or {}).get(k) != (obj.get("metadata") or {}).get(k):
                out.append(invalid(f"metadata.{k}", (obj.get("metadata") or {}).get(k), "field is immutable"))
    return out
