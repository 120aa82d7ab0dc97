"""Dataset adapters on small generated trees (no MediaPipe here)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.layouts import (
    DatasetLayoutError,
    FrameReadError,
    Tracklet,
    estimated_frame_count,
    iter_frames,
    load_tracklets,
    read_frames,
)
from pipeline.layouts.vccr import parse_frame_name


def write_image(path: Path, value: int = 0, size=(8, 6)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*size, 3), value, np.uint8))


def write_split(root: Path, name: str, lines: list[str]) -> None:
    (root / f"{name}.txt").write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------ CCVID


@pytest.fixture
def ccvid_root(tmp_path):
    root = tmp_path / "ccvid"
    for path in ["session1/001_01", "session2/001_05", "session3/001_02", "session1/002_03"]:
        for name in ["00002.jpg", "00010.jpg", "00001.jpg"]:
            write_image(root / path / name)
        (root / path / "gt_joints14.npy").write_bytes(b"not a frame")
    (root / "session2/002_07").mkdir(parents=True)  # empty folder
    write_split(root, "train", ["session1/001_01 001 u0", "session1/002_03 002 u0"])
    write_split(root, "query", ["session2/001_05 001 u1", "session2/002_07 002 u1"])
    write_split(
        root, "gallery", ["session3/001_02 001 u0", "session3/003_01 003 u0", "garbage line"]
    )
    return root


def test_ccvid_camera_clothes_split_and_frame_order(ccvid_root):
    tracklets, _ = load_tracklets("ccvid", ccvid_root)
    by_key = {t.key: t for t in tracklets}
    assert list(by_key) == [
        "session1/001_01",
        "session1/002_03",
        "session2/001_05",
        "session3/001_02",
    ]
    assert [by_key[k].split for k in by_key] == ["train", "train", "query", "gallery"]
    # camera = number after the first '_', plus 12 in session3
    assert [by_key[k].camera for k in by_key] == [1, 3, 5, 2 + 12]
    # clothes = (pid, label): same label of two people differs; query/gallery share the mapping
    assert by_key["session1/001_01"].clothes == "001/u0" != by_key["session1/002_03"].clothes
    assert by_key["session3/001_02"].clothes == by_key["session1/001_01"].clothes
    assert by_key["session2/001_05"].clothes == "001/u1"
    frames = by_key["session1/001_01"].frames
    assert [Path(f).name for f in frames] == ["00001.jpg", "00002.jpg", "00010.jpg"]
    assert all(Path(f).is_absolute() for f in frames)
    assert by_key["session1/001_01"].source == str(ccvid_root / "session1/001_01")


def test_ccvid_bad_lines_become_failures(ccvid_root):
    _, failures = load_tracklets("ccvid", ccvid_root)
    reasons = {(f.reason, Path(f.path).name if f.key else "") for f in failures}
    assert ("empty folder", "002_07") in reasons
    assert ("missing folder", "003_01") in reasons
    assert any(
        f.reason == "malformed split line" and f.path.endswith("gallery.txt:3") for f in failures
    )
    assert len(failures) == 3


@pytest.mark.parametrize("make", ["missing", "no_split_files"])
def test_ccvid_wrong_root_prints_expected_tree(tmp_path, make):
    root = tmp_path / "nowhere"
    if make == "no_split_files":
        (root / "session1").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError) as error:
        load_tracklets("ccvid", root)
    message = str(error.value)
    assert str(root) in message and "train.txt" in message and "session1/001_01" in message


def test_unknown_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetLayoutError, match="ccvid, vccr, folder"):
        load_tracklets("market", tmp_path)


# ------------------------------------------------------------------------------------- VCCR


def write_vccr_tracklet(folder: Path, pid: str, cam: int, clothes: int, frames: list[str]) -> None:
    for frame in frames:
        write_image(folder / f"{pid}-c{cam}-o{clothes}-f{frame}.jpg")


@pytest.fixture
def vccr_root(tmp_path):
    root = tmp_path / "data" / "VCCR"
    write_vccr_tracklet(root / "train/0001/t01", "0001", 3, 2, ["9", "10", "11"])  # 3 frames: kept
    write_vccr_tracklet(
        root / "test_qg/query/0002/4/t07", "0002", 4, 1, [f"{i:03d}" for i in range(8)]
    )
    write_vccr_tracklet(
        root / "test_qg/query/0002/4/t08", "0002", 4, 1, [f"{i:03d}" for i in range(7)]
    )
    write_vccr_tracklet(
        root / "test_qg/gallery/0002/5/t09", "0002", 5, 2, [f"{i:03d}" for i in range(9)]
    )
    (root / "test_qg/gallery/0002/5/t10").mkdir(parents=True)  # empty
    return root


def test_vccr_file_name_fields():
    assert parse_frame_name("0001-c12-o3-f000042.jpg") == (12, "3", "000042")
    assert parse_frame_name("0001-c2-oA-x-f7.png") == (2, "A", "7")
    for bad in ["0001_c1_o1_f1.jpg", "0001-cX-o1-f1.jpg", "0001-c1-o1.jpg"]:
        with pytest.raises(ValueError):
            parse_frame_name(bad)


def test_vccr_tree_is_the_split(vccr_root):
    tracklets, failures = load_tracklets("vccr", vccr_root.parent)  # the folder holding VCCR/ works
    by_key = {t.key: t for t in tracklets}
    assert set(by_key) == {
        "train/0001/t01",
        "query/0002/4/t07",
        "gallery/0002/5/t09",
    }  # t08 < 8 frames
    train = by_key["train/0001/t01"]
    assert (train.pid, train.camera, train.clothes, train.split) == ("0001", 3, "0001/2", "train")
    # frame key sorted as a string: "10" < "11" < "9"
    assert [Path(f).name.split("-f")[1] for f in train.frames] == ["10.jpg", "11.jpg", "9.jpg"]
    gallery = by_key["gallery/0002/5/t09"]
    assert (gallery.camera, gallery.clothes, gallery.split) == (5, "0002/2", "gallery")
    assert by_key["query/0002/4/t07"].clothes != gallery.clothes
    assert [(f.reason, Path(f.path).name) for f in failures] == [("empty folder", "t10")]


def test_vccr_wrong_layout_prints_expected_tree(tmp_path, vccr_root):
    write_image(vccr_root / "train/0003/t01/frame_0001.jpg")
    with pytest.raises(DatasetLayoutError) as error:
        load_tracklets("vccr", vccr_root)
    assert "frame_0001.jpg" in str(error.value) and "test_qg/query/<pid>/<cam>" in str(error.value)
    with pytest.raises(DatasetLayoutError, match="test_qg/query"):
        load_tracklets("vccr", tmp_path)


# ----------------------------------------------------------------------------------- folder


def write_video(path: Path, count: int, size=(32, 24)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (size[1], size[0]))
    assert writer.isOpened()
    for i in range(count):
        writer.write(np.full((*size, 3), 20 * i, np.uint8))
    writer.release()


@pytest.fixture
def folder_root(tmp_path):
    root = tmp_path / "own"
    write_video(root / "cam1/alice.avi", 5)
    for name in ["b.png", "a.png"]:
        write_image(root / "bob_frames" / name)
    (root / "notes.txt").write_text("not a video")
    (root / "manifest.csv").write_text(
        "path,pid,clothes,camera,split\n"
        "cam1/alice.avi,alice,coat,1,query\n"
        "bob_frames,bob,shirt,2,gallery\n"
        "missing.mp4,carol,dress,3,train\n"
        "notes.txt,dan,hat,4,train\n"
        "bob_frames,bob,shirt,x,train\n"
        "bob_frames,bob,shirt,2,validation\n"
    )
    return root


def test_folder_manifest_videos_and_frame_folders(folder_root):
    tracklets, failures = load_tracklets("folder", folder_root)
    alice, bob = tracklets
    assert (alice.key, alice.frames, alice.pid, alice.clothes, alice.camera, alice.split) == (
        "cam1/alice.avi",
        (),
        "alice",
        "alice/coat",
        1,
        "query",
    )
    assert alice.video == str(folder_root / "cam1/alice.avi")
    assert [Path(f).name for f in bob.frames] == ["a.png", "b.png"] and bob.video == ""
    assert [f.reason for f in failures] == [
        "missing folder",
        "not a video or frame folder",
        "malformed manifest row",
        "malformed manifest row",
    ]
    assert estimated_frame_count(alice) == 5 and estimated_frame_count(bob) == 2


def test_folder_reads_video_frames_by_index(folder_root):
    (alice, _), _ = load_tracklets("folder", folder_root)
    frames = read_frames(alice, [4, 1, 1])
    assert [f.shape for f in frames] == [(32, 24, 3)] * 3
    assert frames[0].mean() > frames[1].mean()  # frame 4 is brighter than frame 1
    assert len(read_frames(alice)) == 5
    with pytest.raises(IndexError):
        read_frames(alice, [5])


def test_a_manifest_saved_with_a_byte_order_mark_is_read(folder_root):
    # Spreadsheet programs save "UTF-8 CSV" with a BOM; it used to become part of "path".
    manifest = folder_root / "manifest.csv"
    manifest.write_bytes(b"\xef\xbb\xbf" + manifest.read_bytes())
    tracklets, _ = load_tracklets("folder", folder_root)
    assert [t.key for t in tracklets] == ["cam1/alice.avi", "bob_frames"]


def test_folder_manifest_problems(tmp_path, folder_root):
    with pytest.raises(DatasetLayoutError, match="manifest .* does not exist"):
        load_tracklets("folder", tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("file,person\nx,y\n")
    with pytest.raises(DatasetLayoutError, match="path,pid,clothes,camera,split"):
        load_tracklets("folder", folder_root, bad)


# ------------------------------------------------------------------------------ read_frames


def test_read_frames_replaces_an_unreadable_frame_by_the_nearest(tmp_path):
    folder = tmp_path / "t"
    for i in range(4):
        write_image(folder / f"{i}.jpg", value=60 * i)
    (folder / "1.jpg").write_bytes(b"")  # zero-byte
    (folder / "2.jpg").write_bytes(b"\xff\xd8 garbage")  # corrupt
    tracklet = Tracklet(
        "t", tuple(str(folder / f"{i}.jpg") for i in range(4)), "", "p", "p/c", 1, "train"
    )
    frames = read_frames(tracklet)
    assert [int(round(f.mean())) for f in frames] == [0, 0, 180, 180]
    with pytest.raises(FrameReadError, match="1.jpg"):
        read_frames(tracklet, [1], on_unreadable="raise")
    for i in (0, 3):
        (folder / f"{i}.jpg").write_bytes(b"")
    with pytest.raises(FrameReadError, match="no frame"):
        read_frames(tracklet, [0])


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_truncated_image_is_an_unreadable_frame(tmp_path, suffix):
    # A JPEG cut to a third decoded (with a warning only) into a picture 62 % grey, and passed.
    folder = tmp_path / "t"
    folder.mkdir()
    frames = tuple(str(folder / f"{i}{suffix}") for i in range(3))
    for i, path in enumerate(frames):  # textured, so a third of the file is a third of the picture
        cv2.imwrite(path, np.random.default_rng(i).integers(0, 255, (96, 64, 3), dtype=np.uint8))
    whole = Path(frames[1]).read_bytes()
    Path(frames[1]).write_bytes(whole[: len(whole) // 3])
    tracklet = Tracklet("t", frames, "", "p", "p/c", 1, "train")
    assert [frame is None for _, frame in iter_frames(tracklet)] == [False, True, False]
    with pytest.raises(FrameReadError, match=f"1{suffix}"):
        read_frames(tracklet, [1], on_unreadable="raise")
    Path(frames[1]).write_bytes(whole + b"\0" * 16)  # zero padding after the end is fine
    assert all(frame is not None for _, frame in iter_frames(tracklet))
