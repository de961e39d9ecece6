"""Builds the gpu-layers companion's wheel (PEP 427), with nothing but the standard library.

Two ways in, one code path:
  python3 python/companion_wheel.py OUTDIR        # what the npm build runs (prints the wheel's path)
  python3 -m pip wheel --no-deps --no-build-isolation --no-index -w OUTDIR python/
                                                  # pip, through this file as the PEP 517 backend

The wheel is pure Python (py3-none-any): gpu_layers_companion.py, gpu_layers_companion_hook.py and
gpu_layers_companion.pth at the root of site-packages, and the .dist-info (METADATA, WHEEL,
top_level.txt, RECORD with each file's sha256). The version is the npm package's (package.json
beside python/), as PEP 440 writes it. Reproducible: entries in a fixed order, each with the same
timestamp (SOURCE_DATE_EPOCH when set, else 1980-01-01, the earliest a zip can hold) and mode 0644,
so two builds of the same sources are the same bytes.
"""
import base64
import hashlib
import json
import os
import re
import sys
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "gpu_layers_companion")
PYPROJECT = os.path.join(HERE, "pyproject.toml")
PACKAGE_JSON = os.path.join(os.path.dirname(HERE), "package.json")
TAG = "py3-none-any"
GENERATOR = "gpu-layers companion_wheel.py"


def _pyproject():
    """[project] and [tool.gpu-layers-companion] of pyproject.toml."""
    with open(PYPROJECT, "rb") as f:
        raw = f.read()
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        tomllib = None
    if tomllib is not None:
        document = tomllib.loads(raw.decode("utf-8"))
        return document["project"], document["tool"]["gpu-layers-companion"]
    # Older Pythons: the subset this file uses (one-line strings and string arrays, inline tables).
    sections, current = {}, None
    for line in raw.decode("utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        header = re.match(r"^\[([^\]]+)\]$", line)
        if header:
            current = sections.setdefault(header.group(1), {})
            continue
        pair = re.match(r'^([A-Za-z0-9_-]+)\s*=\s*(.+)$', line)
        if pair and current is not None:
            value = pair.group(2)
            if value.startswith('"'):
                current[pair.group(1)] = json.loads(value)
            elif value.startswith("["):
                current[pair.group(1)] = re.findall(r'"([^"]*)"', value)
            elif value.startswith("{"):
                current[pair.group(1)] = dict(re.findall(r'([A-Za-z0-9_-]+)\s*=\s*"([^"]*)"', value))
    return sections["project"], sections["tool.gpu-layers-companion"]


def pep440_version(npm_version):
    """npm's semver as PEP 440: 1.2.3 stays, 1.2.3-beta.4 becomes 1.2.3b4 (alpha a, rc rc)."""
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)(?:-(alpha|beta|rc)\.?(\d+))?$", npm_version)
    if match is None:
        raise ValueError("package.json version %r has no PEP 440 form this build knows" % npm_version)
    version = "%s.%s.%s" % match.group(1, 2, 3)
    if match.group(4):
        version += {"alpha": "a", "beta": "b", "rc": "rc"}[match.group(4)] + match.group(5)
    return version


def version():
    with open(PACKAGE_JSON, "rb") as f:
        return pep440_version(json.loads(f.read().decode("utf-8"))["version"])


def _distribution(name):
    """The name as wheel file names and .dist-info folders write it (PEP 427, PEP 503)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def wheel_name():
    project, _ = _pyproject()
    return "%s-%s-%s.whl" % (_distribution(project["name"]), version(), TAG)


def _metadata(project, ver):
    lines = [
        "Metadata-Version: 2.1",
        "Name: %s" % project["name"],
        "Version: %s" % ver,
        "Summary: %s" % project["description"],
    ]
    for label, url in sorted((project.get("urls") or {}).items()):
        lines.append("Project-URL: %s, %s" % (label, url))
    license_text = (project.get("license") or {}).get("text")
    if license_text:
        lines.append("License: %s" % license_text)
    for classifier in project.get("classifiers") or ():
        lines.append("Classifier: %s" % classifier)
    lines.append("Requires-Python: %s" % project["requires-python"])
    # No Requires-Dist: the companion needs only the standard library (and the workload's torch).
    return ("\n".join(lines) + "\n").encode("utf-8")


def _record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _date_time():
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        # A zip holds local times from 1980 on, in 2-second steps.
        return max(time.gmtime(int(epoch))[:6], (1980, 1, 1, 0, 0, 0))
    return (1980, 1, 1, 0, 0, 0)


def wheel_entries():
    """[(archive name, bytes)] in the wheel's order: the files, then the .dist-info, RECORD last."""
    project, tool = _pyproject()
    ver = version()
    files = []
    for name in list(tool["modules"]) + [tool["pth"]]:
        with open(os.path.join(SOURCE, name), "rb") as f:
            files.append((name, f.read()))
    dist_info = "%s-%s.dist-info" % (_distribution(project["name"]), ver)
    files.append((dist_info + "/METADATA", _metadata(project, ver)))
    files.append((dist_info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: %s\nRoot-Is-Purelib: true\nTag: %s\n"
                                         % (GENERATOR, TAG)).encode("ascii")))
    top_level = sorted(name[:-3] for name in tool["modules"] if name.endswith(".py"))
    files.append((dist_info + "/top_level.txt", ("\n".join(top_level) + "\n").encode("ascii")))
    record = "".join("%s,%s,%d\n" % (name, _record_hash(data), len(data)) for name, data in files)
    record += "%s/RECORD,,\n" % dist_info
    files.append((dist_info + "/RECORD", record.encode("utf-8")))
    return files


def build(out_dir):
    """Writes the wheel into out_dir (made if missing); returns its path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, wheel_name())
    temporary = path + ".tmp"
    date_time = _date_time()
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in wheel_entries():
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.create_system = 3  # Unix, so the mode above is read
            archive.writestr(info, data)
    os.replace(temporary, path)
    return path


# PEP 517 backend (pip wheel / pip install of python/).
def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return os.path.basename(build(wheel_directory))


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.stderr.write("usage: python3 %s OUTDIR   (writes the companion's wheel there, prints its path)\n"
                         % sys.argv[0])
        sys.exit(2)
    print(build(sys.argv[1]))
