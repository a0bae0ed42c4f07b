//! The link-state database (RFC 2328 §12–§14): storage keyed by (type, id, advertising
//! router), the "which is newer" comparison (§13.1), aging against the caller's clock,
//! MaxAge detection, premature aging, and the sequence-number helpers for origination
//! (§12.1.6, §12.4).

use crate::lsa::{Lsa, LsaHeaderRepr, LsaKey, MAX_AGE, MAX_SEQ};
use crate::packet::WireLsa;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::Duration;

/// LSRefreshTime (§B): self-originated LSAs are re-originated at this age.
pub const LS_REFRESH_TIME: u16 = 1800;
/// MaxAgeDiff (§B).
pub const MAX_AGE_DIFF: u16 = 900;
/// CheckAge (§B): how often a real router verifies LSA checksums; unused (we verify on
/// receipt only).
pub const CHECK_AGE: u16 = 300;

/// One stored LSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsaEntry {
    /// The typed LSA (header age is the age at `installed`).
    pub lsa: Lsa,
    /// Its exact bytes (age field as at `installed`).
    pub bytes: Vec<u8>,
    /// When it was installed; the current age grows from here.
    pub installed: Duration,
    /// Interface it arrived on (link-scoped opaque LSAs are flooded only there).
    pub origin_if: Option<u32>,
}

impl LsaEntry {
    /// Current age, capped at MaxAge (§13.2: a MaxAge LSA stays MaxAge).
    pub fn age(&self, now: Duration) -> u16 {
        let base = self.lsa.header.age.min(MAX_AGE);
        if base >= MAX_AGE {
            return MAX_AGE;
        }
        let el = now.saturating_sub(self.installed).as_secs();
        let a = u64::from(base) + el;
        a.min(u64::from(MAX_AGE)) as u16
    }
    /// The header with its current age.
    pub fn header(&self, now: Duration) -> LsaHeaderRepr {
        let mut h = self.lsa.header;
        h.age = self.age(now);
        h
    }
    /// The bytes with the current age plus `add` (InfTransDelay on sending, §13.3),
    /// capped at MaxAge.
    pub fn bytes_at(&self, now: Duration, add: u16) -> Vec<u8> {
        let mut b = self.bytes.clone();
        let a = self.age(now).saturating_add(add).min(MAX_AGE);
        if let Some(f) = b.get_mut(0..2) {
            f.copy_from_slice(&a.to_be_bytes());
        }
        b
    }
    /// True once the LSA has reached MaxAge.
    pub fn is_max_age(&self, now: Duration) -> bool {
        self.age(now) >= MAX_AGE
    }
    /// The instant the LSA will reach `age` (or `installed` if already older).
    pub fn time_at_age(&self, age: u16) -> Duration {
        let base = self.lsa.header.age.min(MAX_AGE);
        self.installed + Duration::from_secs(u64::from(age.saturating_sub(base)))
    }
}

/// §13.1: compares two instances of the same LSA given their current ages.
/// `Greater` means `a` is newer.
pub fn compare(a: &LsaHeaderRepr, b: &LsaHeaderRepr) -> Ordering {
    // Sequence numbers are signed: the larger is newer.
    match a.seq.cmp(&b.seq) {
        Ordering::Equal => {}
        o => return o,
    }
    match a.checksum.cmp(&b.checksum) {
        Ordering::Equal => {}
        o => return o,
    }
    let am = a.age >= MAX_AGE;
    let bm = b.age >= MAX_AGE;
    match (am, bm) {
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    if a.age.abs_diff(b.age) > MAX_AGE_DIFF {
        // the one with the smaller age is newer
        return b.age.cmp(&a.age);
    }
    Ordering::Equal
}

/// True when the contents differ in a way that needs a routing recalculation (§13.2):
/// options, MaxAge-ness, or body.
pub fn contents_differ(old: &Lsa, old_age: u16, new: &Lsa) -> bool {
    old.header.options != new.header.options
        || (old_age >= MAX_AGE) != (new.header.age >= MAX_AGE)
        || old.body != new.body
}

/// What to do to originate a new instance of a self-originated LSA (§12.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextSeq {
    /// Use this sequence number.
    Use(i32),
    /// The current instance has MaxSequenceNumber: flush it first (premature aging), then
    /// originate with InitialSequenceNumber once it has left every database.
    WrapFlushFirst,
}

/// The database (one area plus the AS scope).
#[derive(Debug, Clone, Default)]
pub struct Lsdb {
    map: BTreeMap<LsaKey, LsaEntry>,
}

impl Lsdb {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of LSAs.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Looks an LSA up.
    pub fn get(&self, key: &LsaKey) -> Option<&LsaEntry> {
        self.map.get(key)
    }
    /// All entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&LsaKey, &LsaEntry)> {
        self.map.iter()
    }
    /// Installs an LSA (§13.2) at `now`, replacing any older instance; returns true when
    /// the contents changed (a routing recalculation is needed).
    pub fn install(&mut self, now: Duration, w: WireLsa, origin_if: Option<u32>) -> bool {
        let key = w.lsa.key();
        let changed = match self.map.get(&key) {
            Some(old) => contents_differ(&old.lsa, old.age(now), &w.lsa),
            None => true,
        };
        self.map.insert(
            key,
            LsaEntry {
                lsa: w.lsa,
                bytes: w.bytes,
                installed: now,
                origin_if,
            },
        );
        changed
    }
    /// Removes an LSA (after a MaxAge flush completed, §14).
    pub fn remove(&mut self, key: &LsaKey) -> Option<LsaEntry> {
        self.map.remove(key)
    }
    /// Sets an LSA's age to MaxAge now (premature aging, §14.1). Returns false if absent.
    pub fn premature_age(&mut self, now: Duration, key: &LsaKey) -> bool {
        let Some(e) = self.map.get_mut(key) else {
            return false;
        };
        e.lsa.header.age = MAX_AGE;
        e.installed = now;
        if let Some(f) = e.bytes.get_mut(0..2) {
            f.copy_from_slice(&MAX_AGE.to_be_bytes());
        }
        true
    }
    /// Keys of LSAs that have reached MaxAge.
    pub fn max_age_keys(&self, now: Duration) -> Vec<LsaKey> {
        self.map
            .iter()
            .filter(|(_, e)| e.is_max_age(now))
            .map(|(k, _)| *k)
            .collect()
    }
    /// Keys of LSAs advertised by `router_id` whose age reached LSRefreshTime (and not
    /// MaxAge).
    pub fn refresh_due(&self, now: Duration, router_id: std::net::Ipv4Addr) -> Vec<LsaKey> {
        self.map
            .iter()
            .filter(|(k, e)| {
                k.adv_router == router_id && {
                    let a = e.age(now);
                    (LS_REFRESH_TIME..MAX_AGE).contains(&a)
                }
            })
            .map(|(k, _)| *k)
            .collect()
    }
    /// The next instant an LSA reaches MaxAge, or one of `router_id`'s reaches
    /// LSRefreshTime, strictly after `now`.
    pub fn next_deadline(&self, now: Duration, router_id: std::net::Ipv4Addr) -> Option<Duration> {
        let mut best: Option<Duration> = None;
        for (k, e) in &self.map {
            if e.is_max_age(now) {
                continue;
            }
            let mut t = e.time_at_age(MAX_AGE);
            if k.adv_router == router_id && e.age(now) < LS_REFRESH_TIME {
                t = t.min(e.time_at_age(LS_REFRESH_TIME));
            }
            if t > now {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        }
        best
    }
    /// The sequence number for the next instance of `key` (§12.1.6).
    pub fn next_seq(&self, key: &LsaKey) -> NextSeq {
        match self.map.get(key) {
            None => NextSeq::Use(crate::lsa::INITIAL_SEQ),
            Some(e) if e.lsa.header.seq == MAX_SEQ => NextSeq::WrapFlushFirst,
            Some(e) => NextSeq::Use(e.lsa.header.seq.saturating_add(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsa::{LsaBody, LsaType, RouterLsa, INITIAL_SEQ};
    use crate::Options;
    use std::net::Ipv4Addr;

    fn hdr(seq: i32, ck: u16, age: u16) -> LsaHeaderRepr {
        LsaHeaderRepr {
            age,
            options: Options(2),
            ls_type: LsaType::Router,
            id: Ipv4Addr::new(1, 1, 1, 1),
            adv_router: Ipv4Addr::new(1, 1, 1, 1),
            seq,
            checksum: ck,
            length: 24,
        }
    }

    fn wire(seq: i32, age: u16) -> WireLsa {
        let mut l = Lsa {
            header: hdr(seq, 0, age),
            body: LsaBody::Router(RouterLsa::default()),
        };
        let bytes = l.to_bytes().unwrap();
        WireLsa { lsa: l, bytes }
    }

    #[test]
    fn newer_rules_13_1() {
        // sequence dominates, signed comparison
        assert_eq!(
            compare(&hdr(INITIAL_SEQ + 1, 0, 5), &hdr(INITIAL_SEQ, 9, 0)),
            Ordering::Greater
        );
        assert_eq!(compare(&hdr(-5, 0, 5), &hdr(3, 0, 5)), Ordering::Less);
        // then checksum
        assert_eq!(compare(&hdr(1, 10, 5), &hdr(1, 9, 5)), Ordering::Greater);
        // then MaxAge wins
        assert_eq!(
            compare(&hdr(1, 9, MAX_AGE), &hdr(1, 9, 5)),
            Ordering::Greater
        );
        // then age difference beyond MaxAgeDiff: younger is newer
        assert_eq!(compare(&hdr(1, 9, 10), &hdr(1, 9, 1000)), Ordering::Greater);
        assert_eq!(compare(&hdr(1, 9, 10), &hdr(1, 9, 900)), Ordering::Equal);
    }

    #[test]
    fn aging_maxage_refresh_and_deadlines() {
        let mut db = Lsdb::new();
        let rid = Ipv4Addr::new(1, 1, 1, 1);
        let t0 = Duration::from_secs(100);
        assert!(db.install(t0, wire(INITIAL_SEQ, 10), None));
        let k = wire(INITIAL_SEQ, 10).lsa.key();
        let e = db.get(&k).unwrap();
        assert_eq!(e.age(t0 + Duration::from_secs(5)), 15);
        assert_eq!(&e.bytes_at(t0 + Duration::from_secs(5), 1)[0..2], &[0, 16]);
        // refresh at age 1800 → t0 + 1790 s
        assert_eq!(
            db.next_deadline(t0, rid),
            Some(t0 + Duration::from_secs(1790))
        );
        assert!(db
            .refresh_due(t0 + Duration::from_secs(1789), rid)
            .is_empty());
        assert_eq!(db.refresh_due(t0 + Duration::from_secs(1790), rid), vec![k]);
        // other routers' LSAs only age out
        assert_eq!(
            db.next_deadline(t0, Ipv4Addr::new(9, 9, 9, 9)),
            Some(t0 + Duration::from_secs(3590))
        );
        assert!(db.max_age_keys(t0 + Duration::from_secs(3589)).is_empty());
        assert_eq!(db.max_age_keys(t0 + Duration::from_secs(3590)), vec![k]);
        // same contents reinstalled: no change; premature aging
        assert!(!db.install(t0, wire(INITIAL_SEQ, 10), None));
        assert!(db.premature_age(t0, &k));
        assert_eq!(db.max_age_keys(t0), vec![k]);
        assert_eq!(db.next_deadline(t0, rid), None);
    }

    #[test]
    fn sequence_numbers_and_wrap() {
        let mut db = Lsdb::new();
        let k = wire(INITIAL_SEQ, 0).lsa.key();
        assert_eq!(db.next_seq(&k), NextSeq::Use(INITIAL_SEQ));
        db.install(Duration::ZERO, wire(INITIAL_SEQ, 0), None);
        assert_eq!(db.next_seq(&k), NextSeq::Use(INITIAL_SEQ + 1));
        db.install(Duration::ZERO, wire(MAX_SEQ - 1, 0), None);
        assert_eq!(db.next_seq(&k), NextSeq::Use(MAX_SEQ));
        db.install(Duration::ZERO, wire(MAX_SEQ, 0), None);
        assert_eq!(db.next_seq(&k), NextSeq::WrapFlushFirst);
    }
}
