"""RSA2 (SHA256withRSA) as Alipay's open platform uses it, with ``cryptography``: the
request's parameters signed with the application's key, and Alipay's answers and
notifications verified with Alipay's public key.

Keys come as PEM or as the bare base64 body Alipay's key tool writes (PKCS#8 or
PKCS#1 for the private key, SubjectPublicKeyInfo for the public one).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The parameters a signature never covers.
UNSIGNED = ("sign", "sign_type")


class KeyInvalid(ValueError):
    """A key that cannot be read."""


def _pem(text: str, label: str) -> bytes:
    text = (text or "").replace("\\n", "\n").strip()
    if "-----BEGIN" in text:
        return text.encode("ascii")
    body = "".join(text.split())
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode("ascii")


def private_key(text: str) -> rsa.RSAPrivateKey:
    """The application's private key, from PEM or bare base64 (PKCS#8 or PKCS#1)."""
    errors = []
    for label in ("PRIVATE KEY", "RSA PRIVATE KEY"):
        try:
            key = serialization.load_pem_private_key(_pem(text, label), password=None)
        except (ValueError, TypeError, UnicodeEncodeError) as exc:
            errors.append(str(exc))
            continue
        if isinstance(key, rsa.RSAPrivateKey):
            return key
        errors.append("not an RSA key")
    raise KeyInvalid(f"not an RSA private key ({errors[-1] if errors else 'empty'})")


def public_key(text: str) -> rsa.RSAPublicKey:
    """Alipay's public key, from PEM or bare base64."""
    try:
        key = serialization.load_pem_public_key(_pem(text, "PUBLIC KEY"))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise KeyInvalid(f"not an RSA public key ({exc})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyInvalid("not an RSA public key")
    return key


def content(params: Mapping[str, Any]) -> str:
    """The signed text: ``k=v`` pairs of the non-empty parameters but the signature's
    own, sorted by name and joined by ``&``."""
    pairs = sorted(
        (str(name), str(value))
        for name, value in params.items()
        if name not in UNSIGNED and value is not None and str(value) != ""
    )
    return "&".join(f"{name}={value}" for name, value in pairs)


def sign(key: rsa.RSAPrivateKey, text: str) -> str:
    signature = key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(key: rsa.RSAPublicKey, text: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature or "", validate=True)
    except (binascii.Error, ValueError):
        return False
    if not raw:
        return False
    try:
        key.verify(raw, text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


class _Duplicate(ValueError):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise _Duplicate("a key is repeated")
    return dict(pairs)


def _strict(text: str) -> Any:
    """JSON that repeats no key in any object (a repeat could show one value to the
    signature and another to the reader)."""
    return json.loads(text, object_pairs_hook=_unique)


def signed_object(body: str, key_name: str) -> tuple[str, dict[str, Any]] | None:
    """The exact text of ``key_name``'s object in an answer's JSON, which Alipay's
    ``sign`` covers, and that very text parsed; None when the answer has no such object
    or repeats a key anywhere."""
    try:
        parsed = _strict(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get(key_name), dict):
        return None
    marker = f'"{key_name}"'
    start = body.find(marker)
    if start < 0:
        return None
    start = body.find("{", start + len(marker))
    end = _object_end(body, start)
    if start < 0 or end < 0:
        return None
    text = body[start : end + 1]
    try:
        answer = _strict(text)
    except ValueError:
        return None
    return (text, answer) if isinstance(answer, dict) else None


def _object_end(text: str, start: int) -> int:
    """The index of the brace closing the JSON object opened at ``start``; -1 if none."""
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1
