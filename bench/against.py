"""Benchmark: delivery's CPU per message against an earlier version of the code, in turns.

A figure in seconds moves with the machine: the same code spent 0.71 ms of CPU per message
on one day and over twice that on another machine of the same kind. So a target for it
is a ratio to a reference measured in the same run. Here the reference is the code of an
earlier commit (`--reference`, by default `ce49cf0`, 2026-11-24, whose 0.65-0.71 ms per
message the CPU target of 500 µs was set against). Its tree is checked out beside this
one (`git worktree`, in a temporary directory, removed afterwards) and the throughput part
of each one's own `bench/delivery.py` (`--skip-latency --skip-limit`: 4 Pages x 1,000
people x 5 fraud alerts, 2 worker processes, a fake Send API) runs `--rounds` times, the
two taking turns, with this checkout's virtual environment. It prints each run's CPU per
message (workers, PostgreSQL and Redis; the fake Send API's is left out, as it is not
bankside's) and the ratio of the means. Figures only: nothing here asserts a time.

Needs the repository's history (a clone, not an export) and PostgreSQL and Redis, as
`make bench` does.

    python bench/against.py [--reference ce49cf0] [--rounds 3]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = "ce49cf0"
_CPU = re.compile(r"CPU per message\s+\d+ us: workers (\d+), PostgreSQL (\d+), Redis (\d+)")


def run(tree: Path, extra: list[str]) -> dict[str, int]:
    """One throughput run of `tree`'s own bench/delivery.py: its CPU per message, by part."""
    done = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "bench/delivery.py", "--skip-latency", "--skip-limit", *extra],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    found = _CPU.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"the run in {tree} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    workers, database, redis = map(int, found.groups())
    return {"workers": workers, "postgresql": database, "redis": redis}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=DEFAULT_REFERENCE, help="a commit")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds takes 1 to 20")
    if not re.fullmatch(r"[\w.][\w./-]{0,99}", args.reference):  # never an option to git
        parser.error("--reference takes a commit: a hash, a tag or a branch")
    resolved = subprocess.run(  # noqa: S603 - fixed argv
        ["git", "rev-parse", "--verify", "--quiet", f"{args.reference}^{{commit}}"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if resolved.returncode != 0:
        raise SystemExit(f"{args.reference} is not a commit of this repository's history")
    commit = resolved.stdout.strip()
    tree = Path(tempfile.mkdtemp(prefix="bankside-bench-against-")) / "tree"
    subprocess.run(  # noqa: S603 - fixed argv
        ["git", "worktree", "add", "--detach", "--quiet", str(tree), commit],  # noqa: S607
        cwd=ROOT,
        check=True,
    )
    print(
        f"bankside delivery CPU per message, this code against {commit[:10]}, "
        f"{args.rounds} rounds in turns, {os.cpu_count()} CPUs"
    )
    figures: dict[str, list[dict[str, int]]] = {"reference": [], "this": []}
    try:
        for n in range(args.rounds):
            for name, where, extra in (
                ("reference", tree, []),
                ("this", ROOT, ["--skip-paced"]),
            ):
                cpu = run(where, extra)
                figures[name].append(cpu)
                total = sum(cpu.values())
                print(
                    f"  round {n + 1} {name:<9} {total:6d} us per message: workers "
                    f"{cpu['workers']}, PostgreSQL {cpu['postgresql']}, Redis {cpu['redis']}; "
                    f"load average {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    finally:
        subprocess.run(  # noqa: S603 - fixed argv
            ["git", "worktree", "remove", "--force", str(tree)],  # noqa: S607
            cwd=ROOT,
            check=False,
        )
        shutil.rmtree(tree.parent, ignore_errors=True)
    means = {
        name: sum(sum(cpu.values()) for cpu in runs) / len(runs) for name, runs in figures.items()
    }
    print(
        f"  means: this {means['this']:.0f} us, reference {means['reference']:.0f} us per "
        f"message: {means['this'] / means['reference']:.1%} of the reference"
    )


if __name__ == "__main__":
    main()
