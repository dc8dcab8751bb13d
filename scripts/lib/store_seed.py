#!/usr/bin/env python3
"""Seeds a relay's store for the query benchmark (scripts/bench, scenario store-query).

Usage: store_seed.py DATABASE DESKTOPS NOW_MS

Into a database the relay created (its schema): for DESKTOPS desktops `bench-N`, 30 days of
one-minute aggregates ending at NOW_MS, and for bench-0 also 24 hours of raw samples at 1 Hz,
all folded (the rollup mark after them), as a relay that ran for a month would hold.
"""
import random
import sqlite3
import sys

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
            conn.executemany(
                "INSERT INTO samples (key, ts, value, memory_used) VALUES (?, ?, ?, ?)",
                ((key, ts, rnd.uniform(0, 100), 8_000_000_000) for ts in range(now - 86_400_000, now, 1000)),
            )
    conn.execute("UPDATE rollup SET last_seq = (SELECT max(seq) FROM samples), tail_from = NULL")
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
conn.close()
