"""The procedural demo dataset: native layouts, determinism, broken items, and motions that look like people."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from flowmimic.body.kinematics import smpl_forward_kinematics
from flowmimic.body.rotation import axis_angle_to_matrix
from flowmimic.body.skeleton import PARENTS, default_rest_joints
from flowmimic.errors import ConfigError, DataError
from flowmimic.io import safe_load_pickle
from flowmimic.params import load_params
from flowmimic.taxonomy import GENRES
from flowmimic.sources.common import canonical_rotation
from flowmimic.demo.dataset import MANIFEST, plan_aist, plan_mvh, write_demo
from flowmimic.demo.dances import genre_tempo, synthesize_dances
from flowmimic.demo.motion import DanceSpec, StudioSpec, smpl45_joints
from flowmimic.demo.studio import synthesize_studio

REPO = Path(__file__).resolve().parents[1]
NAME_RE = re.compile(r"^(g[A-Z]{2})_s(BM|FM)_cAll_(d\d{2})_m([A-Z]{2})([0-5])_ch(\d{2})$")
FOOT = [7, 10, 8, 11]


def tiny_params(root: Path, inject_bad: bool = True):
    params = load_params(REPO / "params.yaml")
    demo = params.demo.model_copy(update=dict(
        root=str(root), aist_dancers=3, aist_val_dancers=1, aist_test_dancers=1, aist_sequences=2, aist_seconds=[2.5, 3.0], mvh_parts=2,
        mvh_performers=3, mvh_outfits=2, mvh_seconds=[3.0, 3.5], mvh_video_fps=25, inject_bad=inject_bad))
    return params.model_copy(update={"demo": demo})


@pytest.fixture(scope="module")
def demo_bad(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "demo"
    params = tiny_params(root, inject_bad=True)
    write_demo(params)
    return root, params


@pytest.fixture(scope="module")
def demo_clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean") / "demo"
    params = tiny_params(root, inject_bad=False)
    write_demo(params)
    return root, params


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- layouts


def test_same_params_give_identical_files(demo_bad, tmp_path):
    root, params = demo_bad
    again = tmp_path / "again"
    write_demo(params, again)
    first, second = _files(root), _files(again)
    assert sorted(first) == sorted(second)
    different = [k for k in first if first[k] != second[k] and k != MANIFEST]
    assert not different, different[:5]
    # A different seed changes the motions.
    other = params.model_copy(update={"demo": params.demo.model_copy(update={"seed": 1})})
    write_demo(other, tmp_path / "other")
    name = next(k for k in first if k.startswith("aist/motions/"))
    third = _files(tmp_path / "other")
    assert name not in third or third[name] != first[name]


def test_aist_layout_keys_names_and_splits(demo_clean):
    root, params = demo_clean
    motions = sorted((root / "aist" / "motions").glob("*.pkl"))
    assert len(motions) == 10 * params.demo.aist_dancers * params.demo.aist_sequences
    genres_of_dancer: dict[str, set[str]] = {}
    for path in motions:
        m = NAME_RE.match(path.stem)
        assert m, path.stem
        assert m.group(1)[1:] == m.group(4)                      # gBR ... mBR<k>
        genres_of_dancer.setdefault(m.group(3), set()).add(m.group(1))
        raw = safe_load_pickle(path)
        assert set(raw) == {"smpl_poses", "smpl_trans", "smpl_scaling", "smpl_loss"}
        n = raw["smpl_poses"].shape[0]
        assert raw["smpl_poses"].shape == (n, 72) and raw["smpl_poses"].dtype == np.float32
        assert raw["smpl_trans"].shape == (n, 3) and raw["smpl_trans"].dtype == np.float32
        assert raw["smpl_scaling"].shape == (1,) and raw["smpl_scaling"].dtype == np.float32
        assert 90 <= raw["smpl_scaling"][0] <= 100 and isinstance(raw["smpl_loss"], float)
        assert 2.5 * 60 - 1 <= n <= 3.0 * 60 + 1
        # Capture units: the pelvis height is ~90 cm times the scaling / 100 (not metres).
        assert np.abs(raw["smpl_trans"]).max() > 30
    assert {g for gs in genres_of_dancer.values() for g in gs} == set(GENRES)
    assert all(len(gs) == 1 for gs in genres_of_dancer.values())           # unique dancer ids across genres
    splits = {s: (root / "aist" / "splits" / f"pose_{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert sorted(sum(splits.values(), [])) == sorted(p.stem for p in motions)
    per_dancer = params.demo.aist_sequences
    for genre in GENRES:
        counts = {s: sum(n.startswith(genre) for n in names) for s, names in splits.items()}
        assert counts == {"train": per_dancer, "val": per_dancer, "test": per_dancer}, (genre, counts)
    dancers = {s: {NAME_RE.match(n).group(3) for n in names} for s, names in splits.items()}
    assert not dancers["train"] & dancers["val"] and not dancers["train"] & dancers["test"]   # split by dancer
    assert not dancers["val"] & dancers["test"]
    lines = (root / "aist" / "ignore_list.txt").read_text().splitlines()
    assert len(lines) == 2 and any(line.endswith(" ") for line in lines)
    assert all(line.strip() in splits["train"] for line in lines)


def test_aist_native_frame_round_trips(demo_clean):
    """Reader contract: canonical = R @ FK(poses, rest, smpl_trans / smpl_scaling) reproduces the synthesis."""
    root, params = demo_clean
    item = plan_aist(params)[5]
    raw = safe_load_pickle(root / "aist" / "motions" / f"{item.name}.pkl")
    rest = default_rest_joints(torch.float64)
    native = smpl_forward_kinematics(torch.from_numpy(raw["smpl_poses"]).double(), rest,
                                     torch.from_numpy(raw["smpl_trans"] / raw["smpl_scaling"]).double())
    rot = canonical_rotation(params.data.zup_to_yup, params.data.aist.axis_remap)
    canon = native @ rot.T
    expected = synthesize_dances([item.spec], rest, params.data.aist.fps).sequence(0)[2]
    assert canon.shape == expected.shape
    assert torch.allclose(canon.float(), expected.float(), atol=2e-3)
    assert canon[..., 1].min().abs() < 0.01                                  # standing on y = 0


def test_mvh_layout_keys_numbering_and_native_frame(demo_clean):
    root, params = demo_clean
    items = plan_mvh(params)
    seq_dirs = sorted((root / "mvh").glob("*/*/smpl_param"))
    assert len(seq_dirs) == len(items) == params.demo.mvh_performers * params.demo.mvh_outfits
    assert {d.parent.parent.name for d in seq_dirs} == {"part_01", "part_02"}
    for d in seq_dirs:
        m = re.search(params.data.mvh.performer_regex, d.parent.name)
        assert m and re.fullmatch(r"\d{6}", m.group("performer")) and re.fullmatch(r"\d{6}_\d{2}", d.parent.name)
        numbers = [int(p.stem) for p in sorted(d.glob("*.pkl"))]
        assert all(len(p.stem) == 4 for p in d.glob("*.pkl"))
        assert numbers == list(range(0, 5 * len(numbers), 5))               # every 5th video frame, no holes
    item = items[1]
    files = sorted((root / "mvh" / item.seq_id / "smpl_param").glob("*.pkl"))
    frames = [safe_load_pickle(f) for f in files]
    for fr in frames[:3]:
        assert set(fr) == {"joints", "global_orient", "body_pose", "betas", "transl"}   # no vertices/faces
        assert fr["transl"] is None
        for key, shape in (("joints", (1, 45, 3)), ("global_orient", (1, 1, 3, 3)), ("body_pose", (1, 23, 3, 3)),
                           ("betas", (1, 10))):
            assert isinstance(fr[key], torch.Tensor) and fr[key].dtype == torch.float32 and fr[key].shape == shape
    rot = canonical_rotation(params.data.zup_to_yup, params.data.mvh.axis_remap).float()
    joints = torch.cat([fr["joints"] for fr in frames]) @ rot.T                  # (F, 45, 3) canonical
    motion = synthesize_studio([item.spec], default_rest_joints(), params.demo.mvh_video_fps)
    poses, _, expected = motion.sequence(0)
    assert torch.allclose(joints[:, :24], expected[::5], atol=2e-3)
    assert joints[:, FOOT, 1].min(-1).values.abs().max() < 0.01               # feet on the floor
    root_c = rot @ torch.cat([fr["global_orient"] for fr in frames])[:, 0]
    assert torch.allclose(root_c, axis_angle_to_matrix(poses[::5, 0]), atol=1e-4)
    body = torch.cat([fr["body_pose"] for fr in frames])
    assert torch.allclose(body, axis_angle_to_matrix(poses[::5, 1:]), atol=1e-4)


def test_smpl45_extends_the_24_joints():
    rest = default_rest_joints()
    poses = 0.3 * torch.randn(5, 24, 3, generator=torch.Generator().manual_seed(0))
    transl = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    j45 = smpl45_joints(poses, rest, transl)
    assert j45.shape == (5, 45, 3)
    assert torch.allclose(j45[:, :24], smpl_forward_kinematics(poses, rest, transl), atol=1e-6)
    nose_to_head = (j45[:, 24] - j45[:, 15]).norm(dim=-1)                      # rigid with the head
    assert torch.allclose(nose_to_head, nose_to_head[:1].expand(5), atol=1e-5) and (nose_to_head < 0.2).all()


# ----------------------------------------------------------------------------- broken items


def test_broken_items_are_present_and_listed(demo_bad):
    root, params = demo_bad
    man = json.loads((root / MANIFEST).read_text())
    assert sorted(man["aist"]["bad"].values()) == ["nan", "too_short", "unreadable"]
    assert sorted(man["mvh"]["bad"].values()) == ["bad_shape", "gap", "nan"]
    assert len(man["mvh"]["interpolated_gaps"]) == 1
    listed = sum(((root / "aist" / "splits" / f"pose_{s}.txt").read_text().split()
                  for s in ("train", "val", "test")), [])
    assert set(man["aist"]["bad"]) <= set(listed)                           # counted, not hidden
    assert not set(man["aist"]["bad"]) & {s.strip() for s in (root / "aist" / "ignore_list.txt").read_text().splitlines()}
    for name, reason in man["aist"]["bad"].items():
        path = root / "aist" / "motions" / f"{name}.pkl"
        if reason == "unreadable":
            with pytest.raises(DataError) as err:
                safe_load_pickle(path)
            assert str(path) in str(err.value)
            continue
        raw = safe_load_pickle(path)
        if reason == "too_short":
            frames_at_data_fps = math.ceil(len(raw["smpl_poses"]) * params.data.fps / params.data.aist.fps)
            assert frames_at_data_fps < params.features.min_frames
        else:
            assert np.isnan(raw["smpl_poses"]).any()
    mvh = root / "mvh"
    for seq_id, reason in list(man["mvh"]["bad"].items()) + [(man["mvh"]["interpolated_gaps"][0], "short_gap")]:
        files = sorted((mvh / seq_id / "smpl_param").glob("*.pkl"))
        numbers = np.array([int(f.stem) for f in files])
        holes = np.diff(numbers) // 5 - 1
        if reason == "gap":
            assert (holes.max() + 1) / params.data.mvh.fps > params.data.mvh.max_gap_s
        elif reason == "short_gap":
            assert holes.sum() == 1 and (holes.max() + 1) / params.data.mvh.fps <= params.data.mvh.max_gap_s
        else:
            joints = [safe_load_pickle(f)["joints"] for f in files]
            if reason == "nan":
                assert 0 < sum(bool(torch.isnan(j).any()) for j in joints) < len(joints)
            else:
                assert sum(tuple(j.shape) != (1, 45, 3) for j in joints) == 1


def test_clean_demo_has_no_broken_items(demo_clean):
    root, params = demo_clean
    man = json.loads((root / MANIFEST).read_text())
    assert man["aist"]["bad"] == {} and man["mvh"]["bad"] == {} and man["mvh"]["interpolated_gaps"] == []
    for path in (root / "aist" / "motions").glob("*.pkl"):
        raw = safe_load_pickle(path)
        assert np.isfinite(raw["smpl_poses"]).all() and len(raw["smpl_poses"]) >= 2.5 * 60 - 1
    for path in (root / "mvh").glob("*/*/smpl_param/*.pkl"):
        j = safe_load_pickle(path)["joints"]
        assert j.shape == (1, 45, 3) and torch.isfinite(j).all()


def test_default_sizes_keep_broken_items_few():
    params = load_params(REPO / "params.yaml")
    n_aist, n_mvh = len(plan_aist(params)), len(plan_mvh(params))
    assert n_aist >= 60 and n_mvh >= 30
    assert (3 + 3) / (n_aist + n_mvh) < 0.08


def test_refuses_to_replace_a_folder_that_is_not_a_demo(tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "data.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="refusing"):
        write_demo(tiny_params(tmp_path / "precious"))
    assert (tmp_path / "precious" / "data.txt").read_text() == "keep me"
    assert not list(tmp_path.glob(".precious.*"))


# ----------------------------------------------------------------------------- motion quality


@pytest.fixture(scope="module")
def dances():
    """Three sequences per genre: music pieces 0, 2 and 5 (80..130 BPM; House 110..135)."""
    specs = [DanceSpec(g, dancer_seed=10 * gi + k, advanced=bool(k % 2), bpm=genre_tempo(g, music), seconds=6.0,
                       seed=1000 + 10 * gi + k)
             for gi, g in enumerate(GENRES) for k, music in enumerate((0, 2, 5))]
    return specs, synthesize_dances(specs, default_rest_joints(), 60.0)


@pytest.fixture(scope="module")
def studio():
    return synthesize_studio([StudioSpec(i, 12.0, 50 + i) for i in range(8)], default_rest_joints(), 25.0)


def _bone_lengths(joints: torch.Tensor) -> torch.Tensor:
    return (joints[..., 1:22, :] - joints[..., list(PARENTS[1:]), :]).norm(dim=-1)


def _planted_share(joints: torch.Tensor, fps: float, speed: float = 0.15) -> float:
    """Share of frames where some foot (its slower of ankle/toe) moves slower than `speed` m/s."""
    v = (joints[:, 1:, FOOT] - joints[:, :-1, FOOT]).norm(dim=-1) * fps
    left, right = v[..., :2].min(-1).values, v[..., 2:].min(-1).values
    return float((torch.minimum(left, right) < speed).float().mean())


def _heading_range(joints: torch.Tensor) -> torch.Tensor:
    across = (joints[..., 1, :] - joints[..., 2, :]) + (joints[..., 16, :] - joints[..., 17, :])
    ang = torch.atan2(across[..., 2], across[..., 0])
    step = torch.remainder(ang[:, 1:] - ang[:, :-1] + math.pi, 2 * math.pi) - math.pi
    total = step.cumsum(1)
    return total.max(1).values - total.min(1).values


@pytest.mark.parametrize("which", ["dances", "studio"])
def test_motions_look_like_people(which, dances, studio):
    motion = dances[1] if which == "dances" else studio
    joints = motion.joints[..., :22]
    bones = _bone_lengths(joints)
    assert (bones.std(dim=1) < 1e-4).all()                                   # rigid bones
    lowest_foot = joints[..., FOOT, 1].min(-1).values
    assert (lowest_foot.abs() < 0.03).float().mean() > 0.95                   # on the floor
    assert (joints[..., :, 1] > -0.02).all()                                   # nothing under it
    assert (joints[..., 15, 1] > joints[..., 0, 1] + 0.3).all()               # upright: head above pelvis
    assert _planted_share(joints, motion.fps) > 0.75                           # mostly planted feet
    travel = (joints[:, :, 0, [0, 2]] - joints[:, :1, 0, [0, 2]]).norm(dim=-1).max(1).values
    assert (travel > 0.3).float().mean() > 0.2 and travel.max() < 5.0          # some travel, on a stage
    assert (_heading_range(joints) > math.pi / 2).float().mean() > 0.2         # heading changes


def _dominant_hz(signal: torch.Tensor, fps: float) -> torch.Tensor:
    x = signal - signal.mean(-1, keepdim=True)
    spectrum = torch.fft.rfft(x, dim=-1).abs()
    freqs = torch.fft.rfftfreq(x.shape[-1], 1.0 / fps)
    return freqs[spectrum[..., 1:].argmax(-1) + 1]


def test_genres_differ_measurably(dances):
    specs, motion = dances
    joints = motion.joints[..., :22]
    rel_hands = joints[:, :, 20:22] - joints[:, :, :1]
    hand_speed = (rel_hands[:, 1:] - rel_hands[:, :-1]).norm(dim=-1).mean((1, 2)) * motion.fps   # (B,)
    genre = torch.tensor([GENRES.index(s.genre) for s in specs])
    per_genre = torch.stack([hand_speed[genre == g].mean() for g in range(len(GENRES))])
    assert per_genre[GENRES.index("gWA")] > 2.0 * per_genre[GENRES.index("gJB")]   # waacking arms vs ballet
    assert per_genre.max() > 3.0 * per_genre.min()
    # Middle hip-hop bounces on the beat: the pelvis height's dominant frequency follows the tempo.
    mh = [i for i, s in enumerate(specs) if s.genre == "gMH"]
    dom = _dominant_hz(joints[mh, :, 0, 1], motion.fps)
    beat_hz = torch.tensor([specs[i].bpm / 60.0 for i in mh], dtype=dom.dtype)
    assert torch.allclose(dom, beat_hz, atol=0.2), (dom, beat_hz)
    # Ballet jazz turns far more than popping.
    turns = _heading_range(joints)
    assert turns[genre == GENRES.index("gJB")].mean() > 2.0 * turns[genre == GENRES.index("gPO")].mean()


def test_studio_is_calmer_than_dance(dances, studio):
    def hand_speed(m):
        rel = m.joints[:, :, 20:22] - m.joints[:, :, :1]
        return float((rel[:, 1:] - rel[:, :-1]).norm(dim=-1).mean() * m.fps)

    assert hand_speed(studio) < hand_speed(dances[1])
    assert _planted_share(studio.joints, studio.fps) > 0.85
    heights = studio.joints[:, :, 15, 1].max(1).values
    assert heights.std() > 0.01                                                # performers differ in size


def test_each_sequence_depends_only_on_its_spec():
    rest = default_rest_joints()
    spec = DanceSpec("gKR", dancer_seed=3, advanced=True, bpm=90.0, seconds=3.0, seed=7)
    other = DanceSpec("gHO", dancer_seed=4, advanced=False, bpm=120.0, seconds=5.0, seed=8)
    alone = synthesize_dances([spec], rest, 60.0).sequence(0)[2]
    batched = synthesize_dances([other, spec], rest, 60.0).sequence(1)[2]
    assert torch.allclose(alone, batched, atol=1e-5)


# ----------------------------------------------------------------------------- clips for tests and benchmarks


def test_clips_have_the_asked_length_and_stand_on_the_floor():
    from flowmimic.demo.clips import dance_clips, studio_clips

    for motion in (dance_clips(3, 7, fps=20.0, seed=1), studio_clips(2, 9, fps=25.0, seed=1)):
        b, t = motion.poses.shape[:2]
        assert motion.lengths.tolist() == [t] * b and motion.joints.shape == (b, t, 24, 3)
        feet = motion.joints[..., FOOT, 1]
        assert feet.min(dim=-1).values.abs().max() < 1e-4                  # lowest foot joint on y = 0
    assert dance_clips(3, 7).lengths.tolist() == [7, 7, 7] and studio_clips(1, 30, fps=60.0).fps == 60.0


def test_clips_are_deterministic_and_follow_the_genres():
    from flowmimic.demo.clips import dance_clips

    a, b, c = dance_clips(2, 40, seed=3), dance_clips(2, 40, seed=3), dance_clips(2, 40, seed=4)
    assert torch.equal(a.joints, b.joints) and not torch.allclose(a.joints, c.joints)
    krump, ballet = dance_clips(2, 60, genres=["gKR", "gJB"], seed=0), dance_clips(2, 60, genres=["gJB", "gKR"], seed=0)
    assert not torch.allclose(krump.joints[0], ballet.joints[0])
    with pytest.raises(ValueError, match="genres"):
        dance_clips(2, 10, genres=["gBR"])
    with pytest.raises(ValueError, match="at least 2 frames"):
        dance_clips(1, 1)
