#!/usr/bin/env python3
"""Opens an mprof report in headless chromium and prints its self-test,
timed in real time.

Usage: report_open.py CHROMIUM PAGE.html NAME

chromium --dump-dom needs --virtual-time-budget to wait for the page's
asynchronous start (its data is decompressed by a DecompressionStream),
and under virtual time performance.now() does not advance while scripts
run: the page's own timings would read 0.  So this drives chromium over
the DevTools protocol on a pipe (--remote-debugging-pipe: NUL-terminated
JSON on descriptors 3 and 4, nothing but the standard library), opens
file://PAGE#selftest=NAME and polls until the page has written its
self-test, whose ready_ms (performance.now() at the first drawing: from
the start of navigation, the reading of the file included) is then real.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def main():
    chromium, page, name = sys.argv[1:4]
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    # Moved above 4 first, so that the dup2s below cannot clobber them.
    to_chrome_r = os.dup2(to_chrome_r, 100) and 100
    from_chrome_w = os.dup2(from_chrome_w, 101) and 101

    def child_fds():
        os.dup2(to_chrome_r, 3)
        os.dup2(from_chrome_w, 4)

    profile = tempfile.mkdtemp(prefix="mprof-report-open.")
    proc = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--user-data-dir=" + profile, "--remote-debugging-pipe", "about:blank"],
        preexec_fn=child_fds, close_fds=False,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    buf = b""
    next_id = [0]

    def call(method, params=None, session=None):
        next_id[0] += 1
        msg = {"id": next_id[0], "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(to_chrome_w, json.dumps(msg).encode() + b"\0")
        nonlocal buf
        while True:
            while b"\0" not in buf:
                chunk = os.read(from_chrome_r, 1 << 16)
                if not chunk:
                    raise SystemExit("chromium closed its DevTools pipe")
                buf += chunk
            raw, buf = buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == next_id[0]:
                if "error" in reply:
                    raise SystemExit("%s: %s" % (method, reply["error"]))
                return reply["result"]

    try:
        url = "file://" + os.path.abspath(page) + "#selftest=" + name
        target = call("Target.createTarget", {"url": url})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        deadline = time.time() + 60
        while time.time() < deadline:
            r = call("Runtime.evaluate", {"expression":
                     "(document.getElementById('selftest') || {}).textContent || ''",
                     "returnByValue": True}, session)
            text = r.get("result", {}).get("value", "")
            if text:
                print(text)
                return
            time.sleep(0.05)
        raise SystemExit("the page wrote no self-test in 60 s")
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


main()
