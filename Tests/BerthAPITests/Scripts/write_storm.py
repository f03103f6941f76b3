"""Creates ConfigMaps from 8 threads as fast as the server acknowledges them; prints each acknowledged
name (after the 201) on stdout. Runs until killed or the server goes away."""
import json, ssl, sys, threading, urllib.request

url, token, cafile = sys.argv[1], sys.argv[2], sys.argv[3]
prefix = sys.argv[4] if len(sys.argv) > 4 else "storm"
ctx = ssl.create_default_context(cafile=cafile)
lock = threading.Lock()

def worker(n):
    i = 0
    while True:
        name = f"{prefix}-{n}-{i}"
        body = json.dumps({"metadata": {"name": name}, "data": {"v": "x" * 200}}).encode()
        req = urllib.request.Request(f"{url}/api/v1/namespaces/default/configmaps", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
                if r.status == 201:
                    with lock:
                        print(name, flush=True)
        except Exception:
            return
        i += 1

threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
for t in threads: t.start()
for t in threads: t.join()
