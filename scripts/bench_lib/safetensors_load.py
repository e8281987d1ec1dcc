#!/usr/bin/env python3
"""Safetensors-layout shards for the bench: write them, and load them the way
safetensors' load_file does.

  safetensors_load.py make PATH --size-mb N [--seed S]
      Writes a shard of about N MiB: 8-byte little-endian header length, a
      JSON header (dtype, shape, data_offsets per tensor, padded to 8 bytes),
      then the tensor bytes (random). Tensors mix sizes as a transformer's
      do: per layer two big matrices, two mid-sized ones and small norms.
  safetensors_load.py load FILE [--torch] [--start-at EPOCH]
      mmaps FILE and copies every tensor out of the mapping in header order
      into memory of its own (bytes objects, or with --torch torch tensors:
      torch.frombuffer over the mapping, then .clone()), keeping them all as
      a loader does. With --start-at it imports what it needs first, then
      waits until that time.time(), so several loaders start together and
      the interpreter's (and torch's) start-up is not timed. Prints
      "bytes=N seconds=S tensors=T end=EPOCH" (end: time.time() when done).
Exit status 1 on a malformed file or an I/O error.
"""
import argparse
import json
import mmap
import os
import struct
import sys
import time

WIDTH = {"BF16": 2, "F16": 2, "F32": 4, "I64": 8, "U8": 1}


def layout(size_mb):
    """[(name, dtype, shape)] of about size_mb MiB: layers of a transformer
    with hidden size 2048 (two 32 MiB MLP matrices, 8 and 2 MiB attention
    matrices, 8 KiB norms per layer), the last layer cut short."""
    target = max(1, size_mb) << 20
    hidden = 2048
    per_layer = (("self_attn.q_proj.weight", "BF16", (hidden, hidden)),
                 ("self_attn.k_proj.weight", "BF16", (hidden // 4, hidden)),
                 ("self_attn.v_proj.weight", "BF16", (hidden // 4, hidden)),
                 ("self_attn.o_proj.weight", "BF16", (hidden, hidden)),
                 ("mlp.up_proj.weight", "BF16", (4 * hidden, hidden)),
                 ("mlp.down_proj.weight", "BF16", (hidden, 4 * hidden)),
                 ("input_layernorm.weight", "F32", (hidden,)),
                 ("post_attention_layernorm.weight", "F32", (hidden,)))
    tensors, total, layer = [], 0, 0
    while total < target:
        for name, dtype, shape in per_layer:
            if total >= target:
                break
            rows = shape[0]
            row_bytes = WIDTH[dtype] * (shape[1] if len(shape) > 1 else 1)
            if len(shape) > 1 and total + rows * row_bytes > target:
                rows = max(1, (target - total) // row_bytes)  # the last tensor is cut short
            tensors.append((f"model.layers.{layer}.{name}", dtype, (rows,) + tuple(shape[1:])))
            total += rows * row_bytes
        layer += 1
    return tensors


def make(path, size_mb, seed):
    header = {"__metadata__": {"format": "pt", "producer": "dsfs-bench", "seed": str(seed)}}
    offset = 0
    for name, dtype, shape in layout(size_mb):
        n = WIDTH[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        left = offset
        while left:
            k = min(left, 4 << 20)
            f.write(os.urandom(k))
            left -= k
    return offset


def load(path, use_torch, start_at):
    if use_torch:
        import torch  # noqa: F401  (imported before the clock starts)
    if start_at:
        time.sleep(max(0.0, start_at - time.time()))
    start = time.perf_counter()
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        (hlen,) = struct.unpack("<Q", mm[:8])
        if hlen > len(mm) - 8:
            raise ValueError("header length %d past the end" % hlen)
        header = json.loads(mm[8:8 + hlen])
        base = 8 + hlen
        entries = [(k, v) for k, v in header.items() if k != "__metadata__"]
        kept, total = [], 0
        if use_torch:
            import torch  # only for --torch
            dtypes = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32,
                      "I64": torch.int64, "U8": torch.uint8}
        for name, info in entries:  # header order, as load_file
            a, b = info["data_offsets"]
            if not 0 <= a <= b <= len(mm) - base:
                raise ValueError("tensor %s: offsets %d-%d past the end" % (name, a, b))
            if use_torch:
                t = torch.frombuffer(mm, dtype=dtypes[info["dtype"]], count=(b - a) //
                                     WIDTH[info["dtype"]], offset=base + a)
                kept.append(t.clone())  # the copy out of the mapping
                del t
            else:
                kept.append(mm[base + a:base + b])  # a copy into a bytes object
            total += b - a
        seconds = time.perf_counter() - start
        print("bytes=%d seconds=%.3f tensors=%d end=%.3f" % (total + base, seconds, len(kept),
                                                              time.time()))
        del kept
    finally:
        try:
            mm.close()
        except BufferError:  # torch still references the mapping; exiting unmaps it
            pass
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("path")
    m.add_argument("--size-mb", type=int, required=True)
    m.add_argument("--seed", type=int, default=1)
    ld = sub.add_parser("load")
    ld.add_argument("path")
    ld.add_argument("--torch", action="store_true")
    ld.add_argument("--start-at", type=float, default=0.0)
    a = ap.parse_args()
    try:
        if a.cmd == "make":
            make(a.path, a.size_mb, a.seed)
            return 0
        return load(a.path, a.torch, a.start_at)
    except (OSError, ValueError) as e:
        print("safetensors_load: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
