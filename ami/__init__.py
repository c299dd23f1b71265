"""ami: a JEPA world-model agent that plans in latent space, with a Ray actor-learner runtime and Redis replay.

Installed, `ami.agent`, `ami.memory`, ... lie inside this package (pyproject maps the repository's top-level
folders here), so nothing generic lands in site-packages. In a checkout run with only PYTHONPATH set (a GPU box
without registry access), those folders sit beside this one: the package's search path then also holds the
checkout's root, which is all that import needs.
"""

from pathlib import Path

_root = Path(__file__).resolve().parent.parent
if not (Path(__file__).parent / "agent").is_dir() and (_root / "agent" / "__init__.py").is_file():
    __path__.append(str(_root))  # a checkout: ami.agent is <root>/agent
