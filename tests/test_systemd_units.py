"""The systemd/ folder: unit files, tmpfiles.d and sysusers.d snippets, the
example config, and their agreement with docs/DEPLOY.md.

The units are parsed as systemd reads them (repeated keys accumulate) and
checked for the settings the deployment depends on; where systemd's own tools
are installed (`systemd-analyze`, `systemd-sysusers`, `systemd-tmpfiles`:
Debian's `systemd` package, present on this project's machines) they check
the files too.  No systemd needs to be running.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import pytest

from zksidecar.daemon.config import Config

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "systemd"
SERVICE = SYSTEMD / "zksidecar.service"
TEMPLATE = SYSTEMD / "zksidecar@.service"
TMPFILES = SYSTEMD / "zksidecar.tmpfiles.conf"
SYSUSERS = SYSTEMD / "zksidecar.sysusers.conf"
EXAMPLE = SYSTEMD / "zksidecar.toml.example"
DEPLOY = ROOT / "docs" / "DEPLOY.md"

# The daemon's config keys, from their one definition (daemon/config.py).
CONFIG_KEYS = {section.name: {f.name for f in dataclasses.fields(section.default_factory)}
               for section in dataclasses.fields(Config)}


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """systemd.syntax(7): sections of `Key=value` lines in order, repeats
    kept, '#'/';' comments, trailing-backslash continuations."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    pending = ""
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if pending:
            if line.startswith(("#", ";")):
                continue
            line = pending + " " + line
            pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{path.name}:{n}: assignment before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{n}: not a Key=value line: {raw!r}"
        current.append((key.strip(), value.strip()))
    assert not pending, f"{path.name}: ends inside a continued line"
    return sections


def values(unit, section: str, key: str) -> list[str]:
    """Every value assigned to `key`, an empty assignment resetting the list."""
    out: list[str] = []
    for k, v in unit.get(section, []):
        if k == key:
            out = [] if v == "" else out + [v]
    return out


def one(unit, section: str, key: str) -> str:
    v = values(unit, section, key)
    assert len(v) == 1, f"[{section}] {key}= should be set once, got {v}"
    return v[0]


def size_bytes(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMGT]?)", text)
    assert m, f"not a size: {text!r}"
    return int(m[1]) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m[2]]


def cpu_set(text: str) -> set[int]:
    cpus: set[int] = set()
    for part in text.replace(",", " ").split():
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def yes(text: str) -> bool:
    return text.lower() in ("1", "yes", "true", "on")


UNITS = {"service": SERVICE, "template": TEMPLATE}


@pytest.fixture(params=sorted(UNITS))
def unit(request):
    return request.param, parse_unit(UNITS[request.param])


def test_units_declare_what_the_deployment_needs(unit):
    kind, u = unit
    inst = "%i" if kind == "template" else "zksidecar"
    s = "Service"
    assert one(u, s, "Type") == "notify"
    assert one(u, s, "NotifyAccess") == "main"
    assert one(u, s, "ExecStart") == f"/usr/bin/env zksidecar daemon --config /etc/zksidecar/{inst}.toml"
    assert one(u, s, "Restart") == "on-failure"
    watchdog = int(one(u, s, "WatchdogSec"))
    assert 2 <= watchdog <= 120
    assert cpu_set(one(u, s, "CPUAffinity"))
    high, top = size_bytes(one(u, s, "MemoryHigh")), size_bytes(one(u, s, "MemoryMax"))
    assert 0 < high < top
    assert (one(u, s, "User"), one(u, s, "Group")) == ("zksidecar", "zksidecar")
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert yes(one(u, s, key)), key
    assert one(u, s, "ProtectSystem") == "strict"
    assert set(" ".join(values(u, s, "RestrictAddressFamilies")).split()) == {
        "AF_UNIX", "AF_INET", "AF_INET6"}
    assert values(u, s, "SystemCallFilter") == ["@system-service"]
    sub = "zksidecar/%i" if kind == "template" else "zksidecar"
    assert one(u, s, "StateDirectory") == sub
    assert one(u, s, "RuntimeDirectory") == sub
    assert one(u, s, "ReadWritePaths") == f"/var/lib/{sub}"
    assert one(u, "Install", "WantedBy") == "multi-user.target"


def test_units_keep_the_hosts_dev_shm_and_the_rings(unit):
    """The rings live in the host's /dev/shm, shared with the engine, and
    must outlive a restart of the daemon."""
    _, u = unit
    s = "Service"
    for key in ("DynamicUser", "RemoveIPC", "PrivateUsers"):
        assert not any(yes(v) for v in values(u, s, key)), f"{key}= would break the rings"
    for key in ("TemporaryFileSystem", "InaccessiblePaths", "ReadOnlyPaths", "BindReadOnlyPaths"):
        for v in values(u, s, key):
            for path in v.split():
                path = path.lstrip("-+").split(":")[0]
                assert not PurePosixPath("/dev/shm").is_relative_to(path), \
                    f"{key}={v} hides or freezes /dev/shm"
    assert one(u, s, "ProtectSystem") == "strict"   # leaves /dev (and so /dev/shm) writable
    # PrivateDevices=yes bind-mounts the host's /dev/shm into the private /dev.
    assert values(u, s, "PrivateDevices") in ([], ["yes"])


def test_units_engine_group_matches_sysusers():
    lines = [ln.split() for ln in SYSUSERS.read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    groups = {f[1] for f in lines if f[0] == "g"}
    users = {f[1] for f in lines if f[0] == "u"}
    members = {(f[1], f[2]) for f in lines if f[0] == "m"}
    assert "zksidecar" in users
    for path in UNITS.values():
        for group in values(parse_unit(path), "Service", "SupplementaryGroups"):
            assert group in groups and ("zksidecar", group) in members, group


# Keys whose template value is the service's with the instance in it.
PER_INSTANCE = {"Description", "ExecStart", "WorkingDirectory", "SyslogIdentifier",
                "StateDirectory", "RuntimeDirectory", "ReadWritePaths"}


DASK_UNITS = {"dask scheduler": SYSTEMD / "zksidecar-dask-scheduler.service",
              "dask worker": SYSTEMD / "zksidecar-dask-worker.service"}


@pytest.mark.parametrize("command", sorted(DASK_UNITS))
def test_dask_units_run_the_cluster_sandboxed(command):
    """The proving cluster's units (workers.backend = "dask"): Dask's own
    commands as the zksidecar user, workers single-threaded, the daemon's
    sandbox less the rings, and every variable they read documented."""
    u, s = parse_unit(DASK_UNITS[command]), "Service"
    start = one(u, s, "ExecStart")
    assert start.startswith(f"/usr/bin/env {command} ")
    if command == "dask worker":
        assert "--nthreads 1" in start and "--nworkers ${DASK_NWORKERS}" in start
        assert one(u, s, "OOMPolicy") == "continue"
    assert one(u, s, "EnvironmentFile") == "/etc/zksidecar/dask.env"
    for var in re.findall(r"\$\{(\w+)\}", start):
        assert f"{var}=" in DEPLOY.read_text() + DASK_UNITS[command].read_text(), var
    assert (one(u, s, "User"), one(u, s, "Group")) == ("zksidecar", "zksidecar")
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"):
        assert yes(one(u, s, key)), key
    assert one(u, s, "ProtectSystem") == "strict"
    assert values(u, s, "SystemCallFilter") == ["@system-service"]
    assert one(u, s, "ReadWritePaths") == "/var/lib/" + one(u, s, "StateDirectory")
    assert DASK_UNITS[command].name in DEPLOY.read_text()


def test_template_is_the_service_per_instance():
    service, template = parse_unit(SERVICE), parse_unit(TEMPLATE)
    assert service.keys() == template.keys()
    for section in service:
        a = [(k, v) for k, v in service[section] if k not in PER_INSTANCE]
        b = [(k, v) for k, v in template[section] if k not in PER_INSTANCE]
        assert a == b, f"[{section}] differs beyond the per-instance keys"
        for key in PER_INSTANCE:
            for v in values(template, section, key):
                assert "%i" in v, f"template {key}={v} does not depend on the instance"
        assert ({k for k, _ in service[section]} & PER_INSTANCE
                == {k for k, _ in template[section]} & PER_INSTANCE)


def test_example_config_has_every_key_with_a_comment():
    config = tomllib.loads(EXAMPLE.read_text())
    assert {t: set(keys) for t, keys in config.items()} == CONFIG_KEYS
    lines = EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_]+\s*=", line):
            assert i and lines[i - 1].startswith("#"), f"key without a comment: {line}"


def test_example_config_fits_the_service_unit():
    """The example is the service's config: its paths are ones the sandbox
    lets it write, its cores are inside CPUAffinity=."""
    u = parse_unit(SERVICE)
    config = tomllib.loads(EXAMPLE.read_text())
    state = "/var/lib/" + one(u, "Service", "StateDirectory") + "/"
    run = "/run/" + one(u, "Service", "RuntimeDirectory") + "/"
    assert config["journal"]["dir"].startswith(state)
    assert config["store"]["dir"].startswith(state)
    assert config["admin"]["socket"].startswith(run)
    allowed = cpu_set(one(u, "Service", "CPUAffinity"))
    assert config["ingest"]["core"] == -1 or config["ingest"]["core"] in allowed
    assert set(config["workers"]["cores"]) <= allowed


def test_deploy_doc_lists_every_config_key():
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", DEPLOY.read_text(), re.M))
    assert documented == {f"{t}.{k}" for t, keys in CONFIG_KEYS.items() for k in keys}


# -- systemd's own tools ----------------------------------------------------

def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package `systemd`)")
    return path


def _run(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_systemd_analyze_verify(tmp_path):
    """`systemd-analyze verify` reports unknown keys and unparsable values on
    stderr while still exiting 0, so any line naming our units fails too.
    The template is verified as an instance (a template alone is not loaded)."""
    tool = _tool("systemd-analyze")
    shutil.copy(SERVICE, tmp_path / SERVICE.name)
    shutil.copy(TEMPLATE, tmp_path / "zksidecar@eqA.service")
    for unit in DASK_UNITS.values():
        shutil.copy(unit, tmp_path / unit.name)
    for name in (SERVICE.name, "zksidecar@eqA.service", *(u.name for u in DASK_UNITS.values())):
        r = _run(tool, "verify", "--man=no", str(tmp_path / name), cwd=tmp_path)
        ours = [ln for ln in (r.stdout + r.stderr).splitlines() if "zksidecar" in ln]
        assert r.returncode == 0 and not ours, f"{name}:\n{r.stdout}{r.stderr}"


def test_systemd_analyze_security_exposure_stays_low():
    """systemd's own score of the sandbox (0 = locked down, 10 = none).  The
    units score 1.6; 2.5 leaves room for systemd versions that weigh
    settings differently, and still fails if a block of hardening is lost."""
    tool = _tool("systemd-analyze")
    for path in (SERVICE,):
        r = _run(tool, "security", "--offline=yes", "--no-pager", str(path))
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
        assert m, r.stdout + r.stderr
        assert float(m[1]) <= 2.5, r.stdout


def test_sysusers_and_tmpfiles_create_the_directories(tmp_path):
    """Into a scratch root: the users exist, then the directories get them."""
    sysusers, tmpfiles = _tool("systemd-sysusers"), _tool("systemd-tmpfiles")
    if os.geteuid() != 0:
        pytest.skip("systemd-tmpfiles needs root to chown into the scratch root")
    (tmp_path / "etc").mkdir()
    r = _run(sysusers, f"--root={tmp_path}", str(SYSUSERS))
    assert r.returncode == 0 and "ignoring" not in r.stderr, r.stderr
    passwd = {ln.split(":")[0]: ln.split(":") for ln in (tmp_path / "etc/passwd").read_text().splitlines()}
    groups = {ln.split(":")[0]: ln.split(":") for ln in (tmp_path / "etc/group").read_text().splitlines()}
    assert "zksidecar" in groups["zktrading"][3].split(",")
    uid, gid = int(passwd["zksidecar"][2]), int(passwd["zksidecar"][3])
    r = _run(tmpfiles, f"--root={tmp_path}", "--create", str(TMPFILES))
    assert r.returncode == 0 and not r.stderr, r.stderr
    for d in ("var/lib/zksidecar", "run/zksidecar"):
        st = (tmp_path / d).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (uid, gid, 0o750), d


def unit_host(root: Path, cores: int = 2):
    """The machine the service unit describes, as daemon/config.py's rules
    see it: a box of `cores` cores (this project's have 2) seen through the
    unit's CPUAffinity=, the sysusers snippet's users and groups with the
    daemon running as zksidecar (Group= and SupplementaryGroups=), MemoryMax=
    as its memory, an empty /dev/shm of 1 GiB, and under `root` the
    directories tmpfiles makes."""
    from types import SimpleNamespace

    from zksidecar.daemon.config import Host

    u = parse_unit(SERVICE)
    lines = [ln.split() for ln in SYSUSERS.read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    names = sorted({f[1] for f in lines if f[0] in ("u", "g")})
    gids = {name: 900 + i for i, name in enumerate(names)}
    daemon_groups = [one(u, "Service", "Group")] + values(u, "Service", "SupplementaryGroups")

    def getgrnam(name):
        if name not in gids:
            raise KeyError(name)
        return SimpleNamespace(gr_name=name, gr_gid=gids[name])

    for line in TMPFILES.read_text().splitlines():
        f = line.split()
        if f and f[0] == "d":
            (root / f[1].lstrip("/")).mkdir(parents=True, mode=int(f[2], 8))
    (root / "dev/shm").mkdir(parents=True)
    return Host(cpus=lambda: cpu_set(one(u, "Service", "CPUAffinity")) & set(range(cores)),
                statvfs=lambda path: SimpleNamespace(f_bavail=1 << 18, f_frsize=4096),
                memory=lambda: (size_bytes(one(u, "Service", "MemoryMax")), "MemoryMax="),
                getgrnam=getgrnam, groups=lambda: {gids[g] for g in daemon_groups},
                euid=lambda: 990, unprivileged_port_start=lambda: 1024,
                shm_dir=str(root / "dev/shm"), root=str(root))


def test_example_config_is_a_valid_configuration(tmp_path):
    """By the file's own rules anywhere, and by every rule on the box the
    service unit describes (its cores, users, groups, memory, directories)."""
    from zksidecar.daemon.config import load

    cfg = load(str(EXAMPLE), machine=False)
    assert cfg.ring.group == "zktrading" and cfg.ingest.core >= 0
    assert load(str(EXAMPLE), host=unit_host(tmp_path)) == cfg
