"""The one owner of a rule every part's ``__init__`` applies: load only inside the package.

The repository's top-level folders are the parts of one package (``pyproject.toml``,
``package-dir``). From the repository root, ``import engines`` would find the folder and
load a second copy of every module in it, with classes and state of its own, beside
``neurorvq_stream.engines``; so each ``__init__`` first calls :func:`refuse_folder_name`,
which fails that import and names the one to use.

The parts import this module absolutely (a relative import would resolve inside the stray
copy), so it must import nothing: a part reaches it under either name. Without
``neurorvq_stream`` installed that import fails itself, which refuses the folder as well.
"""

ROOT = __name__.partition(".")[0]
#: The folder that is the root package; every other folder is the part of its own name.
ROOT_FOLDER = "app"


def refuse_folder_name(name: str) -> None:
    """Raise ImportError unless ``name`` (a part's ``__name__``) lies inside the package."""
    if name == ROOT or name.startswith(f"{ROOT}."):
        return
    package = ROOT if name == ROOT_FOLDER else f"{ROOT}.{name}"
    raise ImportError(f"Import {package}, not the folder {name!r}: the folders are parts "
                      "of one package (pip install -e . installs it).")
