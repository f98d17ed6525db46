"""The documented reverse proxy (configs/nginx/relance-api.conf), run for real on 127.0.0.1
in front of a one-validator node with ``trust_forwarded_for`` (issue 17): the API answers
through TLS, the session cookie is Secure, and plain HTTP only redirects to HTTPS (a login
link sent there never reaches the node)."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path

from node.api.tokens import make_token
from node.devnet.demo import load_keys
from node.devnet.network import DEMO_KEYS_FILE, Supervisor, write_devnet
from node.protocol.crypto import Signer
from node.protocol.genesis import parse as parse_genesis
from node.run import config
from tests.node.netutil import eventually, free_base_port
from tests.node.test_tls import make_certificate

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def proxy_config(tmp: Path, plain: int, tls: int, api: int, cert: Path, key: Path) -> Path:
    """The documented file, with this test's ports and paths, in a minimal nginx.conf."""
    site = (ROOT / "configs" / "nginx" / "relance-api.conf").read_text(encoding="utf-8")
    replaced = (
        site.replace("listen 80;", f"listen 127.0.0.1:{plain};")
        .replace("listen 443 ssl;", f"listen 127.0.0.1:{tls} ssl;")
        .replace("/etc/relance/tls/api.crt", str(cert))
        .replace("/etc/relance/tls/api.key", str(key))
        .replace("http://127.0.0.1:26601", f"http://127.0.0.1:{api}")
    )
    assert replaced.count(str(tls)) == 1 and replaced.count(f":{api};") == 1
    (tmp / "site.conf").write_text(replaced, encoding="utf-8")
    for folder in ("body", "proxy", "logs"):
        (tmp / folder).mkdir()
    main = tmp / "nginx.conf"
    main.write_text(
        f"daemon off;\nworker_processes 1;\npid {tmp}/nginx.pid;\n"
        f"error_log {tmp}/logs/error.log;\nuser root;\n"
        f"events {{ worker_connections 64; }}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp}/body;\n"
        f"  proxy_temp_path {tmp}/proxy;\n  include {tmp}/site.conf;\n}}\n",
        encoding="utf-8",
    )
    return main


def get(port: int, path: str, tls: bool) -> http.client.HTTPResponse:
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # a self-signed test certificate
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=10, context=context
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"Host": "api.relance.example"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_the_documented_nginx_proxy_serves_the_api_over_tls_only(tmp_path: Path) -> None:
    base = free_base_port(4)
    (node,) = write_devnet(tmp_path / "net", 1, base, time.time_ns() // 1_000_000)
    settings = config.parse((node.home / config.CONFIG_FILE).read_text(encoding="utf-8"))
    proxied = config.NodeConfig(**{
        **{f: getattr(settings, f) for f in config.NodeConfig.__dataclass_fields__},
        "api_trust_forwarded_for": True,
    })  # fmt: skip
    (node.home / config.CONFIG_FILE).write_text(config.render(proxied), encoding="utf-8")
    cert, key = make_certificate(tmp_path / "tls", 3003, 30)
    proxy = tmp_path / "nginx"
    proxy.mkdir()
    plain, tls = base + 2, base + 3
    main = proxy_config(proxy, plain, tls, settings.api_port, cert, key)
    checked = subprocess.run(
        [NGINX, "-t", "-c", str(main), "-p", str(proxy)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr

    supervisor = Supervisor([node])
    supervisor.start()
    nginx = subprocess.Popen(
        [NGINX, "-c", str(main), "-p", str(proxy)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        eventually(lambda: get(tls, "/v1/health", tls=True).status == 200 or None, 30, "proxy")
        genesis = parse_genesis((node.home / config.GENESIS_FILE).read_text(encoding="utf-8"))
        bank = load_keys(node.home.parent / DEMO_KEYS_FILE)["bank"]
        node_key = Signer(bytes.fromhex((node.home / config.NODE_KEY_FILE).read_text().strip()))
        now = time.time_ns() // 1_000_000

        def link(issued_ms: int) -> str:
            return make_token(bank, genesis.chain_id, node_key.public_key, issued_ms, 600_000)

        # Plain HTTP: a redirect to HTTPS, the link never forwarded (still usable after).
        token = link(now)
        redirected = get(plain, f"/ui/login?token={token}", tls=False)
        assert redirected.status == 301
        assert redirected.headers["Location"].startswith("https://api.relance.example/ui/login")
        landed = get(tls, f"/ui/login?token={token}", tls=True)
        assert landed.status == 303, landed.status
        cookies = [c for c in landed.headers.get_all("Set-Cookie") or [] if "relance_session" in c]
        assert len(cookies) == 1 and "; Secure" in cookies[0] and "HttpOnly" in cookies[0]
        # The node's own port (loopback only) is plain HTTP: there the cookie is not Secure.
        direct = get(settings.api_port, f"/ui/login?token={link(now + 1)}", tls=False)
        set_cookie = " ".join(direct.headers.get_all("Set-Cookie") or [])
        assert direct.status == 303 and not re.search(r"relance_session=[^,]*Secure", set_cookie)
        # `systemctl reload` (SIGHUP) on a node without TLS of its own does not stop it.
        os.kill(supervisor.pid(0), signal.SIGHUP)
        time.sleep(1.0)
        assert supervisor.exit_code(0) is None
        assert get(tls, "/v1/health", tls=True).status == 200
    finally:
        nginx.send_signal(signal.SIGTERM)
        try:
            nginx.wait(timeout=10)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait()
        supervisor.stop()
