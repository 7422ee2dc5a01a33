"""Print the VM run's results: one line per test with its outcome and the event sources
its recordings used (the "nettop sources:" lines tests print), then pytest's summary line.

Usage: python3 tests/vm/summary.py RESULTS_DIR   (junit.xml and pytest.log from the guest)
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def outcome(case: ET.Element) -> str:
    for tag, name in (("failure", "FAILED"), ("error", "ERROR"), ("skipped", "SKIPPED")):
        element = case.find(tag)
        if element is not None:
            reason = (element.get("message") or "").splitlines()[0:1]
            return f"{name} {reason[0][:90]}" if reason and name != "FAILED" else name
    return "PASSED"


def sources(case: ET.Element) -> str:
    found: set[str] = set()
    for out in case.iter("system-out"):
        for line in (out.text or "").splitlines():
            if line.startswith("nettop sources:"):
                found.update(line.split(":", 1)[1].split())
    for prop in case.iter("property"):
        if prop.get("name", "").startswith("source."):
            found.add(f"{prop.get('name')[7:]}={prop.get('value')}")
    return " ".join(sorted(found))


def main(results: Path) -> int:
    junit = results / "junit.xml"
    if not junit.exists():
        print(f"vm: no junit.xml in {results}")
        return 1
    print("vm: results from inside the guest")
    for case in ET.parse(junit).iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        used = sources(case)
        print(f"  {outcome(case):8.100s} {float(case.get('time', 0)):6.1f}s  {name}" + (f"  [{used}]" if used else ""))
    log = results / "pytest.log"
    if log.exists():
        summary = [line for line in log.read_text().splitlines() if re.match(r"^=+ .*\d+(\.\d+)?s.* =+$", line)]
        if summary:
            print(f"vm: {summary[-1].strip('= ')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
