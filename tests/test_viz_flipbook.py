"""effdl.viz.flipbook: a widget's states as precomputed frames that play in the static book.

The frames are checked against the live widget's own picture (same figure
function, same pixels up to the palette), the HTML on what a static page and
nbval need (every frame and label present, the same bytes on every call,
nothing from the network, no random id), and the arguments on their refusals.
That the flip-books play in the built book is tests/test_browser_flipbooks.py.
"""
import io
import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from effdl.viz import numbers  # noqa: E402
from effdl.viz.flipbook import flipbook, flipbook_frames  # noqa: E402
from effdl.viz.style import figure_png  # noqa: E402

FORMATS = ["fp32", "fp16", "bf16"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def bits_figure(format_name):
    """The bit-width widget's picture of 0.1 (chapter 01's flip-book draws these)."""
    return numbers.bit_width_figure(numbers.bit_width_state(0.1, format_name))


def _rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)


def _script_array(text: str, name: str) -> list:
    return json.loads(re.search(rf"var .*?\b{name} = (\[.*?\])[,;]", text).group(1))


# ------------------------------------------------------------------ frames
def test_flipbook_frames_are_the_widget_figures_as_small_palette_pngs():
    pngs = flipbook_frames(bits_figure, FORMATS, dpi=80, colors=64)
    assert len(pngs) == 3 and plt.get_fignums() == []          # every figure closed once saved
    for fmt, png in zip(FORMATS, pngs):
        image = Image.open(io.BytesIO(png))
        assert png.startswith(b"\x89PNG") and image.mode == "P" and len(image.getcolors()) <= 64
        assert "Software" not in image.info                     # no matplotlib version in the bytes
        live = _rgb(figure_png(bits_figure(fmt), dpi=80))        # what the live widget shows
        frame = _rgb(png)
        assert frame.shape == live.shape == (152, 600, 3)        # 7.5 × 1.9 in at 80 dpi
        assert np.abs(frame - live).mean() < 2                   # the same picture, up to the palette
    assert len({p for p in pngs}) == 3                          # one distinct frame per format
    assert np.abs(_rgb(pngs[0]) - _rgb(pngs[1])).mean() > 1


def test_flipbook_frames_are_deterministic():
    assert flipbook_frames(bits_figure, FORMATS) == flipbook_frames(bits_figure, FORMATS)


def test_flipbook_frames_refuse_a_function_that_returns_no_figure():
    with pytest.raises(TypeError, match="figure must return a matplotlib Figure; got int"):
        flipbook_frames(lambda v: 3, [1])
    assert plt.get_fignums() == []


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"figure": 3}, TypeError, "figure must be a callable"),
    ({"values": []}, ValueError, "values must be a list"),
    ({"values": "fp32"}, TypeError, "values must be a list"),
    ({"dpi": 0}, ValueError, "dpi must be"),
    ({"colors": 300}, ValueError, "colors must be"),
])
def test_flipbook_frames_bad_input(kwargs, exc, message):
    args = {"figure": bits_figure, "values": FORMATS} | kwargs
    with pytest.raises(exc, match=message):
        flipbook_frames(args.pop("figure"), args.pop("values"), **args)


# ------------------------------------------------------------------ the HTML player
def test_flipbook_holds_every_frame_and_label_and_starts_where_asked():
    text = flipbook(bits_figure, FORMATS, label="0.1 in {}", start=1, interval=400).data
    frames = _script_array(text, "frames")
    labels = _script_array(text, "labels")
    assert labels == ["0.1 in fp32", "0.1 in fp16", "0.1 in bf16"]
    assert frames[1] is None and all(f.startswith("data:image/png;base64,") for f in (frames[0], frames[2]))
    shown = re.search(r'<img class="effdl-flipbook-frame" src="([^"]+)" alt="([^"]+)"', text)
    assert shown.group(2) == "0.1 in fp16"                      # the start frame, without JavaScript too
    assert len({shown.group(1), frames[0], frames[2]}) == 3
    assert 'data-frame="1"' in text and 'data-frames="3"' in text
    assert 'type="range"' in text and 'min="0" max="2"' in text and 'value="1"' in text
    for name in ("Play", "Previous frame", "Next frame"):
        assert f'aria-label="{name}"' in text
    assert "interval = 400" in text


def test_flipbook_is_offline_deterministic_and_free_of_random_ids():
    a = flipbook(bits_figure, FORMATS).data
    assert a == flipbook(bits_figure, FORMATS).data              # nbval compares the stored output as is
    assert "://" not in re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", a)
    assert not re.search(r"[0-9a-f]{32}", a.replace("base64,", ""))   # nothing for the sanitizer to hide
    assert re.search(r'id="effdl-flipbook-[0-9a-f]{12}"', a)
    assert a != flipbook(bits_figure, FORMATS[:2]).data           # the id follows the content


def test_flipbook_labels_from_a_dict_or_a_function_and_escaped():
    text = flipbook(bits_figure, {"FP32 <32 bits>": "fp32", "BF16": "bf16"}).data
    assert _script_array(text, "labels") == ["FP32 <32 bits>", "BF16"]
    assert 'alt="FP32 &lt;32 bits&gt;"' in text
    text = flipbook(bits_figure, FORMATS, label=str.upper, title="Bits of 0.1").data
    assert _script_array(text, "labels") == ["FP32", "FP16", "BF16"] and "<b>Bits of 0.1</b>" in text
    text = flipbook(bits_figure, ["fp32"], label="</script>").data
    assert text.count("</script>") == 1                         # a label cannot end the script early


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"values": {"a": "fp32"}, "label": "{:.0%}"}, ValueError, "label must be left at"),
    ({"label": "{0} {1}"}, ValueError, "label must be a format string"),
    ({"label": 3}, TypeError, "label must be"),
    ({"start": 3}, ValueError, "start must be a frame index below 3; got 3"),
    ({"start": -1}, ValueError, "start must be"),
    ({"interval": 10}, ValueError, "interval must be"),
    ({"title": 5}, TypeError, "title must be"),
    ({"values": 5}, TypeError, "values must be"),
])
def test_flipbook_bad_input(kwargs, exc, message):
    args = {"values": FORMATS} | kwargs
    with pytest.raises(exc, match=message):
        flipbook(bits_figure, args.pop("values"), **args)
