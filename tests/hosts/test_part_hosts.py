"""``datatrust init --part-host PART=ADDRESS``: certificates for parts on other hosts.

What the multi-host harness needs from the product (no root needed here): a node reached at
its own host's address must present a certificate naming that address, or the gateway's
hostname check refuses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cryptography import x509

from datatrust.network import certificate_fingerprint


def datatrust(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "datatrust", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        timeout=60,
    )


def names(data_dir: Path, part: str) -> set[str]:
    certificate = x509.load_pem_x509_certificate((data_dir / "tls" / f"{part}.pem").read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {f"IP:{n}" for n in san.get_values_for_type(x509.IPAddress)} | {
        f"DNS:{n}" for n in san.get_values_for_type(x509.DNSName)
    }


def directory_fingerprint(data_dir: Path, part: str) -> str:
    document = json.loads((data_dir / "directory.json").read_text())
    return next(m["certificate_sha256"] for m in document["members"] if m["node_id"] == part)


def test_a_part_on_another_host_gets_a_certificate_naming_that_host(tmp_path: Path) -> None:
    result = datatrust("init", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert names(tmp_path, "council") == {"DNS:localhost", "IP:127.0.0.1"}

    result = datatrust(
        "init", "--part-host", "council=10.0.0.5", "--part-host", "council=council.example",
        data_dir=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert names(tmp_path, "council") == {
        "DNS:localhost", "IP:127.0.0.1", "IP:10.0.0.5", "DNS:council.example"
    }  # fmt: skip
    assert names(tmp_path, "health") == {"DNS:localhost", "IP:127.0.0.1"}
    reissued = certificate_fingerprint((tmp_path / "tls" / "council.pem").read_bytes())
    assert directory_fingerprint(tmp_path, "council") == reissued  # the directory follows
    assert datatrust("directory", "verify", data_dir=tmp_path).returncode == 0

    before = (tmp_path / "tls" / "council.pem").read_bytes()
    assert datatrust("init", data_dir=tmp_path).returncode == 0  # fewer names: nothing to do
    assert (tmp_path / "tls" / "council.pem").read_bytes() == before


def test_a_part_host_that_names_no_part_or_no_address_is_refused(tmp_path: Path) -> None:
    unknown = datatrust("init", "--part-host", "library=10.0.0.9", data_dir=tmp_path)
    assert unknown.returncode == 2
    assert "no part 'library'" in unknown.stderr
    assert "council" in unknown.stderr
    bare = datatrust("init", "--part-host", "council", data_dir=tmp_path)
    assert bare.returncode == 2
    assert "expected PART=ADDRESS" in bare.stderr
    assert not (tmp_path / "tls").exists()  # refused before anything was made
