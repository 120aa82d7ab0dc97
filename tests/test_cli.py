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
