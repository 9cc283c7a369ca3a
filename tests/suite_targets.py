#!/usr/bin/env python3
"""Prints the build outputs the tests of the given suites need (their programs and what they depend on), one
per line, relative to BUILD_DIR, so a build can compile only those: tests/run.sh's TSan stage runs a few suites
and need not build the rest (CI time). Usage: suite_targets.py BUILD_DIR SUITE..."""
import json
import os
import subprocess
import sys

build, suites = sys.argv[1], set(sys.argv[2:])


def introspect(what):
    out = subprocess.run(["meson", "introspect", what, build], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


files = {t["id"]: t["filename"] for t in introspect("--targets")}
root = os.path.realpath(build)
wanted = set()
for test in introspect("--tests"):
    if not suites & {s.split(":", 1)[-1] for s in test["suite"]}:
        continue
    for dep in test["depends"]:
        wanted.update(files.get(dep, []))
for path in sorted(wanted):
    print(os.path.relpath(path, root))
