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
from cnnlab.training import augment
from cnnlab.training.loop import TrainingInterrupted, loss_of
from cnnlab.training.progress import SilentReporter

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


def _turned(image: np.ndarray, degrees: float) -> np.ndarray:
    """NumPy, from the definition: output pixel centre p takes the bilinear value of the input at
    c + R(degrees) (p - c), c the image centre, R = [[cos, -sin], [sin, cos]] in (x right, y down) pixels;
    a neighbour outside the image counts as 0."""
    h, w, channels = image.shape
    t = np.deg2rad(degrees)
    out = np.zeros((h, w, channels))
    for i in range(h):
        for j in range(w):
            dx, dy = j + 0.5 - w / 2, i + 0.5 - h / 2
            sx = w / 2 + np.cos(t) * dx - np.sin(t) * dy - 0.5  # in pixel indices
            sy = h / 2 + np.sin(t) * dx + np.cos(t) * dy - 0.5
            x0, y0 = int(np.floor(sx)), int(np.floor(sy))
            for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
                for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                    if 0 <= yy < h and 0 <= xx < w:
                        out[i, j] += wy * wx * image[yy, xx]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def test_rotate_turns_about_the_centre_with_bilinear_sampling():
    out = augment.apply(torch.from_numpy(IMAGES), augment.parse("rotate=15"), torch.Generator().manual_seed(4))
    angles = (torch.rand(len(IMAGES), generator=torch.Generator().manual_seed(4)) * 2 - 1) * 15
    assert angles.abs().max() > 1  # real turns were drawn
    for i, image in enumerate(IMAGES):
        expected = _turned(image, float(angles[i]))
        assert np.abs(out[i].numpy().astype(int) - expected).max() <= 1  # float32 against float64 rounding
    square = IMAGES[:, :9, :9]
    quarter = augment.rotate(torch.from_numpy(np.ascontiguousarray(square)), torch.full((len(square),), 90.0))
    np.testing.assert_array_equal(quarter.numpy(), np.rot90(square, axes=(1, 2)))  # counter-clockwise as shown
    assert augment.parse("rotate=10,shift=1").text() == "shift=1,rotate=10"
    with pytest.raises(InputError, match="rotate=D"):
        augment.parse("rotate=200")


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
        ("rotate=-5", "cannot read 'rotate=-5'"),
        ("zoom=2", "cannot read 'zoom=2'"),
    ],
)
def test_bad_augment_options_are_one_clear_line(text, message):
    with pytest.raises(InputError, match=message):
        cnnlab.training.TrainConfig(augment=text)


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
    def start_epoch(self, epoch, epochs, batches, images=None):
        self.current = epoch

    def update(self, done, loss, acc):
        if self.current == 2 and done > 1:
            raise KeyboardInterrupt


def test_augmented_training_is_recorded_and_resumes_to_the_same_weights(tmp_path):
    """The draws come from (seed, epoch): a run interrupted in epoch 2 and resumed ends with the weights of one
    that was not interrupted."""
    opts = dict(data="digits", model="seed-fashion", epochs=2, batch_size=64, seed=3, verbose=False)
    opts |= dict(augment="shift=1,erase=0.5,rotate=10", label_smoothing=0.1, optimizer="adamw", weight_decay=0.05)
    opts |= dict(lr_schedule="onecycle", lr=3e-3)
    straight = cnnlab.train(out=str(tmp_path / "a"), **opts)
    with pytest.raises(TrainingInterrupted):
        cnnlab.train(out=str(tmp_path / "b"), reporter=StopAt(), **opts)
    cnnlab.train(resume=tmp_path / "b", verbose=False)
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved = json.loads((tmp_path / "a" / "config.json").read_text())["config"]
    assert (saved["augment"], saved["label_smoothing"]) == ("shift=1,erase=0.5,rotate=10", 0.1)
    assert (saved["optimizer"], saved["weight_decay"], saved["lr_schedule"]) == ("adamw", 0.05, "onecycle")
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
    from cnnlab.training.setup import _averaged

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
    cfg = cnnlab.training.TrainConfig(lr=0.01, epochs=4, warmup=1, lr_schedule="cosine")
    steps = 40  # 10 an epoch: the first 10 warm up
    assert [cfg.lr_at(s, steps) for s in range(3)] == pytest.approx([0.001, 0.002, 0.003])
    assert cfg.lr_at(9, steps) == pytest.approx(0.01)
    assert cfg.lr_at(10, steps) == pytest.approx(0.01)  # the cosine's start
    assert cfg.lr_at(25, steps) == pytest.approx(0.01 * 0.5 * (1 + np.cos(np.pi * 15 / 30)))
    with pytest.raises(InputError, match="warmup=4"):
        cnnlab.training.TrainConfig(epochs=4, warmup=4)


def test_onecycle_steps_the_optimizer_as_torchs_onecyclelr_does(tmp_path):
    """The learning rate of every optimizer step of a --lr-schedule onecycle run, read from the optimizer, is
    what torch's own OneCycleLR (default rise 0.3, start lr/25, end lr/25/1e4, cosine) gives for the run's
    steps: an independent implementation of the same published schedule."""
    from torch.optim.lr_scheduler import OneCycleLR
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    seen = []
    hook = register_optimizer_step_pre_hook(lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"]))
    try:
        run = cnnlab.train(
            data="digits", model="seed-fashion", epochs=2, batch_size=64, lr=4e-3, lr_schedule="onecycle", seed=0,
            out=str(tmp_path / "r"), verbose=False,
        )  # fmt: skip
    finally:
        hook.remove()
    steps = 2 * int(np.ceil(run.config["dataset"]["train"] / 64))
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=4e-3)
    ref = OneCycleLR(opt, max_lr=4e-3, total_steps=steps, cycle_momentum=False)
    expected = []
    for _ in range(steps):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert len(seen) == steps
    np.testing.assert_allclose(seen, expected, rtol=1e-9)
    assert seen[0] == pytest.approx(4e-3 / 25) and max(seen) == pytest.approx(4e-3, rel=1e-3) and seen[-1] < 1e-6
    assert run.config["config"]["lr_schedule"] == "onecycle"  # saved, so a resumed run stays on the curve
    short = cnnlab.training.TrainConfig(lr=1.0, epochs=1, lr_schedule="onecycle")
    assert [short.lr_at(s, 2) for s in range(2)] == pytest.approx([1.0, 1 / 25 / 1e4])  # too short to rise
    assert short.lr_at(0, 1) == 1.0


def test_adamw_decay_is_decoupled_from_the_gradient():
    """Loshchilov & Hutter's decoupled decay: with a zero gradient, one AdamW step scales each weight by exactly
    1 - lr * wd. Adam's weight_decay instead adds wd * w to the gradient, and Adam's normalized step then
    moves every weight by about lr whatever its size."""
    from cnnlab.training.setup import _optimizer

    w0 = torch.tensor([0.5, -2.0, 8.0])
    moved = {}
    for name in ("adamw", "adam"):
        w = torch.nn.Parameter(w0.clone())
        opt = _optimizer(cnnlab.training.TrainConfig(optimizer=name, lr=0.01, weight_decay=0.5), [w])
        w.grad = torch.zeros_like(w)
        opt.step()
        moved[name] = w.detach()
    torch.testing.assert_close(moved["adamw"], w0 * (1 - 0.01 * 0.5))
    torch.testing.assert_close(moved["adam"], w0 - 0.01 * torch.sign(w0), atol=1e-6, rtol=0)
    with pytest.raises(InputError, match="weight_decay=-1"):
        cnnlab.training.TrainConfig(weight_decay=-1)


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
    from cnnlab.run.evaluate import evaluate

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
