#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The ibvhostd authors
"""Write the seed corpus of fuzz_vq (layout: see fuzz_vq.c) to corpus/vq/."""
import os
import struct

REG = 4096
F_EVENT, F_INDIRECT, F_RX, F_V1, F_CSUM, F_GCSUM = 1, 2, 4, 8, 16, 32
NEXT, WRITE, INDIRECT = 1, 2, 4


def seed(flags, descs, heads, reg0_extra=(), reg1=b"", log2size=4,
         last_avail=0):
    hdr = struct.pack("<BBHHHHBB", log2size, flags, last_avail, 0,
                      0x100,  # region 1 at gpa 0x1000: adjacent to region 0
                      0, 2, 63)
    r0 = bytearray(REG)
    for i, (addr, ln, fl, nx) in enumerate(descs):
        struct.pack_into("<QIHH", r0, 16 * i, addr, ln, fl, nx)
    for off, data in reg0_extra:
        r0[off:off + len(data)] = data
    r1 = bytearray(REG)
    r1[:len(reg1)] = reg1
    r2 = bytearray(REG)
    struct.pack_into("<HH", r2, 0, 0, (last_avail + len(heads)) & 0xffff)
    size = 1 << log2size
    for i, h in enumerate(heads):
        struct.pack_into("<H", r2, 4 + 2 * ((last_avail + i) % size), h)
    return hdr + bytes(r0) + bytes(r1) + bytes(r2)


def vnet_hdr(flags=0, start=0, off=0):
    return struct.pack("<BBHHHHH", flags, 0, 0, 0, start, off, 0)


frame = bytes(range(60))
seeds = {
    "tx-single": seed(F_V1 | F_CSUM, [(0x800, 72, 0, 0)], [0],
                      [(0x800, vnet_hdr(1, 34, 16) + frame)]),
    "tx-straddle": seed(F_V1, [(0xff0, 100, NEXT, 1), (0x1100, 50, 0, 0)],
                        [0], [(0xff0, vnet_hdr())]),
    "tx-indirect": seed(F_V1 | F_INDIRECT, [(0x1000, 32, INDIRECT, 0)], [0],
                        [(0x800, vnet_hdr()), (0x900, frame)],
                        struct.pack("<QIHHQIHH", 0x800, 12, NEXT, 1,
                                    0x900, 60, 0, 0)),
    "tx-hdr-split": seed(F_V1, [(0x800, 4, NEXT, 1), (0x900, 4, NEXT, 2),
                                (0xa00, 64, 0, 0)], [0]),
    "rx-small-hdr": seed(F_RX | F_V1 | F_GCSUM,
                         [(0x800, 4, WRITE | NEXT, 1),
                          (0x900, 4, WRITE | NEXT, 2),
                          (0xa00, 1500, WRITE, 0)], [0],
                         reg1=struct.pack(">BBHHH", 1, 2, 0, 0, 0)),
    "event-idx-wrap": seed(F_EVENT | F_V1,
                           [(0x800, 80, 0, 0), (0x900, 80, 0, 0),
                            (0xa00, 80, 0, 0)], [0, 1, 2],
                           last_avail=0xfffe),
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "vq")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data.rstrip(b"\0"))  # missing bytes read as 0
