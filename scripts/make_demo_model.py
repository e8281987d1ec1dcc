#!/usr/bin/env python3
"""Writes a small fake model (safetensors-like shards of random bytes with a
valid safetensors header, config and tokenizer files, nested folders) into
OUTDIR, deterministically from --seed. Optionally uploads it to an S3
endpoint (path-style, SigV4) with the test harness's client.

  make_demo_model.py OUTDIR [--scale-mb N] [--upload URL BUCKET AK SK]
"""

import argparse
import json
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def write_shard(path, tensors, rng):
    """tensors: [(name, dtype, shape)]; bytes per element from dtype."""
    width = {"BF16": 2, "F16": 2, "F32": 4, "I64": 8}
    header = {"__metadata__": {"format": "pt", "producer": "dsfs-demo"}}
    offset = 0
    for name, dtype, shape in tensors:
        n = width[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + n]}
        offset += n
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)  # the header is padded to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        left = offset
        while left:
            k = min(left, 4 << 20)
            f.write(rng.randbytes(k))
            left -= k
    return offset


def make_model(out, scale_mb, seed):
    rng = random.Random(seed)
    root = os.path.join(out, "deepseek-demo")
    os.makedirs(os.path.join(root, "original"), exist_ok=True)
    hidden, layers, vocab = 1024, 6, 4096
    # Rows of the big matrices scale with --scale-mb (about 1 MiB a unit).
    rows = max(64, scale_mb * 1024 * 1024 // (hidden * 2 * layers * 3))
    weight_map = {}
    shards = [[("model.embed_tokens.weight", "BF16", (vocab, hidden))]]
    for i in range(layers):
        shards.append([
            (f"model.layers.{i}.self_attn.q_proj.weight", "BF16",
             (hidden, hidden)),
            (f"model.layers.{i}.mlp.up_proj.weight", "BF16", (rows, hidden)),
            (f"model.layers.{i}.mlp.down_proj.weight", "BF16",
             (hidden, rows)),
            (f"model.layers.{i}.input_layernorm.weight", "F32", (hidden,)),
        ])
    shards.append([("lm_head.weight", "BF16", (vocab, hidden)),
                   ("model.norm.weight", "F32", (hidden,))])
    # Three shards: embeddings + first half, second half, head.
    half = 1 + layers // 2
    groups = [sum(shards[0:half], []), sum(shards[half:1 + layers], []),
              shards[-1]]
    total = 0
    for i, g in enumerate(groups, 1):
        name = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
        total += write_shard(os.path.join(root, name), g, rng)
        for t in g:
            weight_map[t[0]] = name
    with open(os.path.join(root, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total},
                   "weight_map": weight_map}, f, indent=2)
    config = {"architectures": ["DemoForCausalLM"], "model_type": "demo",
              "hidden_size": hidden, "num_hidden_layers": layers,
              "intermediate_size": rows, "vocab_size": vocab,
              "torch_dtype": "bfloat16"}
    with open(os.path.join(root, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    vocab_map = {f"tok{i}": i for i in range(vocab)}
    with open(os.path.join(root, "tokenizer.json"), "w") as f:
        json.dump({"version": "1.0", "model": {"type": "BPE",
                                               "vocab": vocab_map}}, f)
    with open(os.path.join(root, "tokenizer_config.json"), "w") as f:
        json.dump({"model_max_length": 4096}, f)
    with open(os.path.join(root, "generation_config.json"), "w") as f:
        json.dump({"temperature": 0.6, "top_p": 0.95}, f)
    with open(os.path.join(root, "original", "params.json"), "w") as f:
        json.dump({"dim": hidden, "n_layers": layers}, f)
    with open(os.path.join(root, "README.md"), "w") as f:
        f.write("# deepseek-demo\n\nRandom bytes shaped like a model, for "
                "the dsfs demo.\n")
    return root


def upload(out, url, bucket, ak, sk):
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "mount"))
    import harness  # the tests' small SigV4 client
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    client = harness.S3Client(u.hostname, u.port, ak, sk)
    n = 0
    for dirpath, _, files in os.walk(out):
        for name in sorted(files):
            p = os.path.join(dirpath, name)
            key = os.path.relpath(p, out)
            client.put(bucket, key, file=p)
            n += 1
    client.close()
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--scale-mb", type=int, default=48)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--upload", nargs=4, metavar=("URL", "BUCKET", "AK", "SK"))
    a = ap.parse_args()
    root = make_model(a.outdir, a.scale_mb, a.seed)
    print(f"demo model written under {root}")
    if a.upload:
        n = upload(a.outdir, *a.upload)
        print(f"uploaded {n} objects to bucket {a.upload[1]}")


if __name__ == "__main__":
    main()
