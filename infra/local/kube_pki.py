"""Certificates of the local cluster, made once with openssl under `<home>/kube/pki/`.

One CA signs: the apiserver's serving certificate (127.0.0.1, the node IP and the
`kubernetes` Service names, so pods and the host verify the same server), the
apiserver's client certificate towards the kubelet (O=system:masters: logs/exec),
and the kubelet's client certificate (CN=system:node:<node>, O=system:nodes: the Node
authorizer and NodeRestriction only let a kubelet touch its own node and pods).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_DAYS = "3650"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _key(path: Path) -> None:
    if not path.exists():
        _openssl("genrsa", "-out", str(path), "2048", cwd=path.parent)
        os.chmod(path, 0o600)


def _ca(pki: Path) -> None:
    _key(pki / "ca.key")
    if not (pki / "ca.crt").exists():
        _openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=phoenix-local-ca",
                 "-days", _DAYS, "-out", "ca.crt", cwd=pki)


def _signed(pki: Path, name: str, subj: str, ext: str) -> None:
    """`<name>.crt` for `<name>.key`, signed by the CA; `ext` is the v3 extension text."""
    _key(pki / f"{name}.key")
    if (pki / f"{name}.crt").exists():
        return
    (pki / f"{name}.ext").write_text(ext)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subj, "-out", f"{name}.csr", cwd=pki)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", _DAYS, "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=pki)
    (pki / f"{name}.csr").unlink()


def _serving_ext(node_ip: str, service_ip: str) -> str:
    names = ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local", "localhost"]
    sans = [f"DNS:{n}" for n in names] + [f"IP:{ip}" for ip in ("127.0.0.1", node_ip, service_ip)]
    return ("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage=serverAuth\nsubjectAltName={','.join(sans)}\n")


_CLIENT_EXT = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"


def ensure(pki: Path, *, node: str, node_ip: str, service_ip: str) -> None:
    """Create what is missing. A serving certificate for another node IP is remade."""
    pki.mkdir(parents=True, exist_ok=True)
    _ca(pki)
    stamp = pki / "serving.ip"
    if stamp.exists() and stamp.read_text() != node_ip:
        (pki / "serving.crt").unlink(missing_ok=True)
    _signed(pki, "serving", "/CN=kube-apiserver", _serving_ext(node_ip, service_ip))
    stamp.write_text(node_ip)
    _signed(pki, "apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client", _CLIENT_EXT)
    _signed(pki, "kubelet-client", f"/O=system:nodes/CN=system:node:{node}", _CLIENT_EXT)
