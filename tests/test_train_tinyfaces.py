"""benchmark/train_tinyfaces.py: template-wise targets by hand, balanced sampling, the loss goes down, exact resume, real
WIDER train data with a held-out split, validation, time budget and weights-only continuation,
DDP, export that the task's loader reads."""
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import torch

from benchmark import train_tinyfaces as T
from benchmark.errors import InputError
from models.tiny_faces import OFFSET, STRIDE, TEMPLATES, load_tiny_faces, tiny_faces_resnet18


def test_targets_of_one_template_at_one_position_by_hand():
    """A face exactly the size of template 9 (41 x 46 px with +1 areas), centred on cell (4, 4)."""
    t = TEMPLATES[9]
    cx = cy = OFFSET + STRIDE * 4  # 31
    assert cx == 31 and t[2] - t[0] + 1 == 41 and t[3] - t[1] + 1 == 46
    face = np.array([[cx + t[0], cy + t[1], cx + t[2], cy + t[3]]])  # 11, 8.5, 51, 53.5
    labels, reg = T.targets(face, (0, 0, 64, 64), (8, 8), np.random.default_rng(0))
    assert labels.shape == (25, 8, 8) and reg.shape == (100, 8, 8)
    assert labels[9, 4, 4] == 1 and np.allclose(reg[[9, 34, 59, 84], 4, 4], 0)
    # one cell to the right: the template moves 8 px, IoU = 33*46 / (2*41*46 - 33*46) = 33/49 = 0.673: ignored
    assert T.dense_iou(face, (8, 8))[4, 5, 9, 0] == pytest.approx(33 / 49)
    assert labels[9, 4, 5] == 0 and reg[9, 4, 5] == pytest.approx(-8 / 41)
    # three cells to the right: IoU = 17/65 < 0.3: negative
    assert T.dense_iou(face, (8, 8))[4, 7, 9, 0] == pytest.approx(17 / 65) and labels[9, 4, 7] == -1
    # the log-size targets of template 8 (44 x 56.2 px) for the same face
    t8 = TEMPLATES[8]
    assert reg[50 + 8, 4, 4] == pytest.approx(np.log(41 / (t8[2] - t8[0] + 1)))
    assert reg[75 + 8, 4, 4] == pytest.approx(np.log(46 / (t8[3] - t8[1] + 1)))
    # where the pasted image ends at x = 40, the same template at cell (4, 4) sticks out: ignored, not positive
    labels, _ = T.targets(face, (0, 0, 40, 64), (8, 8), np.random.default_rng(0))
    assert labels[9, 4, 4] == 0


def test_dense_iou_matches_the_ports_loop():
    rng = np.random.default_rng(3)
    boxes = np.sort(rng.uniform(0, 60, (3, 2, 2)), axis=1).transpose(0, 2, 1).reshape(3, 4)[:, [0, 2, 1, 3]]
    heat = (5, 6)
    iou = T.dense_iou(boxes, heat)
    for y, x, t, g in [(0, 0, 24, 0), (2, 3, 9, 1), (4, 5, 0, 2), (1, 4, 20, 2)]:
        c = (OFFSET + STRIDE * x, OFFSET + STRIDE * y)
        tb = TEMPLATES[t, :4] + [c[0], c[1], c[0], c[1]]
        b = boxes[g]
        iw = min(tb[2], b[2]) - max(tb[0], b[0]) + 1
        ih = min(tb[3], b[3]) - max(tb[1], b[1]) + 1
        inter = iw * ih if iw > 0 and ih > 0 else 0
        union = (tb[2] - tb[0] + 1) * (tb[3] - tb[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
        assert iou[y, x, t, g] == pytest.approx(inter / union)


def test_balanced_sampling_keeps_at_most_128_of_each():
    labels = np.full((25, 20, 20), -1.0)
    labels.reshape(-1)[:300] = 1
    labels.reshape(-1)[300:350] = 0
    out = T.balance(labels, np.random.default_rng(0))
    assert (out == 1).sum() == 128 and (out == -1).sum() == 128
    assert np.all(out[labels == 0] == 0)


def test_training_crops_keep_faces_inside_and_are_a_function_of_the_seed():
    a = T.sample_crop(np.random.default_rng([5, 0, 7]), 128)
    b = T.sample_crop(np.random.default_rng([5, 0, 7]), 128)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    img, boxes, paste = a
    assert img.shape == (128, 128, 3) and len(boxes)
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2:] <= 127) and np.all(boxes[:, 2:] > boxes[:, :2])


def test_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    images, labels, regs = T.sample_batch(np.random.default_rng(11), 2, 64)
    model = tiny_faces_resnet18()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(8):
        loss = T.detection_loss(model(images), labels, regs, np.random.default_rng(0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def run(out, iters, extra=()):
    return T.main(["--out", str(out), "--iters", str(iters), "--batch", "2", "--crop", "64", "--warmup", "2",
                   "--cosine-iters", "6", "--save-every", "1", "--threads", "1", "--device", "cpu", *extra])


def losses(out):
    return [float(line.split("\t")[1]) for line in (out / "log.tsv").read_text().splitlines()]


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    assert run(tmp_path / "straight", 4) == 0
    assert run(tmp_path / "resumed", 2) == 0
    assert run(tmp_path / "resumed", 4, ["--export", str(tmp_path / "w.safetensors")]) == 0
    a = torch.load(tmp_path / "straight/last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed/last.pt", weights_only=True)
    assert a["iteration"] == b["iteration"] == 4
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert losses(tmp_path / "straight") == losses(tmp_path / "resumed")
    exported = load_tiny_faces(tmp_path / "w.safetensors")  # float16 file, read by the task's loader
    for key, value in exported.state_dict().items():
        expected = b["model"][key].half().float() if value.is_floating_point() else b["model"][key]
        assert torch.equal(value, expected), key


def test_bad_settings_and_junk_checkpoint_are_one_line_errors(tmp_path, capsys):
    assert run(tmp_path / "a", 1, ["--crop", "60"]) == 2
    assert "--crop 60 is not a multiple of the stride 8" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "last.pt").write_bytes(b"junk")
    assert run(tmp_path / "b", 1) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tmp_path / 'b' / 'last.pt'}: cannot resume") and "\n" not in err
    with pytest.raises(InputError):
        load_tiny_faces(tmp_path / "b" / "last.pt")


def test_frozen_stages_stay_as_they_start_and_the_rest_trains(tmp_path):
    """--frozen-stages 2 of the r18 (stem + layer1): weights and batch-norm statistics bit-identical after training
    in channels_last, layer2 changed; a count above the trunk's stages is a one-line error."""
    init = tmp_path / "init.safetensors"
    assert run(tmp_path / "a", 1, ["--export", str(init)]) == 0
    assert run(tmp_path / "b", 3, ["--init-weights", str(init), "--frozen-stages", "2", "--channels-last"]) == 0
    start, after = load_tiny_faces(init).state_dict(), torch.load(tmp_path / "b/last.pt", weights_only=True)["model"]
    frozen = ("model.conv1.", "model.bn1.", "model.layer1.")
    assert all(torch.equal(after[k].float(), start[k].float()) for k in start if k.startswith(frozen))
    assert not torch.equal(after["model.layer2.0.conv1.weight"].float(), start["model.layer2.0.conv1.weight"])
    assert not torch.equal(after["model.layer2.0.bn1.running_mean"], start["model.layer2.0.bn1.running_mean"])
    assert run(tmp_path / "c", 1, ["--frozen-stages", "5"]) == 2


def test_torchrun_ddp_two_cpu_ranks(tmp_path):
    """Two gloo ranks train together; rank 0 writes the checkpoint and the log."""
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
         "benchmark.train_tinyfaces", "--out", str(tmp_path), "--iters", "2", "--batch", "2", "--crop", "64",
         "--save-every", "1", "--threads", "1", "--device", "cpu"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["iteration"] == 2
    assert len(losses(tmp_path)) == 2


def test_targets_decode_back_to_the_faces():
    """Positive labels with their regression targets, fed through the detector's decoding, give back the faces
    (decoded boxes span the face's pixel edges: x1 - 0.5 .. x2 + 0.5)."""
    from models.tiny_faces import decode

    for it in range(20):  # the first crop with a positive (faces of 4 px, at scale 0.5, match no template)
        img, boxes, paste = T.sample_crop(np.random.default_rng([2, 0, it]), 128)
        labels, reg = T.targets(boxes, paste, (16, 16), np.random.default_rng(0))
        if (labels == 1).any():
            break
    score = torch.from_numpy(np.concatenate([np.where(labels == 1, 10.0, -10.0), reg])).float()
    decoded, _ = decode(score, 1.0, np.arange(25))
    assert len(decoded)
    edges = np.hstack([boxes[:, :2] - 0.5, boxes[:, 2:] + 0.5])
    err = np.abs(decoded[:, None, :] - edges[None]).max(axis=2).min(axis=1)
    assert err.max() < 1e-3


def wider_train_folder(root, n=12):
    """A WIDER-train-layout folder of `n` noise images, image k with one k+20 px face at (5, 6)."""
    lines = []
    rng = np.random.default_rng(0)
    for k in range(n):
        (root / "images" / "0--Event").mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((80, 90, 3)) * 255).astype(np.uint8)).save(root / f"images/0--Event/im_{k}.jpg")
        lines += [f"0--Event/im_{k}.jpg", "1", f"5 6 {k + 20} {k + 20} 0 0 0 0 0 0 "]
    (root / "wider_face_train_bbx_gt.txt").write_text("\n".join(lines) + "\n")
    return root


def test_wider_train_holds_every_tenth_image_out_and_converts_boxes(tmp_path):
    wider = T.read_wider_train(wider_train_folder(tmp_path))
    assert [s.path.name for s in wider.train] == [f"im_{k}.jpg" for k in range(12) if k != 9]
    assert wider.val.image_ids == ["0--Event/im_9"] and wider.val.keep["hard"][0].tolist() == [0]
    assert wider.train[0].boxes.tolist() == [[5, 6, 24, 25]]  # x, y, w, h = 5, 6, 20, 20 -> inclusive corners
    a = T.sample_crop(np.random.default_rng([1, 0, 3]), 64, wider.train, 1.0)
    b = T.sample_crop(np.random.default_rng([1, 0, 3]), 64, wider.train, 1.0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    crops = [T.sample_crop(np.random.default_rng([1, 0, i]), 64, wider.train, 1.0)[1] for i in range(20)]
    assert sum(map(len, crops)) >= 5 and all(np.all((c >= 0) & (c <= 63)) for c in crops)
    with pytest.raises(InputError, match="expected images/"):
        T.read_wider_train(tmp_path / "images")


def test_real_wider_train_split_is_disjoint(shared_data):
    wider = T.read_wider_train(shared_data / "widerface_train")
    train_ids = {f"{s.path.parent.name}/{s.path.stem}" for s in wider.train}
    assert len(train_ids) + len(wider.val) == 269 and not train_ids & set(wider.val.image_ids)
    assert wider.val.num_faces("hard") > 100


def test_real_data_run_validates_stops_on_time_and_continues_from_weights(tmp_path):
    folder = wider_train_folder(tmp_path / "wider")
    assert run(tmp_path / "a", 2, ["--wider-train", str(folder), "--val-every", "1", "--val-images", "1",
                                   "--export", str(tmp_path / "a.safetensors")]) == 0
    log = (tmp_path / "a/log.tsv").read_text()
    assert log.count("# val ") == 2 and "ap_hard=" in log
    assert run(tmp_path / "b", 50, ["--init-weights", str(tmp_path / "a.safetensors"), "--max-minutes",
                                    "0.00001"]) == 0
    assert torch.load(tmp_path / "b/last.pt", weights_only=True)["iteration"] == 1  # stopped after one step
    with pytest.raises(SystemExit):  # argparse: one usage line, exit 2
        run(tmp_path / "f", 1, ["--max-minutes", "0"])
    assert run(tmp_path / "c", 1, ["--arch", "resnet34", "--init-weights", str(tmp_path / "a.safetensors")]) == 2
    assert run(tmp_path / "d", 1, ["--real-fraction", "2", "--wider-train", str(folder)]) == 2
    assert run(tmp_path / "e", 1, ["--init-trunk", "craft"]) == 2  # a VGG16-BN trunk for a ResNet-18
