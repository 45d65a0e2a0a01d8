import io

from pipeline.progress import Progress


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
