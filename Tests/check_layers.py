#!/usr/bin/env python3
"""The layering check (Tests/run.sh): every Swift module under Shared/ imports only the project
modules it is allowed to (docs/architecture.md), nothing imports a function, tool, benchmark or
test target, and the module graph has no cycle.

    python3 Tests/check_layers.py [REPOSITORY]

Exits 1 naming each offending file, line and import.
"""
import os
import re
import sys

# The architecture: each shared module and the project modules it may import. System modules
# (Glibc, Dispatch, FoundationEssentials, Synchronization, Logging, ...) are not project modules
# and are not checked here; the C modules have their own boundary check in Tests/run.sh.
ALLOWED = {
    # C adapters: one C library each.
    "HTTPClient": {"CCurl"},
    "Postgres": {"CLibPQ"},
    "Compression": {"CZlib", "CZstd"},
    "Cryptography": {"COpenSSL"},
    # Pure Swift.
    "Parquet": {"Compression"},
    # Core is pure: no I/O adapter (HTTPClient, Postgres), no lake, store or runtime.
    "Core": {"Parquet", "Compression", "Cryptography"},
    "LambdaRuntime": {"Core", "HTTPClient"},
    "Lake": {"Core", "HTTPClient", "Cryptography"},
    "Store": {"Core", "Postgres", "Cryptography"},
    # Pure vendor knowledge (requests, answers, transforms); the engine that does the I/O.
    "Vendors": {"Core"},
    "Fetching": {"Core", "Vendors", "Lake", "LambdaRuntime", "Store", "Postgres", "HTTPClient", "Cryptography"},
    # Breach evidence and replay (above the validator: replay reads files the validator's way).
    "Trust": {"Core", "Store", "Lake", "Postgres", "Compression", "Cryptography", "Validation"},
    # Function URLs: the payload, routes, CORS, JSON errors, user tokens (no I/O of its own).
    "WebAPI": {"Core", "LambdaRuntime"},
    "Validation": {"Core", "Vendors", "Lake", "LambdaRuntime", "Store", "Postgres"},
}

IMPORT = re.compile(r"^\s*(?:@[\w()]+\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?(\w+)")


def swift_files(directory):
    for root, _, files in os.walk(directory):
        for name in sorted(files):
            if name.endswith(".swift"):
                yield os.path.join(root, name)


def imports(path):
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            match = IMPORT.match(line)
            if match:
                yield number, match.group(1)


def find_cycle(graph):
    """A cycle in `graph` as a list of names, or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for neighbour in sorted(graph.get(node, ())):
            if state.get(neighbour) == "open":
                return stack[stack.index(neighbour):] + [neighbour]
            if neighbour not in state:
                found = visit(neighbour)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def self_test():
    """The check must fail on each kind of violation: proven on small trees before the real one."""
    import contextlib
    import io
    import tempfile

    scratch = tempfile.TemporaryDirectory(prefix="meterlake-layers.")

    def tree(files):
        root = tempfile.mkdtemp(dir=scratch.name)
        for relative, text in files.items():
            path = os.path.join(root, relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        return root

    base = {"Shared/Core/A.swift": "import Parquet\n", "Shared/Store/B.swift": "import Core\nimport Postgres\n",
            "Functions/validator/main.swift": "import Store\n"}
    cases = {
        "a clean tree": ({}, 0, ""),
        "Core reaching for the database": ({"Shared/Core/C.swift": "@preconcurrency import Postgres\n"}, 1, "Core imports Postgres"),
        "a module importing a function": ({"Shared/Store/D.swift": "internal import validator\n"}, 1, "imports validator"),
        "a module the check does not know": ({"Shared/Unlisted/E.swift": "import Core\n"}, 1, "does not know"),
        "a function importing a tool": ({"Functions/validator/F.swift": "import meterlake\n", "Tools/meterlake/main.swift": ""},
                                        1, "another executable"),
    }
    with scratch:
        for name, (extra, status, message) in cases.items():
            output = io.StringIO()
            with contextlib.redirect_stderr(output), contextlib.redirect_stdout(io.StringIO()):
                got = check(tree({**base, **extra}))
            if got != status or message not in output.getvalue():
                print(f"layering self-test failed on {name}: status {got}, output {output.getvalue()!r}", file=sys.stderr)
                return False
    if find_cycle({"A": {"B"}, "B": {"C"}, "C": {"A"}}) != ["A", "B", "C", "A"] or find_cycle(ALLOWED) is not None:
        print("layering self-test failed on cycle detection", file=sys.stderr)
        return False
    return True


def main():
    if not self_test():
        return 1
    return check(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))


def check(root):
    shared = os.path.join(root, "Shared")
    modules = {name for name in os.listdir(shared) if os.path.isdir(os.path.join(shared, name))}
    # Targets nothing may import: functions, tools, benchmarks and test targets.
    leaves = set()
    for folder in ("Functions", "Tools", "Benchmarks", "Tests"):
        path = os.path.join(root, folder)
        if os.path.isdir(path):
            leaves |= {name.replace("-", "_") for name in os.listdir(path) if os.path.isdir(os.path.join(path, name))}
    leaves -= {"Support"}  # Benchmarks/Support is the BenchmarkSupport target
    leaves |= {"BenchmarkSupport"}

    problems = []
    unknown = sorted(name for name in modules if name not in ALLOWED and not name.startswith("C"))
    for name in unknown:
        problems.append(f"Shared/{name}/ is a module the layering check does not know: add it to ALLOWED in Tests/check_layers.py "
                        "and to docs/architecture.md")
    actual = {}
    for module in sorted(modules):
        if module.startswith("C") and module not in ALLOWED:
            continue  # a C module map
        for path in swift_files(os.path.join(shared, module)):
            for number, name in imports(path):
                relative = os.path.relpath(path, root)
                if name in leaves:
                    problems.append(f"{relative}:{number}: imports {name}, a function, tool, benchmark or test target")
                elif name in modules or name in ALLOWED:
                    actual.setdefault(module, set()).add(name)
                    if name not in ALLOWED.get(module, set()):
                        allowed = ", ".join(sorted(ALLOWED.get(module, ()))) or "no project module"
                        problems.append(f"{relative}:{number}: {module} imports {name}; it may import only {allowed}")
    # Functions and tools may import any shared module, but no other function, tool or test target.
    for folder in ("Functions", "Tools"):
        for path in swift_files(os.path.join(root, folder)):
            for number, name in imports(path):
                if name in leaves:
                    problems.append(f"{os.path.relpath(path, root)}:{number}: imports {name}, another executable or test target")

    for graph, what in ((ALLOWED, "the allowed dependencies"), (actual, "the imports")):
        cycle = find_cycle(graph)
        if cycle:
            problems.append(f"{what} form a cycle: {' -> '.join(cycle)}")

    if problems:
        print("layering violated (see docs/architecture.md):", file=sys.stderr)
        for problem in problems:
            print("  " + problem, file=sys.stderr)
        return 1
    count = sum(len(v) for v in actual.values())
    print(f"layering: {len(actual)} modules, {count} project imports, all allowed, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
