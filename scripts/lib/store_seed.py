#!/usr/bin/env python3
"""Seeds a relay's store for the query benchmark (scripts/bench, scenario store-query).

Usage: store_seed.py DATABASE DESKTOPS NOW_MS

Into a database the relay created (its schema): for DESKTOPS desktops `bench-N`, 30 days of
one-minute aggregates ending at NOW_MS, and for bench-0 also 24 hours of raw samples at 1 Hz,
written as a relay that ran for a month would hold them (schema 2: raw samples packed, one row
per desktop per minute, as relay/src/store/packed.rs describes).
"""
import random
import sqlite3
import struct
import sys


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def pack(ts, value, memory):
    return varint((ts % 60_000) << 1 | 1) + struct.pack("<d", value) + varint(memory)


db, desktops, now = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MINUTE = 60_000
conn = sqlite3.connect(db)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("PRAGMA synchronous = OFF")
rnd = random.Random(1)
end = now // MINUTE * MINUTE
start = end - 30 * 1440 * MINUTE
with conn:
    for d in range(desktops):
        conn.execute("INSERT OR IGNORE INTO desktops (id) VALUES (?)", (f"bench-{d}",))
        key = conn.execute("SELECT key FROM desktops WHERE id = ?", (f"bench-{d}",)).fetchone()[0]
        rows = []
        for minute in range(start, end, MINUTE):
            low = rnd.uniform(0, 50)
            rows.append((key, minute, 60, low, low + 30, (low + 10) * 60, 60, 8e9 * 60))
        conn.executemany(
            "INSERT OR REPLACE INTO minutes (key, minute, n, low, high, total, memory_n, memory_total)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        if d == 0:
            raw = {}
            for ts in range(now - 86_400_000, now, 1000):
                minute = ts // MINUTE * MINUTE
                raw[minute] = raw.get(minute, b"") + pack(ts, rnd.uniform(0, 100), 8_000_000_000)
            conn.executemany(
                "INSERT OR REPLACE INTO raw (key, minute, data) VALUES (?, ?, ?)",
                ((key, minute, data) for minute, data in raw.items()),
            )
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
conn.close()
