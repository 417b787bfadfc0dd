//! The SDK's queue-pull bookkeeping (spec §8.3, §8.4) as a pure state machine.
//!
//! One queue is pulled at a time; notices for a queue that is being pulled or already
//! waiting are dropped (optionally remembered for one more pull); a reply with
//! `isLast:false` is acknowledged with its `nextKey`; the same `nextKey` twice in a row makes
//! the SDK abandon the queue; metas combined with `isLast:true` make it pull the queue again
//! without a key.

use std::collections::VecDeque;

use ferrim_proto::pb::Jid;

/// A frame the reader must send.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PullAction {
    /// `CommSyncUL{queue}`.
    Pull(Jid),
    /// `CommSyncUL{queue, key}`.
    Ack(Jid, u64),
}

/// What a `CommSyncDL` (pull result or push) led to.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct DlOutcome {
    pub action: Option<PullAction>,
    pub violation: Option<String>,
    pub offline_finished: bool,
}

#[derive(Debug)]
struct Cursor {
    queue: Jid,
    last_key: Option<u64>,
    renotified: bool,
}

#[derive(Debug)]
pub(crate) struct PullState {
    current: Option<Cursor>,
    waiting: VecDeque<Jid>,
    recheck: bool,
    offline_started: bool,
    /// Names of the offline queues not finished yet.
    offline_pending: Vec<String>,
}

fn name(jid: &Jid) -> &str {
    jid.name.as_deref().unwrap_or("")
}

impl PullState {
    pub fn new(recheck: bool) -> Self {
        PullState {
            current: None,
            waiting: VecDeque::new(),
            recheck,
            offline_started: false,
            offline_pending: Vec::new(),
        }
    }

    /// Name of the queue being pulled.
    #[cfg(test)]
    pub fn current(&self) -> Option<&str> {
        self.current.as_ref().map(|c| name(&c.queue))
    }

    fn enqueue(&mut self, queue: Jid) {
        let n = name(&queue);
        if let Some(cur) = &mut self.current {
            if name(&cur.queue) == n {
                if self.recheck {
                    cur.renotified = true;
                }
                return;
            }
        }
        if self.waiting.iter().any(|q| name(q) == n) {
            return;
        }
        self.waiting.push_back(queue);
    }

    fn start_next(&mut self) -> Option<PullAction> {
        if self.current.is_some() {
            return None;
        }
        let queue = self.waiting.pop_front()?;
        let action = PullAction::Pull(queue.clone());
        self.current = Some(Cursor {
            queue,
            last_key: None,
            renotified: false,
        });
        Some(action)
    }

    /// A `NOTICE` for `queue`. Notices for this very device (own name and own resource)
    /// are ignored like the SDK does.
    pub fn notice(&mut self, queue: Jid, me: &str, my_resource: &str) -> Option<PullAction> {
        if name(&queue) == me && queue.client_resource.as_deref().unwrap_or("") == my_resource {
            return None;
        }
        self.enqueue(queue);
        self.start_next()
    }

    /// A `CommUnreadDL` listing `queues`. Returns the pull to start and whether this is the
    /// start of the offline sync (first non-empty list of the connection).
    pub fn unread(&mut self, queues: Vec<Jid>) -> (Option<PullAction>, bool) {
        let mut started = false;
        if !queues.is_empty() && !self.offline_started {
            self.offline_started = true;
            started = true;
            for q in &queues {
                if !self.offline_pending.iter().any(|n| n == name(q)) {
                    self.offline_pending.push(name(q).to_owned());
                }
            }
        }
        for q in queues {
            self.enqueue(q);
        }
        (self.start_next(), started)
    }

    /// Ends the current pull (finished or abandoned).
    fn finish_current(&mut self, out: &mut DlOutcome) {
        let Some(cur) = self.current.take() else {
            return;
        };
        if !self.offline_pending.is_empty() {
            self.offline_pending.retain(|n| n != name(&cur.queue));
            out.offline_finished = self.offline_pending.is_empty();
        }
        if cur.renotified {
            self.enqueue(cur.queue);
        }
        out.action = self.start_next();
    }

    /// A `CommSyncDL` without `metaId` (pull result or unsolicited push).
    pub fn dl(
        &mut self,
        queue: Option<Jid>,
        has_metas: bool,
        is_last: bool,
        next_key: Option<u64>,
        kicked: bool,
    ) -> DlOutcome {
        let mut out = DlOutcome::default();
        let Some(queue) = queue else {
            out.violation = Some("CommSyncDL without queue (the SDK throws)".to_owned());
            return out;
        };
        let is_current = self
            .current
            .as_ref()
            .is_some_and(|c| name(&c.queue) == name(&queue));
        if !is_last {
            // protobufjs reads a missing nextKey as 0 and acks with key 0.
            let key = next_key.unwrap_or(0);
            if is_current {
                let cur = self.current.as_mut().expect("is_current");
                if cur.last_key == Some(key) {
                    out.violation = Some(format!(
                        "same nextKey {key} twice for queue {:?}: the SDK abandons the queue",
                        name(&queue)
                    ));
                    self.finish_current(&mut out);
                    return out;
                }
                cur.last_key = Some(key);
            }
            out.action = Some(PullAction::Ack(queue, key));
            return out;
        }
        if has_metas && !kicked {
            out.violation = Some(format!(
                "metas combined with isLast:true for queue {:?}: the SDK pulls it again without key",
                name(&queue)
            ));
            if is_current {
                let cur = self.current.as_mut().expect("is_current");
                cur.last_key = None;
                out.action = Some(PullAction::Pull(queue));
            }
            return out;
        }
        if is_current {
            self.finish_current(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(name: &str) -> Jid {
        Jid {
            app_key: Some("org#app".into()),
            name: Some(name.into()),
            domain: Some("easemob.com".into()),
            client_resource: None,
        }
    }

    #[test]
    fn notice_pull_ack_finish() {
        let mut s = PullState::new(false);
        assert_eq!(
            s.notice(jid("bob"), "alice", "r1"),
            Some(PullAction::Pull(jid("bob")))
        );
        let out = s.dl(Some(jid("bob")), true, false, Some(10), false);
        assert_eq!(out.action, Some(PullAction::Ack(jid("bob"), 10)));
        assert_eq!(out.violation, None);
        let out = s.dl(Some(jid("bob")), false, true, None, false);
        assert_eq!(out, DlOutcome::default());
        assert_eq!(s.current(), None);
    }

    #[test]
    fn one_queue_at_a_time_and_notices_deduplicated() {
        let mut s = PullState::new(false);
        assert!(s.notice(jid("bob"), "alice", "r1").is_some());
        assert_eq!(s.notice(jid("carol"), "alice", "r1"), None);
        assert_eq!(s.notice(jid("carol"), "alice", "r1"), None);
        assert_eq!(s.notice(jid("bob"), "alice", "r1"), None, "being pulled");
        let out = s.dl(Some(jid("bob")), false, true, None, false);
        assert_eq!(out.action, Some(PullAction::Pull(jid("carol"))));
        let out = s.dl(Some(jid("carol")), false, true, None, false);
        assert_eq!(out.action, None, "carol was queued once; bob not rechecked");
    }

    #[test]
    fn recheck_pulls_renotified_queue_again() {
        let mut s = PullState::new(true);
        s.notice(jid("bob"), "alice", "r1");
        assert_eq!(s.notice(jid("bob"), "alice", "r1"), None);
        let out = s.dl(Some(jid("bob")), false, true, None, false);
        assert_eq!(out.action, Some(PullAction::Pull(jid("bob"))));
    }

    #[test]
    fn own_device_notice_ignored() {
        let mut s = PullState::new(true);
        let mut own = jid("alice");
        own.client_resource = Some("r1".into());
        assert_eq!(s.notice(own, "alice", "r1"), None);
        // Bare own JID is fine when our resource is non-empty ...
        assert!(s.notice(jid("alice"), "alice", "r1").is_some());
        // ... but matches an empty resource (server did not echo one).
        let mut s = PullState::new(true);
        assert_eq!(s.notice(jid("alice"), "alice", ""), None);
    }

    #[test]
    fn same_next_key_abandons_queue() {
        let mut s = PullState::new(false);
        s.notice(jid("bob"), "alice", "r1");
        s.notice(jid("carol"), "alice", "r1");
        s.dl(Some(jid("bob")), true, false, Some(5), false);
        let out = s.dl(Some(jid("bob")), true, false, Some(5), false);
        assert!(out.violation.unwrap().contains("same nextKey"));
        assert_eq!(out.action, Some(PullAction::Pull(jid("carol"))));
    }

    #[test]
    fn metas_with_is_last_repull_without_key() {
        let mut s = PullState::new(false);
        s.notice(jid("bob"), "alice", "r1");
        let out = s.dl(Some(jid("bob")), true, true, Some(3), false);
        assert!(out.violation.is_some());
        assert_eq!(out.action, Some(PullAction::Pull(jid("bob"))));
        assert_eq!(s.current(), Some("bob"));
        // A kick push with isLast:true is the allowed exception.
        let out = s.dl(Some(jid("alice")), true, true, None, true);
        assert_eq!(out, DlOutcome::default());
    }

    #[test]
    fn unsolicited_push_is_acked() {
        let mut s = PullState::new(false);
        let out = s.dl(Some(jid("dave")), true, false, Some(9), false);
        assert_eq!(out.action, Some(PullAction::Ack(jid("dave"), 9)));
        assert_eq!(s.current(), None);
        let out = s.dl(None, true, false, Some(9), false);
        assert!(out.violation.is_some());
    }

    #[test]
    fn offline_sync_start_and_finish() {
        let mut s = PullState::new(false);
        let (action, started) = s.unread(vec![jid("bob"), jid("carol")]);
        assert!(started);
        assert_eq!(action, Some(PullAction::Pull(jid("bob"))));
        let out = s.dl(Some(jid("bob")), false, true, None, false);
        assert!(!out.offline_finished);
        assert_eq!(out.action, Some(PullAction::Pull(jid("carol"))));
        let out = s.dl(Some(jid("carol")), false, true, None, false);
        assert!(out.offline_finished);
        // Later non-empty lists pull but do not restart the offline sync.
        let (action, started) = s.unread(vec![jid("bob")]);
        assert!(!started);
        assert_eq!(action, Some(PullAction::Pull(jid("bob"))));
        assert!(
            !s.dl(Some(jid("bob")), false, true, None, false)
                .offline_finished
        );
        assert_eq!(s.unread(Vec::new()), (None, false));
    }
}
