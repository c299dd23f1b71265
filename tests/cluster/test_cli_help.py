"""`ami --help` teaches: every option of every command has a help line that shows its default, `ami train --help`
explains key.path=value overrides, `--help-config` lists every config key with the doc line its dataclass holds,
and usage errors come out as one `ami: error:` line (exit 2). No test here starts a run."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ami.agent.config import AgentConfig, PlannerConfig
from ami.cluster.cli import build_parser, main
from ami.cluster.config import RunConfig, TrainConfig
from ami.learner.learner import LearnerConfig

KEY_LINE = re.compile(r"^(\S+) \((\S+), default (.*?)\)((?: \[[^\]]+\])*): (.*)$")
"""One key of --help-config: KEY (TYPE, default VALUE) [MARK]...: DOC."""


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {name: sub for a in parser._actions if isinstance(a, argparse._SubParsersAction)
            for name, sub in a.choices.items()}


def test_every_option_of_every_command_has_help_that_shows_its_default() -> None:
    commands = _commands(build_parser())
    assert {"train", "eval", "report", "scale"} <= set(commands)
    for name, sub in commands.items():
        sub.format_help()  # renders: no stray '%' in a help string
        formatter = sub._get_formatter()
        for action in sub._actions:
            assert action.help and action.help.strip(), f"ami {name} {action.option_strings or action.dest}: no help"
            text = formatter._expand_help(action)  # the help line as --help prints it, default included
            optional = (action.option_strings or action.nargs == "*") and not action.required
            if optional and action.default is not argparse.SUPPRESS:
                assert "default" in text, f"ami {name} {action.option_strings or action.dest}: {text!r}"


def _help_text(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    assert stop.value.code in (0, None)
    return capsys.readouterr().out


def _listed(capsys) -> dict[str, tuple[str, str, str, str]]:
    """--help-config's keys -> (type, default, marks, doc); asserts no key is listed twice."""
    lines = [m.groups() for m in map(KEY_LINE.match, _help_text(capsys, "train", "--help-config").splitlines()) if m]
    keys = {k: rest for k, *rest in lines}
    assert len(keys) == len(lines)
    return keys


def test_train_help_explains_overrides_with_an_example_of_real_keys(capsys) -> None:
    out = _help_text(capsys, "train", "--help")
    assert "key.path=value" in out and "--help-config" in out
    example = next(line for line in out.splitlines() if line.strip().startswith("ami train ") and "=" in line)
    assert "agent.planner.horizon=5" in example
    keys = [word.split("=")[0] for word in example.split() if "=" in word]
    assert "run.eval_every" in keys
    assert set(keys) <= set(_listed(capsys))  # the example names keys that exist


def _leaf_paths(obj, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(obj, TrainConfig) and f.name == "agent":  # a mapping of AgentConfig overrides
            value = AgentConfig()
        out += _leaf_paths(value, f"{prefix}{f.name}.") if dataclasses.is_dataclass(value) else [prefix + f.name]
    return out


def _source_doc(cls: type, name: str) -> str:
    """The string literal under field `name` in `cls`'s source, whitespace folded (read without `ast`)."""
    m = re.search(rf'^\s+{name}: [^\n]*\n\s+"""(.*?)"""', inspect.getsource(cls), re.M | re.S)
    assert m, (cls, name)
    return " ".join(m.group(1).split())


def test_help_config_lists_every_leaf_key_with_its_source_doc_line(capsys) -> None:
    listed = _listed(capsys)
    leaves = _leaf_paths(TrainConfig())
    assert len(listed) == len(leaves) and set(listed) == set(leaves)
    undocumented = [k for k, (_, _, _, doc) in listed.items() if not doc]
    assert not undocumented, f"config fields without a docstring: {undocumented}"
    for key, cls, value in (("agent.planner.horizon", PlannerConfig, AgentConfig().planner.horizon),
                            ("run.eval_every", RunConfig, RunConfig().eval_every),
                            ("learner.batch_size", LearnerConfig, LearnerConfig().batch_size)):
        kind, default, _, doc = listed[key]
        assert doc == _source_doc(cls, key.rsplit(".", 1)[1]), key
        assert (kind, default) == ("int", repr(value)), key
    assert listed["agent.hierarchy.planner.horizon"][1] == repr(AgentConfig().hierarchy.planner.horizon)


def test_help_config_marks_keys_the_configurator_and_goal_tasks_set(capsys) -> None:
    listed = _listed(capsys)
    assert "[configurator]" in listed["agent.planner.horizon"][2]  # configure(): 5 on goal tasks, 3 else
    assert "[goal task]" in listed["learner.window"][2]  # resolve.task_defaults
    assert listed["agent.optim.lr"][2] == "" and listed["run.eval_every"][2] == ""


def _ami(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ami.cluster.cli", *args], capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                                            "PATH": "/usr/bin:/bin"})


def _one_error_line(stderr: str) -> str:
    lines = [s for s in stderr.splitlines() if s.strip()]
    assert len(lines) == 1 and lines[0].startswith("ami: error: "), stderr
    # the prefix once: the message does not repeat argparse's prog ('ami:' or 'ami train:')
    assert not re.search(r"\bami( \w+)?:", lines[0].removeprefix("ami: error: ")), stderr
    return lines[0]


@pytest.mark.parametrize("args", [[], ["train", "--no-such-flag"]])
def test_usage_errors_are_one_prefixed_line_exit_2(args: list[str]) -> None:
    res = _ami(*args)
    assert res.returncode == 2 and res.stdout == "", res
    _one_error_line(res.stderr)


@pytest.mark.parametrize("args, says", [
    ([], "no command given"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["frob"], "invalid choice: 'frob'"),
    (["train", "--no-such-flag"], "train: unrecognized arguments: --no-such-flag"),
    (["train", "--steps", "ten"], "train: argument --steps: invalid int value: 'ten'"),
    (["eval"], "eval: the following arguments are required"),
    (["scale", "somewhere"], "scale: the following arguments are required: --actors"),
])
def test_each_usage_error_names_its_command_once(capsys, args: list[str], says: str) -> None:
    assert main(args) == 2
    assert says in _one_error_line(capsys.readouterr().err)
