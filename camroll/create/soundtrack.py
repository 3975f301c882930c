"""A recap's music, made on the machine: a short score per mood (chord progression, bass,
drums and a seeded melody) played by FluidSynth through Debian's General MIDI SoundFont, so
nothing is downloaded at run time. Then fitted to the recap (fades, the clips' own sound kept
with the music ducked under it) and normalised to -16 LUFS (EBU R128 / ITU-R BS.1770-4).

Everything is float32 stereo at 48 kHz, the rate the BS.1770 K-weighting filter is defined at.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from scipy.signal import lfilter

__all__ = [
    "MOODS",
    "RATE",
    "BadTrack",
    "MomentFeel",
    "Mood",
    "TrackInfo",
    "choose_mood",
    "clip_audio",
    "estimate_beat",
    "fit_track",
    "integrated_loudness",
    "load_track",
    "mix",
    "normalise",
    "probe_track",
    "render_score",
]

RATE = 48_000
TARGET_LUFS = -16.0
PEAK = 0.89  # -1 dBFS: AAC's own overshoot stays below full scale
SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
)
DUCK = 0.28  # music gain (-11 dB) under a clip's own sound
DRUMS = 9  # General MIDI percussion channel

# Scale steps (semitones from the root) and chords as scale degrees (0 = I).
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
DORIAN = (0, 2, 3, 5, 7, 9, 10)


@dataclass(frozen=True)
class Mood:
    name: str
    bpm: int
    root: int  # MIDI note of the key's tonic, around middle C
    scale: tuple[int, ...]
    progression: tuple[int, ...]  # one chord (scale degree) per bar
    chords: int  # General MIDI programs (0-based)
    melody: int
    bass: int
    drums: str  # "" for none, else a pattern name below
    chord_style: str  # "block" | "arpeggio" | "stab"
    melody_rhythm: tuple[float, ...]  # note lengths in beats, summing to one bar (4)

    @property
    def beat(self) -> float:
        return 60.0 / self.bpm


MOODS: dict[str, Mood] = {
    # Beach, sun and smiles: bright major, nylon guitar and marimba over a light pop beat.
    "sunny": Mood(
        "sunny", 116, 60, MAJOR, (0, 4, 5, 3), 24, 12, 32, "pop", "arpeggio", (1, 0.5, 0.5, 1, 1)
    ),
    # Parties and nights out: minor four-on-the-floor with synth stabs and a square lead.
    "party": Mood(
        "party",
        124,
        57,
        MINOR,
        (0, 5, 2, 6),
        81,
        80,
        38,
        "four",
        "stab",
        (0.5, 0.5, 1, 0.5, 0.5, 1),
    ),
    # Snow, winter and quiet evenings: slow strings and a music box, no drums.
    "cozy": Mood("cozy", 76, 65, MAJOR, (0, 5, 3, 4), 48, 10, 42, "", "block", (2, 1, 1)),
    # Streets and buildings: laid-back dorian electric piano and vibraphone, a hip-hop beat.
    "city": Mood(
        "city", 92, 62, DORIAN, (0, 3, 6, 4), 4, 11, 33, "hiphop", "block", (1.5, 0.5, 1, 1)
    ),
    # Everything else: gentle piano arpeggios and a flute.
    "tender": Mood("tender", 84, 67, MAJOR, (0, 2, 3, 4), 0, 73, 32, "", "arpeggio", (1, 1, 2)),
}

# Drum patterns: (beat position in the bar, GM drum note, velocity).
PATTERNS: dict[str, tuple[tuple[float, int, int], ...]] = {
    "pop": (
        (0, 36, 90),
        (1, 38, 70),
        (2, 36, 85),
        (3, 38, 75),
        *((b / 2, 42, 45) for b in range(8)),
    ),
    "four": (
        *((b, 36, 105) for b in range(4)),
        (1, 39, 80),
        (3, 39, 80),
        *((b + 0.5, 46, 55) for b in range(4)),
    ),
    "hiphop": (
        (0, 36, 95),
        (1.75, 36, 70),
        (1, 38, 80),
        (3, 38, 85),
        (2.5, 36, 80),
        *((b / 2, 42, 40) for b in range(8)),
    ),
}

BEACH = {"beach", "sea", "ocean", "coast", "surf", "sand", "pool", "summer", "sun", "lake"}
PARTY = {"party", "birthday", "concert", "wedding", "celebration", "dance", "festival", "cake"}
SNOW = {"snow", "winter", "ski", "christmas", "ice", "mountain", "cabin", "fireplace"}
CITY = {"city", "street", "building", "architecture", "skyscraper", "car", "bridge", "night"}


@dataclass(frozen=True)
class MomentFeel:
    """What the mood is chosen from: the moment's tags, its faces' smiles, when its photos
    were taken and how fast they came."""

    tags: Sequence[str] = ()
    smiles: Sequence[float] = ()  # 0-1 per face
    hours: Sequence[int] = ()  # local hour of each photo
    photos_per_hour: float = 0.0


def choose_mood(feel: MomentFeel) -> Mood:
    """The moment's mood: tags first (the strongest signal of what it was), then time of day,
    smiles and pace."""
    tags = [t.lower() for t in feel.tags]
    votes = {
        "sunny": sum(t in BEACH for t in tags),
        "party": sum(t in PARTY for t in tags),
        "cozy": sum(t in SNOW for t in tags),
        "city": sum(t in CITY for t in tags),
    }
    best = max(votes, key=lambda k: votes[k])
    if votes[best] > 0 and votes[best] >= 0.15 * max(1, len(tags)):
        return MOODS[best]
    smiling = float(np.mean(feel.smiles)) if feel.smiles else 0.0
    late = sum(h >= 19 or h < 5 for h in feel.hours)
    evening = bool(feel.hours) and late > len(feel.hours) / 2
    if evening and feel.photos_per_hour >= 10:
        return MOODS["party"]
    if evening:
        return MOODS["cozy"]
    if smiling >= 0.5 or feel.photos_per_hour >= 20:
        return MOODS["sunny"]
    return MOODS["tender"]


# --- the score ----------------------------------------------------------------------------------


def _note(mood: Mood, degree: int, octave: int = 0) -> int:
    steps = mood.scale
    return mood.root + 12 * (octave + degree // len(steps)) + steps[degree % len(steps)]


def _events(mood: Mood, bars: int, seed: int) -> list[tuple[float, int, int, int, float]]:
    """(start beat, channel, key, velocity, length in beats) for the whole piece."""
    rng = random.Random(seed)
    out: list[tuple[float, int, int, int, float]] = []
    prev = _note(mood, 7)
    for bar in range(bars):
        b0 = bar * 4.0
        degree = mood.progression[bar % len(mood.progression)]
        triad = [_note(mood, degree + k, -1) for k in (0, 2, 4)]
        # Bass: the root on beats 1 and 3 (and a fifth on 4 when there are drums).
        out.append((b0, 2, _note(mood, degree, -2), 88, 1.9))
        out.append((b0 + 2, 2, _note(mood, degree, -2), 80, 1.5))
        if mood.drums:
            out.append((b0 + 3.5, 2, _note(mood, degree + 4, -2), 70, 0.5))
        # Chords.
        if mood.chord_style == "block":
            out += [(b0, 1, k, 62, 3.9) for k in triad]
        elif mood.chord_style == "stab":
            for off in (0, 0.75, 1.5, 2.5, 3.25):
                out += [(b0 + off, 1, k, 72, 0.4) for k in triad]
        else:
            seq = [*triad, triad[0] + 12, triad[1] + 12, triad[2], triad[1], triad[0] + 12]
            out += [(b0 + i * 0.5, 1, k, 60, 0.9) for i, k in enumerate(seq)]
        # Melody: chord tones on the bar's first note, steps of the scale after it.
        tones = {(t - mood.root) % 12 for t in triad}
        t = b0
        for i, length in enumerate(mood.melody_rhythm):
            if bar % 4 == 3 and i == len(mood.melody_rhythm) - 1:
                break  # breathe at the end of each phrase
            if i == 0:
                near = [prev + d for d in range(-5, 6) if (prev + d - mood.root) % 12 in tones]
                key = min(near, key=lambda k: abs(k - prev) + rng.random() * 3)
            else:
                scale = [k for k in range(prev - 4, prev + 5) if (k - mood.root) % 12 in mood.scale]
                key = rng.choice([k for k in scale if k != prev] or [prev])
            key = min(max(key, mood.root + 5), mood.root + 21)
            out.append((t, 0, key, 84 if i == 0 else 72, length * 0.95))
            prev = key
            t += length
        if mood.drums:
            out += [(b0 + pos, DRUMS, note, vel, 0.2) for pos, note, vel in PATTERNS[mood.drums]]
    return out


def render_score(mood: Mood, seconds: float, seed: int = 0) -> np.ndarray:
    """The mood's piece played for at least `seconds` (whole bars), float32 (n, 2) at RATE."""
    import fluidsynth  # cffi/ctypes binding to libfluidsynth3, loaded only when music is made

    font = next((p for p in SOUNDFONTS if p.exists()), None)
    if font is None:
        raise RuntimeError("no General MIDI SoundFont: install Debian's fluid-soundfont-gm")
    bars = int(np.ceil(seconds / (4 * mood.beat))) + 1
    synth = fluidsynth.Synth(samplerate=float(RATE), gain=0.4)
    try:
        font_id = synth.sfload(str(font))
        for chan, program in ((0, mood.melody), (1, mood.chords), (2, mood.bass)):
            synth.program_select(chan, font_id, 0, program)
        synth.program_select(DRUMS, font_id, 128, 0)
        synth.cc(1, 7, 80)  # chords under the melody
        timeline: list[tuple[float, bool, int, int, int]] = []
        for start, chan, key, vel, length in _events(mood, bars, seed):
            timeline.append((start * mood.beat, True, chan, key, vel))
            timeline.append(((start + length) * mood.beat, False, chan, key, 0))
        timeline.sort(key=lambda e: (e[0], e[1]))  # note-offs before note-ons at one instant
        chunks: list[np.ndarray] = []
        done = 0
        for at, on, chan, key, vel in timeline:
            sample = int(at * RATE)
            if sample > done:
                chunks.append(synth.get_samples(sample - done))
                done = sample
            if on:
                synth.noteon(chan, key, vel)
            else:
                synth.noteoff(chan, key)
        end = int(seconds * RATE) + RATE
        if end > done:
            chunks.append(synth.get_samples(end - done))
    finally:
        synth.delete()
    pcm = np.concatenate(chunks).astype(np.float32) / 32768.0
    return pcm.reshape(-1, 2)[: round(seconds * RATE)]


# --- the owner's own track ---------------------------------------------------------------------

MIN_TRACK_S, MAX_TRACK_S = 5.0, 20 * 60.0
LOOP_FADE_S = 1.5  # a track shorter than the recap comes round again through a crossfade


class BadTrack(ValueError):
    """An uploaded file that cannot be a recap's music; the message says why, for the owner."""


@dataclass(frozen=True)
class TrackInfo:
    codec: str
    duration_s: float


def probe_track(path: Path) -> TrackInfo:
    """What PyAV finds in an uploaded track, after decoding its first seconds: an audio stream
    that really plays, 5 s to 20 min long. Anything else raises BadTrack."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as e:  # whatever FFmpeg makes of it
        raise BadTrack("this file is not audio that can be read") from e
    with container:
        if not container.streams.audio:
            raise BadTrack("this file has no sound in it")
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        if stream.duration and stream.time_base:
            length = float(stream.duration * stream.time_base)
        else:
            length = (container.duration or 0) / 1_000_000
        heard = 0.0
        try:
            for frame in container.decode(stream):
                heard += frame.samples / (frame.sample_rate or RATE)
                if heard >= MIN_TRACK_S:
                    break
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise BadTrack("this track is damaged: its sound does not decode") from e
    if heard < min(MIN_TRACK_S, length) or heard == 0:
        raise BadTrack("this track is damaged: its sound does not decode")
    if length < MIN_TRACK_S:
        raise BadTrack(f"this track is too short: {length:.1f} s (at least {MIN_TRACK_S:.0f} s)")
    if length > MAX_TRACK_S:
        raise BadTrack(f"this track is too long: at most {MAX_TRACK_S / 60:.0f} minutes")
    return TrackInfo(codec, round(length, 3))


def load_track(path: Path, seconds: float) -> np.ndarray:
    """The track's first `seconds` (all of it when shorter), float32 (n, 2) at RATE."""
    pcm = clip_audio(path, 0.0, seconds)
    if pcm is None:
        raise BadTrack("this track is damaged: its sound does not decode")
    return pcm


def fit_track(pcm: np.ndarray, seconds: float) -> np.ndarray:
    """The track cut to `seconds`, or looped to it through a crossfade when shorter (the
    recap's fades and loudness are applied by `mix` and `normalise`, as for the score)."""
    n = round(seconds * RATE)
    if len(pcm) >= n:
        return pcm[:n]
    fade = min(round(LOOP_FADE_S * RATE), len(pcm) // 4)
    out = pcm[: len(pcm)].copy()
    ramp = np.linspace(0, 1, fade, dtype=np.float32)[:, None]
    while len(out) < n:
        joined = out[len(out) - fade :] * (1 - ramp) + pcm[:fade] * ramp
        out = np.concatenate([out[: len(out) - fade], joined, pcm[fade:]])
    return out[:n].astype(np.float32)


def estimate_beat(pcm: np.ndarray) -> float:
    """The track's beat in seconds (60-180 bpm), from the autocorrelation of its onset
    strength (rises in 10 ms band energy), so the recap's cuts fall on its beat too."""
    hop = RATE // 100
    mono = pcm.mean(axis=1)[: (len(pcm) // hop) * hop]
    if len(mono) < hop * 300:
        return 0.5
    energy = np.log1p(1000 * (mono.reshape(-1, hop) ** 2).mean(axis=1))
    onset = np.maximum(np.diff(energy), 0)
    onset = onset - onset.mean()
    spectrum = np.fft.rfft(onset, 2 * len(onset))
    corr = np.fft.irfft(spectrum * np.conj(spectrum))[: len(onset)]
    lags = np.arange(len(corr))
    usable = (lags >= 100 * 60 / 180) & (lags <= 100 * 60 / 60)
    # Prefer tempos near 120 bpm a little: an autocorrelation peaks at twice the beat too.
    weight = np.exp(-0.5 * (np.log2(np.maximum(lags, 1) / 50.0) / 1.0) ** 2)
    best = int(np.argmax(np.where(usable, corr * weight, -np.inf)))
    return best / 100.0


# --- fitting, ducking and loudness --------------------------------------------------------------


def clip_audio(path: Path, start_s: float, seconds: float) -> np.ndarray | None:
    """The clip's own sound from `start_s` for `seconds`, float32 (n, 2) at RATE; None when
    the file has no audio track."""
    with av.open(str(path), metadata_errors="ignore") as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="stereo", rate=RATE)
        parts: list[np.ndarray] = []
        first: float | None = None
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    if first is None:
                        first = float(out.time or 0.0)
                    parts.append(out.to_ndarray().reshape(-1, 2))
                if frame.time is not None and frame.time > start_s + seconds + 0.1:
                    break
        except av.error.FFmpegError:
            pass  # a damaged tail: keep what decoded
    if not parts:
        return None
    pcm = np.concatenate(parts)
    skip = max(0, round((start_s - (first or 0.0)) * RATE))
    pcm = pcm[skip : skip + round(seconds * RATE)]
    return pcm if len(pcm) else None


def _ramp(n: int, rise: int) -> np.ndarray:
    """A gate of n samples that rises and falls over `rise` samples (raised cosine)."""
    env = np.ones(n, np.float32)
    rise = min(rise, n // 2)
    if rise > 0:
        edge = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, rise))).astype(np.float32)
        env[:rise] = edge
        env[n - rise :] = edge[::-1]
    return env


def mix(
    music: np.ndarray,
    total_s: float,
    clips: Iterable[tuple[float, np.ndarray]],
    fade_in_s: float = 0.6,
    fade_out_s: float = 2.5,
) -> np.ndarray:
    """The music cut to `total_s` with fades, the clips' own sound placed at their start times
    (seconds) at about the music's loudness, and the music ducked under them."""
    n = round(total_s * RATE)
    out = np.zeros((n, 2), np.float32)
    out[: min(n, len(music))] = music[:n]
    gain = np.ones(n, np.float32)
    gain[: int(fade_in_s * RATE)] = np.linspace(0, 1, int(fade_in_s * RATE), dtype=np.float32)
    tail = int(fade_out_s * RATE)
    gain[n - tail :] *= np.linspace(1, 0, tail, dtype=np.float32) ** 2
    music_lufs = integrated_loudness(out)
    duck = np.ones(n, np.float32)
    voices = np.zeros((n, 2), np.float32)
    for at, pcm in clips:
        i = round(at * RATE)
        pcm = pcm[: max(0, n - i)]
        if not len(pcm):
            continue
        lufs = integrated_loudness(pcm)
        if not np.isfinite(lufs):
            continue  # silence: the music stays up
        # Bring the clip's sound up (at most +18 dB) to just above the ducked music.
        level = min(10 ** ((music_lufs + 1 - lufs) / 20), 8.0) if np.isfinite(music_lufs) else 1
        env = _ramp(len(pcm), int(0.25 * RATE))
        voices[i : i + len(pcm)] += pcm * (env * level)[:, None]
        duck[i : i + len(pcm)] = np.minimum(duck[i : i + len(pcm)], 1 - (1 - DUCK) * env)
    return out * (gain * duck)[:, None] + voices


_K1 = ([1.53512485958697, -2.69169618940638, 1.19839281085285],
       [1.0, -1.69065929318241, 0.73248077421585])  # fmt: skip  # head (high shelf)
_K2 = ([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621])  # RLB high-pass


def integrated_loudness(pcm: np.ndarray) -> float:
    """BS.1770-4 integrated loudness (LUFS) of stereo float audio at 48 kHz: K-weighting,
    400 ms blocks every 100 ms, absolute gate -70 LUFS and relative gate -10 LU."""
    x = lfilter(*_K2, lfilter(*_K1, pcm.astype(np.float64), axis=0), axis=0)
    block, hop = int(0.4 * RATE), int(0.1 * RATE)
    if len(x) < block:
        return float("-inf")
    power = np.concatenate([[np.zeros(2)], np.cumsum(x * x, axis=0)])
    starts = np.arange(0, len(x) - block + 1, hop)
    z = (power[starts + block] - power[starts]) / block  # mean square per block and channel
    energy = z.sum(axis=1)
    with np.errstate(divide="ignore"):
        loud = -0.691 + 10 * np.log10(energy)
    gated = energy[loud > -70]
    if not len(gated):
        return float("-inf")
    relative = -0.691 + 10 * np.log10(gated.mean()) - 10
    final = energy[(loud > -70) & (loud > relative)]
    return float(-0.691 + 10 * np.log10(final.mean()))


def _limit(x: np.ndarray) -> np.ndarray:
    """Soft-knee peak limiter: untouched below the knee, never above PEAK."""
    knee = PEAK * 0.8
    mag = np.abs(x)
    over = mag > knee
    out = x.copy()
    soft = knee + (PEAK - knee) * np.tanh((mag[over] - knee) / (PEAK - knee))
    out[over] = np.sign(x[over]) * soft
    return out


def normalise(pcm: np.ndarray, target: float = TARGET_LUFS) -> np.ndarray:
    """Gain to `target` LUFS with peaks held under -1 dBFS (the limiter costs a little
    loudness, so gain is measured again after it)."""
    out = pcm
    for _ in range(3):
        lufs = integrated_loudness(out)
        if not np.isfinite(lufs) or abs(lufs - target) < 0.2:
            break
        out = _limit(out * np.float32(10 ** ((target - lufs) / 20)))
    return out.astype(np.float32)
