import pytest

from .runs import reference_run


@pytest.fixture(scope="module")
def reference(sample_inputs, tmp_path_factory):
    """The bundled sample through every stage on Beam in-process: the segmented table, vocab and shards that
    the determinism and worker-fault modules compare against (one run per module)."""
    return reference_run(tmp_path_factory.mktemp("reference"), sample_inputs)
