"""ServiceAccount tokens as kube-apiserver checks them: accepted only when meant for the API
(--api-audiences, by default the issuers), issued by one of --service-account-issuer, signed by the
cluster's key, within their times (a minute of leeway), and while the ServiceAccount and the object
the token is bound to still exist with the UIDs in the token."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.clusters import wait_for
from tests.support.control_plane import ApiServer

SHARES_CONTROL_PLANE = True   # API calls only: the session's control plane (tests/conftest.py)

ISSUER = "https://kubernetes.default.svc.cluster.local"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def as_token(api: ApiServer, token: str) -> client.CoreV1Api:
    """The official Python client authenticating with `token` only."""
    cfg = client.Configuration()
    cfg.host, cfg.ssl_ca_cert = api.url, str(api.ca)
    cfg.api_key, cfg.api_key_prefix = {"authorization": token}, {"authorization": "Bearer"}
    return client.CoreV1Api(client.ApiClient(cfg))


def status_with(api: ApiServer, token: str, ns: str) -> int:
    return api.http("GET", f"/api/v1/namespaces/{ns}/configmaps", auth=False, headers=bearer(token))[0]


def create_sa(api: ApiServer, ns: str, name: str = "default") -> str:
    """A ServiceAccount (no controller-manager runs here to make `default`); its UID."""
    code, body, _ = api.http("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": name}})
    assert code == 201, body
    return body["metadata"]["uid"]


def test_a_token_for_another_audience_is_refused(control_plane, ns):
    api = control_plane
    create_sa(api, ns)
    foreign = api.kubectl("-n", ns, "create", "token", "default", "--audience", "foo").stdout.strip()
    own = api.kubectl("-n", ns, "create", "token", "default").stdout.strip()
    both = api.kubectl("-n", ns, "create", "token", "default", "--audience", "foo", "--audience", ISSUER).stdout.strip()

    with pytest.raises(ApiException) as refused:
        as_token(api, foreign).list_namespaced_pod(ns)
    assert refused.value.status == 401
    code, body, _ = api.http("GET", f"/api/v1/namespaces/{ns}/pods", auth=False, headers=bearer(foreign))
    assert (code, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized")
    p = api.kubectl("--token", foreign, "-n", ns, "get", "pods", check=False)
    assert p.returncode == 1 and "error: You must be logged in to the server" in p.stderr

    assert as_token(api, own).list_namespaced_pod(ns).items == []
    assert as_token(api, both).list_namespaced_pod(ns).items == []
    assert api.kubectl("--token", own, "-n", ns, "get", "pods").stderr.strip() == f"No resources found in {ns} namespace."


def test_a_token_request_without_audiences_gets_the_api_audiences(control_plane, ns):
    api = control_plane
    create_sa(api, ns, "robot")
    path = f"/api/v1/namespaces/{ns}/serviceaccounts/robot/token"
    before = int(time.time())
    code, tr, _ = api.http("POST", path, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    assert code == 201, tr
    assert tr["spec"]["audiences"] == [ISSUER] and tr["spec"]["expirationSeconds"] == 3600
    assert (tr["metadata"]["name"], tr["metadata"]["namespace"]) == ("robot", ns)
    expires = datetime.strptime(tr["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before + 3600 - 1 <= expires.timestamp() <= time.time() + 3600
    claims = jwt.decode(tr["status"]["token"], options={"verify_signature": False})
    assert claims["aud"] == [ISSUER] and claims["iss"] == ISSUER and claims["jti"]
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "robot"
    assert jwt.get_unverified_header(tr["status"]["token"])["alg"] == "RS256"
    assert status_with(api, tr["status"]["token"], ns) == 200

    code, body, _ = api.http("POST", path, {"spec": {"expirationSeconds": 2**32 + 1}})
    assert code == 422 and body["message"] == ('TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
                                               'Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds')
    code, body, _ = api.http("POST", path, {"metadata": {"name": "other"}, "spec": {}})
    assert code == 422 and "metadata.name: Invalid value: \"other\": must match the service account name if specified" \
        in body["message"]


def test_api_audiences_and_several_issuers(control_plane, ns, tmp_path):
    """A second apiserver on the same store and key, new issuer first (signing) and the old one still
    accepted, serving the API audiences api.example and other.example."""
    api = control_plane
    create_sa(api, ns)
    second = ApiServer(tmp_path, api.store.client_urls, cert_dir=api.cert_dir, tokens=api.tokens, name="second",
                       extra_args=["--service-account-issuer", "https://issuer.example", "--service-account-issuer",
                                   ISSUER, "--api-audiences", "api.example,other.example"])
    try:
        second.start()
        token = second.kubectl("-n", ns, "create", "token", "default").stdout.strip()
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["iss"] == "https://issuer.example" and claims["aud"] == ["api.example", "other.example"]
        assert status_with(second, token, ns) == 200
        assert status_with(api, token, ns) == 401            # neither its issuer nor its audience is the first's

        first = api.kubectl("-n", ns, "create", "token", "default").stdout.strip()
        assert status_with(api, first, ns) == 200
        assert status_with(second, first, ns) == 401          # old issuer, but for the first's audience only
        for_second = api.kubectl("-n", ns, "create", "token", "default", "--audience", "other.example").stdout.strip()
        assert status_with(second, for_second, ns) == 200     # old issuer, an audience of the second
        assert status_with(api, for_second, ns) == 401
    finally:
        second.stop()


def test_signature_issuer_times_and_claims_are_checked(control_plane, ns):
    """Tokens made by hand with the cluster's signing key (as another apiserver of it would)."""
    api = control_plane
    uid = create_sa(api, ns)
    key = (api.cert_dir / "sa.key").read_bytes()
    now = int(time.time())
    base = {"iss": ISSUER, "aud": [ISSUER], "sub": f"system:serviceaccount:{ns}:default", "iat": now, "nbf": now,
            "exp": now + 600, "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": "default", "uid": uid}}}

    def token(signing_key=key, **changes) -> str:
        claims = {k: v for k, v in {**base, **changes}.items() if v is not None}
        return jwt.encode(claims, signing_key, algorithm="RS256")

    assert status_with(api, token(), ns) == 200
    assert status_with(api, token(exp=now - 30), ns) == 200           # within the minute of leeway
    assert status_with(api, token(aud=None), ns) == 200               # no audience: the API's only
    assert status_with(api, token(exp=now - 120), ns) == 401          # expired
    assert status_with(api, token(nbf=now + 120), ns) == 401          # not valid yet
    assert status_with(api, token(iat=now + 120), ns) == 401          # issued in the future
    assert status_with(api, token(iss="https://elsewhere.example"), ns) == 401
    assert status_with(api, token(aud=["https://elsewhere.example"]), ns) == 401
    assert status_with(api, token(**{"kubernetes.io": None}), ns) == 401
    assert status_with(api, token(**{"kubernetes.io": {"namespace": ns, "serviceaccount": {
        "name": "default", "uid": "0000-not-its-uid"}}}), ns) == 401
    assert status_with(api, token(**{"kubernetes.io": {"namespace": ns, "serviceaccount": {"name": "default"}}}),
                       ns) == 401
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert status_with(api, token(signing_key=other_key), ns) == 401


def test_bound_tokens_die_with_their_pod_and_serviceaccount(control_plane, ns):
    api = control_plane
    create_sa(api, ns)
    code, pod, _ = api.http("POST", f"/api/v1/namespaces/{ns}/pods", {
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    assert code == 201, pod
    bound = api.kubectl("-n", ns, "create", "token", "default", "--bound-object-kind", "Pod",
                        "--bound-object-name", "p").stdout.strip()
    claims = jwt.decode(bound, options={"verify_signature": False})
    assert claims["kubernetes.io"]["pod"] == {"name": "p", "uid": pod["metadata"]["uid"]}
    unbound = api.kubectl("-n", ns, "create", "token", "default").stdout.strip()
    assert status_with(api, bound, ns) == 200

    p = api.kubectl("-n", ns, "create", "token", "default", "--bound-object-kind", "Pod", "--bound-object-name",
                    "missing", check=False)
    assert p.returncode == 1 and 'pods "missing" not found' in p.stderr
    path = f"/api/v1/namespaces/{ns}/serviceaccounts/default/token"
    code, body, _ = api.http("POST", path, {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "ConfigMap",
                                                                        "name": "x"}}})
    assert (code, body["message"]) == (400, "cannot bind token to object of type /v1, Kind=ConfigMap")
    code, body, _ = api.http("POST", path, {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p",
                                                                        "uid": "stale-uid"}}})
    assert (code, body["reason"]) == (409, "Conflict") and "the UID in the bound object reference (stale-uid)" in body["message"]

    api.kubectl("-n", ns, "delete", "pod", "p")
    wait_for(lambda: status_with(api, bound, ns) == 401, 10, "the pod-bound token refused once its pod is gone")
    assert status_with(api, unbound, ns) == 200

    api.kubectl("-n", ns, "delete", "serviceaccount", "default")
    create_sa(api, ns)   # same name, new UID: tokens of the old one stay refused
    wait_for(lambda: status_with(api, unbound, ns) == 401, 10, "the old ServiceAccount's token refused")
    assert status_with(api, api.kubectl("-n", ns, "create", "token", "default").stdout.strip(), ns) == 200


def test_token_review_answers_who_a_token_is_for_an_audience(control_plane, ns):
    """What a kubelet asks the apiserver about a token sent to it (authentication.k8s.io/v1)."""
    api = control_plane
    uid = create_sa(api, ns)
    own = api.kubectl("-n", ns, "create", "token", "default").stdout.strip()
    foreign = api.kubectl("-n", ns, "create", "token", "default", "--audience", "foo").stdout.strip()
    review = client.AuthenticationV1Api(as_token(api, api.token).api_client)

    def ask(token: str, audiences: list[str] | None = None):
        return review.create_token_review(client.V1TokenReview(
            spec=client.V1TokenReviewSpec(token=token, audiences=audiences))).status
    got = ask(own)
    assert got.authenticated and got.user.username == f"system:serviceaccount:{ns}:default"
    assert got.user.uid == uid and f"system:serviceaccounts:{ns}" in got.user.groups
    assert got.audiences == [ISSUER]
    assert not ask(foreign).authenticated and ask(foreign).user.username is None
    assert ask(foreign, ["foo"]).audiences == ["foo"]
    assert not ask(own, ["foo"]).authenticated
    admin = ask(api.token)
    assert admin.authenticated and admin.user.username == "admin" and "system:masters" in admin.user.groups
    assert not ask("not-a-token").authenticated
    code, body, _ = api.http("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {}})
    assert code == 422 and body["message"] == 'TokenReview.authentication.k8s.io "" is invalid: spec.token: Required value'
