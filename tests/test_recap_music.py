"""The owner's track and the place captions inside a recap's timeline: a track's beat is found
(so cuts land on it as on our own score's), a short track is looped to the recap's length
without a gap, and place captions take whole beats and never end the story."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from camroll.create.recap import CardSlide, PhotoSlide, plan_timeline
from camroll.create.soundtrack import MOODS, RATE, estimate_beat, fit_track, render_score


def test_a_tracks_beat_is_found_for_every_tempo() -> None:
    for mood in MOODS.values():  # 76 to 124 bpm, with and without drums
        found = estimate_beat(render_score(mood, 12.0, seed=5))
        assert found == pytest.approx(mood.beat, rel=0.03), mood.name


def test_a_short_track_is_looped_to_the_recaps_length_without_a_gap() -> None:
    song = render_score(MOODS["city"], 7.0, seed=2)
    fitted = fit_track(song, 20.0)
    assert fitted.shape == (20 * RATE, 2) and fitted.dtype == np.float32
    assert np.array_equal(fitted[: 5 * RATE], song[: 5 * RATE])  # it starts as the song does
    # No silent hole where it comes round: every 100 ms block keeps sound.
    blocks = np.abs(fitted[: len(fitted) // 4800 * 4800]).reshape(-1, 4800, 2).max(axis=(1, 2))
    assert blocks.min() > 0.01
    assert np.array_equal(fit_track(song, 3.0), song[: 3 * RATE])  # a long one is cut


def test_place_captions_take_whole_beats_and_never_end_the_story() -> None:
    photo = PhotoSlide(Image.new("RGB", (8, 6)), [])
    slides = [photo, photo, CardSlide("Moab", "29 June"), photo, photo, CardSlide("Williams")]
    beat = MOODS["party"].beat
    segments, total = plan_timeline(slides, clip_lengths=[0.0] * len(slides), beat=beat)
    kinds = [s.kind for s in segments]
    assert kinds == ["title", "photo", "photo", "card", "photo", "photo", "end"]
    starts = [s.start_s / beat for s in segments]
    assert np.allclose(starts, np.round(starts), atol=1e-6)
    assert 15 <= total <= 60
