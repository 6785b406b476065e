"""The plan of a run: options resolved once into one frozen dataclass, the command line made from its fields,
the --nproc workers handed the saved plan, and rank 0's decisions reaching every rank."""

import dataclasses
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import cnnlab
from cnnlab.cli import app
from cnnlab.cli.options import command, dataclass_options, given_options
from cnnlab.errors import InputError, RunError
from cnnlab.training import distributed
from cnnlab.training.distributed import ALONE
from cnnlab.training.plan import Plan, TrainConfig, make_plan

runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))


def test_a_plan_fills_in_the_recipe_under_the_options_given_and_is_frozen(tmp_path):
    plan = make_plan({"recipe": "fast", "data": "mnist", "epochs": 1, "out": str(tmp_path / "r")})
    # the recipe's options (cnnlab-fast, batch 64, one-cycle to 3e-3), except epochs, which was given
    assert (plan.config.model, plan.config.batch_size, plan.config.lr) == ("cnnlab-fast", 64, 3e-3)
    assert plan.config.lr_schedule == "onecycle" and plan.config.epochs == 1
    assert plan.recipe_line.startswith("recipe fast for mnist: ") and "(epochs given explicitly)" in plan.recipe_line
    assert plan.out == tmp_path / "r" and not plan.resuming and len(plan.run_id) == 32
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.config.lr = 1.0  # every consumer gets the plan as it was made


def test_a_plan_is_checked_once_when_made():
    with pytest.raises(InputError, match=r"Unknown training option\(s\): batchsize"):
        make_plan({"batchsize": 3})
    with pytest.raises(InputError, match=r"size=\[28\]. Expected \[height, width\]"):
        make_plan({"size": [28]})
    with pytest.raises(InputError, match="Unknown recipe 'quick'"):
        make_plan({"recipe": "quick"})


def test_a_saved_plan_reads_back_equal(tmp_path):
    plan = make_plan({"data": "digits", "size": [16, 16], "augment": "shift=1", "out": str(tmp_path / "r")})
    assert Plan.load(plan.save(tmp_path / "plan.json")) == plan
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="is not a plan that cnnlab train wrote"):
        Plan.load(tmp_path / "bad.json")


def test_a_resumed_plan_is_the_saved_config_with_epochs_grown(tmp_path):
    run = cnnlab.train(data="digits", model="seed-fashion", epochs=1, out=str(tmp_path / "r"), verbose=False)
    plan = make_plan({"epochs": 2}, resume=run.path)
    saved = json.loads((run.path / "config.json").read_text())
    assert plan.resuming and plan.run_id == saved["run_id"]
    assert plan.config.to_dict() == {**saved["config"], "epochs": 2}
    with pytest.raises(RunError, match=r"lr: 0.001 \(saved\) vs 0.1 \(asked\)"):
        make_plan({"lr": 0.1}, resume=run.path)


def test_every_training_option_is_a_command_line_option_with_its_fields_help():
    r = runner.invoke(app, ["train", "--help"], terminal_width=300)
    assert r.exit_code == 0
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        assert flag in r.stdout, flag
        assert f.metadata["help"].split()[0] in r.stdout  # the field's own help text


@dataclasses.dataclass(frozen=True)
class Toy:
    name: str = dataclasses.field(default="a", metadata={"help": "A name."})
    count: int = dataclasses.field(default=1, metadata={"help": "How many."})
    size: list[int] | None = dataclasses.field(default=None, metadata={"help": "H,W."})
    fast: bool = dataclasses.field(default=False, metadata={"help": "Go fast."})


def test_options_are_made_from_any_dataclass_and_only_given_ones_are_passed_on():
    """A new field is a new option: its type, its flag, its help; a list of whole numbers is given as H,W."""
    got = []
    params, parsers = dataclass_options(Toy)
    toy = typer.Typer()
    command(toy, "go", lambda **values: got.append(given_options(values, parsers)), params)
    toy.command("other")(lambda: None)  # a group of two, as cnnlab's commands are
    assert runner.invoke(toy, ["go", "--count", "3", "--size", "4,5", "--fast"]).exit_code == 0
    assert runner.invoke(toy, ["go"]).exit_code == 0
    assert got == [{"count": 3, "size": [4, 5], "fast": True}, {}]
    r = runner.invoke(toy, ["go", "--count", "three"], terminal_width=200)
    assert r.exit_code == 2 and "Invalid value for '--count'" in r.output, r.output  # typed as the field is
    assert "How many." in runner.invoke(toy, ["go", "--help"]).stdout


def test_nproc_workers_are_handed_the_saved_plan_as_a_file(tmp_path, monkeypatch):
    """The parent makes the plan once (so a bad option stops it before any worker starts) and the workers get
    --plan FILE, not the options again as flags."""
    seen = {}

    def launch(nproc, args, out, typed):
        seen.update(nproc=nproc, args=args, out=out, plan=Plan.load(args[1]))
        return 0

    monkeypatch.setattr(distributed, "launch", launch)
    out = tmp_path / "r"
    argv = ["train", "--data", "digits", "--epochs", "2", "--lr", "0.002", "--out", str(out), "--nproc", "2"]
    r = runner.invoke(app, argv)
    assert r.exit_code == 0, r.output
    assert seen["nproc"] == 2 and seen["args"][0] == "--plan" and len(seen["args"]) == 2
    assert seen["plan"].config.lr == 0.002 and seen["plan"].config.epochs == 2 and seen["out"] == out
    assert not Path(seen["args"][1]).exists()  # a temporary file, gone once the workers are done
    r = runner.invoke(app, ["train", "--data", "digits", "--lr", "-1", "--nproc", "2", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "lr=-1.0" in r.stderr  # refused in the parent: launch was not called again
    assert seen["out"] == out


def test_rank_0s_decision_alone_is_the_call_and_its_error():
    assert ALONE.decide(lambda: 42) == 42

    def refuse():
        raise InputError("no")

    with pytest.raises(InputError, match="no"):
        ALONE.decide(refuse)


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--seed", str(10**30)], "Expected a whole number 0 <= seed < 2**32"),
        (["--lr", "inf"], "lr=inf. Expected a finite number"),
        (["--weight-decay", "inf"], "weight_decay=inf. Expected a finite number"),
        (["--momentum", "5"], "momentum=5.0. Expected 0 <= value < 1"),
    ],
    ids=["huge-seed", "inf-lr", "inf-weight-decay", "momentum-5"],
)
def test_an_option_out_of_its_range_is_one_line_before_anything_runs(tmp_path, flags, says):
    r = runner.invoke(app, ["train", "--data", "digits", "--out", str(tmp_path / "r"), *flags])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert r.exit_code == 2 and says in r.stderr, r.output
    assert not (tmp_path / "r" / "state.pt").exists()


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("lr", "fast", "lr='fast'. Expected a finite number"),
        ("validation_split", [0.1], "validation_split=[0.1]. Expected a finite number"),
        ("seed", "0", "seed='0'. Expected a whole number"),
        ("momentum", 5, "momentum=5. Expected 0 <= value < 1"),
    ],
)
def test_a_resumed_config_json_with_values_of_the_wrong_kind_is_one_line(tmp_path, key, value, says):
    run = cnnlab.train(data="digits", model="seed-fashion", epochs=1, out=str(tmp_path / "r"), verbose=False)
    saved = json.loads((run.path / "config.json").read_text())
    saved["config"][key] = value
    (run.path / "config.json").write_text(json.dumps(saved))
    r = runner.invoke(app, ["train", "--resume", str(run.path), "--epochs", "2"])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert r.exit_code == 2 and says in r.stderr, r.output


def test_nproc_is_bounded_by_the_cores_and_the_memory(monkeypatch):
    from cnnlab import limits

    with pytest.raises(InputError, match="more workers than this machine's 2 cores"):
        limits.check_workers(3, cores=2)
    monkeypatch.setattr(limits, "physical_memory", lambda: 2 * 2**30)  # 1 GB for workers: two of 400 MB
    with pytest.raises(InputError, match=r"--nproc 4 workers would need about 1.7 GB .* use at most 2"):
        limits.check_workers(4, cores=16)
    limits.check_workers(2, cores=16)
    r = runner.invoke(app, ["train", "--data", "digits", "--nproc", "1000"])
    assert r.exit_code == 2 and "--nproc 1000" in r.stderr, r.output
