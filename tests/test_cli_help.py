"""Every subcommand's --help: each flag explained with its default, plain text, an example;
no abbreviated flags."""

import argparse

import pytest

from qsnn_hw.cli import COMMANDS, EXAMPLES, build_parser, main


def _subparsers():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


@pytest.mark.parametrize("name", COMMANDS)
def test_every_flag_has_help_and_its_default(name):
    p = _subparsers()[name]
    text = p.format_help()
    for action in p._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS \
                or isinstance(action, argparse._HelpAction):
            continue
        flag = action.option_strings[-1]
        assert action.help, f"{name} {flag} has no help"
        has_default = not (action.default is None or action.default is False
                           or action.default is argparse.SUPPRESS or action.nargs == 0)
        if has_default:
            shown = p._get_formatter()._get_help_string(action)
            assert "default" in shown, f"{name} {flag}: default {action.default!r} not shown"
    # plain text: no reST literals or roles, no Python list reprs of defaults
    assert "``" not in text and ":func:" not in text and ":mod:" not in text
    assert "(default: [" not in text and "(default: ['" not in text
    assert f"example:\n  {EXAMPLES[name].splitlines()[0]}" in text


def test_defaults_read_as_typed():
    help_text = _subparsers()["train"].format_help()
    assert "(default: 256)" in " ".join(help_text.split())          # --hidden, not [256]
    assert "(default: qat)" in help_text and "(default: squat)" in help_text


@pytest.mark.parametrize("argv", [["train", "--epoch", "3"],
                                  ["verify", "m.qsnn", "--sim", "icarus", "--sam", "3"],
                                  ["sweep", "--see", "2", "--out", "x"]])
def test_abbreviated_flags_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_train_defaults_to_four_bit_qat_and_squat():
    """`qsnn-hw train` with no mode flags trains what flow and the Python API train."""
    from qsnn_hw.commands import train
    parser = argparse.ArgumentParser()
    train.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--out", "x"])
    assert args.weight_mode == ["qat"] and args.weight_bits == [4]
    assert args.state_mode == ["squat"] and args.state_bits == [4]
    assert args.state_family == ["exponential"]


@pytest.mark.parametrize("name", ["flow", "synth", "run"])
def test_board_is_a_choice_everywhere(name, capsys):
    argv = {"flow": ["flow", "--board", "de10"],
            "synth": ["synth", "m.qsnn", "--board", "de10"],
            "run": ["run", "m.qsnn", "--board", "de10", "--port", "x"]}[name]
    with pytest.raises(SystemExit):
        main(argv)
    assert "invalid choice: 'de10' (choose from 'icebreaker'" in capsys.readouterr().err
