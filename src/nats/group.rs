//! Group membership and partition assignment in a JetStream KV bucket,
//! updated only by compare-and-swap: the ground the worker groups of
//! docs/scale-out.md stand on.

use std::time::Duration;

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

use super::{Nats, NatsError};

/// Which member owns each partition, and how often that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Grows by one on every change of any owner.
    pub generation: u64,
    /// The owner of partition `p` (`None`: no member alive).
    pub owners: Vec<Option<String>>,
}

impl Assignment {
    /// The partitions `member` owns, in order.
    pub fn owned_by(&self, member: &str) -> Vec<usize> {
        (0..self.owners.len()).filter(|&p| self.owners[p].as_deref() == Some(member)).collect()
    }
}

/// A member of group `G`: its heartbeats, the members alive, and the
/// assignment of the group's partitions, all in KV bucket
/// `weir-group-<G>`.
///
/// - A member is alive while its key `member.<id>` was written within the
///   lease. Times are the server's (each entry's creation time), compared
///   with the newest heartbeat of the group, so that clocks of different
///   machines never matter.
/// - The assignment is key `assignment`; [`Group::rebalance`] reads it with
///   its revision, computes the assignment for the members alive
///   ([`balanced`]: every partition owned, counts differing by at most
///   one, as few moves as that allows) and writes it only if the revision
///   is unchanged, with the generation plus one; on a conflict it reads
///   again. Any member may rebalance at any time: they converge.
#[derive(Debug, Clone)]
pub struct Group {
    nats: Nats,
    name: String,
    bucket: String,
    member: String,
    partitions: usize,
    lease: Duration,
}

const ASSIGNMENT: &str = "assignment";

fn member_key(id: &str) -> String {
    format!("member.{id}")
}

impl Group {
    /// Joins group `group` of `partitions` partitions as a new member
    /// (a fresh id) with a lease of `lease` (about 3 s is usual), creating
    /// the bucket if needed, and writes its first heartbeat.
    pub fn join(nats: &Nats, group: &str, partitions: usize, lease: Duration) -> Result<Group, NatsError> {
        let member = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        Self::join_as(nats, group, &member, partitions, lease)
    }

    /// Joins as member `member` (letters, digits, `-`, `_`).
    pub fn join_as(
        nats: &Nats,
        group: &str,
        member: &str,
        partitions: usize,
        lease: Duration,
    ) -> Result<Group, NatsError> {
        if partitions == 0 {
            return Err(NatsError::jetstream(format!("group {group}"), "a group needs at least one partition"));
        }
        let bucket = format!("weir-group-{group}");
        let (b, replicas) = (bucket.clone(), nats.replicas());
        nats.control(move |js| async move { super::client::ensure_key_value(&js, &b, replicas).await })?;
        let g = Group {
            nats: nats.clone(),
            name: group.to_string(),
            bucket,
            member: member.to_string(),
            partitions,
            lease,
        };
        // On a cluster a bucket another member has just created may not
        // take writes yet ("no stream found"): try for a few seconds.
        let mut attempt = 0;
        loop {
            match g.heartbeat() {
                Ok(()) => return Ok(g),
                Err(e) if attempt < 20 => {
                    tracing::debug!(error = %e, "first heartbeat failed; trying again");
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection.
    pub fn nats(&self) -> &Nats {
        &self.nats
    }

    /// This member's id.
    pub fn member(&self) -> &str {
        &self.member
    }

    /// The number of partitions.
    pub fn partitions(&self) -> usize {
        self.partitions
    }

    /// The lease.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Renews this member's lease. Call it well within the lease (a
    /// third of it, say).
    pub fn heartbeat(&self) -> Result<(), NatsError> {
        let (b, k) = (self.bucket.clone(), member_key(&self.member));
        self.nats.control(move |js| async move {
            let store = js.get_key_value(&b).await.map_err(|e| NatsError::jetstream(&b, e))?;
            store.put(&k, "alive".into()).await.map_err(|e| NatsError::jetstream(format!("{b} {k}"), e))?;
            Ok(())
        })
    }

    /// Leaves the group: removes this member's key (the others see it gone
    /// at once, not after the lease).
    pub fn leave(&self) -> Result<(), NatsError> {
        let (b, k) = (self.bucket.clone(), member_key(&self.member));
        self.nats.control(move |js| async move {
            super::client::purge_subject(&js, &format!("KV_{b}"), &format!("$KV.{b}.{k}")).await
        })
    }

    /// The members alive, sorted: those whose last heartbeat is within the
    /// lease of the group's newest heartbeat.
    pub fn members(&self) -> Result<Vec<String>, NatsError> {
        let (b, lease) = (self.bucket.clone(), self.lease);
        self.nats.control(move |js| async move {
            let store = js.get_key_value(&b).await.map_err(|e| NatsError::jetstream(&b, e))?;
            let prefix = format!("$KV.{b}.");
            let names: Vec<(String, String)> =
                super::client::subjects(&js, &format!("KV_{b}"), &format!("{prefix}member.*"))
                    .await?
                    .into_iter()
                    .filter_map(|s| {
                        let k = s.strip_prefix(&prefix)?.to_string();
                        let id = k.strip_prefix("member.")?.to_string();
                        Some((k, id))
                    })
                    .collect();
            let mut beats = Vec::new();
            for (k, id) in names {
                if let Some(e) = store.entry(&k).await.map_err(|e| NatsError::jetstream(format!("{b} {k}"), e))? {
                    if matches!(e.operation, kv::Operation::Put) {
                        beats.push((id, e.created.unix_timestamp_nanos()));
                    }
                }
            }
            let newest = beats.iter().map(|b| b.1).max().unwrap_or(0);
            // Members gone for a long while (killed, not left) are removed
            // so that the list does not grow with every process ever run.
            for (id, t) in &beats {
                if newest - t > 100 * lease.as_nanos() as i128 {
                    let subject = format!("{prefix}{}", member_key(id));
                    let _ = super::client::purge_subject(&js, &format!("KV_{b}"), &subject).await;
                }
            }
            let mut alive: Vec<String> =
                beats.into_iter().filter(|(_, t)| newest - t <= lease.as_nanos() as i128).map(|(id, _)| id).collect();
            alive.sort();
            Ok(alive)
        })
    }

    /// The current assignment and its revision (0 and an empty assignment
    /// of generation 0 before the first).
    pub fn assignment(&self) -> Result<(Assignment, u64), NatsError> {
        let (b, p) = (self.bucket.clone(), self.partitions);
        self.nats.control(move |js| async move {
            let store = js.get_key_value(&b).await.map_err(|e| NatsError::jetstream(&b, e))?;
            match store.entry(ASSIGNMENT).await.map_err(|e| NatsError::jetstream(format!("{b} {ASSIGNMENT}"), e))? {
                Some(e) if matches!(e.operation, kv::Operation::Put) => {
                    let a: Assignment = serde_json::from_slice(&e.value).map_err(|err| {
                        NatsError::jetstream(format!("{b} {ASSIGNMENT}"), format!("not an assignment: {err}"))
                    })?;
                    if a.owners.len() != p {
                        return Err(NatsError::jetstream(
                            format!("{b} {ASSIGNMENT}"),
                            format!("it assigns {} partitions, this member has {p}", a.owners.len()),
                        ));
                    }
                    Ok((a, e.revision))
                }
                _ => Ok((Assignment { generation: 0, owners: vec![None; p] }, 0)),
            }
        })
    }

    /// Makes the assignment fit the members alive now and returns it:
    /// unchanged if it already fits, otherwise written by compare-and-swap
    /// with the next generation (read again and recomputed on a conflict).
    pub fn rebalance(&self) -> Result<Assignment, NatsError> {
        loop {
            let members = self.members()?;
            let (current, revision) = self.assignment()?;
            let owners = balanced(self.partitions, &members, &current.owners);
            if owners == current.owners && revision > 0 {
                return Ok(current);
            }
            let next = Assignment { generation: current.generation + 1, owners };
            let value = serde_json::to_vec(&next).map_err(|e| NatsError::jetstream("an assignment", e))?;
            let b = self.bucket.clone();
            let written = self.nats.control(move |js| async move {
                let store = js.get_key_value(&b).await.map_err(|e| NatsError::jetstream(&b, e))?;
                let res = if revision == 0 {
                    store.create(ASSIGNMENT, value.into()).await.map(|_| true).or_else(|e| match e.kind() {
                        kv::CreateErrorKind::AlreadyExists => Ok(false),
                        _ => Err(NatsError::jetstream(format!("{b} {ASSIGNMENT}"), e)),
                    })
                } else {
                    store.update(ASSIGNMENT, value.into(), revision).await.map(|_| true).or_else(|e| match e.kind() {
                        kv::UpdateErrorKind::WrongLastRevision => Ok(false),
                        _ => Err(NatsError::jetstream(format!("{b} {ASSIGNMENT}"), e)),
                    })
                };
                res
            })?;
            if written {
                return Ok(next);
            }
            // Another member wrote first: read again.
        }
    }
}

/// Who holds a partition's state now: written by compare-and-swap when a
/// member takes the partition over (a new epoch) and each time it
/// completes a checkpoint of it (the newest complete one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// The member.
    pub member: String,
    /// Grows by one on every takeover.
    pub epoch: u64,
    /// The partition's newest complete checkpoint: (the epoch that wrote
    /// it, its sequence).
    pub latest: Option<(u64, u64)>,
}

/// A member's hold on one partition: the ownership it wrote and the KV
/// revision of that write, which the next write must still match.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The partition.
    pub partition: usize,
    /// What was written.
    pub ownership: Ownership,
    /// Its revision.
    pub revision: u64,
}

/// Why a write on behalf of a partition was refused.
pub(crate) enum Fenced {
    /// Another member took the partition over.
    Lost,
    /// NATS failed, and the write was not applied.
    Error(NatsError),
    /// NATS failed, and whether the write was applied is not known: what
    /// it would record must not be deleted.
    Unknown(NatsError),
}

fn owner_key(p: usize) -> String {
    format!("owner.{p}")
}

fn done_key(p: usize) -> String {
    format!("done.{p}")
}

impl Group {
    /// Takes partition `p` over: a new epoch of its ownership, keeping its
    /// newest checkpoint. From here on a member that held it before can
    /// complete no checkpoint of it.
    pub fn claim(&self, p: usize) -> Result<Claim, NatsError> {
        let (b, k, me) = (self.bucket.clone(), owner_key(p), self.member.clone());
        self.nats.control(move |js| async move {
            let store = js.get_key_value(&b).await.map_err(|e| NatsError::jetstream(&b, e))?;
            loop {
                let entry = store.entry(&k).await.map_err(|e| NatsError::jetstream(format!("{b} {k}"), e))?;
                let (previous, revision) = match entry {
                    Some(e) if matches!(e.operation, kv::Operation::Put) => {
                        let o: Ownership = serde_json::from_slice(&e.value).map_err(|err| {
                            NatsError::jetstream(format!("{b} {k}"), format!("not an ownership: {err}"))
                        })?;
                        (Some(o), e.revision)
                    }
                    Some(e) => (None, e.revision),
                    None => (None, 0),
                };
                let ownership = Ownership {
                    member: me.clone(),
                    epoch: previous.as_ref().map_or(1, |o| o.epoch + 1),
                    latest: previous.and_then(|o| o.latest),
                };
                let value = serde_json::to_vec(&ownership).map_err(|e| NatsError::jetstream(&k, e))?;
                let written = if revision == 0 {
                    match store.create(&k, value.into()).await {
                        Ok(r) => Some(r),
                        Err(e) if matches!(e.kind(), kv::CreateErrorKind::AlreadyExists) => None,
                        Err(e) => return Err(NatsError::jetstream(format!("{b} {k}"), e)),
                    }
                } else {
                    match store.update(&k, value.into(), revision).await {
                        Ok(r) => Some(r),
                        Err(e) if matches!(e.kind(), kv::UpdateErrorKind::WrongLastRevision) => None,
                        Err(e) => return Err(NatsError::jetstream(format!("{b} {k}"), e)),
                    }
                };
                match written {
                    Some(revision) => return Ok(Claim { partition: p, ownership, revision }),
                    // Someone else wrote in between: read again.
                    None => continue,
                }
            }
        })
    }

    /// Records checkpoint `seq` as `claim`'s partition's newest, if the
    /// claim still holds (compare-and-swap on the revision it wrote).
    pub(crate) fn record_checkpoint(&self, claim: &mut Claim, seq: u64) -> Result<(), Fenced> {
        let mut next = claim.ownership.clone();
        next.latest = Some((claim.ownership.epoch, seq));
        let value = serde_json::to_vec(&next).map_err(|e| Fenced::Error(NatsError::jetstream("ownership", e)))?;
        let (b, k, revision) = (self.bucket.clone(), owner_key(claim.partition), claim.revision);
        let res = self.nats.control(move |js| async move {
            let store = js.get_key_value(&b).await.map_err(|e| NatsError::jetstream(&b, e))?;
            match store.update(&k, value.into(), revision).await {
                Ok(r) => Ok(Some(r)),
                Err(e) if matches!(e.kind(), kv::UpdateErrorKind::WrongLastRevision) => Ok(None),
                Err(e) => Err(NatsError::jetstream(format!("{b} {k}"), e)),
            }
        });
        match res {
            Ok(Some(r)) => {
                claim.revision = r;
                claim.ownership = next;
                Ok(())
            }
            Ok(None) => Err(Fenced::Lost),
            // A request that failed (a timeout while the bucket elects a
            // leader, say) may still have been applied: read the key back
            // to know, rather than let the caller abort a checkpoint that
            // the ownership may point at.
            Err(e) => match self.read_back(claim.partition) {
                Ok(Some((o, r))) if o == next => {
                    tracing::info!(
                        partition = claim.partition,
                        seq,
                        "a checkpoint's record that seemed to fail was applied"
                    );
                    claim.revision = r;
                    claim.ownership = next;
                    Ok(())
                }
                Ok(Some((o, r)))
                    if o.member != claim.ownership.member
                        || o.epoch != claim.ownership.epoch
                        || r != claim.revision =>
                {
                    Err(Fenced::Lost)
                }
                Ok(_) => Err(Fenced::Error(e)),
                Err(again) => {
                    Err(Fenced::Unknown(NatsError::jetstream("ownership", format!("{e}; reading it back: {again}"))))
                }
            },
        }
    }

    /// Whether partition `p`'s ownership records checkpoint `seq` of
    /// `epoch` as its newest (an error: not known).
    pub(crate) fn records(&self, p: usize, epoch: u64, seq: u64) -> Result<bool, NatsError> {
        Ok(self.read_back(p)?.is_some_and(|(o, _)| o.latest == Some((epoch, seq))))
    }

    /// Partition `p`'s ownership and its revision (`None`: none written,
    /// or deleted).
    fn ownership(&self, p: usize) -> Result<Option<(Ownership, u64)>, NatsError> {
        let (b, k) = (self.bucket.clone(), owner_key(p));
        self.nats.control(move |js| async move {
            let store = js.get_key_value(&b).await.map_err(|e| NatsError::jetstream(&b, e))?;
            let entry = store.entry(&k).await.map_err(|e| NatsError::jetstream(format!("{b} {k}"), e))?;
            Ok(entry
                .filter(|e| matches!(e.operation, kv::Operation::Put))
                .and_then(|e| serde_json::from_slice::<Ownership>(&e.value).ok().map(|o| (o, e.revision))))
        })
    }

    /// [`Self::ownership`], retried for a few seconds while the bucket
    /// elects a leader.
    fn read_back(&self, p: usize) -> Result<Option<(Ownership, u64)>, NatsError> {
        let mut last = None;
        for attempt in 0..5u32 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(500));
            }
            match self.ownership(p) {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("five attempts"))
    }

    /// Whether `claim` still holds its partition (no takeover since).
    pub fn holds(&self, claim: &Claim) -> Result<bool, NatsError> {
        let (member, epoch) = (&claim.ownership.member, claim.ownership.epoch);
        Ok(self.ownership(claim.partition)?.is_some_and(|(o, _)| &o.member == member && o.epoch == epoch))
    }

    /// Marks partition `p` finished: its input ended and its output is
    /// committed.
    pub fn mark_done(&self, p: usize) -> Result<(), NatsError> {
        let (b, k) = (self.bucket.clone(), done_key(p));
        self.nats.control(move |js| async move {
            let store = js.get_key_value(&b).await.map_err(|e| NatsError::jetstream(&b, e))?;
            store.put(&k, "true".into()).await.map_err(|e| NatsError::jetstream(format!("{b} {k}"), e))?;
            Ok(())
        })
    }

    /// The partitions marked finished.
    pub fn done(&self) -> Result<Vec<usize>, NatsError> {
        let b = self.bucket.clone();
        self.nats.control(move |js| async move {
            let prefix = format!("$KV.{b}.done.");
            let subjects = super::client::subjects(&js, &format!("KV_{b}"), &format!("{prefix}*")).await?;
            let mut done: Vec<usize> =
                subjects.iter().filter_map(|s| s.strip_prefix(&prefix)?.parse::<usize>().ok()).collect();
            done.sort_unstable();
            Ok(done)
        })
    }
}

/// The owners of `partitions` partitions among `members` (sorted ids),
/// given the `previous` owners: every partition owned by a member, each
/// member owning `partitions / members` or one more (the first members in
/// sorted order take the extra ones), and every partition whose previous
/// owner is alive and still under its share kept where it was. With no
/// members, no partition is owned.
pub fn balanced(partitions: usize, members: &[String], previous: &[Option<String>]) -> Vec<Option<String>> {
    if members.is_empty() {
        return vec![None; partitions];
    }
    let m = members.len();
    let share = |i: usize| partitions / m + usize::from(i < partitions % m);
    let index = |id: &str| members.iter().position(|x| x == id);
    let mut counts = vec![0usize; m];
    let mut owners: Vec<Option<String>> = vec![None; partitions];
    // Keep what can be kept.
    for (p, owner) in owners.iter_mut().enumerate() {
        if let Some(i) = previous.get(p).and_then(|o| o.as_deref()).and_then(index) {
            if counts[i] < share(i) {
                counts[i] += 1;
                *owner = Some(members[i].clone());
            }
        }
    }
    // The rest to members under their share, in order.
    let mut next = 0;
    for owner in owners.iter_mut().filter(|o| o.is_none()) {
        while counts[next] >= share(next) {
            next += 1;
        }
        counts[next] += 1;
        *owner = Some(members[next].clone());
    }
    owners
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i}")).collect()
    }

    #[test]
    fn three_members_share_eight_partitions_three_three_two() {
        let owners = balanced(8, &ids(3), &[]);
        let count = |id: &str| owners.iter().filter(|o| o.as_deref() == Some(id)).count();
        assert_eq!((count("m0"), count("m1"), count("m2")), (3, 3, 2));
    }

    #[test]
    fn a_member_that_dies_gives_up_only_its_partitions() {
        let before = balanced(8, &ids(3), &[]);
        let alive = vec!["m0".to_string(), "m2".to_string()];
        let after = balanced(8, &alive, &before);
        for p in 0..8 {
            if before[p].as_deref() != Some("m1") {
                assert_eq!(after[p], before[p], "partition {p} stays");
            }
        }
        assert!(after.iter().all(|o| o.as_deref() != Some("m1")));
    }

    proptest! {
        #[test]
        fn every_partition_is_owned_by_a_member_and_shares_differ_by_at_most_one(
            partitions in 1usize..64,
            members in 1usize..10,
            previous in proptest::collection::vec(proptest::option::of(0usize..12), 0..64),
        ) {
            let members = ids(members);
            let previous: Vec<Option<String>> = previous.iter().map(|o| o.map(|i| format!("m{i}"))).collect();
            let owners = balanced(partitions, &members, &previous);
            prop_assert_eq!(owners.len(), partitions);
            let counts: Vec<usize> =
                members.iter().map(|m| owners.iter().filter(|o| o.as_deref() == Some(m.as_str())).count()).collect();
            prop_assert!(owners.iter().all(|o| o.as_ref().is_some_and(|id| members.contains(id))));
            prop_assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
            // Stable: computed again from its own result, nothing moves.
            prop_assert_eq!(balanced(partitions, &members, &owners), owners.clone());
            // Sticky: a partition moves only if its previous owner is gone
            // or had more than its share.
            for p in 0..partitions {
                if let Some(Some(prev)) = previous.get(p) {
                    if members.contains(prev) && owners[p].as_ref() != Some(prev) {
                        let kept = (0..p).filter(|&q| previous.get(q).cloned().flatten().as_ref() == Some(prev)
                            && owners[q].as_ref() == Some(prev)).count();
                        let i = members.iter().position(|m| m == prev).unwrap();
                        let share = partitions / members.len() + usize::from(i < partitions % members.len());
                        prop_assert!(kept >= share, "partition {} left {} under its share", p, prev);
                    }
                }
            }
        }
    }
}
