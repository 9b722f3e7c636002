"""``weights: hub``: the cache is read offline, an absent file is one line, online it is fetched once.

Every test runs against a fabricated cache (``hub_fixtures``) with ``HF_HUB_OFFLINE=1`` and sockets
blocked; the "online" tests replace the two download functions (huggingface_hub's and torch.hub's)
with fakes that write the file where the real ones would, so the second call must find the cache.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import torch

from dmt.errors import UserError
from dmt.models import create_model
from dmt.models.backbones.hub import HFHubFile, HubFileMissing, URLFile, resolve_hub
from dmt.models.backbones.resnet import IMAGENET_WEIGHTS, imagenet_cache_path
from dmt.models.backbones.weights import find_weights

sys.path.insert(0, str(Path(__file__).parent))
from hub_fixtures import cache_file  # noqa: E402

REPO = "timm/vit_small_patch14_dinov2.lvd142m"  # the hub source of the DINOv2 ViT-S/14 encoders


def test_a_cached_file_is_found_offline_and_an_absent_one_is_one_line(hub_cache):
    source = HFHubFile(REPO)
    with pytest.raises(UserError) as e:
        resolve_hub(source, "dinov2 weights", strict=True)
    msg = str(e.value)
    assert "\n" not in msg and "HF_HUB_OFFLINE" in msg and str(hub_cache) in msg
    assert f"https://huggingface.co/{REPO}/resolve/main/model.safetensors" in msg and "weights_path=FILE" in msg
    path = cache_file(hub_cache, REPO, {"w": torch.ones(2)})
    assert resolve_hub(source, "dinov2 weights", strict=True) == path


def test_not_strict_warns_in_its_own_category_and_never_downloads(hub_cache, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("downloaded"))
    monkeypatch.setattr("dmt.models.backbones.hub.hub_offline", lambda: False)  # even online
    with pytest.warns(HubFileMissing, match="random initialisation"):
        assert resolve_hub(HFHubFile(REPO), "dinov2 weights", strict=False) is None


def test_online_the_file_is_downloaded_once_then_read_from_the_cache(hub_cache, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_download(repo_id, filename):  # writes where hf_hub_download writes
        calls.append((repo_id, filename))
        return str(cache_file(hub_cache, repo_id, {"w": torch.ones(2)}, filename))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr("dmt.models.backbones.hub.hub_offline", lambda: False)
    first = resolve_hub(HFHubFile(REPO), "dinov2 weights", strict=True)
    second = resolve_hub(HFHubFile(REPO), "dinov2 weights", strict=True)
    assert first == second and first.is_file() and calls == [(REPO, "model.safetensors")]


def test_a_failed_or_gated_download_is_one_line(hub_cache, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError

    def gated(repo_id, filename):
        err = GatedRepoError.__new__(GatedRepoError)  # as raised for a 401 on a gated repository
        Exception.__init__(err, "401 Client Error\nmore lines")
        raise err

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gated)
    monkeypatch.setattr("dmt.models.backbones.hub.hub_offline", lambda: False)
    with pytest.raises(UserError) as e:
        resolve_hub(HFHubFile("timm/vit_base_patch16_dinov3.lvd1689m"), "dinov3 weights", strict=True)
    assert "\n" not in str(e.value) and "gated" in str(e.value) and "weights_path=FILE" in str(e.value)


def test_an_unreachable_hub_is_said_so(hub_cache, monkeypatch):
    """huggingface_hub raises LocalEntryNotFoundError (an EntryNotFoundError) when it gets no answer
    and has nothing cached: that is no network, not a repository without the file."""
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def unreachable(repo_id, filename):
        raise LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub and we cannot "
                                      "find the requested files in the local cache.")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    monkeypatch.setattr("dmt.models.backbones.hub.hub_offline", lambda: False)
    with pytest.raises(UserError) as e:
        resolve_hub(HFHubFile(REPO), "dinov2 weights", strict=True)
    msg = str(e.value)
    assert "\n" not in msg and "cannot be reached" in msg and "has no model.safetensors" not in msg
    assert f"https://huggingface.co/{REPO}/resolve/main/model.safetensors" in msg and "weights_path=FILE" in msg


def test_the_dinov2_segmentation_encoder_loads_from_the_hub_cache(hub_cache):
    torch.manual_seed(1)
    source = create_model("dinov2_tiny_dpt", num_classes=3)  # the same timm architecture, tiny
    cache_file(hub_cache, REPO, source.encoder.state_dict())
    torch.manual_seed(2)
    model = create_model("dinov2_tiny_dpt", num_classes=3, init="dinov2", weights_path="hub")
    for k, v in source.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[k], v), k


def test_a_truncated_hub_file_names_the_cached_file(hub_cache):
    data = (Path(__file__).parent / "hub_fixtures.py").read_bytes()[:50]
    path = cache_file(hub_cache, REPO, {}, data=b"\x10\x00\x00\x00\x00\x00\x00\x00{" + data)
    with pytest.raises(UserError) as e:
        create_model("dinov2_tiny_dpt", num_classes=3, init="dinov2", weights_path="hub")
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_imagenet_hub_is_torch_hubs_file_and_coco_has_none(hub_cache, monkeypatch):
    cached = imagenet_cache_path()
    assert cached.name == "resnet101-63fe2227.pth" and str(hub_cache.parent.parent / "torch") in str(cached)
    with pytest.raises(UserError) as e:  # offline, not cached: before building the network
        create_model("deeplabv2_resnet101", num_classes=21, init="imagenet", weights_path="hub")
    assert "\n" not in str(e.value) and IMAGENET_WEIGHTS.url in str(e.value) and "HF_HUB_OFFLINE" in str(e.value)
    with pytest.raises(UserError, match="coco weights have no hub source"):
        create_model("deeplabv2_tiny", num_classes=21, init="coco", weights_path="hub")
    # online: torch.hub's downloader is asked for torchvision's file with its hash prefix, once
    calls = []

    def fake_download(url, dst, hash_prefix, progress=True):
        calls.append((url, Path(dst).name, hash_prefix))
        Path(dst).write_bytes(b"weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    monkeypatch.setattr("dmt.models.backbones.hub.hub_offline", lambda: False)
    how = "pass weights_path=FILE"
    for _ in range(2):
        assert find_weights("imagenet", "hub", cached, how, True, hub=URLFile(IMAGENET_WEIGHTS.url)) == cached
    assert calls == [(IMAGENET_WEIGHTS.url, cached.name, "63fe2227")]


def test_smoke_keeps_the_old_behaviour_for_a_missing_imagenet_file(hub_cache):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert find_weights("imagenet", "hub", None, "x", False, hub=URLFile(IMAGENET_WEIGHTS.url)) is None
    assert [w.category for w in caught] == [HubFileMissing]
