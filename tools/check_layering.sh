#!/usr/bin/env bash
# The layering check: every `#include "..."` and `#include <convnet/...>` in the repository's C++
# files against the table below, which is the source of truth for what each folder may include
# (the README's "Architecture" section prints it and explains it). Each violation is printed as
#   FILE:LINE: LAYER may not include "TARGET" (TARGET's layer; allowed: ...)
# and any violation, a C++ file in no layer, or an include that names no file here makes the exit
# status 1. Needs bash, coreutils, grep and awk (mawk will do); runs in a fraction of a second.
#
#   tools/check_layering.sh [ROOT]    check the tree at ROOT (default: this script's repository)
#   tools/check_layering.sh --self-test
#   tools/check_layering.sh --markdown    the table as the README shows it
set -euo pipefail

# --- the table ----------------------------------------------------------------------------------
# layer | made of: folders and files (a file belongs to the longest entry that contains it)
#       | public headers: NAME for include/convnet/NAME.hpp
#       | may include: layers by name, single files by path, `public` (every public header); a
#         layer's own files may always include each other.
# A public header may include only public headers, whatever its layer (src/ is not installed).
TABLE='
core      | src/core                | error shape tensor rng runtime files context   | -
ops/ref   | src/ops/ref             |                                                | core src/ops/shapes.hpp
ops/cpu   | src/ops/cpu             |                                                | core ops/ref src/ops/shapes.hpp src/ops/kernels.hpp
ops       | src/ops                 |                                                | core ops/ref ops/cpu
layers    | src/layers              | layers arena                                   | core ops ops/ref
loss      | src/loss                | loss                                           | core ops ops/ref
optim     | src/optim               | optim                                          | core layers ops
model     | src/model               | executor model graph zoo                       | core layers loss optim src/ops/kernels.hpp
data      | src/data                | data image image_set                           | core
dist      | src/dist                | distributed                                    | core
io        | src/io                  | safetensors spec checkpoint onnx               | core layers loss optim model
train     | src/train               | train metrics schedule gradcheck               | core data dist layers loss optim model io
report    | src/report              | report                                         | core data layers loss optim model io train
trainer   | src/train/trainer.cpp   | trainer                                        | core data dist layers loss optim model io train report
predictor | src/model/predictor.cpp | predictor                                      | core data layers loss optim model io
api       |                         | convnet                                        | public
cli       | tools/convnet tools/make_image_set.cpp |                                  | public
examples  | examples                |                                                | public
bench     | bench                   |                                                | public ops
tests     | tests                   |                                                | public core ops ops/ref ops/cpu layers loss optim model data dist io train report trainer predictor
'

self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
cxx_ext='cpp|cc|cxx|c|hpp|hh|hxx|h|ipp|inc|tpp'

# The table as a Markdown table (the README's copy).
markdown() {
  printf '%s\n' "$TABLE" | awk -F'|' '
    function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
    BEGIN { print "| layer | made of | may include |"; print "|---|---|---|" }
    NF >= 4 {
      made = ""
      n = split(trim($2), f, /[ \t]+/)
      for (i = 1; i <= n; i++) made = made (made == "" ? "" : ", ") "`" f[i] "`"
      h = trim($3)
      if (h != "") {
        gsub(/[ \t]+/, ",", h)
        made = made (made == "" ? "" : ", ") "`convnet/" (h ~ /,/ ? "{" h "}" : h) ".hpp`"
      }
      may = trim($4)
      if (may == "-") may = "nothing else"
      else { n = split(may, m, /[ \t]+/); may = ""; for (i = 1; i <= n; i++) may = may (i > 1 ? ", " : "") "`" m[i] "`" }
      printf "| `%s` | %s | %s |\n", trim($1), made, may
    }'
}

# Every C++ file under root, relative to it: git's tracked and untracked-but-not-ignored files
# in a work tree (so build folders and node_modules are skipped), else a find that skips them.
list_files() {
  local root=$1 f
  if [[ $(git -C "$root" rev-parse --show-toplevel 2>/dev/null) == "$(cd "$root" && pwd -P)" ]]; then
    git -C "$root" ls-files --cached --others --exclude-standard
  else
    (cd "$root" && find . \( -name .git -o -type d \( -name 'build*' -o -name out -o -name node_modules \) \) \
      -prune -o -type f -print | sed 's#^\./##')
  fi | grep -E "\.($cxx_ext)\$" | while IFS= read -r f; do [[ -f $root/$f ]] && printf '%s\n' "$f"; done
}

check() {
  local root=$1
  local -a files
  mapfile -t files < <(list_files "$root")
  {
    echo "@table"
    printf '%s\n' "$TABLE"
    echo "@files"
    printf '%s\n' "${files[@]}"
    echo "@includes"
    if ((${#files[@]})); then
      (cd "$root" && grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*("|<convnet/)' -- "${files[@]}") || true
    fi
  } | awk '
    function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
    # a/b/../c -> a/c; "" when it climbs out of the root
    function normalize(p,   n, parts, out, i, k, o) {
      n = split(p, parts, "/"); k = 0
      for (i = 1; i <= n; i++) {
        if (parts[i] == "" || parts[i] == ".") continue
        if (parts[i] == "..") { if (k == 0) return ""; k--; continue }
        out[++k] = parts[i]
      }
      o = ""
      for (i = 1; i <= k; i++) o = o (i > 1 ? "/" : "") out[i]
      return o
    }
    function dirname(p) { if (p !~ /\//) return ""; sub(/\/[^\/]*$/, "", p); return p }
    # The layer of a path: its longest table entry (the file itself, or a folder above it).
    function layer_of(p) {
      while (p != "") {
        if (p in member) return member[p]
        p = dirname(p)
      }
      return ""
    }
    # Where the compiler finds an include: beside the including file, then src/, include/ and,
    # for the tests, tests/ (their include directories).
    function resolve(file, target, angle,   c, d) {
      if (angle) { c = normalize("include/" target); return (c in exists) ? c : "" }
      d = dirname(file)
      c = normalize((d == "" ? "" : d "/") target); if (c in exists) return c
      c = normalize("src/" target); if (c in exists) return c
      c = normalize("include/" target); if (c in exists) return c
      if (file ~ /^tests\//) { c = normalize("tests/" target); if (c in exists) return c }
      return ""
    }
    function fail(msg) { print msg; ++failures }

    /^@table$/ { section = "table"; next }
    /^@files$/ {
      section = "files"
      for (l in allowed_text) {
        n = split(allowed_text[l], m, /[ \t]+/)
        for (i = 1; i <= n; i++) {
          t = m[i]
          if (t == "-" || t == "") continue
          if (t == "public") { public_ok[l] = 1; continue }
          if (t !~ /\./ && !(t in is_layer)) { print "check_layering.sh: layer " l " may include an unknown layer " t; bad_table = 1 }
          may[l SUBSEP t] = 1
        }
      }
      if (bad_table) exit 2
      next
    }
    /^@includes$/ { section = "includes"; next }

    section == "table" && NF > 0 {
      split($0, col, "|")
      l = trim(col[1]); is_layer[l] = 1; order[++layers] = l
      n = split(trim(col[2]), f, /[ \t]+/)
      for (i = 1; i <= n; i++) { p = f[i]; sub(/\/$/, "", p); member[p] = l }
      n = split(trim(col[3]), f, /[ \t]+/)
      for (i = 1; i <= n; i++) member["include/convnet/" f[i] ".hpp"] = l
      allowed_text[l] = trim(col[4])
      next
    }
    section == "files" && NF > 0 {
      exists[$0] = 1; ++nfiles
      if (layer_of($0) == "")
        fail($0 ": in no layer: add " ($0 ~ /^include\/convnet\// ? "its name to a layer'"'"'s public headers" : "its folder") " in tools/check_layering.sh")
      next
    }
    section == "includes" {
      # FILE:LINE:#include "TARGET" or <convnet/TARGET>
      file = $0; sub(/:.*/, "", file)
      rest = substr($0, length(file) + 2)
      line = rest; sub(/:.*/, "", line)
      text = substr(rest, length(line) + 2)
      angle = text !~ /#[ \t]*include[ \t]*"/
      if (angle) { match(text, /<[^>]*>/); target = substr(text, RSTART + 1, RLENGTH - 2) }
      else { match(text, /"[^"]*"/); target = substr(text, RSTART + 1, RLENGTH - 2) }
      ++nincludes
      fl = layer_of(file)
      if (fl == "") next  # reported above
      path = resolve(file, target, angle)
      if (path == "") {
        fail(file ":" line ": " fl " includes \"" target "\", which is no file of this tree (system headers take <>)")
        next
      }
      tl = layer_of(path)
      allowed = allowed_text[fl] == "-" ? "nothing else" : allowed_text[fl]
      if (file ~ /^include\// && path !~ /^include\//) {
        fail(file ":" line ": " fl " may not include \"" target "\" (" (tl == "" ? "in no layer" : tl) "; a public header includes public headers only)")
        next
      }
      if (tl == "") {
        fail(file ":" line ": " fl " may not include \"" target "\" (" path " is in no layer of the table)")
        next
      }
      if (tl == fl || (fl SUBSEP tl) in may || (fl SUBSEP path) in may || (public_ok[fl] && path ~ /^include\/convnet\//))
        next
      fail(file ":" line ": " fl " may not include \"" target "\" (" tl "; allowed: " allowed ")")
    }
    END {
      if (bad_table) exit 2
      if (failures) { printf "layering: %d problem(s) in %d files (the table is in tools/check_layering.sh)\n", failures, nfiles; exit 1 }
      printf "layering: %d files, %d includes, every one allowed\n", nfiles, nincludes
    }'
}

# The README's copy of the table, where the README has an Architecture section, must be the
# table's Markdown form, line for line.
check_readme() {
  local root=$1 readme=$1/README.md
  [[ -f $readme ]] && grep -q '^## Architecture' "$readme" || return 0
  local want got
  want=$(markdown)
  got=$(awk '/^\| layer \| made of \| may include \|$/ { on = 1 } on && !/^\|/ { exit } on' "$readme")
  if [[ $want != "$got" ]]; then
    echo "README.md: the layer table in \"Architecture\" differs from tools/check_layering.sh's;"
    echo "  replace it with the output of tools/check_layering.sh --markdown:"
    diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | sed 's/^/  /' || true
    return 1
  fi
}

# A temporary tree laid out like the repository, first with one file per kind of problem (each
# must be reported, and nothing else), then without them (must pass).
self_test() {
  local rc=0 out status
  tmp=$(mktemp -d)  # global: the EXIT trap removes it
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp"/{include/convnet,src/core,src/ops/cpu,src/ops/ref,src/layers,src/train,src/brandnew,tools/convnet,examples,tests/support}
  printf '#pragma once\n#include "convnet/shape.hpp"\n' >"$tmp/include/convnet/tensor.hpp"
  printf '#pragma once\n' >"$tmp/include/convnet/shape.hpp"
  printf '#pragma once\n#include "convnet/tensor.hpp"\n' >"$tmp/include/convnet/layers.hpp"
  printf '#pragma once\n#include "convnet/layers.hpp"\n' >"$tmp/include/convnet/train.hpp"
  printf '#pragma once\n' >"$tmp/src/ops/shapes.hpp"
  printf '#pragma once\n#include "ops/shapes.hpp"\n' >"$tmp/src/ops/cpu/cpu.hpp"
  printf '#pragma once\n#include "ops/shapes.hpp"\n' >"$tmp/src/ops/ref/ref.hpp"
  printf '#pragma once\n#include "ops/cpu/cpu.hpp"\n#include "ops/ref/ref.hpp"\n' >"$tmp/src/ops/kernels.hpp"
  printf '#include "convnet/tensor.hpp"\n#include <vector>\n' >"$tmp/src/core/tensor.cpp"
  printf '#include "convnet/layers.hpp"\n#include "ops/kernels.hpp"\n' >"$tmp/src/layers/conv2d.cpp"
  printf '#include "convnet/train.hpp"\n' >"$tmp/src/train/train.cpp"
  printf '#include <convnet/train.hpp>\n' >"$tmp/examples/quickstart.cpp"
  printf '#include "convnet/train.hpp"\n#include "helper.hpp"\n' >"$tmp/tools/convnet/main.cpp"
  printf '#pragma once\n' >"$tmp/tools/convnet/helper.hpp"
  printf '#include "support/testing.hpp"\n#include "ops/cpu/cpu.hpp"\n' >"$tmp/tests/test_a.cpp"
  printf '#pragma once\n#include "convnet/train.hpp"\n' >"$tmp/tests/support/testing.hpp"
  # The violations, one of each kind:
  printf '#include "convnet/tensor.hpp"\n  #  include "convnet/train.hpp"\n' >"$tmp/src/core/bad_up.cpp"
  printf '#include "ops/cpu/cpu.hpp"\n' >"$tmp/src/layers/bad_skip.cpp"
  printf '#pragma once\n#include "ops/shapes.hpp"\n' >"$tmp/include/convnet/runtime.hpp"
  printf '#pragma once\n' >"$tmp/include/convnet/unlisted.hpp"
  printf '#include "ops/kernels.hpp"\n' >"$tmp/tools/convnet/bad_private.cpp"
  printf '#include "../core/missing.hpp"\n' >"$tmp/src/layers/bad_missing.cpp"
  printf 'int x;\n' >"$tmp/src/brandnew/unknown.cpp"
  local want
  want=$(
    cat <<'EOF'
include/convnet/runtime.hpp:2: core may not include "ops/shapes.hpp" (ops; a public header includes public headers only)
include/convnet/unlisted.hpp: in no layer: add its name to a layer's public headers in tools/check_layering.sh
src/brandnew/unknown.cpp: in no layer: add its folder in tools/check_layering.sh
src/core/bad_up.cpp:2: core may not include "convnet/train.hpp" (train; allowed: nothing else)
src/layers/bad_missing.cpp:1: layers includes "../core/missing.hpp", which is no file of this tree (system headers take <>)
src/layers/bad_skip.cpp:1: layers may not include "ops/cpu/cpu.hpp" (ops/cpu; allowed: core ops ops/ref)
tools/convnet/bad_private.cpp:1: cli may not include "ops/kernels.hpp" (ops; allowed: public)
EOF
  )
  set +e
  out=$(check "$tmp")
  status=$?
  set -e
  local got
  got=$(printf '%s\n' "$out" | grep -v '^layering: ' | LC_ALL=C sort)
  if [[ $status -ne 1 || $got != "$(printf '%s\n' "$want" | LC_ALL=C sort)" ]]; then
    echo "self-test FAILED: a tree with violations gave exit status $status and:"
    printf '%s\n' "$out" | sed 's/^/  /'
    echo "expected exit status 1 and:"
    printf '%s\n' "$want" | sed 's/^/  /'
    rc=1
  fi
  rm -f "$tmp"/src/core/bad_up.cpp "$tmp"/src/layers/bad_*.cpp "$tmp"/include/convnet/{runtime,unlisted}.hpp \
    "$tmp"/tools/convnet/bad_private.cpp "$tmp"/src/brandnew/unknown.cpp
  set +e
  out=$(check "$tmp")
  status=$?
  set -e
  if [[ $status -ne 0 ]]; then
    echo "self-test FAILED: a clean tree gave exit status $status and:"
    printf '%s\n' "$out" | sed 's/^/  /'
    rc=1
  fi
  [[ $rc -eq 0 ]] && echo "self-test passed"
  return $rc
}

case "${1:-}" in
  --self-test) self_test ;;
  --markdown) markdown ;;
  -h | --help) sed -n '2,11p' "$self" | sed 's/^# \{0,1\}//' ;;
  -*)
    echo "usage: tools/check_layering.sh [ROOT | --self-test | --markdown]" >&2
    exit 2
    ;;
  *)
    root=${1:-$(dirname "$self")/..}
    status=0
    check "$root" || status=$?
    check_readme "$root" || status=1
    exit $status
    ;;
esac
