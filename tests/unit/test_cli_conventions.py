"""The command line follows the usual conventions, for every subcommand: ``--help`` with
examples, ``--version``, exit codes 0 ok / 1 failure / 2 usage, ``-q``/``-v`` before or
after the subcommand, ``--json`` where a script wants it, errors as one line without a
traceback unless ``-v``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpufleet import __version__
from gpufleet.cli import build_parser, main

ROOT = Path(__file__).parents[2]
EXAMPLE = str(ROOT / "examples" / "fleet.yaml")
PLAN = """\
slo: {ttft_s: 2.0, itl_s: 0.1, percentile: 90}
models: [{name: llama-3-8b, rate_per_s: 5, prompt_tokens: "256", output_tokens: "64"}]
"""


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


COMMANDS = sorted(subcommands())

# A failing invocation of every subcommand and the exit code it must give: 2 for a usage or
# configuration error, 1 for a failure at run time. A new subcommand must be added here.
FAILURES: dict[str, tuple[list[str], int]] = {
    "serve": (["serve", "-c", "/nonexistent/fleet.yaml"], 2),
    "up": (["up", "-c", "/nonexistent/fleet.yaml"], 2),
    "engine": (["engine", "--model", "no-such-model", "--gpu", "h100"], 2),
    "render": (["render", "-c", "/nonexistent/fleet.yaml", "--target", "k8s", "-o", "out"], 2),
    "sim": (["sim", "-c", EXAMPLE, "--workload", "no-such-workload"], 2),
    "plan": (["plan", "-i", "/nonexistent/plan.yaml"], 2),
    "bench": (["bench", "--url", "http://127.0.0.1:1", "--concurrency", "1"], 1),
    "controller": (["controller", "-c", "/nonexistent/fleet.yaml"], 2),
    "preempt": (["preempt", "pool/model/0", "--url", "http://127.0.0.1:1"], 1),
}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpufleet", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )  # fmt: skip


def test_every_subcommand_has_a_failure_case() -> None:
    assert sorted(FAILURES) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_help_with_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gpufleet {command}")
    assert "example" in out
    assert f"\n  gpufleet {command}" in out, "an example invocation of this command"
    for flag in ("-h, --help", "-v, --verbose", "-q, --quiet"):
        assert flag in out


@pytest.mark.parametrize("command", COMMANDS)
def test_usage_errors_exit_2_with_one_error_line(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--no-such-flag"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith((f"gpufleet {command}: error: ", "gpufleet: error: ")), err
    assert "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("command", COMMANDS)
def test_failures_exit_1_or_2_with_one_line(
    command: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    argv, code = FAILURES[command]
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("gpufleet"), err
    assert "Traceback" not in err


def test_version_and_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"gpufleet {__version__}"
    assert main([]) == 2
    assert "usage: gpufleet" in capsys.readouterr().out


def test_quiet_and_verbose_before_or_after_the_subcommand() -> None:
    parser = build_parser()
    sim = ["sim", "-c", EXAMPLE, "--workload", "chat"]
    args = parser.parse_args([*sim, "-q", "-vv"])
    assert args.quiet is True and args.verbose == 2
    args = parser.parse_args(["-v", "-q", *sim])
    assert args.quiet is True and args.verbose == 1, "a global flag is not reset by the subcommand"
    args = parser.parse_args(sim)
    assert args.quiet is False and args.verbose == 0


def test_quiet_prints_nothing_but_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["render", "-c", EXAMPLE, "--target", "k8s", "-o", "out", "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["render", "-c", EXAMPLE, "--target", "k8s", "-o", "out"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("gpufleet: wrote ") and err.endswith(" files to out\n"), err


def test_an_unexpected_error_is_one_line_unless_verbose(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("first line\nsecond line")

    monkeypatch.setattr("gpufleet.cli.run_command", broken)
    assert main(["render", "-c", "f", "--target", "k8s", "-o", "o"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "gpufleet: internal error: RuntimeError: first line; second line "
        "(run with -v for the traceback)\n"
    )
    with pytest.raises(RuntimeError):
        main(["render", "-c", "f", "--target", "k8s", "-o", "o", "-v"])


def test_os_errors_one_line_and_traceback_with_verbose(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    argv = ["plan", "-i", "plan.yaml", "--no-sim", "-o", "missing-dir/fleet.yaml"]
    quiet = run(*argv, cwd=tmp_path)
    assert quiet.returncode == 1
    assert quiet.stderr.strip().splitlines()[-1] == (
        "gpufleet: missing-dir/fleet.yaml: No such file or directory"
    )
    assert "Traceback" not in quiet.stderr
    verbose = run(*argv, "-v", cwd=tmp_path)
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr and "FileNotFoundError" in verbose.stderr


@pytest.mark.parametrize("command", ["sim", "plan", "bench"])
def test_json_output_where_a_script_wants_it(command: str) -> None:
    assert "--json" in subcommands()[command].format_help()


def test_json_to_stdout_is_json_alone(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    planned = run("plan", "-i", "plan.yaml", "--no-sim", "--json", "-", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    document = json.loads(planned.stdout)
    assert document["chosen"] == document["plans"][0]["name"]
    assert document["fleet"]["pools"] and document["plans"][0]["cost_usd_per_hour"] > 0
    simulated = run(
        "sim", "-c", EXAMPLE, "--workload", "chat", "--duration", "5", "--json", "-", "-q"
    )
    assert simulated.returncode == 0, simulated.stderr
    report = json.loads(simulated.stdout)
    assert report["requests"] > 0 and report["outcomes"]["failed"] == 0
