# shellcheck shell=sh
# Shared by install_consumers.sh and install_deb.sh, sourced after testlib.sh.
#
#   check_consumer_profile NAME PROFILE MPROF [OUTPUT]
#       consumer/example.c keeps 200 blocks of 64 KiB at rate 1: the
#       profile must show exactly 12.50MB flat in consumer_keep (read with
#       the MPROF given, the installed one); OUTPUT, the example's own, is
#       shown when it does not
#   build_plain_program CC OUT
#       a program that knows nothing of mprof (2000 mallocs of 100000
#       bytes), for `mprof run` to profile

check_consumer_profile() {
    run_t "$3" top -n 3 "$2" >"$2.top" 2>&1
    if grep -q '^ *12\.50MB .* consumer_keep$' "$2.top"; then
        pass "$1: the profile shows consumer_keep's 12.50MB"
    else
        [ -n "${4:-}" ] && cat "$4"
        cat "$2.top"; fail "$1: no 12.50MB in consumer_keep"
    fi
}

build_plain_program() {
    cat >"$2.c" <<'EOF_C'
#include <stdlib.h>
#include <stdio.h>
int main(void) { char *volatile p = NULL; for (int i = 0; i < 2000; i++) p = malloc(100000); printf("%p\n", (void *)p); return 0; }
EOF_C
    "$1" -O1 -g -o "$2" "$2.c"
}
