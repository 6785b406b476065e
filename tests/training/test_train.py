"""Training on scikit-learn's digits (8x8, seconds): run directories, resume, interruption, bad input."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.optim.optimizer import register_optimizer_step_pre_hook

import cnnlab
from cnnlab.errors import InputError, RunError, TrainingError
from cnnlab.training.loop import TrainingInterrupted
from cnnlab.training.progress import SilentReporter

SPEC = {
    "name": "tiny",
    "layers": [
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "MaxPooling2D"},
        {"type": "Dropout", "rate": 0.25},
        {"type": "Flatten"},
        {"type": "Dense", "units": 10},
    ],
}


@pytest.fixture
def spec_file(tmp_path):
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(SPEC))
    return str(p)


def fit(out, spec_file, **kw):
    opts = dict(data="digits", model=spec_file, epochs=2, batch_size=32, lr=3e-3, seed=1, out=str(out))
    opts.update(kw)
    return cnnlab.train(verbose=False, **opts)


def test_run_directory_is_complete_and_loads(tmp_path, spec_file):
    from cnnlab.viz.train import curves_callback

    seen = []
    run = fit(tmp_path / "r", spec_file, callbacks=[curves_callback, lambda d, rows: seen.append(len(rows))])
    names = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"config.json", "metrics.jsonl", "model.json", "model.safetensors", "state.pt", "curves.png"} <= names
    assert seen == [1, 2]  # each callback once per epoch, after the checkpoint
    assert [r["epoch"] for r in run.metrics] == [1, 2]
    assert run.metrics[-1]["test_accuracy"] > 0.8
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["config"]["seed"] == 1 and cfg["versions"]["torch"] == torch.__version__
    again = cnnlab.Run.load(tmp_path / "r")
    ds = cnnlab.data.load("digits")
    p = again.predict(ds.test.x)
    assert p.shape == (len(ds.test), 10) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert (p.argmax(1) == ds.test.y).mean() == pytest.approx(run.metrics[-1]["test_accuracy"], abs=0.02)


def _weights(path):
    return load_file(str(path / "model.safetensors"))


class StopAt(SilentReporter):
    """Presses Ctrl-C during the given epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def start_epoch(self, epoch, epochs, batches, images=None):
        self.current = epoch

    def update(self, done, loss, acc):
        if self.current == self.epoch and done > 1:
            raise KeyboardInterrupt


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, spec_file, schedule):
    fit(tmp_path / "straight", spec_file, epochs=3, lr_schedule=schedule)
    with pytest.raises(TrainingInterrupted, match=r"Interrupted during epoch 2. The checkpoint of epoch 1 is kept"):
        fit(tmp_path / "cut", spec_file, epochs=3, reporter=StopAt(2), lr_schedule=schedule)
    state = torch.load(tmp_path / "cut" / "state.pt", weights_only=True)
    assert state["epoch"] == 1
    run = cnnlab.train(resume=tmp_path / "cut", verbose=False)
    assert [r["epoch"] for r in run.metrics] == [1, 2, 3]
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the loss every few steps too: the interrupted epoch's partial points are not kept, its rerun's are
    assert (tmp_path / "cut" / "steps.jsonl").read_text() == (tmp_path / "straight" / "steps.jsonl").read_text()
    timeless = [  # the statistics of the same steps, all but the seconds their recording took
        [{k: v for k, v in json.loads(line).items() if k != "recording_seconds"} for line in (d / "stats.jsonl").open()]
        for d in (tmp_path / "cut", tmp_path / "straight")
    ]
    assert timeless[0] == timeless[1] and len(timeless[0]) > 20


def test_the_loss_every_few_steps_adds_up_to_each_epochs_mean(tmp_path, spec_file):
    """digits: ~1,437 training images in batches of 32 = 45 steps an epoch, fewer than 50: every step is a point.
    The points' image-weighted mean is the epoch's mean loss, computed independently by the loop's own sum."""
    run = fit(tmp_path / "r", spec_file, epochs=2)
    steps = [json.loads(line) for line in (tmp_path / "r" / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps] == list(range(1, 91)) and {r["of"] for r in steps} == {45}
    n = run.config["dataset"]["train"]
    sizes = [32] * 44 + [n - 32 * 44]
    for epoch, row in zip((1, 2), run.metrics, strict=True):
        points = [r for r in steps if r["epoch"] == epoch]
        weighted = sum(p["loss"] * n for p, n in zip(points, sizes, strict=True)) / sum(sizes)
        assert weighted == pytest.approx(row["loss"], rel=1e-9)
    assert run.steps == steps  # Run.load reads them back
    big = fit(tmp_path / "mnist-like", spec_file, epochs=1, batch_size=8)  # 180 steps: every 3rd is a point
    assert len(big.steps) == 60 and big.steps[-1]["step"] == 180


def test_resume_with_different_options_is_refused(tmp_path, spec_file):
    fit(tmp_path / "r", spec_file, epochs=1)
    with pytest.raises(RunError, match=r"lr: 0.003 \(saved\) vs 0.1 \(asked\)"):
        cnnlab.train(resume=tmp_path / "r", lr=0.1, verbose=False)
    run = cnnlab.train(resume=tmp_path / "r", epochs=2, verbose=False)  # more epochs is allowed
    assert len(run.metrics) == 2


def test_cosine_schedule_steps_the_optimizer_along_keras_cosine_decay(tmp_path, spec_file):
    """Every optimizer step's learning rate, read from the optimizer itself, follows Keras's CosineDecay
    with decay_steps = all steps of the run: lr * (1 + cos(pi * k / K)) / 2 for step k = 0 .. K-1."""
    seen = []
    hook = register_optimizer_step_pre_hook(lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"]))
    try:
        run = fit(tmp_path / "r", spec_file, epochs=2, lr_schedule="cosine")
    finally:
        hook.remove()
    steps = 2 * int(np.ceil(1438 / 32))  # digits: 1,438 training images, batch 32
    k = np.arange(steps)
    assert np.allclose(seen, 3e-3 * (1 + np.cos(np.pi * k / steps)) / 2, rtol=1e-12, atol=0)
    assert seen[0] == 3e-3 and seen[steps // 2] == pytest.approx(1.5e-3) and seen[-1] < 1e-5
    assert [r["lr"] for r in run.metrics] == [seen[steps // 2 - 1], seen[-1]]
    constant = fit(tmp_path / "c", spec_file, epochs=2)
    assert [r["lr"] for r in constant.metrics] == [3e-3, 3e-3]
    a, b = _weights(tmp_path / "r"), _weights(tmp_path / "c")
    assert a.keys() == b.keys() and not any(torch.equal(a[k], b[k]) for k in a if k.endswith("weight"))


def test_cosine_run_cannot_grow_on_resume(tmp_path, spec_file):
    fit(tmp_path / "r", spec_file, epochs=1, lr_schedule="cosine")
    with pytest.raises(RunError, match=r"epochs: 1 \(saved\) vs 2 \(asked\): the cosine learning-rate schedule"):
        cnnlab.train(resume=tmp_path / "r", epochs=2, verbose=False)
    with pytest.raises(InputError, match=r"Unknown lr_schedule 'step'. Expected one of: constant, cosine"):
        fit(tmp_path / "s", spec_file, lr_schedule="step")


def test_existing_run_directory_is_not_overwritten(tmp_path, spec_file):
    fit(tmp_path / "r", spec_file, epochs=1)
    with pytest.raises(RunError, match="already holds a run. Use --resume"):
        fit(tmp_path / "r", spec_file, epochs=1)


class GoesNaN(torch.nn.Module):
    """A custom module (not a cnnlab Sequential) that returns NaN logits from its second epoch."""

    def __init__(self, batches_per_epoch):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 8 * 8, 10)
        self.calls, self.limit = 0, batches_per_epoch

    def forward(self, x):
        y = self.fc(torch.relu(self.conv(x)).flatten(1))
        if self.training:
            self.calls += 1
            if self.calls > self.limit:
                return y * float("nan")
        return y


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    batches = int(np.ceil(1438 / 32))
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 2, batch 1.*last good checkpoint \(epoch 1\)"):
        cnnlab.train(
            data="digits", epochs=3, batch_size=32, out=str(tmp_path / "r"), module=GoesNaN(batches), verbose=False
        )
    assert torch.load(tmp_path / "r" / "state.pt", weights_only=True)["epoch"] == 1
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 1
    with pytest.raises(RunError, match="holds a custom model; pass it"):
        cnnlab.Run.load(tmp_path / "r")
    run = cnnlab.Run.load(tmp_path / "r", model=GoesNaN(batches))
    assert run.predict(np.zeros((2, 8, 8, 1), np.uint8)).shape == (2, 10)


def test_corrupt_or_missing_run_files(tmp_path, spec_file):
    fit(tmp_path / "r", spec_file, epochs=1)
    (tmp_path / "r" / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(RunError, match=r"model.safetensors is not a readable safetensors file"):
        cnnlab.Run.load(tmp_path / "r")
    (tmp_path / "r" / "model.json").write_text("{not json")
    with pytest.raises(RunError, match=r"model.json is not valid JSON"):
        cnnlab.Run.load(tmp_path / "r")
    with pytest.raises(RunError, match=r"is not a run directory"):
        cnnlab.Run.load(tmp_path / "nothing")


def _edit_model_json(run_dir, change):
    path = run_dir / "model.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps(change(meta)))


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda m: [m], r"model.json holds a JSON list, not an object"),
        (lambda m: {k: v for k, v in m.items() if k != "classes"}, r"model.json has no 'classes'"),
        (lambda m: {**m, "classes": "0123456789"}, r"model.json has no 'classes'"),
        (lambda m: {k: v for k, v in m.items() if k != "preprocessing"}, r"has no 'preprocessing' with an 'input"),
        (lambda m: {**m, "preprocessing": {"input_shape": [8, -8, 1]}}, r"has no 'preprocessing' with an 'input"),
        (lambda m: {**m, "classes": m["classes"][:7]}, r"names 7 classes but the model gives \(10,\) outputs"),
        (lambda m: {**m, "preprocessing": {**m["preprocessing"], "input_shape": [8, 8, 3]}}, r"not the run's 8x8x3"),
    ],
    ids=["list", "no-classes", "classes-text", "no-preprocessing", "negative-shape", "7-of-10", "rgb-for-gray"],
)
def test_a_damaged_model_json_is_one_clear_error(tmp_path, spec_file, change, says):
    fit(tmp_path / "r", spec_file, epochs=1)
    _edit_model_json(tmp_path / "r", change)
    with pytest.raises(RunError, match=says):
        cnnlab.Run.load(tmp_path / "r")


@pytest.mark.parametrize(
    "damage", [b"\xff\xfe not utf-8\n", b"[1, 2]\n", b'{"epoch": 1}\n"text"\n'], ids=["bytes", "list", "string"]
)
def test_a_damaged_metrics_file_is_one_clear_error(tmp_path, spec_file, damage):
    fit(tmp_path / "r", spec_file, epochs=1)
    (tmp_path / "r" / "metrics.jsonl").write_bytes(damage)
    says = r"metrics.jsonl line \d is not (a JSON object; the metrics file is corrupt|UTF-8 text)"
    with pytest.raises(RunError, match=says):
        cnnlab.Run.load(tmp_path / "r")


def test_unknown_model_and_option(tmp_path):
    with pytest.raises(InputError, match=r"Unknown model 'resnet'. Expected one of: seed-fashion"):
        cnnlab.train(data="digits", model="resnet", out=str(tmp_path / "x"), verbose=False)
    with pytest.raises(InputError, match=r"Unknown training option\(s\): batchsize"):
        cnnlab.train(data="digits", batchsize=3, verbose=False)


def test_zoo_model_adapts_to_the_dataset_or_says_why(tmp_path):
    # digits are 8x8: conv1 (5x5 VALID) -> 4x4, pool1 -> 2x2, too small for conv2's 5x5 kernel
    with pytest.raises(
        InputError,
        match=r"Conv2D 'conv2' cannot apply a 5x5 kernel to a 2x2x32 input.*'conv1' 8x8 -> 4x4 \(5x5 VALID\)",
    ):
        cnnlab.train(data="digits", model="seed-mnist5x5", out=str(tmp_path / "x"), verbose=False)
    run = cnnlab.train(data="digits", model="seed-fashion", epochs=1, out=str(tmp_path / "y"), verbose=False)
    assert run.input_shape == (8, 8, 1)


def test_invert_auto_follows_the_training_background(tmp_path, digits_run):
    """A dark-background model inverts a light image; a light-background model leaves it alone."""
    from PIL import Image

    from cnnlab.run.predict import predict_files

    light = np.full((8, 8), 230, np.uint8)
    light[2:6, 3:5] = 20  # a dark stroke on paper
    Image.fromarray(light).save(tmp_path / "paper.png")
    dark_run = cnnlab.Run.load(digits_run[0])
    assert dark_run.preprocessing["background"] == "dark"
    (pred,) = predict_files(dark_run, [tmp_path / "paper.png"])
    assert any("inverted" in n for n in pred.notes) and pred.image[0, 0, 0] == 255 - 230

    root = tmp_path / "paper"
    for k, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i in range(6):
            img = np.full((8, 8), 230, np.uint8)
            img[1 + i % 3 : 4 + i % 3, 2 + 3 * k : 4 + 3 * k] = 20
            Image.fromarray(img).save(root / name / f"{i}.png")
    light_run = cnnlab.train(
        data=str(root), model="seed-fashion", epochs=1, batch_size=4, out=str(tmp_path / "light"), verbose=False
    )
    assert light_run.preprocessing["background"] == "light"
    (pred,) = predict_files(light_run, [tmp_path / "paper.png"])
    assert not any("inverted" in n for n in pred.notes) and pred.image[0, 0, 0] == 230


WIDE_SPEC = {  # the layers and heads the zoo does not use: Reshape, Activation, AveragePooling2D, softmax output
    "name": "wide",
    "layers": [
        {"type": "Reshape", "target_shape": [64]},
        {"type": "Reshape", "target_shape": [8, 8, 1]},
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "same"},
        {"type": "Activation", "activation": "relu"},
        {"type": "AveragePooling2D", "pool_size": 2},
        {"type": "Flatten"},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ],
}


@pytest.mark.parametrize("optimizer,lr", [("adamw", 3e-3), ("sgd", 0.05), ("rmsprop", 2e-3)])
def test_every_optimizer_validation_split_and_a_softmax_model(tmp_path, optimizer, lr):
    """Each optimizer trains the wide spec on digits with a validation split; the softmax head's output is used
    as probabilities as it is (not softmaxed twice) by predict and eval."""
    spec = tmp_path / "wide.json"
    spec.write_text(json.dumps(WIDE_SPEC))
    run = fit(tmp_path / "run", str(spec), optimizer=optimizer, lr=lr, epochs=6, validation_split=0.2)
    last = run.metrics[-1]
    assert {"val_accuracy", "val_loss"} <= set(last) and "test_accuracy" not in last  # as Keras's fit reports
    assert last["val_accuracy"] > 0.6  # 10 classes: chance is 0.1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["config"]["optimizer"] == optimizer
    assert config["dataset"]["validation"] == round(0.2 * config["dataset"]["train"] / 0.8)  # the last 20%
    loaded = cnnlab.Run.load(tmp_path / "run")
    assert loaded.model.outputs_probabilities
    x = cnnlab.data.load("digits").test.x
    with torch.no_grad():
        direct = loaded.model(torch.from_numpy(x.astype(np.float32) / 255).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(loaded.predict(x, precision="fp32"), direct, rtol=1e-5, atol=1e-6)
    ev, _ = cnnlab.run.evaluate_run(loaded, precision="fp32")
    assert ev.accuracy > 0.6 and ev.accuracy == pytest.approx(np.mean(direct.argmax(1) == ev.labels))
    assert ev.loss == pytest.approx(-np.mean(np.log(direct[np.arange(len(x)), ev.labels])), rel=0.02)


def test_the_library_draws_nothing_and_prints_plain_epoch_lines(tmp_path, spec_file, capsys):
    """Figures and progress bars belong to the caller: cnnlab.train from Python writes no PNG and prints plain
    lines (the CLI passes its rich bar and the curves figure); the training package imports neither."""
    import subprocess
    import sys

    cnnlab.train(data="digits", model=spec_file, epochs=1, batch_size=32, out=str(tmp_path / "r"))
    assert not list((tmp_path / "r").glob("*.png"))
    err = capsys.readouterr().err
    assert "training " in err and "epoch 1/1  loss " in err and "test_acc " in err
    code = "import sys, cnnlab.training.loop, cnnlab.inspect; print('rich' in sys.modules, 'matplotlib' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.split() == ["False", "False"], r.stderr


def test_interrupted_in_the_first_epoch_resumes_from_scratch(tmp_path, spec_file):
    """Ctrl-C before the first checkpoint: the advice printed works, and gives the uninterrupted run's weights."""
    fit(tmp_path / "straight", spec_file, epochs=2)
    with pytest.raises(TrainingInterrupted, match=r"No epoch of .* had finished; continue with: cnnlab train --resume"):
        fit(tmp_path / "cut", spec_file, epochs=2, reporter=StopAt(1))
    assert not (tmp_path / "cut" / "state.pt").exists()
    run = cnnlab.train(resume=tmp_path / "cut", verbose=False)
    assert [r["epoch"] for r in run.metrics] == [1, 2]
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_kill_between_checkpoint_writes_loses_no_epoch(tmp_path, spec_file, monkeypatch):
    """Killed after epoch 2's metrics and weights but before its state: resuming redoes epoch 2, every row is
    there once, the weights equal an uninterrupted run's, and the killed write's temporary file is gone."""
    from cnnlab.run import files as rundir

    fit(tmp_path / "straight", spec_file, epochs=3)
    real = rundir.save_state

    def killed_at_2(path, epoch, *args):
        if epoch == 2:
            (path.parent / ".state.pt.abc123.tmp").write_bytes(b"half a checkpoint")
            raise SystemExit("killed")  # stands for kill -9: no handler runs
        return real(path, epoch, *args)

    monkeypatch.setattr(rundir, "save_state", killed_at_2)
    with pytest.raises(SystemExit):
        fit(tmp_path / "cut", spec_file, epochs=3)
    monkeypatch.setattr(rundir, "save_state", real)
    assert [r["epoch"] for r in rundir.read_metrics(tmp_path / "cut" / "metrics.jsonl")] == [1, 2]
    run = cnnlab.train(resume=tmp_path / "cut", verbose=False)
    assert [r["epoch"] for r in run.metrics] == [1, 2, 3]
    assert not list((tmp_path / "cut").glob(".*.tmp"))
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_out_must_be_a_new_or_empty_folder(tmp_path, spec_file):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "metrics.jsonl").write_text("mine\n")
    with pytest.raises(RunError, match=r"already holds other files \(metrics.jsonl\); a run would write over them"):
        fit(tmp_path / "notes", spec_file, epochs=1)
    assert (tmp_path / "notes" / "metrics.jsonl").read_text() == "mine\n"  # untouched
    (tmp_path / "afile").write_text("x")
    with pytest.raises(RunError, match=r"is a file. Expected a new or empty folder"):
        fit(tmp_path / "afile", spec_file, epochs=1)
    (tmp_path / "empty").mkdir()
    assert fit(tmp_path / "empty", spec_file, epochs=1).metrics  # an empty folder is fine


def test_compile_trains_through_torch_compile_and_saves_plain_weights(tmp_path, spec_file):
    """--compile runs the step through torch.compile; the run holds the model's own weights (no compiled
    wrapper's names) and learns as the plain run does. Resuming without it is allowed (a way to run)."""
    no_dropout = tmp_path / "no-dropout.json"  # compiled dropout draws its masks from another generator
    no_dropout.write_text(json.dumps({**SPEC, "layers": [la for la in SPEC["layers"] if la["type"] != "Dropout"]}))
    fit(tmp_path / "plain", str(no_dropout), epochs=1, precision="fp32")
    compiled = fit(tmp_path / "compiled", str(no_dropout), epochs=1, precision="fp32", compile=True)
    assert compiled.config["config"]["compile"] is True
    a, b = _weights(tmp_path / "plain"), _weights(tmp_path / "compiled")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k].numpy(), a[k].numpy(), rtol=1e-3, atol=1e-4, err_msg=k)
    resumed = cnnlab.train(resume=tmp_path / "compiled", epochs=2, compile=False, verbose=False)
    assert [r["epoch"] for r in resumed.metrics] == [1, 2]


def test_outputs_take_uint8_images_already_on_the_device():
    """Evaluation reads the held-out images where training keeps them (a uint8 tensor on the device): the same
    outputs as from the NumPy array."""
    from cnnlab.compute.tensors import from_numpy
    from cnnlab.nn import Conv2D, Dense, Flatten, Input, Sequential
    from cnnlab.run.inference import outputs_of

    model = Sequential([Input((8, 8, 1)), Conv2D(2, 3), Flatten(), Dense(3)])
    x = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 1), dtype=np.uint8)
    a, b = outputs_of(model, x, batch_size=4), outputs_of(model, from_numpy(x), batch_size=4)
    assert torch.equal(a, b) and a.shape == (10, 3)


def test_predict_runs_where_the_model_is(tmp_path, spec_file):
    """Run.to(device) moves the model; predict follows it. Here: the CPU, and a clear error for a CUDA GPU this
    machine does not have (CI never has one)."""
    run = fit(tmp_path / "r", spec_file, epochs=1)
    x = cnnlab.data.load("digits").test.x[:5]
    before = run.predict(x, precision="fp32")
    assert run.to("cpu") is run
    np.testing.assert_array_equal(run.predict(x, precision="fp32"), before)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            run.to("cuda")


def test_recipes_fill_in_options_that_were_not_given():
    from cnnlab.training.recipes import RECIPES, expand

    used, line = expand({"recipe": "gpu-speed", "data": "mnist", "epochs": 5})
    chosen = RECIPES["gpu-speed"].options["mnist"]
    assert used == {**chosen, "recipe": "gpu-speed", "data": "mnist", "epochs": 5}
    assert line.startswith("recipe gpu-speed for mnist: model=cnnlab-fast") and "(epochs given explicitly)" in line
    assert expand({"data": "mnist"}) == ({"data": "mnist"}, None)
    with pytest.raises(InputError, match="Unknown recipe 'fastest'. Expected one of: gpu-speed"):
        expand({"recipe": "fastest"})
    with pytest.raises(InputError, match="has no options for data 'digits'"):
        expand({"recipe": "gpu-speed", "data": "digits"})
