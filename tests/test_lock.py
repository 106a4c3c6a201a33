"""requirements.lock pins every package with its hashes and agrees with pyproject.toml.

The offline half of the check (CI also recompiles the lock with ``make lock-check``, which
asks the package index): every requirement of pyproject.toml, the test extra's too, is met
by the lock's pin, every pin has at least one sha256 hash (``make setup`` installs with
``--require-hashes``), and the lock pins each package once.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def lock_pins() -> dict[str, tuple[str, list[str]]]:
    """``{package: (version, [sha256 hashes])}`` from requirements.lock."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "requirements.lock").read_text())
    pins: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        found = re.match(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)", line)
        assert found, f"requirements.lock: not a pinned requirement: {line[:80]}"
        name = canonicalize_name(found.group(1))
        assert name not in pins, f"requirements.lock pins {name} twice"
        pins[name] = (found.group(3), re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return pins


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [r for group in project.get("optional-dependencies", {}).values() for r in group]
    return [Requirement(r) for r in project["dependencies"] + extras]


def test_every_requirement_of_pyproject_is_met_by_its_pin():
    pins = lock_pins()
    for req in project_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} (pyproject.toml) is not in requirements.lock: make lock"
        version = pins[name][0]
        assert req.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, which pyproject.toml's {req} refuses: "
            "make lock")


def test_every_pin_has_its_hashes():
    pins = lock_pins()
    assert len(pins) > 100  # every transitive package, not only the direct ones
    unhashed = [name for name, (_, hashes) in pins.items() if not hashes]
    assert not unhashed, f"pins without a sha256 hash: {unhashed}"
    assert "torch" in pins and "ray" in pins and "moto" in pins
