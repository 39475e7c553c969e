"""Broken electrodes found in the real recording and interpolated from their neighbours."""

import numpy as np

from neurorvq_stream.training._data import bad_channels, repair_bad_channels


def test_sub_s01_broken_f4_is_found_and_interpolated(s01):
    assert bad_channels(s01) == ("f4",)
    clean = repair_bad_channels(s01, ("f4",))
    f4 = s01.channels.index("f4")
    others = [i for i in range(len(s01.channels)) if i != f4]
    np.testing.assert_array_equal(clean.data[:, others], s01.data[:, others])
    std = clean.data[1000:].std(axis=0)
    assert std[f4] < 3 * np.median(std) < s01.data[1000:, f4].std()
    # The interpolated signal follows its neighbours (it was noise before).
    for neighbour in ("f2", "f6", "fc4"):
        j = s01.channels.index(neighbour)
        assert np.corrcoef(clean.data[1000:, f4], clean.data[1000:, j])[0, 1] > 0.7
        assert abs(np.corrcoef(s01.data[1000:, f4], s01.data[1000:, j])[0, 1]) < 0.5
    assert bad_channels(clean) == ()
    assert repair_bad_channels(s01, ()) is s01
