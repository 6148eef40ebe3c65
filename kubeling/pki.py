"""A cluster CA and certificates signed by it, and the ServiceAccount signing key pair.

ECDSA P-256 keys: fast to generate and accepted by Go's TLS stack (kubectl).
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT, CA_KEY = "ca.crt", "ca.key"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    if private:
        tmp.chmod(0o600)
    tmp.replace(path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ensure_ca(cert_dir: Path, common_name: str = "kubeling-ca") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Load the CA from cert_dir or create it (10 years)."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    crt, key = cert_dir / CA_CERT, cert_dir / CA_KEY
    if crt.exists() and key.exists():
        return (x509.load_pem_x509_certificate(crt.read_bytes()),
                serialization.load_pem_private_key(key.read_bytes(), None))  # type: ignore[return-value]
    k = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False)
            .sign(k, hashes.SHA256()))
    _write(key, _pem_key(k), private=True)
    _write(crt, cert.public_bytes(serialization.Encoding.PEM))
    return cert, k


def _san_entries(names: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in dict.fromkeys(names):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def _has_sans(cert: x509.Certificate, names: list[str]) -> bool:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(v) for v in ext.get_values_for_type(x509.DNSName)}
    have |= {str(v) for v in ext.get_values_for_type(x509.IPAddress)}
    return all(str(ipaddress.ip_address(n)) in have if _is_ip(n) else n in have for n in names)


def _is_ip(n: str) -> bool:
    try:
        ipaddress.ip_address(n)
        return True
    except ValueError:
        return False


def ensure_serving_cert(cert_dir: Path, base: str, common_name: str, sans: list[str],
                        client: bool = False) -> tuple[Path, Path]:
    """Return (cert, key) paths for a serving certificate covering `sans`, (re)issuing it when needed."""
    ca_cert, ca_key = ensure_ca(cert_dir)
    crt, key = cert_dir / f"{base}.crt", cert_dir / f"{base}.key"
    if crt.exists() and key.exists():
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        if _has_sans(cert, sans) and cert.issuer == ca_cert.subject:
            return crt, key
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    _issue(ca_cert, ca_key, crt, key, [x509.NameAttribute(NameOID.COMMON_NAME, common_name)], usages, sans)
    return crt, key


def ensure_client_cert(cert_dir: Path, base: str, common_name: str, organization: str) -> tuple[Path, Path]:
    """(cert, key) paths of a client certificate from the cluster CA (e.g. the apiserver's identity
    towards kubelets: CN kube-apiserver-kubelet-client, O system:masters), issued once."""
    ca_cert, ca_key = ensure_ca(cert_dir)
    crt, key = cert_dir / f"{base}.crt", cert_dir / f"{base}.key"
    if crt.exists() and key.exists() and x509.load_pem_x509_certificate(crt.read_bytes()).issuer == ca_cert.subject:
        return crt, key
    _issue(ca_cert, ca_key, crt, key, [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                                       x509.NameAttribute(NameOID.COMMON_NAME, common_name)],
           [ExtendedKeyUsageOID.CLIENT_AUTH], [])
    return crt, key


def _issue(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, crt: Path, key: Path,
           subject: list[x509.NameAttribute], usages: list, sans: list[str]) -> None:
    """A one-year leaf certificate from the CA, written with a new key."""
    k = _key()
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(x509.Name(subject))
               .issuer_name(ca_cert.subject).public_key(k.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=365))
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san_entries(sans)), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write(key, _pem_key(k), private=True)
    _write(crt, cert.public_bytes(serialization.Encoding.PEM))


def ensure_keypair(key_path: Path, pub_path: Path) -> None:
    """Create an RSA signing key and its public half when absent (what kubeadm's sa.key/sa.pub are)."""
    if key_path.exists() and pub_path.exists():
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    pub_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
