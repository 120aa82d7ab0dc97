import errno

from click.testing import CliRunner

from stages.cli import main

SUBCOMMANDS = ["synth", "preprocess", "train", "evaluate", "report", "ablate", "bench"]


def test_help_lists_the_seven_stages():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in SUBCOMMANDS:
        assert name in result.output


def test_every_subcommand_has_help():
    for name in SUBCOMMANDS:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert "--profile" in result.output and "--set" in result.output


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and "asgl-pipeline" in result.output


def test_wrong_option_is_a_usage_error_not_a_traceback():
    result = CliRunner().invoke(main, ["train", "--epochz", "3"])
    assert result.exit_code == 2
    assert "No such option" in result.output and "Traceback" not in result.output


def test_unknown_config_key_is_a_usage_error():
    result = CliRunner().invoke(main, ["train", "--set", "train.epochz=3"])
    assert result.exit_code == 2
    assert "unknown key 'train.epochz'" in result.output


def test_missing_config_file_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_a_file_system_error_anywhere_in_a_stage_is_one_line(monkeypatch):
    from stages import report

    def read_only(config, **options):
        raise OSError(errno.EROFS, "Read-only file system", "/mnt/ro/reports/table1.csv")

    monkeypatch.setattr(report, "run", read_only)
    result = CliRunner().invoke(main, ["report", "--out", "/mnt/ro/reports"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == (
        "asgl-pipeline report: cannot write /mnt/ro/reports/table1.csv: the file system is "
        "read-only — choose a writable location, then re-run"
    )


def test_every_writing_stage_on_a_read_only_folder_says_so_in_one_line(
    small_disk, synthetic_root, skeleton_cache
):
    # 6/6 writing stages used to end in an OSError (errno 30) traceback.
    disk = small_disk("1m", ",ro")
    ro = str(disk.path)
    data = ["--root", str(synthetic_root), "--cache", str(skeleton_cache)]
    commands = {
        "synth": ["synth", "--out", f"{ro}/set", "--identities", "2", "--frames", "8"],
        "preprocess": ["preprocess", "--root", str(synthetic_root), "--cache", f"{ro}/c.h5"],
        "train": [
            "train",
            "--profile",
            "demo",
            *data,
            "--set",
            f"paths.runs_dir={ro}/runs",
            "--run",
            "r",
        ],
        "report": ["report", "--runs-dir", f"{ro}/none", "--out", f"{ro}/reports"],
    }
    for stage, args in commands.items():
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, (stage, result.output)
        assert "Traceback" not in result.output, stage
        prefix = f"asgl-pipeline {stage}:"
        errors = [line for line in result.output.splitlines() if line.startswith(prefix)]
        assert len(errors) == 1, (stage, result.output)  # one line, whatever was logged before it
        assert errors[0].startswith(f"asgl-pipeline {stage}: cannot write {ro}"), errors[0]
        assert errors[0].endswith(
            "the file system is read-only — choose a writable location, then re-run"
        )


def captured_configs(monkeypatch):
    """Replace every stage by one that records the Config and keyword arguments it was given."""
    import stages.cli

    calls = []
    monkeypatch.setattr(
        stages.cli, "run_stage", lambda name, config, **kw: calls.append((name, config, kw))
    )
    return calls


def test_options_set_their_configuration_fields(monkeypatch):
    calls = captured_configs(monkeypatch)
    runner = CliRunner()
    for args in (
        ["train", "--no-gait", "--graph", "gcn", "--epochs", "3", "--run", "x", "--root", "r"],
        ["synth", "--size", "96x192", "--identities", "4"],
        ["embed", "--run", "runs/a", "--out", "e.npz"],
        ["export", "--run", "runs/a"],
        ["search", "--gallery", "g.npz", "--query", "q", "--run", "runs/b"],
        ["search", "--gallery", "g.npz", "--query", "q"],
        ["ablate", "--run", "base", "--all"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
    (_, train, _), (_, synth, _), (_, embed, kw), (_, export, _) = calls[:4]
    assert (train.model.use_gait, train.model.use_shape, train.model.graph) == (False, True, "gcn")
    assert (train.train.epochs, train.train.run, train.data.root) == (3, "x", "r")
    assert (synth.synth.width, synth.synth.height, synth.synth.identities) == (96, 192, 4)
    # --run means the same in every command: the run folder train.run names
    assert embed.train.run == export.train.run == "runs/a" and kw["out"] == "e.npz"
    assert calls[4][1].train.run == "runs/b" and calls[4][2]["gallery_run"] is False
    assert calls[5][2]["gallery_run"] is True  # no --run: the model recorded in the gallery
    assert calls[6][1].train.run == "base" and calls[6][2]["all_variants"] is True


def test_an_option_not_given_leaves_the_profile_value(monkeypatch):
    calls = captured_configs(monkeypatch)
    result = CliRunner().invoke(main, ["train", "--profile", "demo", "--set", "train.epochs=5"])
    assert result.exit_code == 0, result.output
    config = calls[0][1]
    assert config.train.epochs == 5 and config.model.use_gait is True
    assert config.model.backbone_depth == 18  # the demo profile's


def test_a_bad_size_is_a_usage_error():
    result = CliRunner().invoke(main, ["synth", "--size", "big"])
    assert result.exit_code == 2 and "is not WxH" in result.output


def test_library_messages_are_worded_in_flags():
    from stages.options import in_flags

    message = in_flags(
        "set `data.root` to /a, rebuild with `preprocess.overwrite`, or set `train.val_ids`; "
        "`pipeline.metrics` and `train.nope` are not settings",
        main.commands.values(),
    )
    assert message == (
        "set --root to /a, rebuild with --overwrite, or set train.val_ids (--set "
        "train.val_ids=…); `pipeline.metrics` and `train.nope` are not settings"
    )


def test_a_library_error_reaches_the_user_in_flags(tmp_path):
    """RunFolder speaks of `train.run`; the evaluate command's user reads --run."""
    result = CliRunner().invoke(
        main, ["evaluate", "--run", "nope", "--set", f"paths.runs_dir={tmp_path}"]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no trained run at" in result.output and "— set --run to the NAME" in result.output
    assert "`" + "train.run" not in result.output
