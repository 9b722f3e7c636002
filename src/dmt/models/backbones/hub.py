"""``weights: hub``: a model's pretrained file from where it is published, through the standard caches.

``model.weights`` (and ``mutual.weights_b``) name a file, or the word ``hub``: the model knows its
own source, a :class:`HubSource`:

* :class:`HFHubFile`: a file of a Hugging Face hub repository (timm's ``model.safetensors`` of every
  timm model, the DINOv2 / DINOv3 encoders), found in huggingface_hub's standard cache
  (``HF_HUB_CACHE``, by default ``$HF_HOME/hub``) by ``try_to_load_from_cache`` and fetched into it
  by ``hf_hub_download`` when absent, so the second run reads the cache;
* :class:`URLFile`: a file at a URL kept in torch.hub's cache (``$TORCH_HOME/hub/checkpoints``:
  torchvision's ImageNet ResNet-101), fetched by ``torch.hub.download_url_to_file`` with the hash
  prefix of its name checked, as torchvision itself does.

:func:`resolve_hub` looks in the cache first and downloads only when online: ``HF_HUB_OFFLINE=1``
(huggingface_hub's switch, honoured here for torch.hub's files too) means no network at all, and
a file not cached is one line naming it, its URL and the config key to set instead. A run that does
not require its weights (``--smoke``) never downloads: a file not cached is a warning, and the
caller starts from random weights. This module only finds files: reading them is always
:func:`~dmt.models.backbones.weights.read_state_dict` (safetensors, or ``torch.load`` with
``weights_only=True``), never the hub libraries' own loaders.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from dmt.errors import UserError

#: the value of ``model.weights`` / ``mutual.weights_b`` that asks for the model's own hub file
HUB = "hub"
#: timm's file name on the hub (timm's loader also knows ``pytorch_model.bin``; its repositories carry both)
HF_WEIGHTS_FILE = "model.safetensors"


class HubSource(Protocol):
    """Where a pretrained file is published, and how it is cached."""

    def describe(self) -> str:
        """The file and its home, e.g. ``model.safetensors of timm/resnet18.a1_in1k (Hugging Face hub)``."""

    def url(self) -> str:
        """Where a browser downloads it."""

    def cached(self) -> Path | None:
        """The cached copy, or ``None``; never touches the network."""

    def cache_name(self) -> str:
        """The cache the file goes into (for messages)."""

    def download(self) -> Path:
        """Fetch the file into its cache and return its path; raises :class:`UserError` in one line."""


class WeightsFileMissing(UserWarning):
    """Warned when a run that does not require its weights (``--smoke``) has no weights file: not
    given, not found, or (:class:`HubFileMissing`) not in the hub's cache.

    ``problem`` is the sentence without the "continuing with random initialisation" tail: where the
    file comes from and the option to set, for the pre-flight's one line per missing file. Its own
    category lets a caller turn it into an exception (``warnings.simplefilter("error",
    WeightsFileMissing)``) that stops a factory before it builds the network, at no cost.
    """

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}; continuing with random initialisation (strict_weights=False)")
        self.problem = problem


class HubFileMissing(WeightsFileMissing):
    """:class:`WeightsFileMissing` for ``weights: hub``: the file is not cached, or none is published."""


def hub_offline() -> bool:
    """Whether downloads are off: huggingface_hub's ``HF_HUB_OFFLINE`` (also read now, not only at its import)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or env.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@dataclass(frozen=True)
class HFHubFile:
    """A file of a Hugging Face hub model repository (``timm/<arch>.<tag>``: ``model.safetensors``)."""

    repo_id: str
    filename: str = HF_WEIGHTS_FILE

    def describe(self) -> str:
        return f"{self.filename} of {self.repo_id} (Hugging Face hub)"

    def url(self) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(self.repo_id, self.filename)

    def cache_name(self) -> str:
        from huggingface_hub import constants

        return f"the Hugging Face cache {constants.HF_HUB_CACHE}"

    def cached(self) -> Path | None:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(self.repo_id, self.filename)
        return Path(found) if isinstance(found, str) and Path(found).is_file() else None

    def download(self) -> Path:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                            RepositoryNotFoundError)

        try:
            return Path(hf_hub_download(self.repo_id, self.filename))
        except GatedRepoError:
            reason = (f"the repository is gated: accept its licence at https://huggingface.co/{self.repo_id} "
                      "and log in (`hf auth login`)")
        except RepositoryNotFoundError:
            reason = "the hub has no such repository"
        except LocalEntryNotFoundError:  # before EntryNotFoundError, its base: no answer from the hub, not "no file"
            reason = "the hub cannot be reached (no network, or a proxy in the way) and the file is not cached"
        except EntryNotFoundError:  # before OSError: the remote variant is both
            reason = f"the repository has no {self.filename}"
        except (HfHubHTTPError, OSError, ValueError) as e:  # no network, a proxy, a full disk ...
            reason = f"the download failed ({type(e).__name__}: {_first_line(e)})"
        raise UserError(f"{HUB}: cannot fetch {self.describe()}: {reason}; or download {self.url()} yourself "
                        "and pass weights_path=FILE")


@dataclass(frozen=True)
class URLFile:
    """A file at a URL that torch.hub caches under its own name (torchvision's ``resnet101-63fe2227.pth``)."""

    link: str

    def describe(self) -> str:
        return f"{self.cache_path().name} (torch.hub's cache)"

    def url(self) -> str:
        return self.link

    def cache_path(self) -> Path:
        import torch

        return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(self.link).path).name

    def cache_name(self) -> str:
        return f"torch.hub's cache {self.cache_path().parent}"

    def cached(self) -> Path | None:
        path = self.cache_path()
        return path if path.is_file() else None

    def download(self) -> Path:
        import torch

        path = self.cache_path()
        found = torch.hub.HASH_REGEX.search(path.name)  # torchvision names its files <name>-<sha256 prefix>.pth
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # writes a temporary file beside the target and moves it into place once the hash matches
            torch.hub.download_url_to_file(self.link, str(path), found.group(1) if found else None, progress=True)
        except (OSError, RuntimeError, ValueError) as e:  # URLError is an OSError; a bad hash a RuntimeError
            raise UserError(f"{HUB}: cannot fetch {self.describe()} from {self.link} "
                            f"({type(e).__name__}: {_first_line(e)}); download it to {path} "
                            "or pass weights_path=FILE") from None
        return path


def resolve_hub(source: HubSource, what: str, strict: bool) -> Path | None:
    """The cached (or, online and ``strict``, freshly downloaded) file of ``source``.

    Args:
        source: where the file is published.
        what: what the file holds, for messages (``"dinov2 weights"``).
        strict: the run needs the file (a missing one is an error); ``False`` (``--smoke``): never
            download, warn and return ``None`` when the file is not cached.

    Raises:
        UserError: offline (``HF_HUB_OFFLINE``) with nothing cached, or the download failed: one
            line naming the file, its URL, and ``weights_path=FILE`` (the config key, once
            :func:`~dmt.tasks.plan.name_config_key` has translated it).
    """
    path = source.cached()
    if path is not None:
        return path
    absent = (f"model option weights_path: {HUB}: {what}, {source.describe()}, is not in {source.cache_name()}")
    if not strict:
        # stacklevel 5: resolve_hub <- find_weights <- the builder <- the factory <- who asked for the model
        warnings.warn(HubFileMissing(f"{absent}; a real run downloads it from {source.url()} (online), or download "
                                     "it yourself and pass weights_path=FILE"), stacklevel=5)
        return None
    if hub_offline():
        raise UserError(f"{absent} and HF_HUB_OFFLINE is set: download {source.url()} and pass "
                        "weights_path=FILE, or connect once without HF_HUB_OFFLINE (the file is cached then)")
    try:
        return source.download()
    except UserError as e:
        raise UserError(f"model option weights_path: {e}") from None
