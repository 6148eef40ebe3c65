"""The kubelet's pod-network rules: what a pod CIDR adds beside Docker's own chains."""
from __future__ import annotations

from kubelet import podnetwork


def test_one_cidr_forwards_to_its_pods_and_masquerades_only_what_leaves_the_cluster():
    assert podnetwork.rules("10.244.1.0/24", "10.0.0.0/8") == [
        ("filter", ["-A", "KUBELET-POD-FORWARD", "-d", "10.244.1.0/24", "-m", "comment", "--comment",
                    "kubelet pod network 10.244.1.0/24", "-j", "ACCEPT"]),
        ("nat", ["-A", "KUBELET-POD-MASQ", "-s", "10.244.1.0/24", "!", "-d", "10.0.0.0/8", "-m", "comment",
                 "--comment", "kubelet pod network 10.244.1.0/24", "-j", "MASQUERADE"])]


def test_the_bridge_is_dockers_default_name_unless_the_network_names_it():
    assert podnetwork.bridge_of({"Id": "0123456789abcdef", "Options": {}}) == "br-0123456789ab"
    assert podnetwork.bridge_of({"Id": "x", "Options": {"com.docker.network.bridge.name": "kl0"}}) == "kl0"


def test_hairpin_is_set_on_every_port(tmp_path, monkeypatch):
    monkeypatch.setattr(podnetwork, "SYSFS", tmp_path)
    for port, flag in (("veth1", "0"), ("veth2", "1")):
        (tmp_path / "br-x" / "brif" / port).mkdir(parents=True)
        (tmp_path / "br-x" / "brif" / port / "hairpin_mode").write_text(flag + "\n")
    assert podnetwork.set_hairpin("br-x") == 1
    assert {p.name: (p / "hairpin_mode").read_text() for p in (tmp_path / "br-x" / "brif").iterdir()} == {
        "veth1": "1", "veth2": "1\n"}
