"""Issue 18, first part: per-batch augmentation on uint8 tensors, and label smoothing, each against an independent
NumPy version written from its definition with the same random draws."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import cnnlab
from cnnlab.errors import InputError
from cnnlab.train import augment
from cnnlab.train.loop import TrainingInterrupted, loss_of
from cnnlab.train.progress import SilentReporter

IMAGES = np.random.default_rng(0).integers(1, 256, (6, 9, 11, 2), dtype=np.uint8)  # no zero pixel: holes show


def _draws(seed, n, *highs):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(h, (n,), generator=g).numpy() for h in highs]


def test_shift_is_a_zero_padded_crop_at_the_drawn_offsets():
    s = 2
    out = augment.apply(torch.from_numpy(IMAGES), augment.parse(f"shift={s}"), torch.Generator().manual_seed(5))
    dy, dx = _draws(5, len(IMAGES), 2 * s + 1, 2 * s + 1)
    for i, image in enumerate(IMAGES):
        padded = np.pad(image, ((s, s), (s, s), (0, 0)))
        np.testing.assert_array_equal(out[i].numpy(), padded[dy[i] : dy[i] + 9, dx[i] : dx[i] + 11])
    assert out.dtype == torch.uint8 and len(set(zip(dy, dx, strict=True))) > 1  # not all the same offset


def test_flip_mirrors_the_drawn_half():
    out = augment.apply(torch.from_numpy(IMAGES), augment.parse("flip"), torch.Generator().manual_seed(3))
    (flips,) = _draws(3, len(IMAGES), 2)
    for i, image in enumerate(IMAGES):
        np.testing.assert_array_equal(out[i].numpy(), image[:, ::-1] if flips[i] else image)
    assert 0 < flips.sum() < len(IMAGES)


def test_erase_zeroes_a_square_of_half_the_side_around_the_drawn_centre():
    out = augment.apply(torch.from_numpy(IMAGES), augment.parse("erase=1"), torch.Generator().manual_seed(9)).numpy()
    g = torch.Generator().manual_seed(9)
    torch.rand(len(IMAGES), generator=g)  # the draws of "whether": all chosen at erase=1
    cy = torch.randint(9, (len(IMAGES),), generator=g).numpy()
    cx = torch.randint(11, (len(IMAGES),), generator=g).numpy()
    side = 4  # min(9, 11) // 2
    for i, image in enumerate(IMAGES):
        expected = image.copy()
        top, left = cy[i] - side // 2, cx[i] - side // 2
        expected[max(top, 0) : max(top + side, 0), max(left, 0) : max(left + side, 0)] = 0
        np.testing.assert_array_equal(out[i], expected)
    none = augment.apply(torch.from_numpy(IMAGES), augment.parse("erase=0"), torch.Generator().manual_seed(9))
    np.testing.assert_array_equal(none.numpy(), IMAGES)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shift=-1", "cannot read 'shift=-1'"),
        ("erase=2", "cannot read 'erase=2'"),
        ("flip=1", "cannot read 'flip=1'"),
        ("rotate=10", "cannot read 'rotate=10'"),
    ],
)
def test_bad_augment_options_are_one_clear_line(text, message):
    with pytest.raises(InputError, match=message):
        cnnlab.train.TrainConfig(augment=text)


def test_flip_is_refused_for_digits(tmp_path):
    with pytest.raises(InputError, match="changes a digit's class"):
        cnnlab.train(data="digits", augment="flip", epochs=1, out=str(tmp_path / "r"), verbose=False)


def test_label_smoothing_is_the_cross_entropy_against_smoothed_targets():
    rng = np.random.default_rng(1)
    logits, y = rng.normal(size=(5, 4)), rng.integers(0, 4, 5)
    e = 0.1
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    target = np.full((5, 4), e / 4) + (1 - e) * np.eye(4)[y]
    expected = -(target * logp).sum(1).mean()
    got = loss_of(torch.tensor(logits), torch.tensor(y), False, e)
    assert float(got) == pytest.approx(expected, rel=1e-12)
    probs = np.exp(logp)  # a model that ends in softmax gives the same loss
    assert float(loss_of(torch.tensor(probs), torch.tensor(y), True, e)) == pytest.approx(expected, rel=1e-9)
    assert float(loss_of(torch.tensor(logits), torch.tensor(y), False)) == pytest.approx(
        -logp[np.arange(5), y].mean(), rel=1e-12
    )


class StopAt(SilentReporter):
    def start_epoch(self, epoch, epochs, batches):
        self.current = epoch

    def update(self, done, loss, acc):
        if self.current == 2 and done > 1:
            raise KeyboardInterrupt


def test_augmented_training_is_recorded_and_resumes_to_the_same_weights(tmp_path):
    """The draws come from (seed, epoch): a run interrupted in epoch 2 and resumed ends with the weights of one
    that was not interrupted."""
    opts = dict(data="digits", model="seed-fashion", epochs=2, batch_size=64, seed=3, verbose=False)
    opts |= dict(augment="shift=1,erase=0.5", label_smoothing=0.1)
    straight = cnnlab.train(out=str(tmp_path / "a"), **opts)
    with pytest.raises(TrainingInterrupted):
        cnnlab.train(out=str(tmp_path / "b"), reporter=StopAt(), **opts)
    cnnlab.train(resume=tmp_path / "b", verbose=False)
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved = json.loads((tmp_path / "a" / "config.json").read_text())["config"]
    assert (saved["augment"], saved["label_smoothing"]) == ("shift=1,erase=0.5", 0.1)
    plain = cnnlab.train(out=str(tmp_path / "c"), **{**opts, "augment": None})
    assert plain.metrics[-1]["loss"] != straight.metrics[-1]["loss"]  # the augmentation did change the batches


def test_data_show_draws_augmented_samples(tmp_path, real_data):
    from typer.testing import CliRunner

    from cnnlab.cli import app

    out = tmp_path / "grid.png"
    r = CliRunner().invoke(app, ["data", "show", "fashion-mnist", "--n", "8", "--augment", "shift=3,flip,erase=1",
                                 "-o", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert Image.open(out).size[0] > 100
    plain = tmp_path / "plain.png"
    assert CliRunner().invoke(app, ["data", "show", "fashion-mnist", "--n", "8", "-o", str(plain)]).exit_code == 0
    assert np.asarray(Image.open(out)).tolist() != np.asarray(Image.open(plain)).tolist()
    r = CliRunner().invoke(app, ["data", "show", "mnist", "--augment", "flip", "-o", str(out)])
    assert r.exit_code == 2 and "changes a digit's class" in r.output


def test_the_moving_average_of_constant_weights_is_those_weights_and_follows_the_definition():
    from cnnlab.nn import Dense, Flatten, Input, Sequential
    from cnnlab.train.loop import _averaged

    net = Sequential([Input((2, 2, 1)), Flatten(), Dense(3)])
    ema = _averaged(net, 0.9)
    for _ in range(5):
        ema.update_parameters(net)
    for a, b in zip(ema.module.parameters(), net.parameters(), strict=True):
        assert torch.equal(a, b)
    before = [p.detach().clone() for p in net.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema.update_parameters(net)
    for avg, old, new in zip(ema.module.parameters(), before, net.parameters(), strict=True):
        torch.testing.assert_close(avg, 0.9 * old + 0.1 * new.detach())


def test_warmup_rises_linearly_then_the_cosine_runs_over_the_rest():
    cfg = cnnlab.train.TrainConfig(lr=0.01, epochs=4, warmup=1, lr_schedule="cosine")
    steps = 40  # 10 an epoch: the first 10 warm up
    assert [cfg.lr_at(s, steps) for s in range(3)] == pytest.approx([0.001, 0.002, 0.003])
    assert cfg.lr_at(9, steps) == pytest.approx(0.01)
    assert cfg.lr_at(10, steps) == pytest.approx(0.01)  # the cosine's start
    assert cfg.lr_at(25, steps) == pytest.approx(0.01 * 0.5 * (1 + np.cos(np.pi * 15 / 30)))
    with pytest.raises(InputError, match="warmup=4"):
        cnnlab.train.TrainConfig(epochs=4, warmup=4)


def test_a_run_with_ema_evaluates_and_saves_the_average_and_resumes_exactly(tmp_path):
    opts = dict(data="digits", model="seed-fashion", epochs=2, batch_size=64, seed=2, ema=0.9, warmup=0.5)
    straight = cnnlab.train(out=str(tmp_path / "a"), verbose=False, **opts)
    with pytest.raises(TrainingInterrupted):
        cnnlab.train(out=str(tmp_path / "b"), reporter=StopAt(), verbose=False, **opts)
    cnnlab.train(resume=tmp_path / "b", verbose=False)
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    state = torch.load(tmp_path / "a" / "state.pt", weights_only=True)
    saved = {k: v for k, v in state["ema"].items() if k.startswith("module.")}
    assert all(torch.equal(a[k.removeprefix("module.")], v) for k, v in saved.items())  # the average is saved
    assert any(not torch.equal(state["model"][k], a[k]) for k in a)  # and it is not the trained weights
    ds = cnnlab.data.load("digits")
    accuracy = (straight.predict(ds.test.x).argmax(1) == ds.test.y).mean()
    assert accuracy == pytest.approx(straight.metrics[-1]["test_accuracy"], abs=0.02)  # evaluated on the average


def test_flip_tta_averages_the_probabilities_of_each_image_and_its_mirror(runs_root, real_data):
    from typer.testing import CliRunner

    from cnnlab.cli import app
    from cnnlab.nn import Conv2D, Dense, Flatten, Input, Sequential
    from cnnlab.train.evaluate import evaluate

    torch.manual_seed(0)
    model = Sequential([Input((5, 6, 1)), Conv2D(3, 3), Flatten(), Dense(4)])
    x = np.random.default_rng(2).integers(0, 256, (7, 5, 6, 1), dtype=np.uint8)
    y = np.arange(7) % 4
    ev = evaluate(model, x, y, "abcd", tta="flip", optimize=False)
    with torch.no_grad():

        def probs(images):
            return torch.softmax(model(torch.tensor(images / 255.0, dtype=torch.float32).permute(0, 3, 1, 2)), 1)

        expected = ((probs(x) + probs(x[:, :, ::-1].copy())) / 2).numpy()
    np.testing.assert_allclose(ev.probabilities, expected, rtol=1e-5, atol=1e-7)
    assert ev.accuracy == pytest.approx((expected.argmax(1) == y).mean())
    plain = evaluate(model, x, y, "abcd", optimize=False)
    assert not np.allclose(plain.probabilities, ev.probabilities)
    r = CliRunner().invoke(app, ["eval", str(runs_root / "mnist"), "--tta", "flip", "-o", "/nonexistent-unused"])
    assert r.exit_code == 2 and "changes a digit's class" in r.output
