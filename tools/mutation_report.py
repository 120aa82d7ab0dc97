"""Kill rate per module from `mutmut results --all true` (run by `make mutation`).

Prints one row per mutated module (killed / all mutants that ran; a timeout counts as killed,
as mutmut counts it) and then every surviving mutant's name, for `mutmut show NAME`."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict

NAME = re.compile(r"^\s+(?P<module>[\w.]+?)\.x[_ǁ](?P<rest>\S+): (?P<status>[\w ]+)$")
KILLED = {"killed", "timeout", "caught by type check"}


def main(mutmut: str) -> int:
    lines = subprocess.run(
        [mutmut, "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    counts: dict[str, Counter] = defaultdict(Counter)
    survivors: list[str] = []
    for line in lines:
        match = NAME.match(line)
        if not match:
            continue
        module, status = match["module"], match["status"].strip()
        counts[module][status] += 1
        if status not in KILLED:
            survivors.append(f"{line.strip()}")
    if not counts:
        print("no mutation results: run `mutmut run` first", file=sys.stderr)
        return 1
    print(f"{'module':<28}{'mutants':>9}{'killed':>8}{'other':>7}{'kill rate':>11}")
    total_killed = total = 0
    for module in sorted(counts):
        c = counts[module]
        killed = sum(c[s] for s in KILLED)
        ran = sum(c.values()) - c["skipped"] - c["not checked"]
        total_killed, total = total_killed + killed, total + ran
        print(
            f"{module:<28}{ran:>9}{killed:>8}{ran - killed:>7}{100 * killed / max(ran, 1):>10.1f}%"
        )
    print(
        f"{'all':<28}{total:>9}{total_killed:>8}{total - total_killed:>7}"
        f"{100 * total_killed / max(total, 1):>10.1f}%"
    )
    print("\nnot killed (mutmut show NAME for the diff):")
    print("\n".join(f"  {s}" for s in survivors) or "  none")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "mutmut"))
