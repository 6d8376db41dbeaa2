#!/usr/bin/env python3
"""Check that the library's modules import each other without a cycle.

Usage: scripts/check-layers.py [--graph]

Every file under src/ (but src/main.rs and src/bin/, which are binaries
built on the library) is a module: src/a.rs and src/a/mod.rs are `a`,
src/a/b.rs is `a::b`. Module `tests` and everything under it is left out:
tests may reach into any layer.

An edge A -> B is drawn when A's code, outside comments and string
literals, names a path into B: `crate::b::...`, `super::...` or
`self::...` resolved from A, or a bare `b::...` where `b` is a child module
A declares. A path resolves to the deepest module it names, so
`crate::cache::shard::Shard` is an edge to `cache::shard`. A parent's
`mod child;` is not an edge (it only says where the child lives), but a
re-export (`pub use child::Item;`) is: code that imports the item through
the parent depends on the child too.

The script finds the strongly connected components of the graph and
prints every one with more than one module, with the edges that close it
and the line that makes each edge, then exits 1.

It then checks the graph against the layer table of the crate doc
(src/lib.rs: rows `//! | layer | module | ...`, a row with an empty layer
cell continuing the layer above it, modules named as [`links`]). A module
belongs to the layer of its top-level module, and may import only modules
of its own layer or of the layers listed before it; every other edge is
printed, with the line that makes it, and the script exits 1. A top-level
module missing from the table is an error too.

With neither problem it prints the modules by depth (a module's depth is
one more than the deepest module it imports) and exits 0. `--graph`
prints every edge as well.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_of(rel):
    """Module path (a tuple) of a file relative to src/, or None."""
    if rel in ("main.rs",) or rel.startswith("bin" + os.sep):
        return None
    parts = rel[:-3].split(os.sep)
    if parts == ["lib"]:
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    if "tests" in parts:
        return None
    return tuple(parts)


def strip(src):
    """The source with comments, strings and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            i = j
            continue
        if src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * src.count("\n", i, j))
            i = j
            continue
        m = re.match(r'b?r(#*)"', src[i:i + 8])
        if m and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            end = '"' + m.group(1)
            j = src.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * src.count("\n", i, j))
            i = j
            continue
        if c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append('""' + "\n" * src.count("\n", i, j))
            i = j + 1
            continue
        if c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", src[i:i + 12])
            if m:
                out.append("' '")
                i += m.end()
                continue
        out.append(c)
        i += 1
    return "".join(out)


def use_trees(text):
    """(start offset, [path, ...], is_pub) for every `use` declaration."""
    for m in re.finditer(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]*);", text):
        body = re.sub(r"\s+", "", m.group(2))
        paths = []

        def walk(prefix, s):
            depth, start, items = 0, 0, []
            for k, ch in enumerate(s):
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                elif ch == "," and depth == 0:
                    items.append(s[start:k])
                    start = k + 1
            items.append(s[start:])
            for it in items:
                if not it:
                    continue
                b = it.find("{")
                if b >= 0:
                    walk(prefix + it[:b], it[b + 1:-1])
                else:
                    paths.append(re.sub(r"as\w+$", "", prefix + it) if "as" in it else prefix + it)
        walk("", body)
        yield m.start(), paths, bool(m.group(1))


def main():
    files = {}
    for d, _, names in os.walk(ROOT):
        for name in names:
            if name.endswith(".rs"):
                rel = os.path.relpath(os.path.join(d, name), ROOT)
                mod = module_of(rel)
                if mod is not None:
                    files[mod] = rel
    modules = set(files)

    def resolve(here, path):
        """The deepest known module a `::`-path names, from module `here`."""
        segs = [s for s in path.split("::") if s]
        if not segs:
            return None
        if segs[0] == "crate":
            base, rest = (), segs[1:]
        elif segs[0] in ("super", "self"):
            base = here
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    base = base[:-1]
                segs = segs[1:]
            rest = segs
        elif here + (segs[0],) in modules:
            base, rest = here, segs
        else:
            return None
        best = base
        for s in rest:
            if best + (s,) in modules:
                best = best + (s,)
            else:
                break
        return best

    edges = {}
    for mod, rel in files.items():
        with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
            text = strip(f.read())
        # cut #[cfg(test)] mod tests { ... } blocks: tests may use anything
        for m in list(re.finditer(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", text))[::-1]:
            depth, j = 1, m.end()
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            text = text[:m.start()] + "\n" * text.count("\n", m.start(), j) + text[j:]
        line_of = lambda off: text.count("\n", 0, off) + 1
        found = []
        used = set()
        for off, paths, is_pub in use_trees(text):
            for p in paths:
                t = resolve(mod, p)
                if t is None:
                    continue
                found.append((t, off))
            used.add(off)
        for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:crate|super|self|%s)(?:::%s)+)" % (IDENT, IDENT), text):
            if any(u <= m.start() < text.find(";", u) for u in used):
                continue
            t = resolve(mod, m.group(1))
            if t is not None:
                found.append((t, m.start()))
        for t, off in found:
            if t != mod:
                edges.setdefault(mod, {}).setdefault(t, (rel, line_of(off)))

    name = lambda m: "::".join(m) or "crate"
    # Tarjan's strongly connected components
    index, low, stack, on, comps = {}, {}, [], set(), []
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    for v in sorted(modules):
        if v not in index:
            visit(v)
    if "--graph" in sys.argv:
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f"{name(a)} -> {name(b)}  ({edges[a][b][0]}:{edges[a][b][1]})")
    cycles = [sorted(c) for c in comps if len(c) > 1]
    if cycles:
        for c in cycles:
            print(f"cycle of {len(c)} modules: {', '.join(name(m) for m in c)}")
            members = set(c)
            for a in c:
                for b, (rel, line) in sorted(edges.get(a, {}).items()):
                    if b in members:
                        print(f"    {name(a)} -> {name(b)}  (src/{rel}:{line})")
        sys.exit(1)
    # The crate doc's layer table.
    with open(os.path.join(ROOT, "lib.rs"), encoding="utf-8") as f:
        doc = f.read()
    table, current, order = {}, None, []
    in_table = False
    for line in doc.splitlines():
        if line.startswith("//! | layer | module |"):
            in_table = True
            continue
        if in_table:
            if not line.startswith("//! |"):
                break
            cells = [c.strip() for c in line[4:].strip().strip("|").split("|")]
            if cells[0] and set(cells[0]) <= set("- "):
                continue
            if cells[0]:
                current = cells[0]
                order.append(current)
            for linked in re.findall(r"\[`([a-z_:]+)`\]", cells[1]):
                table[linked.split("::")[0]] = order.index(current)
    bad = []
    tops = {m[0] for m in modules if m}
    for t in sorted(tops - set(table)):
        bad.append(f"module {t} is not in the crate doc's layer table (src/lib.rs)")
    for a in sorted(edges):
        for b, (rel, line) in sorted(edges[a].items()):
            if not a or not b or a[0] not in table or b[0] not in table:
                continue
            if table[b[0]] > table[a[0]]:
                bad.append(
                    f"{name(a)} ({order[table[a[0]]]}) imports {name(b)} "
                    f"({order[table[b[0]]]}), a lower layer  (src/{rel}:{line})"
                )
    if not order:
        bad.append("no layer table found in src/lib.rs")
    if bad:
        print("\n".join(bad))
        sys.exit(1)
    layer = {}
    for comp in comps:  # Tarjan emits components in reverse topological order
        v = comp[0]
        layer[v] = 1 + max((layer[w] for w in edges.get(v, {})), default=-1)
    for n in range(max(layer.values()) + 1):
        print(f"depth {n}: {', '.join(sorted(name(m) for m in layer if layer[m] == n))}")
    print(f"no import cycle among {len(modules)} modules, and every import "
          f"follows the {len(order)} layers of the crate doc")


if __name__ == "__main__":
    main()
