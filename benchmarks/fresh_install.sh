#!/usr/bin/env bash
# Time the README's two commands on a fresh clone of the committed main branch:
# `make setup` (venv + pip install -e ".[dev]"), `make test`, `make book`.
# Writes benchmarks/results/fresh_install.json. Takes a few minutes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone --quiet "$repo" "$work/effdl"
cd "$work/effdl"
t() { local start=$SECONDS; "$@" > "$work/$1-$2.log" 2>&1 || { tail -30 "$work/$1-$2.log" >&2; exit 1; }; echo $((SECONDS - start)); }
setup=$(t make setup)
test=$(t make test)
book=$(t make book)
tests_line=$(grep -E "^=+ .*(passed|failed).* in " "$work/make-test.log" | tail -1 | tr -d '=' | xargs)
cat > "$repo/benchmarks/results/fresh_install.json" <<JSON
{
  "machine": "$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m)",
  "date": "$(date -u +%Y-%m-%d)",
  "commit": "$(git rev-parse --short HEAD)",
  "setup_s": $setup,
  "test_s": $test,
  "book_s": $book,
  "pytest": "$tests_line"
}
JSON
cat "$repo/benchmarks/results/fresh_install.json"
