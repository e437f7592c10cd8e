#!/bin/sh
# Builds firehook-quickjs.wasm: QuickJS-ng with firehook's patch and guest ABI, for wasm32-wasi.
#
# The built .wasm is committed next to this script; the project loads it at run time and its
# installation needs no compiler. Rebuild only to change the engine:
#
#   apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32   # Debian 12
#   git clone https://github.com/quickjs-ng/quickjs /tmp/quickjs-ng
#   src/firehook/scripts/vendor/quickjs/build.sh /tmp/quickjs-ng
#
# Upstream: QuickJS-ng v0.16.2, commit 1ab8676f4b6d6d669baeb5f21790fb9734636a20 (MIT licence,
# quickjs-ng-LICENSE). quickjs-ng-firehook.patch changes quickjs.c and quickjs-opcode.h:
#   * a property read records the position of the property's name, and a call the position
#     of the callee's last part (its identifier or property name), as Node reports them;
#   * a call of a value that is not a function throws "<callee> is not a function", the
#     callee named from its source text (new opcode check_func, emitted before each call);
#   * the parser polls the interrupt handler (compile time counts against the deadline);
#   * columns of the first line are no longer one short (it has no line terminator before it);
#   * running out of memory is uncatchable and sets fh_out_of_memory.
set -eu
SRC=${1:?usage: build.sh QUICKJS_NG_CHECKOUT}
HERE=$(cd "$(dirname "$0")" && pwd)
COMMIT=1ab8676f4b6d6d669baeb5f21790fb9734636a20
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
git -C "$SRC" archive "$COMMIT" | tar -x -C "$WORK"
patch -d "$WORK" -p1 < "$HERE/quickjs-ng-firehook.patch"
clang-14 --target=wasm32-wasi --sysroot=/usr -O2 \
  -D_GNU_SOURCE -D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_SIGNAL -I"$WORK" \
  -mexec-model=reactor \
  -Wl,--stack-first -Wl,-z,stack-size=2097152 -Wl,--strip-all \
  -o "$HERE/firehook-quickjs.wasm" \
  "$HERE/fh_guest.c" "$WORK/quickjs.c" "$WORK/libregexp.c" "$WORK/libunicode.c" "$WORK/dtoa.c" \
  -lwasi-emulated-process-clocks -lwasi-emulated-signal
sha256sum "$HERE/firehook-quickjs.wasm"
