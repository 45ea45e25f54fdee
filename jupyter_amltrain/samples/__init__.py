"""Sample training folders shipped with the package (used by ``amltrain demo`` and the example notebooks)."""

from pathlib import Path

TRAIN_ON_LOCAL = Path(__file__).parent / "train_on_local"
