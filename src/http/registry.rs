//! The open connections: who holds a slot, from which address, and which ones are idle between requests.
//!
//! Owns: [`Registry`] (admission against `max_connections` and `max_connections_per_address`, choosing an
//! idle keep-alive connection to close when a limit is reached, the handles shutdown forces shut) and
//! [`IdleMark`] (set by a connection thread while it waits for its next request). Must not do socket I/O
//! while its lock is held: an evicted or forced stream is handed back to the caller, which shuts it.
//!
//! Why evict instead of refusing: keep-alive connections cost a slot while doing nothing. Without
//! eviction, a few thousand keep-alive connections that each send a request every few seconds fill the cap,
//! and every new client (with a request in hand) gets 503 (finding F2). Closing the connection idle the
//! longest is what a client already expects from `keep_alive_idle`, and it reopens when it next needs one.

use std::collections::HashMap;
use std::net::{IpAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Whether a connection is idle between requests, and since when. Shared by its thread and the registry.
#[derive(Debug)]
pub(super) struct IdleMark {
    /// 0 while a request is being read or served; else 1 + milliseconds from `epoch` when it went idle.
    since: AtomicU64,
    epoch: Instant,
}

impl IdleMark {
    fn new(epoch: Instant) -> IdleMark {
        IdleMark { since: AtomicU64::new(0), epoch }
    }

    /// The connection is waiting for its next request with nothing buffered.
    pub(super) fn set_idle(&self) {
        let millis = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.since.store(millis.saturating_add(1), Ordering::Release);
    }

    /// The connection has a request in hand.
    pub(super) fn set_busy(&self) {
        self.since.store(0, Ordering::Release);
    }

    fn idle_since(&self) -> Option<u64> {
        match self.since.load(Ordering::Acquire) {
            0 => None,
            stamp => Some(stamp),
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// `max_connections` are open and none of them is idle.
    Cap,
    /// Its address holds `max_connections_per_address` and none of them is idle.
    PerAddress,
}

/// What admitting a connection did.
#[derive(Debug)]
pub(super) struct Admission {
    /// The admitted connection's idle mark, for its thread.
    pub(super) idle: Arc<IdleMark>,
    /// An idle keep-alive connection whose slot was taken: the caller shuts it (outside the lock).
    pub(super) evicted: Option<TcpStream>,
}

struct Entry {
    /// A second handle to the socket, to evict or force it shut; `None` once taken for that.
    stream: Option<TcpStream>,
    ip: IpAddr,
    idle: Arc<IdleMark>,
    /// Evicted: its slot and address share were already given back.
    evicted: bool,
}

/// Open connections and their slots.
pub(super) struct Registry {
    entries: HashMap<u64, Entry>,
    per_address: HashMap<IpAddr, usize>,
    /// Connections holding a slot: open and not evicted.
    holding: usize,
    epoch: Instant,
}

/// The address a connection counts against. IPv4 (also as an IPv4-mapped IPv6 address, as a listener on
/// `[::]` sees it) is the address itself. IPv6 is its /64: one host is routinely given a whole /64, so
/// counting single IPv6 addresses would give it 2^64 shares.
pub(super) fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("open", &self.entries.len())
            .field("holding", &self.holding)
            .field("addresses", &self.per_address.len())
            .finish()
    }
}

impl Registry {
    pub(super) fn new() -> Registry {
        Registry { entries: HashMap::new(), per_address: HashMap::new(), holding: 0, epoch: Instant::now() }
    }

    /// Admits connection `id` from `ip`, evicting the longest-idle connection of that address (when it is at
    /// `per_address`) or of all (when `cap` are held) to make room; refuses when there is none to evict.
    pub(super) fn admit(
        &mut self,
        id: u64,
        ip: IpAddr,
        stream: Option<TcpStream>,
        cap: usize,
        per_address: usize,
    ) -> Result<Admission, Refusal> {
        let ip = address_key(ip);
        let mut evicted = None;
        if self.per_address.get(&ip).copied().unwrap_or(0) >= per_address {
            let oldest = self.longest_idle(Some(ip)).ok_or(Refusal::PerAddress)?;
            evicted = self.evict(oldest);
        }
        // An eviction above gave back a slot too, so this one only runs when none happened.
        if self.holding >= cap {
            let oldest = self.longest_idle(None).ok_or(Refusal::Cap)?;
            evicted = self.evict(oldest);
        }
        let idle = Arc::new(IdleMark::new(self.epoch));
        self.entries.insert(id, Entry { stream, ip, idle: Arc::clone(&idle), evicted: false });
        *self.per_address.entry(ip).or_insert(0) += 1;
        self.holding += 1;
        Ok(Admission { idle, evicted })
    }

    /// Forgets connection `id` (its thread ended), giving back its slot unless eviction already did.
    pub(super) fn remove(&mut self, id: u64) {
        if let Some(entry) = self.entries.remove(&id) {
            if !entry.evicted {
                self.release(entry.ip);
            }
        }
    }

    /// Takes every handle still held, for shutdown to force shut.
    pub(super) fn take_streams(&mut self) -> Vec<TcpStream> {
        self.entries.values_mut().filter_map(|e| e.stream.take()).collect()
    }

    /// The idle connection (of `ip`, or of anyone) that has been idle the longest.
    fn longest_idle(&self, ip: Option<IpAddr>) -> Option<u64> {
        self.entries
            .iter()
            .filter(|(_, e)| !e.evicted && e.stream.is_some() && ip.is_none_or(|ip| e.ip == ip))
            .filter_map(|(id, e)| e.idle.idle_since().map(|since| (since, *id)))
            .min()
            .map(|(_, id)| id)
    }

    /// Marks `id` evicted, gives back its slot, and returns its handle for the caller to shut.
    fn evict(&mut self, id: u64) -> Option<TcpStream> {
        let entry = self.entries.get_mut(&id)?;
        entry.evicted = true;
        let (ip, stream) = (entry.ip, entry.stream.take());
        self.release(ip);
        stream
    }

    fn release(&mut self, ip: IpAddr) {
        self.holding = self.holding.saturating_sub(1);
        if let Some(count) = self.per_address.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_address.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_by_itself() {
        let key = |text: &str| address_key(text.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("::ffff:192.0.2.7"), key("::ffff:192.0.2.8"));
    }

    #[test]
    fn refusals_name_the_limit_and_eviction_frees_one_slot() {
        let mut registry = Registry::new();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(registry.admit(1, a, None, 3, 2).is_ok());
        assert!(registry.admit(2, a, None, 3, 2).is_ok());
        assert!(matches!(registry.admit(3, a, None, 3, 2), Err(Refusal::PerAddress)));
        assert!(registry.admit(4, b, None, 3, 2).is_ok());
        assert!(matches!(registry.admit(5, b, None, 3, 2), Err(Refusal::Cap)));
        registry.remove(1);
        assert!(registry.admit(6, b, None, 3, 2).is_ok());
    }
}
