import io

from pipeline.progress import Progress, StageMonitor, read_reports, reporter


def test_progress_line_shows_rates_share_and_eta():
    out = io.StringIO()
    progress = Progress("ingest", total_bytes=10_000_000, interval=0.0, stream=out)
    progress.start -= 2.0           # as if two seconds had passed
    progress.update(docs=100, nbytes=5_000_000)
    line = out.getvalue().strip()
    assert line.startswith("[ingest]") and "100 docs" in line and "MB/s" in line and "docs/s" in line
    assert "50%" in line and "ETA 0:00:0" in line


def test_progress_is_rate_limited_and_can_be_silenced():
    out = io.StringIO()
    progress = Progress("clean", interval=3600, stream=out)
    for _ in range(1000):
        progress.update(docs=1, nbytes=10)
    assert progress.lines_printed == 0
    progress.close()
    assert progress.lines_printed == 1 and "1,000 docs" in out.getvalue()
    quiet = Progress("x", enabled=False, interval=0.0, stream=out)
    quiet.update(docs=5)
    quiet.close()
    assert quiet.lines_printed == 0


def test_workers_report_to_a_directory_and_the_monitor_sums_them(tmp_path):
    out = io.StringIO()
    reports = tmp_path / "progress"
    workers = [Progress("segment", interval=0.0, report_dir=str(reports)) for _ in range(3)]
    with StageMonitor(reports, total_docs=600, interval=3600, stream=out) as monitor:
        monitor.start -= 10.0                        # as if ten seconds had passed
        for worker in workers:
            worker.update(docs=100, nbytes=1_000_000)
        line = monitor.poll()
        assert line.startswith("[segment]") and "300 of 600 docs" in line and "30 docs/s" in line
        assert "0.30 MB/s" in line and "50%" in line and "ETA 0:00:10" in line
        assert monitor.poll() is None                 # nothing moved: no line
        for worker in workers:
            worker.update(docs=100)
            worker.close()
    assert monitor.summary() == {"segment": {"docs": 600, "bytes": 3_000_000}}
    assert workers[0].lines_printed == 0 and out.getvalue() == ""   # reports, not lines, from workers


def test_monitor_follows_the_pass_that_moved_and_eta_by_bytes(tmp_path):
    reports = tmp_path / "progress"
    with StageMonitor(reports, total_bytes=4_000_000, interval=3600, stream=io.StringIO()) as monitor:
        monitor.start -= 4.0
        first = reporter("dedup", str(reports))
        first.interval = 0.0
        first.update(10, 1_000_000)
        assert monitor.poll().startswith("[dedup]")
        second = reporter("dedup/minhash", str(reports))
        second.interval = 0.0
        second.update(5, 2_000_000)
        line = monitor.poll()
        assert line.startswith("[dedup/minhash]") and "50%" in line and "ETA 0:00:04" in line
    assert set(monitor.summary()) == {"dedup", "dedup/minhash"}
    off = reporter("clean", None)       # progress off: nothing written, nothing printed
    off.update(3, 30)
    off.close()
    assert off.lines_printed == 0 and off._report is None


def test_track_counts_each_item_and_closes(tmp_path):
    progress = Progress("vocab", interval=3600, report_dir=str(tmp_path))
    assert list(progress.track(iter(["a", "bb"]), lambda s: (1, len(s)))) == ["a", "bb"]
    assert read_reports(tmp_path) == {"vocab": (2, 3)}
