#!/usr/bin/env bash
# code_shape.sh: the layers of the C code. Every function or variable a file of src/ defines and
# another file uses is an edge between the two files. The core (the modules every feature builds
# on) uses no feature and has no cycle; a feature uses the core only, never another feature; the
# worker (launcher.c and notifier.c: the launcher and the per-database loop that runs the features'
# jobs) may use any file, and no file uses it: backends reach it through the core (worker_shared.c).
# _PG_init (eventsource.c) calls each module's *_preload_init. Needs python3; reads the sources only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/check.sh"
src=$(cd "$here/../../src" && pwd)

# The layers: every file of src/ is in exactly one.
core="eventsource arguments kept_plan log query consistency streams stream_write checkpoint epoch statistics guard trust
  worker_transaction worker_shared"
features="append read snapshot subscription projection lifecycle owners"
worker="launcher notifier"

report=$(python3 - "$src" "$core" "$features" "$worker" <<'PYTHON'
import os, re, sys
src, core, features, worker = sys.argv[1], set(sys.argv[2].split()), set(sys.argv[3].split()), set(sys.argv[4].split())

def code_of(path):
    text = open(path).read()
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)       # comments
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)             # string literals (the SQL)
    text = re.sub(r"'(\\.|[^'\\])'", "''", text)
    return text

files = sorted(f[:-2] for f in os.listdir(src) if f.endswith('.c'))
code = {f: code_of(os.path.join(src, f + '.c')) for f in files}
unplaced = [f for f in files if f not in core | features | worker]
for f in unplaced:
    print('unplaced %s' % f)

# What each file defines for the others: functions and variables without static at file level.
defined = {}
for f in files:
    for m in re.finditer(r'^([a-z_][a-z0-9_]*)\(', code[f], re.M):      # pgindent: name at line start
        line_start = code[f].rfind('\n', 0, m.start() - 1)
        type_line = code[f][line_start + 1:m.start()]
        if not type_line.startswith('static') and m.group(1) not in ('PG_FUNCTION_INFO_V1', 'PG_MODULE_MAGIC'):
            defined.setdefault(m.group(1), f)
    for m in re.finditer(r'^(?!static|extern|typedef|#)[A-Za-z_][\w]*[\w \t\*]*?\b([a-z_][a-z0-9_]*)\s*(=[^;]*)?;', code[f], re.M):
        defined.setdefault(m.group(1), f)

edges = {}
for f in files:
    for symbol, owner in defined.items():
        if owner == f:
            continue
        if re.search(r'\b%s\b' % re.escape(symbol), code[f]):
            if f == 'eventsource' and symbol.endswith('_preload_init'):
                continue
            edges.setdefault((f, owner), set()).add(symbol)

def layer(f):
    return 'core' if f in core else 'feature' if f in features else 'worker'

for (user, owner), symbols in sorted(edges.items()):
    if layer(owner) == 'worker' or (layer(user) == 'core' and layer(owner) != 'core') \
       or (layer(user) == 'feature' and layer(owner) == 'feature'):
        print('edge %s (%s) -> %s (%s): %s' % (user, layer(user), owner, layer(owner), ', '.join(sorted(symbols))))

# Cycles among the core's files.
graph = {}
for (user, owner) in edges:
    if user in core and owner in core:
        graph.setdefault(user, set()).add(owner)
seen, on_path = set(), []
def visit(f):
    if f in on_path:
        print('cycle %s' % ' -> '.join(on_path[on_path.index(f):] + [f]))
        return
    if f in seen:
        return
    seen.add(f)
    on_path.append(f)
    for g in sorted(graph.get(f, ())):
        visit(g)
    on_path.pop()
for f in sorted(graph):
    visit(f)
PYTHON
)
printf '%s\n' "$report" | sed '/^$/d; s/^/# /'
check "every file of src/ is in a layer" "$(grep -c '^unplaced' <<<"$report" || true)" 0
check "no feature uses another feature, no core file a feature, no file the worker" \
  "$(grep -c '^edge' <<<"$report" || true)" 0
check "the core has no cycle" "$(grep -c '^cycle' <<<"$report" || true)" 0
finish code_shape
