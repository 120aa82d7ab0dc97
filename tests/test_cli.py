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
