import json
import subprocess
import sys

from ocr_robust.cli import main


def test_synth_ingest_convert_from_the_command_line(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "c"), "--pages", "2", "--seed", "4", "--quiet"]) == 0
    assert "wrote 2 pages" in capsys.readouterr().out
    (tmp_path / "c" / "broken.pdf").write_bytes(b"%PDF-1.7 garbage")
    rc = main(["ingest", str(tmp_path / "c"), "--out", str(tmp_path / "l"), "--quiet", "--workers", "1",
               "--json", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "broken.pdf" in out and "not a readable PDF" in out
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["lines"] > 20 and s["files_failed"][0]["file"].endswith("broken.pdf")
    assert main(["convert", str(tmp_path / "l"), str(tmp_path / "db")]) == 0
    assert f"converted {s['lines']} samples" in capsys.readouterr().out


def test_cli_errors_are_one_line_naming_the_file(tmp_path, capsys):
    (tmp_path / "cs.txt").write_text("ab\n", encoding="utf-8")
    assert main(["synth", "--out", str(tmp_path / "c"), "--pages", "1", "--quiet"]) == 0
    rc = main(["ingest", str(tmp_path / "c"), "--out", str(tmp_path / "o"), "--charset", str(tmp_path / "cs.txt")])
    assert rc == 2 and "cs.txt:1: one character per line" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "empty*.pdf"), "--out", str(tmp_path / "o")]) == 2
    assert "no PDF file found" in capsys.readouterr().err
    rc = main(["convert", str(tmp_path / "nothing"), str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and "nothing: not a line store" in err and "Traceback" not in err


def test_console_script_is_installed():
    from pathlib import Path
    script = Path(sys.executable).parent / "ocr-robust"  # installed by setup.cfg's console_scripts
    r = subprocess.run([str(script), "synth", "--list"], capture_output=True, text=True)
    assert r.returncode == 0 and "heldout" in r.stdout and "diagonal" in r.stdout


def test_train_flags_are_built_from_the_config_fields(tmp_path, capsys):
    """Every TrainConfig field is a ``train`` flag that sets it, flags override --config, and a
    bad value fails in one line naming the file and the field."""
    from dataclasses import fields

    from ocr_robust.cli import build_parser, train_config
    from ocr_robust.training.config import TrainConfig

    with __import__("pytest").raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    for f in fields(TrainConfig):
        if f.metadata.get("flag", "") is None:
            continue
        assert (f.metadata.get("flag") or "--" + f.name.replace("_", "-")) in help_text, f.name
    (tmp_path / "c.yaml").write_text("data: d\nlr: 1e-3\nepochs: 3\nhard_extra: 0.1\n", encoding="utf-8")
    a = build_parser().parse_args(["train", "--config", str(tmp_path / "c.yaml"), "--hard-extra", "0.5", "--no-amp",
                                   "--crop", "none", "--time-limit", "2", "--opt", "eps=8/255"])
    cfg = train_config(a)
    assert (cfg.data, cfg.lr, cfg.epochs, cfg.hard_extra, cfg.amp, cfg.crop, cfg.time_limit_min) == \
        ("d", 1e-3, 3, 0.5, False, "none", 2.0)
    assert cfg.mode_options == {"eps": "8/255"}
    (tmp_path / "bad.yaml").write_text("data: d\nepochs: ten\n", encoding="utf-8")
    assert main(["train", "--config", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: epochs: expected int, got 'ten'" in err and "Traceback" not in err
    assert main(["train", "--data", "d", "--sampler", "hard", "--opt", "x"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
