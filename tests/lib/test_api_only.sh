#!/usr/bin/env bash
# test_api_only.sh - libonce.so shows department systems its API and
# nothing else, and an installed libonce is usable with only -lonce.
#
#   test_api_only.sh BUILD_ROOT SOURCE_ROOT MESON CC [CC ARGS...]
#
# 1. The dynamic symbols libonce.so defines are exactly the functions
#    include/once/once.h declares: anything else (an internal module, the
#    generated protobuf-c code) is a leak that programs would come to
#    depend on; an API function missing is a broken library. (lib/libonce.map
#    decides what is exported.)
# 2. `meson install` into a temporary DESTDIR, then tests/lib/api_only.c,
#    which includes only <once/once.h>, is compiled and linked with the
#    flags the installed libonce.pc gives, and run against the installed
#    libonce.so.
# CC ARGS carry the build's sanitizer flags, so that the program links
# against an instrumented library.
set -euo pipefail

build=$1
source=$2
meson=$3
shift 3
cc=("$@")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/once-api-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "test_api_only: $*" >&2
  exit 1
}

# --- 1. exported symbols ------------------------------------------------
lib="$build/lib/libonce.so"
[ -e "$lib" ] || fail "no $lib"
nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sort -u \
  >"$tmp/exported"
# The header through the preprocessor, so that comments do not count.
"${cc[@]}" -E -P -I"$source/include" "$source/include/once/once.h" |
  grep -oE '\bonce_[a-z0-9_]+[[:space:]]*\(' | tr -d '( \t' | sort -u \
  >"$tmp/declared"
[ -s "$tmp/declared" ] || fail "found no function in once.h"

not_api=$(comm -23 "$tmp/exported" "$tmp/declared")
if [ -n "$not_api" ]; then
  echo "libonce.so exports symbols that are not in once.h:" >&2
  echo "$not_api" >&2
  fail "$(echo "$not_api" | wc -l) internal symbol(s) exported"
fi
missing=$(comm -13 "$tmp/exported" "$tmp/declared")
if [ -n "$missing" ]; then
  echo "once.h declares functions that libonce.so does not export:" >&2
  echo "$missing" >&2
  fail "$(echo "$missing" | wc -l) API function(s) missing"
fi
echo "libonce.so exports exactly the $(wc -l <"$tmp/declared") functions" \
  "of once.h"

# --- 2. an installed libonce, used with only -lonce -------------------
root="$tmp/root"
"$meson" install -C "$build" --destdir "$root" --no-rebuild --quiet \
  >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2;
                                fail "meson install failed"; }
pc=$(find "$root" -name libonce.pc -print -quit)
[ -n "$pc" ] || fail "meson install wrote no libonce.pc"
[ -e "$(find "$root" -path '*/include/once/once.h' -print -quit)" ] ||
  fail "meson install wrote no include/once/once.h"
prefix=$(sed -n 's/^prefix=//p' "$pc")
pkg=(env PKG_CONFIG_PATH="$(dirname "$pc")" pkg-config
     --define-variable=prefix="$root$prefix")
cflags=$("${pkg[@]}" --cflags libonce)
libs=$("${pkg[@]}" --libs libonce)
echo "libonce.pc: $cflags $libs"
case " $libs " in
  *" -lonce "*) ;;
  *) fail "libonce.pc --libs has no -lonce" ;;
esac
# shellcheck disable=SC2086 # pkg-config output is a list of flags
"${cc[@]}" -std=c11 -Wall -Wextra -Werror $cflags \
  "$source/tests/lib/api_only.c" -o "$tmp/api_only" $libs ||
  fail "api_only.c does not build against the installed libonce"
libdir=$("${pkg[@]}" --variable=libdir libonce)
LD_LIBRARY_PATH="$libdir" "$tmp/api_only" ||
  fail "api_only failed against the installed libonce.so"
