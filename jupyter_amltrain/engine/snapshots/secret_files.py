"""Warn when a snapshot would carry files that usually hold credentials.

v1 uploads whatever is not ignored; a stray ``.env`` or private key then sits in every run's snapshot.
We only warn: the job may really need the file, and the user decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from pathspec import GitIgnoreSpec

from jupyter_amltrain.engine.snapshots.ignore import AMLIGNORE

# Matched against the file's name only, so a virtualenv folder called ``.env`` is not flagged file by file.
_NAME_SPEC = GitIgnoreSpec.from_lines([
    ".env", ".env.*", "!.env.example", "!.env.sample", "!.env.template", "!.env.dist",
    "*.pem", "*.key", "*.pfx", "*.p12",
    "id_rsa", "id_ed25519", "id_ecdsa", "id_dsa",
    "credentials.json", "*-sa.json",
    ".netrc", ".git-credentials", ".npmrc", ".pypirc",
])
# Matched against the path: these names are only secret inside their tool's folder.
_PATH_SPEC = GitIgnoreSpec.from_lines(["**/.aws/credentials", "**/.azure/**"])
# Installed packages ship public CA bundles (certifi's cacert.pem) and test keys; flagging them is noise.
_PACKAGE_TREES = frozenset({"site-packages", "dist-packages", "node_modules"})
_MAX_LISTED = 10


def looks_secret(relpath: str) -> bool:
    parts = PurePosixPath(relpath).parts
    if _PACKAGE_TREES.intersection(parts[:-1]):
        return False
    return _NAME_SPEC.match_file(parts[-1]) or _PATH_SPEC.match_file(relpath)


def secret_warnings(relpaths: Iterable[str], source_dir: Path, ignore_file: Path | None) -> list[str]:
    """One warning per included file that looks like a secret, each with the ignore line that drops it."""
    found = [rel for rel in relpaths if looks_secret(rel)]
    if ignore_file is not None:
        fix = f"add this line to {ignore_file}: {{line}}"
    else:
        fix = f"create {Path(source_dir) / AMLIGNORE} holding this line: {{line}}"
    warnings = [
        f"{rel} looks like a secret and will be copied into the snapshot and every job's working copy. "
        f"If the job does not need it, " + fix.format(line=ignore_line(rel))
        for rel in found[:_MAX_LISTED]
    ]
    if len(found) > _MAX_LISTED:
        warnings.append(f"... and {len(found) - _MAX_LISTED} more files that look like secrets.")
    return warnings


def ignore_line(relpath: str) -> str:
    """A gitignore line matching exactly ``relpath`` (anchored at the root, special characters escaped)."""
    escaped = re.sub(r"([\\*?\[])", r"\\\1", relpath)
    # Trailing blanks are dropped by gitignore unless escaped.
    return "/" + re.sub(r" (?= *$)", r"\\ ", escaped)
