"""Left-right mirrored epochs for lateralized two-class tasks."""

import numpy as np
import pytest

from neurorvq_stream.training import marker_epochs
from neurorvq_stream.training._data import CHECKER_CLASSES
from neurorvq_stream.training._mirror import add_mirrored, mirror_index, mirror_name


@pytest.mark.parametrize(("name", "partner"), [
    ("o1", "o2"), ("po8", "po7"), ("ccp5", "ccp6"), ("p10", "p9"), ("oz", "oz"), ("Fp1", "fp2"),
])
def test_mirror_names_follow_the_10_05_system(name, partner):
    assert mirror_name(name) == partner


def test_every_mapped_sub_s01_channel_has_its_partner_and_mirroring_twice_is_identity(s01):
    index = mirror_index(s01.channels)
    assert sorted(index.tolist()) == list(range(len(s01.channels)))
    np.testing.assert_array_equal(index[index], np.arange(len(s01.channels)))
    midline = [i for i, c in enumerate(s01.channels) if c.endswith("z")]
    assert midline and all(index[i] == i for i in midline)


def test_mirrored_checker_epochs_swap_the_lateralized_response(s01):
    x, y, _ = marker_epochs(s01, CHECKER_CLASSES)
    x2, y2 = add_mirrored(x, y, s01.channels)
    assert len(x2) == 2 * len(x) and (y2[len(y):] == 1 - y).all()
    # The visual response is contralateral: PO8 - PO7 over 100-250 ms has opposite signs for
    # left and right checkerboards; the mirrored left epochs look like the right ones.
    po7, po8 = s01.channels.index("po7"), s01.channels.index("po8")

    def lateral(epochs):
        return (epochs[:, po8, 20:50] - epochs[:, po7, 20:50]).mean()

    left, right = x[y == 0], x[y == 1]
    mirrored_left = x2[len(x):][y == 0]
    assert np.sign(lateral(left)) == -np.sign(lateral(right))
    assert np.sign(lateral(mirrored_left)) == np.sign(lateral(right))


def test_mirroring_refuses_channels_without_partner_and_multiclass_labels():
    with pytest.raises(ValueError, match=r"missing \['o2'\]"):
        mirror_index(["o1", "oz"])
    with pytest.raises(ValueError, match="labels must be 0 and 1"):
        add_mirrored(np.zeros((3, 2, 200)), np.array([0, 1, 2]), ["o1", "o2"])
    with pytest.raises(ValueError, match="no 10-05 name"):
        mirror_name("Status")
