"""Runs one function on several threads at once, for the scripts that check concurrent writers."""
import threading


def run_concurrently(target, count):
    """Calls target(i) for i in range(count), each on its own thread, and waits for all of them."""
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
