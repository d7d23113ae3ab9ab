"""The project's stand-alone scripts (deploy-docker.py, monitor-docker.py, deploy/swap-model) as modules."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_script(file_name: str, module_name: str) -> ModuleType:
    """The script at file_name (from the repository's root; with or without .py) as the module module_name."""
    loader = importlib.machinery.SourceFileLoader(module_name, str(ROOT / file_name))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(module_name, loader))
    sys.modules[module_name] = module  # dataclasses look their module up while the class is made
    loader.exec_module(module)
    return module
