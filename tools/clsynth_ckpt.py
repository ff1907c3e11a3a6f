"""Reads and writes clsynth's checkpoint container (io/checkpoint.h, version 2;
version 1 files are read too) from Python: numpy only, no PyTorch. Used by the
by-hand scripts under tools/ (convert_vgg19.py, import_ccfpse.py,
compare_ccfpse.py, ref_ccfpse_torch.py); never part of the build.

    write_checkpoint(path, config_text, [(name, tag, shape, float32 array), ...])
    ck = read_checkpoint(path)   # .version .config .step .rng .tensors {name: (tag, array)}
"""
import os
import struct
import zlib

import numpy as np

MAGIC = b"CLSYNCKP"
VERSION = 2
MAX_NAME = 255


class Checkpoint:
    def __init__(self, version, config, step, rng, tensors):
        self.version = version
        self.config = config
        self.step = step
        self.rng = rng
        self.tensors = tensors  # name -> (tag, float32 ndarray of the stored shape)

    def config_value(self, key, default=None):
        for line in self.config.splitlines():
            if line.startswith(key + "="):
                return line[len(key) + 1:]
        return default

    def get(self, name):
        if name not in self.tensors:
            raise KeyError("%s: checkpoint has no tensor '%s'" % (getattr(self, "path", "?"), name))
        return self.tensors[name][1]


def write_checkpoint(path, config, tensors, step=0, rng=(0, 0, 0, 0)):
    """tensors: (name, tag, shape, data) with 1..4 dims; data anything numpy
    turns into that many float32 values. Written atomically (temporary file,
    fsync, rename), like io/checkpoint.c."""
    seen = set()
    parts = [MAGIC, struct.pack("<I", VERSION)]
    cfg = config.encode("utf-8")
    parts += [struct.pack("<I", len(cfg)), cfg, struct.pack("<Q", step)]
    parts += [struct.pack("<Q", int(r)) for r in rng]
    parts.append(struct.pack("<I", len(tensors)))
    for name, tag, shape, data in tensors:
        nb, tb = name.encode(), (tag or "").encode()
        if not 1 <= len(nb) <= MAX_NAME or len(tb) > MAX_NAME:
            raise ValueError("tensor '%s': name 1..255 bytes, tag 0..255" % name)
        if name in seen:
            raise ValueError("tensor name '%s' used twice" % name)
        seen.add(name)
        shape = tuple(int(s) for s in shape)
        if not 1 <= len(shape) <= 4 or min(shape) < 1:
            raise ValueError("tensor '%s': shape %s" % (name, shape))
        arr = np.ascontiguousarray(np.asarray(data, dtype="<f4").reshape(-1))
        if arr.size != int(np.prod(shape)):
            raise ValueError("tensor '%s': %d values for shape %s" % (name, arr.size, shape))
        parts += [struct.pack("<I", len(nb)), nb, struct.pack("<I", len(tb)), tb, struct.pack("<I", len(shape))]
        parts.append(struct.pack("<4I", *(list(shape) + [1] * (4 - len(shape)))))
        parts.append(arr.tobytes())
    body = b"".join(parts)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(body)
        f.write(struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_checkpoint(path):
    with open(path, "rb") as f:
        data = f.read()

    def fail(msg):
        raise ValueError("%s: %s" % (path, msg))

    if len(data) < 16 or data[:8] != MAGIC:
        fail("not a clsynth checkpoint (magic)")
    if struct.unpack_from("<I", data, len(data) - 4)[0] != zlib.crc32(data[:-4]) & 0xFFFFFFFF:
        fail("checksum mismatch (corrupt file)")
    p = 8
    (version,) = struct.unpack_from("<I", data, p)
    p += 4
    if not 1 <= version <= VERSION:
        fail("version %d, this reader knows 1..%d" % (version, VERSION))
    (n,) = struct.unpack_from("<I", data, p)
    p += 4
    config = data[p:p + n].decode("utf-8")
    p += n
    (step,) = struct.unpack_from("<Q", data, p)
    p += 8
    rng = struct.unpack_from("<4Q", data, p)
    p += 32
    (count,) = struct.unpack_from("<I", data, p)
    p += 4
    tensors = {}
    for _ in range(count):
        (n,) = struct.unpack_from("<I", data, p)
        name = data[p + 4:p + 4 + n].decode()
        p += 4 + n
        (n,) = struct.unpack_from("<I", data, p)
        tag = data[p + 4:p + 4 + n].decode()
        p += 4 + n
        (ndim,) = struct.unpack_from("<I", data, p)
        shape = struct.unpack_from("<4I", data, p + 4)[:ndim]
        p += 20
        cnt = int(np.prod(shape))
        tensors[name] = (tag, np.frombuffer(data, dtype="<f4", count=cnt, offset=p).reshape(shape).copy())
        p += 4 * cnt
    if p != len(data) - 4:
        fail("%d unexpected bytes after the last tensor" % (len(data) - 4 - p))
    ck = Checkpoint(version, config, step, rng, tensors)
    ck.path = path
    return ck
