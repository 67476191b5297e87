#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ from tests/data and small hand-made files.

    python3 fuzz/make_seeds.py        (from the repository root; standard library only)

Seeds stay tiny (the whole of fuzz/corpus is well under 200 KB): the fuzzers grow their own
corpora from them, and ctest replays exactly these files (FuzzReplay.<target>).
"""
import io
import json
import os
import struct
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- .npy ----

def npy(descr, shape, payload, version=1, fortran=False):
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (descr, fortran, dims)
    pre = 10 if version == 1 else 12
    header += " " * ((64 - (pre + len(header) + 1) % 64) % 64) + "\n"
    length = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header.encode() + payload


def npy_seeds():
    with open(os.path.join(DATA, "predict", "point_multimask", "iou.npy"), "rb") as f:
        write("fuzz_npy", "iou_f4_3.npy", f.read())
    write("fuzz_npy", "f8_scalar.npy", npy("<f8", (), struct.pack("<d", 1.5)))
    write("fuzz_npy", "f2_2x2.npy", npy("<f2", (2, 2), struct.pack("<4e", 1, -2, 0.5, 65504)))
    write("fuzz_npy", "u1_2x3.npy", npy("|u1", (2, 3), bytes(range(6))))
    write("fuzz_npy", "f4_0x0.npy", npy("<f4", (0, 0), b""))
    write("fuzz_npy", "f4_v2_1x2x1x2.npy", npy("<f4", (1, 2, 1, 2), struct.pack("<4f", 1, 2, 3, 4), version=2))
    write("fuzz_npy", "f4_fortran.npy", npy("<f4", (2,), struct.pack("<2f", 1, 2), fortran=True))


# ---- pickles and checkpoints (the layout torch.save writes) ----

class Pickler:
    """Protocol 2 (GLOBAL, BINUNICODE, BINPUT) or 4 (STACK_GLOBAL, SHORT_BINUNICODE, MEMOIZE)."""

    def __init__(self, protocol):
        self.p = protocol
        self.b = bytearray([0x80, protocol])
        self.memo = 0

    def op(self, *codes):
        self.b += bytes(codes)
        return self

    def put(self):
        self.op(0x94) if self.p >= 4 else self.op(ord("q"), self.memo)
        self.memo += 1
        return self

    def str(self, s):
        s = s.encode()
        if self.p >= 4:
            self.b += bytes([0x8C, len(s)]) + s
        else:
            self.b += b"X" + struct.pack("<I", len(s)) + s
        return self.put()

    def glob(self, module, name):
        if self.p >= 4:
            return self.str(module).str(name).op(0x93).put()
        self.b += ("c%s\n%s\n" % (module, name)).encode()
        return self.put()

    def int(self, v):
        if 0 <= v < 256:
            return self.op(ord("K"), v)
        self.b += b"J" + struct.pack("<i", v)
        return self

    def ints(self, v):
        self.op(ord("("))
        for x in v:
            self.int(x)
        return self.op(ord("t")).put()

    def tensor(self, key, storage_type, storage, numel, shape, stride, offset=0):
        self.str(key).glob("torch._utils", "_rebuild_tensor_v2").op(ord("("), ord("("))
        self.str("storage").glob("torch", storage_type).str(storage).str("cpu").int(numel)
        self.op(ord("t")).put().op(ord("Q"))
        self.int(offset).ints(shape).ints(stride).op(0x89).glob("collections", "OrderedDict")
        return self.op(ord(")"), ord("R")).put().op(ord("t")).put().op(ord("R")).put()

    def state_dict(self, tensors):
        self.glob("collections", "OrderedDict").op(ord(")"), ord("R")).put().op(ord("("))
        for t in tensors:
            self.tensor(*t)
        self.op(ord("u"), ord("."))
        return bytes(self.b)


def small_pickle(protocol, storage_type="FloatStorage"):
    return Pickler(protocol).state_dict([
        ("a.weight", storage_type, "0", 6, (2, 3), (3, 1)),
        ("a.bias", storage_type, "1", 2, (2,), (1,)),
        ("b.weight_t", storage_type, "0", 6, (3, 2), (1, 3)),  # strided view of storage 0
    ])


def torch_zip(entries, zip64=False):
    """Stored entries, payloads padded to 64 bytes by an 'FB' extra field, as torch.save writes."""
    out = bytearray()
    central = bytearray()
    for name, data in entries:
        name_b = name.encode()
        local = len(out)
        start = local + 30 + len(name_b) + 4
        pad = (64 - start % 64) % 64
        crc = zipfile.crc32(data) & 0xFFFFFFFF
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, len(data), len(data),
                           len(name_b), 4 + pad)
        out += name_b + struct.pack("<HH", 0x4246, pad) + b"Z" * pad + data
        extra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), local) if zip64 else b""
        size32 = 0xFFFFFFFF if zip64 else len(data)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 20, 0, 0, 0, 0, crc, size32, size32,
                               len(name_b), len(extra), 0, 0, 0, 0, 0xFFFFFFFF if zip64 else local)
        central += name_b + extra
    cd_offset = len(out)
    out += central
    if zip64:
        z = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries),
                           len(central), cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, z, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), cd_offset, 0)
    return bytes(out)


def checkpoint(protocol, storage_type, element, zip64=False, prefix="archive"):
    pack = {"FloatStorage": "<%df", "HalfStorage": "<%de"}
    s0 = struct.pack(pack.get(storage_type, "<%dH") % 6, *([1, 2, 3, 4, 5, 6] if element else [1] * 6))
    s1 = struct.pack(pack.get(storage_type, "<%dH") % 2, *([0.5, -0.5] if element else [1, 2]))
    return torch_zip([(prefix + "/data.pkl", small_pickle(protocol, storage_type)),
                      (prefix + "/byteorder", b"little"),
                      (prefix + "/data/0", s0), (prefix + "/data/1", s1),
                      (prefix + "/version", b"3\n")], zip64)


def pickle_and_checkpoint_seeds():
    for name in ("sam_tiny.pth", "sam_tiny_fp16.pth"):
        with zipfile.ZipFile(os.path.join(DATA, name)) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
            write("fuzz_pickle", name.replace(".pth", "_data.pkl"), z.read(pkl))
    write("fuzz_pickle", "small_p2.pkl", small_pickle(2))
    write("fuzz_pickle", "small_p4_half.pkl", small_pickle(4, "HalfStorage"))
    write("fuzz_checkpoint", "small_f32.pth", checkpoint(2, "FloatStorage", True))
    write("fuzz_checkpoint", "small_f16_p4.pth", checkpoint(4, "HalfStorage", True))
    write("fuzz_checkpoint", "small_bf16_zip64.pth", checkpoint(2, "BFloat16Storage", False, zip64=True))


def zip_seeds():
    write("fuzz_zip", "torch_layout.zip", checkpoint(2, "FloatStorage", True))
    write("fuzz_zip", "torch_layout_zip64.zip", checkpoint(2, "FloatStorage", True, zip64=True))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a/one", b"1")
        z.writestr("a/empty", b"")
        z.comment = b"a comment"
    write("fuzz_zip", "python_stored_comment.zip", buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/deflated", b"x" * 64)
    write("fuzz_zip", "python_deflated.zip", buf.getvalue())


# ---- COCO RLE strings: 16-bit height, 16-bit width, then the string ----

def rle_seeds():
    with open(os.path.join(DATA, "rle.json")) as f:
        cases = json.load(f)
    for i, c in enumerate(cases):
        write("fuzz_rle", "case_%02d" % i, struct.pack("<HH", c["h"], c["w"]) + c["string"].encode())


# ---- JSON configs ----

def config_seeds():
    with open(os.path.join(DATA, "config.json"), "rb") as f:
        write("fuzz_config", "tiny.json", f.read())
    write("fuzz_config", "vit_b.json", json.dumps({
        "encoder_embed_dim": 768, "encoder_depth": 12, "encoder_num_heads": 12,
        "encoder_global_attn_indexes": [2, 5, 8, 11]}).encode())


# ---- EXIF blocks (the bytes after "Exif\0\0" in a JPEG's APP1 segment) ----

def tiff(order, entries, next_ifd=0):
    e = "<" if order == b"II" else ">"
    out = order + struct.pack(e + "HI", 42, 8) + struct.pack(e + "H", len(entries))
    for tag, fmt, count, value in entries:
        out += struct.pack(e + "HHI", tag, fmt, count)
        out += struct.pack(e + "HH", value, 0) if fmt == 3 else struct.pack(e + "I", value)
    return out + struct.pack(e + "I", next_ifd)


def exif_seeds():
    with open(os.path.join(DATA, "images", "dog.jpg"), "rb") as f:
        jpeg = f.read()
    length = struct.unpack(">H", jpeg[4:6])[0]
    assert jpeg[2:4] == b"\xff\xe1" and jpeg[6:12] == b"Exif\0\0"
    write("fuzz_exif", "dog_jpg", jpeg[12:4 + length])
    for order in (b"II", b"MM"):
        for orientation in (3, 6, 8):
            write("fuzz_exif", "%s_orientation_%d" % (order.decode(), orientation),
                  tiff(order, [(0x0112, 3, 1, orientation)]))
    # Orientation beside an Exif sub-IFD pointer and a pointer to a second IFD (thumbnail).
    write("fuzz_exif", "II_subifd_ifd1", tiff(b"II", [(0x0112, 3, 1, 5), (0x8769, 4, 1, 8)], next_ifd=8))


# ---- images (the existing fuzz_image target) ----

def image_seeds():
    with open(os.path.join(DATA, "images", "synthetic.png"), "rb") as f:
        write("fuzz_image", "synthetic.png", f.read())


if __name__ == "__main__":
    npy_seeds()
    pickle_and_checkpoint_seeds()
    zip_seeds()
    rle_seeds()
    config_seeds()
    exif_seeds()
    image_seeds()
