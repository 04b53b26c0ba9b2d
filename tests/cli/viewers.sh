#!/bin/sh
# mprof's profiles in the viewers people already use (issue 15, item 5):
#
#  - speedscope (the npm package's built app, vendored in
#    third_party/speedscope), in headless chromium: it imports the heap and
#    the CPU profile, and its Sandwich table lists the hot function with
#    its share, as speedscope's own command line loads a file
#    (#localProfilePath= a script calling speedscope.loadFileFromBase64);
#  - pprof: `-list` shows the hot function's source lines from the profile
#    alone (mprof symbolizes; no binary needed), PIE or not; the web UI's
#    Source view (/ui/source, served by pprof -http) shows them for a
#    non-PIE executable, and for a PIE one pprof shows none (golang/go
#    #46639, docs/report.md): checked, so that the docs stay true when a
#    newer pprof fixes it.
#
# Usage: viewers.sh MPROF LIBMPROF_SO REPORT_TARGET SPEEDSCOPE_DIR CC
. "$(dirname "$0")/../lib/testlib.sh"
MPROF=$1
export MPROF_LIB="$2"
TARGET=$3
SPEEDSCOPE=$4
CC=$5
unset MPROF_HEAP MPROF_CPU MPROF_HTTP MPROF_SIGNAL MPROF_INTERVAL MPROF_PEAK
need_cmd chromium
cd "$T" || exit 1

run_t "$MPROF" run --rate 4096 --heap heap.pb.gz --cpu cpu.pb.gz --hz 200 -- "$TARGET" 400 ||
    fail "the target under mprof run failed"
[ -s heap.pb.gz ] && [ -s cpu.pb.gz ] || die "no profiles written: $(ls)"

# speedscope: the loader script its CLI writes, and a check appended that
# opens the Sandwich view (a DOM table) and copies the page's text out.
speedscope() { # PROFILE -> the page's text after import, in PROFILE.txt
    "$PYTHON" - "$1" >"$1.js" <<'PY'
import base64, json, sys
data = open(sys.argv[1], "rb").read()
print("speedscope.loadFileFromBase64(%s, %s);" % (json.dumps(sys.argv[1]), json.dumps(base64.b64encode(data).decode())))
print(r"""(function () {
  var tries = 0, clicked = false;
  function done() {
    var pre = document.createElement("pre"); pre.id = "mprof-check";
    pre.textContent = JSON.stringify({title: document.title, text: document.body.innerText});
    document.body.appendChild(pre);
  }
  function poll() {
    tries++;
    var tabs = [].slice.call(document.querySelectorAll("div")).filter(function (d) {
      return d.children.length <= 1 && /Sandwich$/.test(d.textContent.trim()); });
    if (!clicked && tabs.length && / - speedscope$/.test(document.title)) {
      tabs[tabs.length - 1].click(); clicked = true;
    }
    if (clicked && /Symbol Name[\s\S]*%/.test(document.body.innerText)) return setTimeout(done, 300);
    if (tries > 80) return done();
    setTimeout(poll, 250);
  }
  setTimeout(poll, 250);
})();""")
PY
    run_t chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$T/chrome" \
        --virtual-time-budget=20000 --dump-dom \
        "file://$SPEEDSCOPE/dist/index.html#localProfilePath=$T/$1.js" 2>>chromium.err >"$1.dom"
    "$PYTHON" - "$1.dom" >"$1.txt" <<'PY'
import html, json, re, sys
m = re.search(r'<pre id="mprof-check">(.*?)</pre>', open(sys.argv[1]).read(), re.S)
if m:
    r = json.loads(html.unescape(m.group(1)))
    print("title:", r["title"])
    print("\n".join(line.strip() for line in r["text"].split("\n")))
PY
}
# Headless chromium now and then exits at start on a loaded machine with
# nothing dumped (seen once in a parallel run): such a run is made again,
# at most twice; a page that imported and said otherwise is not.
speedscope_run() { # PROFILE
    for _try in 1 2 3; do
        speedscope "$1"
        grep -q '^title: ' "$1.txt" && return
        echo "chromium dumped no page for $1 (try $_try): $(tail -3 chromium.err)"
    done
}
speedscope_run heap.pb.gz
check_grep "speedscope imports the heap profile (its title names it)" "title: heap.pb.gz - speedscope" heap.pb.gz.txt
# Sandwich rows: total, self, name; the hot site holds the heap at exit.
check "speedscope's Sandwich table lists report_hot_site at 100%" \
    "$PYTHON" -c "
import sys; t = open(sys.argv[1]).read().split('\n')
i = t.index('report_hot_site') if 'report_hot_site' in t else -1
sys.exit(0 if i >= 2 and '(100%)' in t[i - 1] else 1)" heap.pb.gz.txt
speedscope_run cpu.pb.gz
check_grep "speedscope imports the CPU profile" "title: cpu.pb.gz - speedscope" cpu.pb.gz.txt
check_grep_re "speedscope's Sandwich table lists main" "^main$" cpu.pb.gz.txt
check_no_grep "speedscope reports no import error" "Something went wrong" cpu.pb.gz.txt

# pprof: text source listing, and the web UI's Source view.
if ! command -v "$GO" >/dev/null 2>&1; then
    echo "go not found: the pprof checks are skipped"
    finish
fi
check "go tool pprof -list shows report_hot_site's malloc line (PIE, profile alone)" \
    sh -c "'$GO' tool pprof -list report_hot_site heap.pb.gz | grep -q 'malloc(n)'"

"$CC" -O2 -g -no-pie -fno-pie -o nopie "$(dirname "$0")/report_target.c" || die "cannot build a non-PIE target"
run_t "$MPROF" run --rate 4096 --heap nopie.pb.gz -- ./nopie 100 || fail "the non-PIE target failed"

# pprof -http on a free port, its Source view fetched, the server stopped.
web_source() { # PROFILE -> /ui/source?f=report_hot_site, in PROFILE.src.html
    port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    pprof_bin=$("$GO" env GOTOOLDIR)/pprof
    "$pprof_bin" -no_browser -http="127.0.0.1:$port" "$1" >"$1.http.log" 2>&1 &
    pid=$!
    kill_at_exit "$pid"
    i=0
    while [ $i -lt 100 ] && ! grep -q "Serving web UI" "$1.http.log"; do sleep 0.1; i=$((i + 1)); done
    curl -s --max-time 20 "http://127.0.0.1:$port/ui/source?f=report_hot_site" >"$1.src.html"
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}
need_cmd curl
web_source nopie.pb.gz
check_grep "pprof's web Source view shows report_hot_site's lines for a non-PIE program" \
    "malloc(n)" nopie.pb.gz.src.html
web_source heap.pb.gz
if grep -q "malloc(n)" heap.pb.gz.src.html; then
    echo "note: this pprof shows the Source view of a PIE program too: docs/report.md can say so"
else
    pass "pprof's web Source view of a PIE program is empty, as docs/report.md says (golang/go #46639)"
fi
finish
