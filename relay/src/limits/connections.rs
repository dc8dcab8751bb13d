//! Counts open WebSocket connections in total and per client address, refusing new ones past the
//! limits. A connection holds a [`ConnectionGuard`] for its whole life; dropping it frees the slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRefused {
    Total,
    PerAddress,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

/// One open connection's slot.
#[derive(Debug)]
pub struct ConnectionGuard {
    limiter: Arc<ConnectionLimiter>,
    ip: Option<IpAddr>,
}

impl ConnectionLimiter {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Takes a slot for a connection from `ip` (unknown addresses share only the total limit).
    pub fn acquire(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
    ) -> Result<ConnectionGuard, ConnectionRefused> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= self.max_total {
            return Err(ConnectionRefused::Total);
        }
        if let Some(ip) = ip {
            let n = counts.per_ip.entry(ip).or_insert(0);
            if *n >= self.max_per_ip {
                return Err(ConnectionRefused::PerAddress);
            }
            *n += 1;
        }
        counts.total += 1;
        Ok(ConnectionGuard {
            limiter: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        counts.total -= 1;
        if let Some(ip) = self.ip {
            if let Some(n) = counts.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    counts.per_ip.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_total_and_per_address_and_frees_slots_on_drop() {
        let limiter = ConnectionLimiter::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = limiter.acquire(Some(a)).unwrap();
        let _a2 = limiter.acquire(Some(a)).unwrap();
        assert_eq!(
            limiter.acquire(Some(a)).unwrap_err(),
            ConnectionRefused::PerAddress
        );
        let _b1 = limiter.acquire(Some(b)).unwrap();
        assert_eq!(
            limiter.acquire(Some(b)).unwrap_err(),
            ConnectionRefused::Total
        );
        drop(a1);
        assert_eq!(limiter.open(), 2);
        let _a3 = limiter.acquire(Some(a)).unwrap();
        assert_eq!(limiter.open(), 3);
    }
}
