//! Duplicate address detection, as operators know it from FRR: a MAC that moves
//! between this host and another VTEP `max_moves` times within `window` is a
//! duplicate (two VMs claim it, or a loop), and is frozen where it is: no more
//! advertisements, withdrawals or moves for it from this host, until an operator
//! clears it or `freeze_for` has passed. Pure data, driven by the FIB with the time.
//!
//! A move is counted here when a MAC a remote VTEP advertises shows up on a local port,
//! and when a local MAC loses to a remote VTEP's advertisement (RFC 7432 §15.1).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use foldhash::{HashMap, HashMapExt};

use crate::model::Mac;

/// How duplicates are found and how long they stay frozen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DadConfig {
    /// Moves within `window` that make a duplicate (0: detection off).
    pub max_moves: u32,
    pub window: Duration,
    /// How long a duplicate stays frozen; `None`: until cleared.
    pub freeze_for: Option<Duration>,
}

impl Default for DadConfig {
    /// FRR's detection defaults (5 moves in 180 s), frozen for 30 minutes.
    fn default() -> Self {
        DadConfig {
            max_moves: 5,
            window: Duration::from_secs(180),
            freeze_for: Some(Duration::from_secs(1800)),
        }
    }
}

/// A frozen MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frozen {
    pub since: Instant,
    /// When it thaws by itself (`None`: when cleared).
    pub until: Option<Instant>,
    /// The moves that froze it.
    pub moves: u32,
    /// It was local when it froze (it stays advertised from here), else remote.
    pub local: bool,
}

/// Moves and frozen MACs, per (VNI, MAC).
#[derive(Debug)]
pub struct Dad {
    cfg: DadConfig,
    moves: HashMap<(u32, Mac), VecDeque<Instant>>,
    frozen: HashMap<(u32, Mac), Frozen>,
}

impl Dad {
    pub fn new(cfg: DadConfig) -> Dad {
        Dad {
            cfg,
            moves: HashMap::new(),
            frozen: HashMap::new(),
        }
    }

    pub fn config(&self) -> DadConfig {
        self.cfg
    }

    /// Counts a move of `mac` (`local`: it is local after the move). Returns the freeze
    /// when this move makes it a duplicate.
    pub fn moved(&mut self, vni: u32, mac: Mac, local: bool, now: Instant) -> Option<Frozen> {
        if self.cfg.max_moves == 0 || self.is_frozen(vni, mac, now) {
            return None;
        }
        let seen = self.moves.entry((vni, mac)).or_default();
        while seen
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > self.cfg.window)
        {
            seen.pop_front();
        }
        seen.push_back(now);
        let n = u32::try_from(seen.len()).unwrap_or(u32::MAX);
        if n < self.cfg.max_moves {
            return None;
        }
        self.moves.remove(&(vni, mac));
        let f = Frozen {
            since: now,
            until: self.cfg.freeze_for.map(|d| now + d),
            moves: n,
            local,
        };
        self.frozen.insert((vni, mac), f);
        Some(f)
    }

    /// Whether `mac` is frozen now (a freeze that ran out is not).
    pub fn is_frozen(&self, vni: u32, mac: Mac, now: Instant) -> bool {
        self.frozen
            .get(&(vni, mac))
            .is_some_and(|f| f.until.is_none_or(|u| now < u))
    }

    /// Forgets freezes that ran out; returns them.
    pub fn thaw_expired(&mut self, now: Instant) -> Vec<(u32, Mac)> {
        let done: Vec<(u32, Mac)> = self
            .frozen
            .iter()
            .filter(|(_, f)| f.until.is_some_and(|u| now >= u))
            .map(|(k, _)| *k)
            .collect();
        for k in &done {
            self.frozen.remove(k);
        }
        done
    }

    /// Clears the duplicates of `vni` (all VNIs if `None`) and `mac` (all if `None`),
    /// their moves too; returns those that were frozen.
    pub fn clear(&mut self, vni: Option<u32>, mac: Option<Mac>) -> Vec<(u32, Mac)> {
        let hit = |k: &(u32, Mac)| vni.is_none_or(|v| v == k.0) && mac.is_none_or(|m| m == k.1);
        let cleared: Vec<(u32, Mac)> = self.frozen.keys().filter(|k| hit(k)).copied().collect();
        self.frozen.retain(|k, _| !hit(k));
        self.moves.retain(|k, _| !hit(k));
        cleared
    }

    /// Moves counted for `mac` within the window, as of `now`.
    pub fn recent_moves(&self, vni: u32, mac: Mac, now: Instant) -> u32 {
        let n = self.moves.get(&(vni, mac)).map_or(0, |m| {
            m.iter()
                .filter(|t| now.saturating_duration_since(**t) <= self.cfg.window)
                .count()
        });
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The frozen MACs (those of `vni` if given), with their freeze.
    pub fn frozen(&self, vni: Option<u32>, now: Instant) -> Vec<((u32, Mac), Frozen)> {
        let mut v: Vec<((u32, Mac), Frozen)> = self
            .frozen
            .iter()
            .filter(|(k, _)| vni.is_none_or(|x| x == k.0) && self.is_frozen(k.0, k.1, now))
            .map(|(k, f)| (*k, *f))
            .collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// When the next freeze runs out.
    pub fn next_thaw(&self) -> Option<Instant> {
        self.frozen.values().filter_map(|f| f.until).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Mac = Mac([2, 0, 0, 0, 0, 1]);

    fn dad(max_moves: u32, window_s: u64, freeze_s: Option<u64>) -> Dad {
        Dad::new(DadConfig {
            max_moves,
            window: Duration::from_secs(window_s),
            freeze_for: freeze_s.map(Duration::from_secs),
        })
    }

    #[test]
    fn five_moves_in_180_s_freeze_the_mac() {
        let mut d = Dad::new(DadConfig::default());
        let t0 = Instant::now();
        for i in 0..4 {
            let t = t0 + Duration::from_secs(i * 30);
            assert_eq!(d.moved(42, M, i % 2 == 0, t), None, "move {i}");
            assert!(!d.is_frozen(42, M, t));
        }
        let t = t0 + Duration::from_secs(150);
        let f = d.moved(42, M, true, t).expect("the fifth move freezes");
        assert_eq!((f.moves, f.local, f.since), (5, true, t));
        assert!(d.is_frozen(42, M, t));
        // Frozen: no more moves are counted, another VNI is another MAC.
        assert_eq!(d.moved(42, M, false, t), None);
        assert!(!d.is_frozen(43, M, t));
        assert_eq!(d.frozen(Some(42), t).len(), 1);
        assert!(d.frozen(Some(43), t).is_empty());
    }

    #[test]
    fn moves_further_apart_than_the_window_never_freeze() {
        let mut d = dad(3, 10, None);
        let t0 = Instant::now();
        for i in 0..20 {
            assert_eq!(d.moved(42, M, true, t0 + Duration::from_secs(i * 6)), None);
        }
        assert_eq!(d.recent_moves(42, M, t0 + Duration::from_secs(19 * 6)), 2);
    }

    #[test]
    fn a_freeze_runs_out_or_is_cleared() {
        let mut d = dad(2, 60, Some(30));
        let t0 = Instant::now();
        d.moved(42, M, true, t0);
        assert!(d.moved(42, M, false, t0).is_some());
        assert_eq!(d.next_thaw(), Some(t0 + Duration::from_secs(30)));
        assert!(d.is_frozen(42, M, t0 + Duration::from_secs(29)));
        assert!(!d.is_frozen(42, M, t0 + Duration::from_secs(30)));
        assert_eq!(d.thaw_expired(t0 + Duration::from_secs(30)), vec![(42, M)]);
        assert_eq!(d.next_thaw(), None);

        let mut d = dad(2, 60, None);
        d.moved(42, M, true, t0);
        d.moved(42, M, false, t0);
        let later = t0 + Duration::from_secs(1_000_000);
        assert!(d.is_frozen(42, M, later), "permanent until cleared");
        assert!(d.clear(Some(43), None).is_empty());
        assert_eq!(d.clear(Some(42), Some(M)), vec![(42, M)]);
        assert!(!d.is_frozen(42, M, later));
        assert_eq!(d.recent_moves(42, M, later), 0);
    }

    #[test]
    fn detection_off_counts_nothing() {
        let mut d = dad(0, 180, None);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(d.moved(42, M, true, t0), None);
        }
    }
}
