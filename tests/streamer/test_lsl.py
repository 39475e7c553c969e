"""Stream discovery and channel metadata over real loopback outlets."""

import os
import uuid

import pylsl
import pytest
from helpers import EVENTUALLY_S

from neurorvq_stream.streamer._lsl import (
    LOOPBACK_CONFIG,
    ChannelInfo,
    find_streams,
    format_stream_list,
    read_channels,
    use_loopback_config,
    write_channels,
)


def test_loopback_config_never_overrides_user_choice(monkeypatch):
    monkeypatch.setenv("LSLAPICFG", "/somewhere/lab.cfg")
    assert use_loopback_config() == "/somewhere/lab.cfg"
    monkeypatch.delenv("LSLAPICFG")
    assert use_loopback_config() == str(LOOPBACK_CONFIG)
    assert os.environ["LSLAPICFG"] == str(LOOPBACK_CONFIG)
    assert LOOPBACK_CONFIG.is_file()


def test_channel_metadata_round_trip_through_an_inlet():
    name = f"meta-{uuid.uuid4().hex[:8]}"
    channels = [
        ChannelInfo("Fp1", "microvolts", "EEG", (-27.0, 83.5, -3.2)),
        ChannelInfo("Cz", "microvolts", "EEG", (0.0, 0.0, 95.0)),
        ChannelInfo("Trig", "", "STIM", None),
    ]
    info = pylsl.StreamInfo(name, "EEG", 3, 250.0, "float32", name)
    write_channels(info, channels)
    outlet = pylsl.StreamOutlet(info)
    found = find_streams(name=name, timeout=EVENTUALLY_S)
    assert [i.source_id() for i in found] == [name]
    inlet = pylsl.StreamInlet(found[0])
    got = read_channels(inlet.info(timeout=EVENTUALLY_S))
    assert got == channels
    listing = format_stream_list(found)
    assert name in listing and "3 ch @ 250 Hz" in listing
    del outlet


def test_missing_labels_get_default_names_and_wrong_count_is_refused():
    info = pylsl.StreamInfo("x", "EEG", 2, 100.0, "float32", "x")
    assert [c.label for c in read_channels(info)] == ["ch1", "ch2"]
    with pytest.raises(ValueError, match="2 channels but 1"):
        write_channels(info, [ChannelInfo("Cz")])


def test_find_by_source_id_skips_other_streams():
    tag = uuid.uuid4().hex[:8]
    outlets = [
        pylsl.StreamOutlet(
            pylsl.StreamInfo(f"same-{tag}", "EEG", 1, 100.0, "float32", f"{tag}-{k}")
        )
        for k in range(2)
    ]
    # Both outlets answer discovery before find_streams is asked to report them all.
    assert len(pylsl.resolve_bypred(f"name='same-{tag}'", 2, EVENTUALLY_S)) == 2
    assert len(find_streams(name=f"same-{tag}", timeout=EVENTUALLY_S)) == 2
    found = find_streams(source_id=f"{tag}-1", timeout=EVENTUALLY_S)
    assert [i.source_id() for i in found] == [f"{tag}-1"]
    assert find_streams(name=f"absent-{tag}", timeout=0.3) == []
    del outlets
