"""The command line end to end: help, presets, errors, `dmt run --smoke` on a CIFAR-format folder."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from dmt.cli.main import COMMANDS, main


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


ALL_COMMANDS = ("run", "demo", "presets", "models", "eval", "convert-coco", "bench", "check", "predict",
                "status", "report", "export", "import", "suggest")


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ALL_COMMANDS:
        assert cmd in out
    assert len(COMMANDS) == len(ALL_COMMANDS)


@pytest.mark.parametrize("cmd", ALL_COMMANDS)
def test_every_command_has_help_with_defaults(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage: dmt " + cmd in capsys.readouterr().out


def test_presets_and_models_lists(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "cifar10-4-dmt" in out and "demo-digits" in out
    assert all(len(line.split(None, 1)) == 2 for line in out.strip().splitlines())  # one line each, described
    assert main(["models"]) == 0
    assert "wrn_28_2" in capsys.readouterr().out


@pytest.mark.parametrize("args, fragment", [
    (["run", "cifar10-4-dmt", "phases.gamma=3"], "unknown config key 'phases.gamma'"),
    (["run", "cifar10-4-dmt", "phases.lr=fast"], "config key 'phases.lr': expected a number"),
    (["run", "cifar10-4-dmt"], "data.root"),
    (["run", "nonexistent-preset"], "neither a preset nor a YAML file"),
])
def test_user_errors_are_one_line_and_exit_2(args, fragment, capsys, tmp_path):
    assert main([*args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and fragment in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_missing_cifar_folder_names_the_download(capsys, tmp_path):
    assert main(["run", "cifar10-4-dmt", f"data.root={tmp_path}", "--smoke", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "cifar-10-python.tar.gz" in err


def test_cifar_smoke_run_end_to_end(cifar_root, tmp_path, capsys):
    before = tree_digest(cifar_root)
    out = tmp_path / "run"
    args = ["run", "cifar10-4-dmt", f"data.root={cifar_root}", "data.valtiny_per_class=2", "--smoke",
            "--out", str(out)]
    assert main(args) == 0
    assert tree_digest(cifar_root) == before  # the dataset is read-only to us

    results = json.loads((out / "results.json").read_text())
    names = [s["name"] for s in results["stages"]]
    assert names == ["baseline", "phase1", "phase2", "phase3", "phase4", "phase5"]
    for s in results["stages"]:
        assert 0.0 <= s["metrics"]["accuracy"] <= 1.0
        assert 0.0 <= s["metrics"]["valtiny_accuracy"] <= 1.0
        assert isinstance(s["seed"], int) and s["wall_time_s"] >= 0
        assert (out / s["checkpoint"]).is_file()
    shares = [s["metrics"]["pseudo_share"] for s in results["stages"][1:]]
    assert shares == sorted(shares) and shares[-1] == 1.0
    assert all(0 <= s["metrics"]["mean_weight"] <= 1 and 0 <= s["metrics"]["disagree"] <= 1
               for s in results["stages"][1:])
    assert results["smoke"] is True and results["summary"]["metric"] == "accuracy"
    for f in ("config.yaml", "log.txt", "results.png", "splits/labelled.txt", "splits/unlabelled.txt"):
        assert (out / f).is_file(), f
    assert any((out / "tb" / "phase1").iterdir())
    assert not list(out.rglob("state.safetensors"))  # finished stages drop their resume state
    assert "phase5" in capsys.readouterr().out
    # model files name their classes, so `dmt predict` can name them without the run or --data
    from dmt.models.files import load_model

    assert load_model(out / "stages" / "phase5" / "model.safetensors")[1]["classes"][:2] == ["airplane", "automobile"]

    # the same command again: nothing to do, same results
    assert main(args) == 0
    assert json.loads((out / "results.json").read_text())["stages"] == results["stages"]

    # a different config in the same run directory is refused, naming the keys
    assert main([*args, "phases.lr=0.5", "seed=2"]) == 2
    err = capsys.readouterr().err
    assert "phases.lr" in err and "seed" in err


def _failing_command(monkeypatch, exc: BaseException) -> None:
    from dmt.cli import presets

    def fail(args):
        raise exc

    monkeypatch.setattr(presets, "main", fail)  # `dmt presets` now raises exc


def test_a_lost_process_is_one_line_without_a_traceback(monkeypatch, capsys):
    from dmt.errors import ProcessLost

    _failing_command(monkeypatch, ProcessLost("process 4242 (rank 1) stopped; this process (rank 0) cannot go on"))
    assert main(["presets"]) == 2
    assert capsys.readouterr().err == "error: process 4242 (rank 1) stopped; this process (rank 0) cannot go on\n"


def test_a_data_loader_workers_error_is_its_own_line_whatever_was_imported(monkeypatch, capsys):
    import sys

    from dmt.errors import UserError

    wrapped = UserError("Caught UserError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
                        "  File \"x.py\", line 1\ndmt.errors.UserError: mask /d/x.png is 3x3 but image 4x4\n")
    _failing_command(monkeypatch, wrapped)
    monkeypatch.setitem(sys.modules, "dmt.engine.batches", None)  # as if the command never imported it
    assert main(["presets"]) == 2
    assert capsys.readouterr().err == "error: mask /d/x.png is 3x3 but image 4x4\n"


def test_starting_the_command_line_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; from dmt.cli.main import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_reader_that_stops_early_is_no_error():
    """`dmt presets | head -1`: the pipe closes before dmt has written everything; no error line."""
    proc = subprocess.Popen([sys.executable, "-m", "dmt", "presets"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # closed before dmt writes its first line: every write meets a broken pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err, err



@pytest.mark.parametrize("command", ["run", "predict", "eval", "export", "check", "report", "demo"])
def test_help_says_each_default_once(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    # a help that says its default gets no second one, and "not given" is no default to print
    assert not re.search(r"default:[^()]*\) \(default:", text), text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_help_still_prints_a_default_the_text_does_not_say(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "auto, cpu, cuda, cuda:N (default: auto)" in " ".join(capsys.readouterr().out.split())


def test_a_run_directory_given_as_a_model_file_names_its_model_files(tmp_path, capsys):
    run_dir = tmp_path / "run"
    for stage in ("baseline", "phase1", "oracle"):
        (run_dir / "stages" / stage).mkdir(parents=True)
        (run_dir / "stages" / stage / "model.safetensors").write_bytes(b"not read")
    image = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(image)
    for command in (["predict", str(run_dir), str(image), "--out", str(tmp_path / "p")],
                    ["eval", str(run_dir), "--data", "digits"],
                    ["export", str(run_dir), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]):
        assert main(command) == 2
        line = capsys.readouterr().err.strip()
        assert line.startswith(f"error: {run_dir} is a run directory, not a model file") and "\n" not in line
        assert "(stages: " in line and all(stage in line for stage in ("baseline", "phase1", "oracle"))
        assert str(run_dir / "stages") in line and "oracle/model" not in line  # the example is the method's
    assert main(["eval", str(run_dir / "stages" / "phase1"), "--data", "digits"]) == 2
    assert f"did you mean {run_dir / 'stages' / 'phase1' / 'model.safetensors'}?" in capsys.readouterr().err
