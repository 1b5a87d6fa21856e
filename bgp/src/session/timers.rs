//! Connect-retry back-off (RFC 4271 §8.1.3 ConnectRetryTimer, with the
//! DampPeerOscillations idea of §8.1.1: a peer that keeps failing waits longer).

use std::time::Duration;

/// First wait after a failure, and the cap.
pub const RETRY_MIN: Duration = Duration::from_secs(1);
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// Exponential back-off with jitter, reset when a session reaches Established.
#[derive(Clone, Debug)]
pub struct Backoff {
    current: Duration,
    seed: u64,
}

impl Backoff {
    pub fn new(seed: u64) -> Self {
        Backoff {
            current: RETRY_MIN,
            seed: seed | 1,
        }
    }

    /// The wait before the next attempt; doubles up to `RETRY_MAX`. Jitter (75–100 %,
    /// as RFC 4271 §10 suggests) keeps a fleet from reconnecting in lockstep.
    pub fn next_wait(&mut self) -> Duration {
        // xorshift64: deterministic per seed, enough for jitter.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let pct = 75 + (self.seed % 26) as u32;
        let wait = self.current * pct / 100;
        self.current = (self.current * 2).min(RETRY_MAX);
        wait
    }

    pub fn reset(&mut self) {
        self.current = RETRY_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_the_cap_with_jitter_and_reset() {
        let mut b = Backoff::new(42);
        let waits: Vec<Duration> = (0..10).map(|_| b.next_wait()).collect();
        assert!(waits[0] >= RETRY_MIN * 3 / 4 && waits[0] <= RETRY_MIN);
        assert!(waits[1] > waits[0]);
        assert!(waits.iter().all(|w| *w <= RETRY_MAX));
        assert!(waits[9] >= RETRY_MAX * 3 / 4);
        b.reset();
        assert!(b.next_wait() <= RETRY_MIN);
    }
}
