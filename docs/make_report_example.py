"""Make docs/report_example.png: one figure of a report on a recorded sub-s01 session.

Replays ``--seconds`` of the bundled sub-s01 in real time through the pipeline (shipped
tokenizer and checkerboard head, windows locked to the checkerboard markers), records the
EEG, markers and outlets with LabRecorder, writes the full HTML report next to the XDF and
saves its predictions figure as a small PNG.

    python docs/make_report_example.py --seconds 120 --out /tmp/session.xdf
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path

from neurorvq_stream.streamer import use_loopback_config

DOCS = Path(__file__).resolve().parent


def record_session(path: Path, seconds: float, start: float = 20.0) -> None:
    from neurorvq_stream.engines import shipped_model
    from neurorvq_stream.streamer import Pipeline, Player, bundled_recording, load_recording
    from neurorvq_stream.streamer._config import RunConfig
    from neurorvq_stream.streamer._recorder import Recorder, StreamQuery

    name = f"NeuroRVQ-Example-{uuid.uuid4().hex[:6]}"
    replay = load_recording(bundled_recording("s01"), montage="biosemi128", tmin=start,
                            tmax=start + seconds)
    player = Player(replay, name=name, progress=True)
    config = RunConfig.from_dict({
        "stream": {"name": name},
        "markers": {"name": f"{name}-Markers", "labels": ["checker-left", "checker-right"]},
        "windows": {"mode": "markers", "n_patches": 1, "marker_offset": 0.0,
                    "marker_length": 1},
        "mapping": {"montage": "biosemi128"},
        "models": {"tokenizer": str(shipped_model("tokenizer")),
                   "classifier": str(shipped_model("classifier")), "watch_classifier": False},
        "outlets": {"source_id": f"{name}-out"},
    })
    queries = [StreamQuery(source_id=player.source_id),
               StreamQuery(source_id=f"{player.source_id}-markers")]
    queries += [StreamQuery(source_id=f"{name}-out-{kind}")
                for kind in ("predictions", "decisions", "tokens", "reconstruction", "metrics")]
    with Pipeline(config), Recorder(path, queries, overwrite=True):
        player.start()
        player.join()
        time.sleep(3.0)  # the last window: its data, then inference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=Path("session.xdf"))
    args = parser.parse_args()
    use_loopback_config()
    from neurorvq_stream.report import load_session, make_report
    from neurorvq_stream.report._figures import predictions_over_time

    record_session(args.out, args.seconds)
    print(f"Report: {make_report(args.out, args.out.with_suffix('.html'))}")
    fig, caption = predictions_over_time(load_session(args.out))
    fig.set_size_inches(9, 4.6)
    fig.savefig(DOCS / "report_example.png", dpi=90)
    print(f"{DOCS / 'report_example.png'}: {caption}")


if __name__ == "__main__":
    main()
