# MEM-01 in Python: grow a list of distinct 1 MiB bytes objects until the box's memory limit ends it.
import sys

chunks = []
while True:
    chunks.append(bytes(1 << 20) + bytes([len(chunks) % 256]))
    if len(chunks) % 16 == 0:
        print(f"mib={len(chunks)}", flush=True)
        sys.stdout.flush()
