import mixers
from plots.style import MIXER_STYLE, mixer_style


def test_every_registered_mixer_has_its_own_colour_and_marker():
    keys = ["sa:naive", "sa:sdpa", *(n for n in mixers.names(include_fla_only=True) if n != "sa")]
    assert set(keys) <= set(MIXER_STYLE)
    styles = [mixer_style(k) for k in keys]
    assert len({c.lower() for c, _ in styles}) == len({m for _, m in styles}) == len(keys)


def test_unlisted_mixers_get_a_stable_style_apart_from_the_listed_ones():
    style = mixer_style("some_future_mixer")
    assert style == mixer_style("some_future_mixer")
    assert style[0].lower() not in {c.lower() for c, _ in MIXER_STYLE.values()}
