"""Ranking with members built by hand: an image the members disagree on ranks above one they agree on,
the rows of member B meet member A's whatever the windows, and one member ranks too."""

import csv

import numpy as np
import pytest
import torch

from dmt.data.segmentation import SegItem
from dmt.data.voc import voc_colormap
from dmt.predict.meta import PredictMeta
from dmt.suggest.members import MeanScorer, Members
from dmt.suggest.rank import score_tallies, tally_images
from dmt.suggest.suggest import SuggestOptions, suggest

CLASSES = ("background", "thing", "other", "rare")


class ChannelScorer:
    """Class 1 where one colour channel is bright, else class 0; logits 10 apart (confident)."""

    probabilities = False
    device = torch.device("cpu")

    def __init__(self, channel: int) -> None:
        self.channel = channel

    def place(self, images):
        return images

    def __call__(self, images):
        on = (images[:, self.channel] > 127).float()
        logits = torch.zeros(images.shape[0], len(CLASSES), *images.shape[-2:])
        logits[:, 1], logits[:, 0] = 10 * on, 10 * (1 - on)
        return logits


def members(count: int = 2, max_side: int = 0, scale: float = 1.0) -> Members:
    meta = PredictMeta(CLASSES, voc_colormap(len(CLASSES)), scale=scale, max_side=max_side)
    return Members([], [ChannelScorer(0), ChannelScorer(2)][:count], meta, 3)


def scenes(h: int = 20, w: int = 30) -> list[SegItem]:
    agree = np.zeros((h, w, 3), np.uint8)
    agree[:, : w // 2, 0] = agree[:, : w // 2, 2] = 255  # red and blue bright on the left: both say "thing"
    disagree = np.zeros((h, w, 3), np.uint8)
    disagree[:, : w // 2, 0] = 255  # red on the left, blue on the right: A and B differ everywhere
    disagree[:, w // 2 :, 2] = 255
    twin = disagree.copy()
    twin[0, 0, 1] = 40  # a near-duplicate of it
    return [SegItem("agree", agree), SegItem("disagree", disagree), SegItem("twin", twin)]


def test_an_image_the_members_disagree_on_ranks_above_one_they_agree_on():
    items = scenes()
    tallies, thumbs, skipped = tally_images(members(), items, threshold=0.75)
    ranked = {r.name: r for r in score_tallies(items, tallies, {"disagreement": 1, "low_confidence": 1, "rarity": 1})}
    assert not skipped and set(thumbs) == {0, 1, 2}
    assert ranked["agree"].terms["disagreement"] == 0.0
    assert ranked["disagree"].terms["disagreement"] == pytest.approx(1.0)  # every pixel, both confident
    assert ranked["agree"].terms["low_confidence"] == ranked["disagree"].terms["low_confidence"] == 0.0
    # both predict half "thing", half background: the same rarity
    assert ranked["agree"].terms["rarity"] == pytest.approx(ranked["disagree"].terms["rarity"])
    assert ranked["disagree"].score == pytest.approx(ranked["agree"].score + 1.0)


def test_suggest_writes_the_ranking_and_skips_the_near_duplicate(tmp_path):
    opts = SuggestOptions(out=tmp_path, count=2, drafts=["cvat"])  # the one format that needs no extra
    done = suggest(members(), scenes(), opts)
    rows = list(csv.DictReader((tmp_path / "suggestions.csv").open()))
    assert [r["image"] for r in rows] == ["disagree", "agree"]  # "twin" scores as high, but resembles "disagree"
    assert list(rows[0]) == ["rank", "image", "score", "disagreement", "low_confidence", "rarity", "similar_to"]
    assert float(rows[0]["disagreement"]) == pytest.approx(1.0) and rows[0]["similar_to"] == ""
    assert (tmp_path / "contact_sheet.png").stat().st_size > 0 and (tmp_path / "drafts" / "cvat" / "labelmap.txt").is_file()
    assert len(done.chosen) == 2
    three = suggest(members(), scenes(), SuggestOptions(out=tmp_path / "three", count=3))
    assert [(r.name, near) for r, near in three.chosen][2] == ("twin", "disagree")


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_member_b_rows_meet_member_a_rows_in_windows(scale):
    items = scenes(h=44, w=60)
    whole, _, _ = tally_images(members(scale=scale), items, 0.75)
    windows, _, _ = tally_images(members(max_side=16, scale=scale), items, 0.75, batch_size=2)
    for i in whole:
        assert windows[i].pixels == whole[i].pixels == 44 * 60
        assert windows[i].counts.tolist() == whole[i].counts.tolist()
        assert windows[i].disagreement == pytest.approx(whole[i].disagreement)


def test_one_member_ranks_by_confidence_and_rarity(tmp_path):
    done = suggest(members(count=1), scenes(), SuggestOptions(out=tmp_path, count=1))
    assert done.chosen[0][0].terms["disagreement"] is None
    row = next(csv.DictReader((tmp_path / "suggestions.csv").open()))
    assert row["disagreement"] == "" and row["low_confidence"] == "0.000000"


def test_the_mean_scorer_averages_probabilities():
    images = scenes()[1].image[None].transpose(0, 3, 1, 2)
    p = MeanScorer([ChannelScorer(0), ChannelScorer(2)])(torch.from_numpy(np.ascontiguousarray(images)))
    assert p.sum(dim=1) == pytest.approx(torch.ones(1, 20, 30))
    assert p[0, 1, 0, 0].item() == pytest.approx(0.5, abs=1e-3)  # one member says 1, the other 0


def test_an_unreadable_image_is_skipped_and_named(tmp_path):
    items = [*scenes(), SegItem("gone", tmp_path / "gone.png")]
    tallies, _, skipped = tally_images(members(), items, 0.75)
    assert sorted(tallies) == [0, 1, 2]
    assert [name for name, _ in skipped] == ["gone"] and "gone.png" in skipped[0][1]
