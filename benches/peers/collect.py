#!/usr/bin/env python3
"""Copies JSON records (one per line) from stdin to stdout and writes them as a JSON array to
the file named by the only argument: how run.sh stores the C peer's records."""

import json
import sys

records = []
for line in sys.stdin:
    line = line.strip()
    if line:
        records.append(json.loads(line))
        print(line, flush=True)
with open(sys.argv[1], "w") as f:
    json.dump(records, f, indent=1)
    f.write("\n")
print(f"wrote {len(records)} records to {sys.argv[1]}", file=sys.stderr)
