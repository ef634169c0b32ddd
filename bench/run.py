"""`python -m bench.run --suite NAME`: the command line of bench/runner/cli.py; a frontier's name
(bench/tuning/frontiers.py, e.g. methods-mnist) runs `python -m bench.tune --frontier NAME` with the rest."""
import sys

from bench.runner.cli import main as run_main


def main(argv: list[str] | None = None) -> int:
    from bench.tuning.frontiers import FRONTIERS
    argv = sys.argv[1:] if argv is None else list(argv)
    for i, arg in enumerate(argv):
        name = argv[i + 1] if arg == "--suite" and i + 1 < len(argv) else arg.split("=", 1)[1] if arg.startswith("--suite=") else None
        if name in FRONTIERS:
            from bench.tuning.cli import main as tune_main
            rest = argv[:i] + argv[i + (2 if arg == "--suite" else 1):]
            return tune_main(["--frontier", name, *rest])
    code = run_main(argv)
    if "--list" in argv and code == 0:
        for frontier in FRONTIERS.values():
            print(f"{frontier.name:15s} frontier          {frontier.description} (bench.tune --frontier)")
    return code


if __name__ == "__main__":
    sys.exit(main())
